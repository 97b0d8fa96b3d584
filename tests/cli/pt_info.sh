#!/bin/bash
# `ear info` on torch.save files that are not models (tests/fixtures/pt, from
# tools/make_pt_fixtures.py): the top-level entries, the tensors, the dtypes; a hostile or
# damaged .pt refused with status 1 and the reader's reason.
set -u
EAR=${EAR_BIN:?EAR_BIN is not set}
FIXTURES=${EAR_SOURCE_DIR:-.}/tests/fixtures/pt
WORK=$(mktemp -d "${EAR_TEST_TMP:-/tmp}/cli_pt_info.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
. "$(dirname "$0")/../check.sh"

run_ear() {
    "$EAR" "$@" >"$WORK/stdout" 2>"$WORK/stderr"
    status=$?
    check "ear $*: no sanitizer report: $(head -c 2000 "$WORK/stderr")" \
        not_in_stderr "Sanitizer\|runtime error:"
}
not_in_stderr() { ! grep -q -- "$1" "$WORK/stderr"; }
stderr_has() { grep -q -- "$1" "$WORK/stderr"; }
stdout_has() { grep -q -- "$1" "$WORK/stdout"; }

run_ear info "$FIXTURES/index.pt"
check "index.pt: exit 0 (status $status: $(cat "$WORK/stderr"))" [ "$status" -eq 0 ]
check "index.pt: the metadata list" stdout_has "  metadata: list of 6"
check "index.pt: the tensor" stdout_has "  tensor: tensor F32 \[6, 512\]"
check "index.pt: the totals" stdout_has "tensors: 1, 3072 elements, 12288 bytes; dtypes: F32 x1"

run_ear info "$FIXTURES/state_dict.pt"
check "state_dict.pt: exit 0" [ "$status" -eq 0 ]
check "state_dict.pt: a strided view" stdout_has "  base_t: tensor F32 \[4, 3\] (strided)"
check "state_dict.pt: every dtype" stdout_has "dtypes: F32 x13 F16 x2 BF16 x1 F64 x1 I64 x2 I32 x1 I16 x1 I8 x1 U8 x1 BOOL x1"

run_ear info "$FIXTURES/checkpoint.pt"
check "checkpoint.pt: plain values" stdout_has "  epoch: int 7"
check "checkpoint.pt: the nested state dict's tensor" stdout_has "tensors: 1, 4 elements"

for bad in "os_system.pt:posix.system" "eval.pt:builtins.eval" "truncated.pt:end of central directory" \
    "short_storage.pt:storage shorter than tensor" "deflate.pt:compressed"; do
    file=${bad%%:*}
    reason=${bad#*:}
    run_ear info "$FIXTURES/$file"
    check "$file: exit 1 (status $status)" [ "$status" -eq 1 ]
    check "$file: says $reason ($(cat "$WORK/stderr"))" stderr_has "$reason"
    check "$file: nothing on stdout" [ ! -s "$WORK/stdout" ]
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
