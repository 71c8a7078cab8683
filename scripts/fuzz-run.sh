#!/usr/bin/env bash
# Runs every libFuzzer target of build/fuzz (make fuzz) for SECONDS each, from its seed corpus
# (tests/fuzz/<name>/corpus) and the corpus earlier runs grew (build/fuzz/corpus-<name>, kept
# between runs). Any finding fails the run and names the input that shows it: a crash, any
# sanitizer report (the fuzz preset builds with -fno-sanitize-recover=all, so UBSan aborts like
# ASan), a leak, an input that runs longer than 10 s, or one that makes the target use more than
# 2 GiB. Used by `make fuzz-smoke` (10 s each) and `make soak` (an hour of CPU in all).
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
for name in "${targets[@]}"; do
  bin=build/fuzz/fuzz_$name
  log=build/fuzz/$name.log
  mkdir -p "build/fuzz/corpus-$name"
  echo "fuzz: $name for ${secs}s"
  if ! "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="build/fuzz/$name-" "build/fuzz/corpus-$name" "tests/fuzz/$name/corpus" \
      2>"$log"; then
    tail -40 "$log"
    echo "fuzz: $name FAILED; the input is the artifact named above (build/fuzz/$name-*)," \
         "reproduce with: $bin <that file>" >&2
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  echo "fuzz: $name: ${runs:-?} inputs, corpus $(ls "build/fuzz/corpus-$name" | wc -l) files"
done
