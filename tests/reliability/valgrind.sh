#!/bin/bash
# The service's tests again with every `ear` they run under valgrind's memcheck:
#   tests/reliability/valgrind.sh BUILD [TEST.sh...]
# BUILD holds a plain (not sanitized) build; by default the scripts are
# tests/http/*.sh (but memory.sh, which measures RSS) and tests/cli/serve.sh.
# EAR_BIN becomes a wrapper that runs valgrind --leak-check=full
# --error-exitcode=1 with one log per process; the run fails when a script
# fails or when any log shows an error or a definite or indirect leak.
set -uo pipefail
build=$(cd "${1:?usage: valgrind.sh BUILD [TEST.sh...]}" && pwd)
shift
here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
command -v valgrind >/dev/null || { echo "valgrind is not installed (make deps)" >&2; exit 1; }
if grep -aq AddressSanitizer "$build/ear"; then
    echo "valgrind: $build/ear is built with sanitizers; use a plain build" >&2
    exit 1
fi
scripts=("$@")
if [ ${#scripts[@]} -eq 0 ]; then
    for s in "$source_dir"/tests/http/*.sh "$source_dir"/tests/cli/serve.sh; do
        case $(basename "$s") in lib.sh | memory.sh) continue ;; esac
        scripts+=("$s")
    done
fi
work=$(mktemp -d "$build/valgrind.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/logs" "$work/tmp"
cat >"$work/ear" <<WRAPPER
#!/bin/sh
exec valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite,indirect \\
    --show-leak-kinds=definite,indirect --error-exitcode=1 --num-callers=30 \\
    --suppressions="$here/valgrind.supp" --log-file="$work/logs/%p.log" "$build/ear" "\$@"
WRAPPER
chmod +x "$work/ear"

export EAR_BIN=$work/ear EAR_SOURCE_DIR=$source_dir EAR_TEST_TMP=$work/tmp OPENBLAS_NUM_THREADS=1
# float32, as under ctest: valgrind's CPU has no AVX-512, and oneDNN's AVX2 int8 code (7-bit
# activations) reads JIT-made memory that memcheck cannot follow, so it reports errors that
# are oneDNN's own; the f32 path is the one the service's tests' contracts are written for.
export EAR_WEIGHTS=f32
# memcheck runs code ~20 times slower: tests that time an answer allow this many times more.
export EAR_TEST_TIME_SCALE=5
failed=()
for script in "${scripts[@]}"; do
    name=${script#"$source_dir"/}
    start=$(date +%s)
    if bash "$script" >"$work/out" 2>&1; then
        echo "valgrind: $name passed ($(tail -1 "$work/out"), $(($(date +%s) - start)) s)"
    else
        echo "valgrind: $name FAILED:" >&2
        tail -20 "$work/out" >&2
        failed+=("$name")
    fi
done
runs=$(ls "$work/logs" | wc -l)
bad=$(grep -l 'ERROR SUMMARY: [1-9]\|definitely lost: [1-9]\|indirectly lost: [1-9]\|Invalid \|uninitialised' \
    "$work/logs"/*.log 2>/dev/null)
for log in $bad; do
    echo "valgrind: a report in $(basename "$log"):" >&2
    head -60 "$log" >&2
done
echo "valgrind: $runs runs of ear checked, $(echo "$bad" | grep -c .) with errors or leaks"
[ ${#failed[@]} -eq 0 ] && [ -z "$bad" ]
