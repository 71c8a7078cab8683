#!/usr/bin/env bash
# Runs every libFuzzer target of build/fuzz (make fuzz) for SECONDS each, from its seed corpus
# (tests/fuzz/<name>/corpus) and the corpus earlier runs grew (build/fuzz/corpus-<name>, kept
# between runs). Any finding fails the run and names the input that shows it: a crash, any
# sanitizer report (the fuzz preset builds with -fno-sanitize-recover=all, so UBSan aborts like
# ASan), a leak, an input that runs longer than 10 s, or one that makes the target use more than
# 2 GiB. Used by `make fuzz-smoke` (10 s each) and `make soak` (an hour of CPU in all).
# The targets run FUZZ_JOBS at a time (default: one per core; each libFuzzer process uses one),
# so that the smoke takes SECONDS x targets / cores; the first finding stops the run.
#
#   scripts/fuzz-run.sh SECONDS [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:?usage: scripts/fuzz-run.sh SECONDS [TARGET...]}
shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in build/fuzz/fuzz_*; do targets+=("${f##*/fuzz_}"); done
fi
# Belt and braces: a target built without -fno-sanitize-recover still stops at a UBSan report.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
# One target: 0, or 1 with its log's tail and how to reproduce printed.
run_one() {
  local name=$1 bin=build/fuzz/fuzz_$1 log=build/fuzz/$1.log runs
  mkdir -p "build/fuzz/corpus-$name"
  echo "fuzz: $name for ${secs}s"
  if ! "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="build/fuzz/$name-" "build/fuzz/corpus-$name" "tests/fuzz/$name/corpus" \
      2>"$log"; then
    tail -40 "$log"
    echo "fuzz: $name FAILED; the input is the artifact named above (build/fuzz/$name-*)," \
         "reproduce with: $bin <that file>" >&2
    return 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  echo "fuzz: $name: ${runs:-?} inputs, corpus $(ls "build/fuzz/corpus-$name" | wc -l) files"
}

jobs=${FUZZ_JOBS:-$(nproc)}
running=0
failed=0
for name in "${targets[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n || failed=1
    running=$((running - 1))
  fi
  [ "$failed" = 0 ] || break
  run_one "$name" &
  running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
  wait -n || failed=1
  running=$((running - 1))
done
exit "$failed"
