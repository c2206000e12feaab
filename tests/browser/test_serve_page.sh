#!/bin/sh
# test_serve_page.sh — the web page of `sld serve` in a real browser:
# headless Chromium opens /?...&compare=1&autostart=1 on the tiny model, the
# page generates the same seed with SLD off and with the preset, and the test
# checks in the rendered DOM that both images arrived and decoded
# (img.result[data-loaded="1"], body[data-state="done"]). A screenshot goes to
# $BUILD/test-output/serve-compare.png. Prints "N passed, N failed" like the
# C tests (tests/run.sh adds it up). Chromium is installed when missing and
# we are root (CI); elsewhere the test is skipped with a note.
BUILD=${BUILD:-build}
OUT=${TEST_OUTPUT:-$BUILD/test-output}
pass=0; fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
finish() { echo "$pass passed, $fail failed"; [ $fail -eq 0 ]; exit $?; }

browser=""
for c in chromium chromium-browser google-chrome; do
  command -v $c >/dev/null 2>&1 && { browser=$c; break; }
done
if [ -z "$browser" ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "  installing chromium (apt-get)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1; }
  command -v chromium >/dev/null 2>&1 && browser=chromium
fi
if [ -z "$browser" ]; then
  if [ -n "$CI" ]; then bad "chromium is not installed and could not be installed"; finish; fi
  echo "  (skip: no chromium; apt-get install chromium to run the browser test)"
  finish
fi
[ -x "$BUILD/sld" ] || { bad "$BUILD/sld is not built"; finish; }

mkdir -p "$OUT"
tmp=$(mktemp -d /tmp/sld-browser.XXXXXX)
"$BUILD/sld" serve --model tests/fixtures/models/tiny-sd1 --listen 127.0.0.1:0 \
  --no-safety-checker --threads 2 2>"$tmp/serve.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT INT TERM
port=""
i=0
while [ $i -lt 600 ] && [ -z "$port" ]; do
  port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/serve.log")
  kill -0 $pid 2>/dev/null || break
  [ -z "$port" ] && sleep 0.2
  i=$((i + 1))
done
if [ -z "$port" ]; then bad "server did not start: $(cat "$tmp/serve.log")"; finish; fi

url="http://127.0.0.1:$port/?prompt=a%20red%20apple&steps=2&width=64&height=64&seed=7&safety=max&compare=1&autostart=1"
run_browser() {
  timeout 300 "$browser" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --no-first-run --user-data-dir="$tmp/profile" --virtual-time-budget=120000 \
    --window-size=1200,800 "$@" "$url" 2>>"$tmp/chromium.log"
}
run_browser --dump-dom >"$tmp/dom.html"
grep -q 'data-state="done"' "$tmp/dom.html" && ok "page reports done" ||
  bad "page did not finish: $(grep -o 'id="status"[^<]*<' "$tmp/dom.html")"
n=$(grep -o '<img[^>]*data-loaded="1"' "$tmp/dom.html" | grep -c 'src="data:image/png;base64,')
[ "$n" -eq 2 ] && ok "two images decoded (SD and SLD max, seed 7)" || bad "expected 2 decoded images, found $n"
grep -q 'SD (SLD off) · seed 7' "$tmp/dom.html" && grep -q 'SLD max · seed 7' "$tmp/dom.html" &&
  ok "compare labels with the same seed" || bad "compare labels missing"
grep -q 'SLD: off' "$tmp/dom.html" && grep -q 'SLD: max' "$tmp/dom.html" &&
  ok "parameters shown for both" || bad "parameters text missing"

# the map toggle: both cards carry a decoded, visible map and SLD's activity line
url="$url&sld_map=1"
run_browser --dump-dom >"$tmp/dom-map.html"
grep -q 'data-state="done"' "$tmp/dom-map.html" && ok "page with maps reports done" ||
  bad "page with maps did not finish: $(grep -o 'id="status"[^<]*<' "$tmp/dom-map.html")"
n=$(grep -o '<img[^>]*class="map"[^>]*>' "$tmp/dom-map.html" | grep 'data-map-loaded="1"' |
  grep -c 'src="data:image/png;base64,')
[ "$n" -eq 2 ] && ok "two SLD maps decoded (off and max)" || bad "expected 2 decoded maps, found $n"
grep -q '<body[^>]*class="maps"' "$tmp/dom-map.html" && ok "map toggle on shows the maps" ||
  bad "body lacks the maps class"
grep -q 'SLD did not steer this image' "$tmp/dom-map.html" &&
  grep -q 'SLD steered [0-9.]* % of latents' "$tmp/dom-map.html" &&
  ok "activity shown: none for SD, some for SLD max" || bad "activity lines missing"
rm -f "$OUT/serve-compare-map.png"
run_browser --screenshot="$OUT/serve-compare-map.png" >/dev/null
[ -s "$OUT/serve-compare-map.png" ] && ok "screenshot with maps written" || bad "no screenshot with maps"
url=${url%&sld_map=1}

rm -f "$OUT/serve-compare.png"
run_browser --screenshot="$OUT/serve-compare.png" >/dev/null
if [ -s "$OUT/serve-compare.png" ] && head -c 8 "$OUT/serve-compare.png" | grep -q PNG; then
  ok "screenshot written to $OUT/serve-compare.png"
else
  bad "no screenshot"
fi
m=$(curl -s "http://127.0.0.1:$port/metrics" 2>/dev/null | sed -n 's/^sld_images_total //p')
[ -z "$m" ] || [ "$m" -ge 6 ] && ok "server made the images (metrics: ${m:-no curl})" || bad "images_total $m"
finish
