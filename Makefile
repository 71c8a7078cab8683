# A thin driver over CMake presets (CMakePresets.json). The README's two commands:
#   make run    build (release) and start the broker on ./data
#   make test   check the include rules (scripts/check-layers.py), then run every test (unit,
#               crash, example, integration) built with ASan+UBSan and again with
#               ThreadSanitizer, then the fuzz smoke
#   make soak   long fuzzing: the libFuzzer targets for an hour of CPU in all, then the protocol
#               fuzzer against the ASan broker for 10 minutes per protocol, then the compaction
#               test at a million updates (docs/architecture.md)
# Building and running install only what they need (scripts/install-deps.sh: Debian packages);
# the tests, the fuzz targets and the benchmarks install their tools too (--test: clang, the
# Python clients, Node.js and the Node clients from the npm registry, ...).
.PHONY: all deps deps-test build debug asan tsan release fuzz run test check-layers test-asan test-tsan fuzz-smoke soak bench bench-kafka bench-schema bench-cleaner bench-keys bench-offsets bench-waiters bench-delay bench-txn format clean

DATA ?= ./data
FUZZ_SECONDS ?= 10
# The protocol fuzzer's seconds per protocol: 20 under ASan; under ThreadSanitizer, which looks
# for races rather than for more inputs, 8 (make test stays within its time budget).
PROTO_FUZZ_SECONDS_asan ?= 20
PROTO_FUZZ_SECONDS_tsan ?= 8
# make soak: CPU seconds shared by the libFuzzer targets, and seconds per protocol for the
# protocol fuzzer (TIDINGS_FUZZ_SEED=N replays a seed it printed).
SOAK_FUZZ_CPU_SECONDS ?= 3600
SOAK_PROTO_SECONDS ?= 600
# make test: ctest programs at a time, and pytest-xdist workers, per sanitizer suite.
TEST_JOBS ?= 4
PYTEST_WORKERS ?= 2
# Integration tests that measure rates over wall-clock windows (quotas): run after the others,
# alone in their suite, since the other workers' load skews what they measure.
SERIAL_TESTS = tests/integration/test_quotas.py
# make soak: the compaction test at the issue's figure (make test runs 200 000 updates).
SOAK_COMPACTION_UPDATES ?= 1000000

all: build

deps:
	@scripts/install-deps.sh

deps-test:
	@scripts/install-deps.sh --test

build: release

debug tsan release: deps
	@cmake --preset $@ >/dev/null
	@cmake --build build/$@

# The fuzz targets and the ASan build (whose UBSan can make every finding fatal) need clang.
asan fuzz: deps-test
	@cmake --preset $@ >/dev/null
	@cmake --build build/$@

run: release
	./build/release/tidings serve --data $(DATA)

# The builds come first, one at a time (each uses every core); then the two sanitizer suites run
# side by side: the integration tests mostly wait on clients, timers and fsyncs (a whole
# `make test` used 0.6 of a core on average when they ran one after the other), so together
# they share the CI machine's two cores and take about the time of the longer one. For the same
# reason each suite runs its ctest programs TEST_JOBS at a time (the ASan ctest used a third of
# a core at -j4: 60 s instead of 190 s one at a time) and its integration tests on
# PYTEST_WORKERS pytest-xdist workers, a test file per worker (--dist loadfile: a file's
# module-scoped broker stays one; every broker has its own ephemeral ports and data directory).
test: deps-test check-layers
	@$(MAKE) --no-print-directory asan tsan fuzz
	@$(MAKE) --no-print-directory -j2 --output-sync=target test-asan test-tsan
	@$(MAKE) --no-print-directory fuzz-smoke

# The include rules of docs/architecture.md ("Include rules"), checked before anything is built.
check-layers:
	@/usr/bin/python3 scripts/check-layers.py

# A sanitizer report fails a test: ASan and UBSan abort, ThreadSanitizer exits 66, and the
# integration tests' broker must stop with status 0 and no "Sanitizer" in its stderr.
test-asan test-tsan: test-%: deps-test %
	ctest --test-dir build/$* --output-on-failure -j$(TEST_JOBS)
	TIDINGS_BIN=$(CURDIR)/build/$*/tidings TIDINGS_FUZZ_SECONDS=$(PROTO_FUZZ_SECONDS_$*) \
	  /usr/bin/python3 -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile \
	  $(SERIAL_TESTS:%=--ignore=%) tests/integration
	TIDINGS_BIN=$(CURDIR)/build/$*/tidings /usr/bin/python3 -m pytest -q $(SERIAL_TESTS)

# Each libFuzzer target runs for FUZZ_SECONDS from its seed corpus; a crash, a sanitizer report
# (UBSan included), a leak or a hang fails the run (scripts/fuzz-run.sh).
fuzz-smoke: fuzz
	@scripts/fuzz-run.sh $(FUZZ_SECONDS)

# The libFuzzer targets share SOAK_FUZZ_CPU_SECONDS (growing build/fuzz/corpus-*, kept between
# runs), then the protocol-mutation fuzzer drives the ASan broker for SOAK_PROTO_SECONDS per
# protocol, from a new seed it prints, then the compaction test makes SOAK_COMPACTION_UPDATES.
soak: fuzz asan
	@n=$$(ls build/fuzz/fuzz_* | wc -l); \
	  scripts/fuzz-run.sh $$(( ($(SOAK_FUZZ_CPU_SECONDS) + n - 1) / n ))
	TIDINGS_BIN=$(CURDIR)/build/asan/tidings TIDINGS_FUZZ_SECONDS=$(SOAK_PROTO_SECONDS) \
	  /usr/bin/python3 -m pytest -q -s tests/integration/test_protocol_fuzz.py
	TIDINGS_BIN=$(CURDIR)/build/asan/tidings TIDINGS_COMPACTION_UPDATES=$(SOAK_COMPACTION_UPDATES) \
	  /usr/bin/python3 -m pytest -q tests/integration/test_compaction.py

bench: deps-test release
	bench/run.sh
	bench/kafka.sh
	bench/schema.sh

bench-kafka: deps-test release
	bench/kafka.sh

# Produce with schema validation (Avro, JSON Schema; modes id and full) against no validation.
bench-schema: deps-test release
	bench/schema.sh

bench-cleaner: release
	bench/cleaner.sh

bench-keys: release
	bench/keys.sh

# Offset commit rate; BEFORE=path/to/another/tidings measures it too, in the same run.
bench-offsets: deps-test release
	/usr/bin/python3 bench/offset_commit.py $(if $(BEFORE),before=$(BEFORE)) after=build/release/tidings

# Wake-up latency of readers that wait (Kafka fetch, XREAD BLOCK, SSE, long-polling receive);
# BEFORE=path/to/another/tidings measures it too, in turns in the same run.
bench-waiters: deps-test release
	/usr/bin/python3 bench/waiters.py $(BEFORE) build/release/tidings

# Delayed delivery's precision: 100 000 events at random times over 10 s, against an ordinary
# event's produce-to-consumer time in the same run.
bench-delay: deps-test release
	/usr/bin/python3 bench/delay.py build/release/tidings

# Kafka transactions: transactional produce (100 events a transaction) against idempotent produce
# flushed every 100 events (and pipelined), and read_committed against read_uncommitted consume,
# against one broker in one run.
bench-txn: deps-test release
	/usr/bin/python3 bench/txn.py build/release/tidings

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build
