#!/bin/sh
# Runs each test program, adds up their "N passed, N failed" lines, and prints
# the total as the last line. Exits non-zero if any program failed or crashed.
pass=0; fail=0; bad=0
for t in "$@"; do
  out=$("$t" 2>&1); rc=$?
  printf '%s\n' "$out" | grep -E '^(FAIL|  )' | head -40
  line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -1)
  p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/'); f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
  [ -z "$line" ] && { p=0; f=1; }
  [ $rc -ne 0 ] && [ "$f" = 0 ] && f=1
  printf '%-40s %s (rc %d)\n' "$(basename "$t")" "${line:-no result line}" $rc
  pass=$((pass + p)); fail=$((fail + f))
  [ $rc -ne 0 ] && bad=1
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ] && [ $bad -eq 0 ]
