#!/usr/bin/env bash
# Runs each libFuzzer target for a bounded time: tests/fuzz/run.sh BUILD [SECONDS] [TARGET...]
# BUILD was configured with CC=clang -DEAR_FUZZ=ON (`make fuzz` does it all).
# Each target starts from its seeds in tests/fuzz/corpus/<target>/ (never written
# to: new inputs go to a scratch copy). A crash, leak, sanitizer report, hang
# (-timeout) or runaway memory stops that target; its input is copied to
# BUILD/fuzz-findings/ and the script fails at the end. To keep a crash as a
# regression: fix it, then move the input to tests/fuzz/regressions/<target>/,
# where ctest's fuzz_replay_<target> replays it in every build.
set -uo pipefail
build=${1:?usage: run.sh BUILD [SECONDS] [TARGET...]}
seconds=${2:-45}
shift $(($# >= 2 ? 2 : $#))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(model index audio image http pt sandbox)
here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
findings=$build/fuzz-findings
mkdir -p "$findings"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/ear-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

export EAR_SOURCE_DIR=$source_dir
export LSAN_OPTIONS=suppressions=$source_dir/tests/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export OPENBLAS_NUM_THREADS=1

failed=()
for target in "${targets[@]}"; do
    binary=$build/fuzz_$target
    if [ ! -x "$binary" ]; then
        echo "fuzz: $binary is missing (configure $build with CC=clang -DEAR_FUZZ=ON)" >&2
        failed+=("$target")
        continue
    fi
    mkdir -p "$scratch/$target"
    log=$findings/$target.log
    # -timeout: one input running longer is a hang; -rss_limit_mb: a runaway allocation.
    "$binary" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$findings/$target-" "$scratch/$target" "$here/corpus/$target" \
        >"$log" 2>&1
    status=$?
    stats=$(grep -a -E '^#[0-9]+.*DONE' "$log" | tail -1)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    if [ $status -eq 0 ]; then
        echo "fuzz $target: ${runs:-?} runs in ${seconds} s, no finding (${stats#*DONE })"
    else
        echo "fuzz $target: FAILED (exit $status); the input is in $findings/, the log in $log" >&2
        grep -a -E -A25 '^==[0-9]+==ERROR|runtime error:|fuzz harness:|ALARM|out-of-memory' "$log" |
            head -40 >&2
        failed+=("$target")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: findings in ${failed[*]}" >&2
    exit 1
fi
