# sld — one GNU Makefile. Targets: all test san fuzz bench clean.
# Sources are discovered by directory: src/**/*.c make libsld.a, cli/*.c the
# `sld` command, tests/test_*.c one test program each, bench/bench_*.c benches.
# Files named *_avx512.c are built with AVX-512 flags and only called after a
# run-time cpuid check.

CC      ?= cc
BUILD   ?= build
OPT     ?= -O2
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
              -Wmissing-prototypes -Wno-format-truncation -g $(OPT) -fopenmp -Iinclude -Isrc
CFLAGS  += $(CFLAGS_BASE) $(EXTRA_CFLAGS)
LDLIBS  += -ldnnl -lcjson -lpcre2-8 -lutf8proc -lpng -ljpeg -lzip -llapack -lblas -lmicrohttpd -lminizip -lz -lm -fopenmp -lpthread
TEST_LDLIBS = -lcurl
ISA_AVX512 = -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16 -mfma -mf16c

LIB_SRC   := $(sort $(shell find src -name '*.c'))
CLI_SRC   := $(sort $(wildcard cli/*.c))
TEST_SRC  := $(sort $(wildcard tests/test_*.c))
BENCH_SRC := $(sort $(wildcard bench/bench_*.c))

LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ   := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all test test-slurm san san-one fuzz bench clean
all: $(BUILD)/libsld.a $(BUILD)/sld

$(BUILD)/%_avx512.o: %_avx512.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ISA_AVX512) -MMD -MP -c $< -o $@

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# The version string: SLD_VERSION (sld.h) plus `git describe` when built from
# a git checkout. The header is rewritten only when the description changes.
GIT_DESCRIBE := $(shell git describe --always --dirty --tags 2>/dev/null)
$(BUILD)/sld_build_version.h: FORCE
	@mkdir -p $(BUILD); v='#define SLD_GIT_DESCRIBE "$(GIT_DESCRIBE)"'; \
	  [ "$$(cat $@ 2>/dev/null)" = "$$v" ] || echo "$$v" > $@
$(BUILD)/src/pipeline/identity.o: $(BUILD)/sld_build_version.h
$(BUILD)/src/pipeline/identity.o: CFLAGS += -I$(BUILD)
.PHONY: FORCE
FORCE:
# The web page of `sld serve` is compiled in with .incbin (src/serve/page.c).
$(BUILD)/src/serve/page.o: src/serve/page.html

$(BUILD)/libsld.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/sld: $(CLI_OBJ) $(BUILD)/libsld.a
	$(CC) $(CFLAGS) $(CLI_OBJ) $(BUILD)/libsld.a $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/%.c tests/test.h $(BUILD)/libsld.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP $< $(BUILD)/libsld.a $(LDLIBS) $(TEST_LDLIBS) -o $@

$(BUILD)/bench/%: bench/%.c bench/common.h bench/peak.h $(BUILD)/libsld.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(BUILD)/libsld.a $(LDLIBS) -o $@

# Every test program prints "N passed, N failed"; tests/run.sh adds them up.
# tests/browser/*.sh drive headless Chromium (installed when missing in CI).
test: all $(TEST_BIN)
	@$(CXX) -std=c++11 -Wall -Wextra -Werror -fsyntax-only -x c++ include/sld.h  # usable from C++
	@BUILD=$(BUILD) sh tests/run.sh $(TEST_BIN) tests/browser/test_serve_page.sh

# The I2P study on a one-node Slurm cluster (root; installs slurm-wlm, munge).
test-slurm: all
	sh tests/slurm/run.sh

# Sanitizer build in its own folder.
san:
	$(MAKE) BUILD=build-san OPT=-O1 \
	  EXTRA_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  LDLIBS="$(LDLIBS) -fsanitize=address,undefined" test

FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_SRC:fuzz/%.c=build-fuzz/%)
FUZZ_TIME ?= 60
fuzz: $(FUZZ_BIN)
	@for f in $(FUZZ_BIN); do echo "== $$f ($(FUZZ_TIME)s)"; mkdir -p fuzz/corpus-$$(basename $$f); \
	  $$f -max_total_time=$(FUZZ_TIME) fuzz/corpus-$$(basename $$f) fuzz/seeds/$$(basename $$f) || exit 1; done
build-fuzz/%: fuzz/%.c $(LIB_SRC)
	@mkdir -p build-fuzz
	clang $(CFLAGS_BASE) -Wno-unknown-warning-option $(ISA_AVX512) -fsanitize=fuzzer,address,undefined $< $(LIB_SRC) $(LDLIBS) -o $@

# Quick set by default; SLD_BENCH_FULL=1 adds the 512x512 cases (long).
# docs/BENCH.md: columns, peak, noise. The random SD 1.5 model is written once.
bench: all $(BENCH_BIN)
	@m=$${SLD_BENCH_MODEL:-/tmp/sld-bench-sd15}; \
	  [ -f $$m/unet/diffusion_pytorch_model.safetensors ] || \
	    $(BUILD)/sld debug make-random --arch sd15 -o $$m || exit 1; \
	  export SLD_BENCH_MODEL=$$m SLD_BENCH_DIR=$$m; \
	  for b in $(BENCH_BIN); do echo "== $$b" >&2; $$b || exit 1; done

clean:
	rm -rf build build-san build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# One test program under sanitizers: make san-one T=test_core
san-one:
	$(MAKE) BUILD=build-san OPT=-O1 \
	  EXTRA_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  LDLIBS="$(LDLIBS) -fsanitize=address,undefined" build-san/tests/$(T)
	./build-san/tests/$(T)
