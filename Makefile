# A thin driver over CMake presets (CMakePresets.json). The README's two commands:
#   make run    build (release) and start the broker on ./data
#   make test   run every test (unit, crash, example, integration) built with ASan+UBSan and again
#               with ThreadSanitizer, then the fuzz smoke
# Building and running install only what they need (scripts/install-deps.sh: Debian packages);
# the tests, the fuzz targets and the benchmarks install their tools too (--test: clang, the
# Python clients, Node.js and the Node clients from the npm registry, ...).
.PHONY: all deps deps-test build debug asan tsan release fuzz run test test-asan test-tsan fuzz-smoke bench bench-kafka format clean

DATA ?= ./data
FUZZ_SECONDS ?= 15

all: build

deps:
	@scripts/install-deps.sh

deps-test:
	@scripts/install-deps.sh --test

build: release

debug asan tsan release: deps
	@cmake --preset $@ >/dev/null
	@cmake --build build/$@

# The fuzz targets need clang.
fuzz: deps-test
	@cmake --preset $@ >/dev/null
	@cmake --build build/$@

run: release
	./build/release/tidings serve --data $(DATA)

test: test-asan test-tsan
	@$(MAKE) --no-print-directory fuzz-smoke

# A sanitizer report fails a test: ASan and UBSan abort, ThreadSanitizer exits 66, and the
# integration tests' broker must stop with status 0 and no "Sanitizer" in its stderr.
test-asan test-tsan: test-%: deps-test %
	ctest --test-dir build/$* --output-on-failure
	TIDINGS_BIN=$(CURDIR)/build/$*/tidings /usr/bin/python3 -m pytest -q tests/integration

# Each libFuzzer target runs for FUZZ_SECONDS from its seed corpus; a crash fails the run.
fuzz-smoke: fuzz
	@for f in build/fuzz/fuzz_*; do \
	  name=$${f##*/fuzz_}; corpus=tests/fuzz/$$name/corpus; \
	  echo "fuzz: $$name for $(FUZZ_SECONDS)s"; \
	  mkdir -p build/fuzz/corpus-$$name; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 -artifact_prefix=build/fuzz/$$name- \
	    build/fuzz/corpus-$$name $$corpus \
	    2>build/fuzz/$$name.log || { tail -40 build/fuzz/$$name.log; exit 1; }; \
	done

bench: deps-test release
	bench/run.sh
	bench/kafka.sh

bench-kafka: deps-test release
	bench/kafka.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build
