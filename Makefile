# A thin driver over CMake presets (CMakePresets.json). The README's two commands:
#   make run    build (release) and start the broker on ./data
#   make test   build with ASan+UBSan and run every test (unit, crash, example, CLI, fuzz smoke)
.PHONY: all deps build debug asan release fuzz run test test-unit test-integration fuzz-smoke bench bench-kafka format clean

DATA ?= ./data
FUZZ_SECONDS ?= 15

all: build

deps:
	@scripts/install-deps.sh

build: release

debug asan release fuzz: deps
	@cmake --preset $@ >/dev/null
	@cmake --build build/$@

run: release
	./build/release/tidings serve --data $(DATA)

test: asan
	ctest --test-dir build/asan --output-on-failure
	TIDINGS_BIN=$(CURDIR)/build/asan/tidings /usr/bin/python3 -m pytest -q tests/integration
	@$(MAKE) --no-print-directory fuzz-smoke

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

bench: release
	bench/run.sh
	bench/kafka.sh

bench-kafka: release
	bench/kafka.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build
