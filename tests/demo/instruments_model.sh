#!/bin/bash
# demo/instruments.safetensors, the model `make demo` serves (tools/train_instruments.py):
# 1. a whole model of at most 10 MB with both towers;
# 2. the C engine's embeddings equal PyTorch's (cosine >= 0.9999) for two sounds (one segment,
#    two segments) and two pictures, against tests/fixtures/demo/instruments_*.npy
#    (tools/make_instrument_golden.py);
# 3. through POST /query: sounds from the soundfont training never heard (timgm6mb), put through
#    a room, noise and Opus (tests/fixtures/demo/instruments/queries, made by
#    tools/make_instrument_golden.py --smoke), find a picture of their instrument first in a small
#    index of other clips of that soundfont and one picture per instrument, for at least 5 of the
#    6 (and a sound of it first for at least 5 of the 6).
source "$(dirname "$0")/../http/lib.sh"
MODEL=$SOURCE/demo/instruments.safetensors
FIXTURES=$SOURCE/tests/fixtures/demo

check "demo/instruments.safetensors exists" [ -f "$MODEL" ]
size=$(stat -c %s "$MODEL" 2>/dev/null || echo 0)
check "at most 10 MB (10485760 bytes), is $size" [ "$size" -gt 0 ] && [ "$size" -le 10485760 ]
"$EAR" info "$MODEL" >"$WORK/info" 2>&1
check "info: exit 0 ($(head -c 500 "$WORK/info"))" [ $? -eq 0 ]
check "info: both towers" eval 'grep -q "audio tower" "$WORK/info" && grep -q "image tower" "$WORK/info"'

# cosine A.npy ROW B.npy: the cosine between A (one vector) and row ROW of B (rows of A's size).
cosine() {
    paste <(npy_values "$1") <(npy_values "$3" | awk -v n="$(npy_values "$1" | wc -l)" -v r="$2" \
        'NR > r * n && NR <= (r + 1) * n') |
        awk '{ ab += $1 * $2; aa += $1 * $1; bb += $2 * $2 } END { printf "%.6f", ab / sqrt(aa * bb) }'
}
row=0
for wav in instruments_tone.wav instruments_long.wav; do
    "$EAR" embed --model "$MODEL" --audio "$FIXTURES/$wav" -o "$WORK/a.npy" 2>"$WORK/err"
    check "embed $wav: exit 0 ($(cat "$WORK/err"))" [ $? -eq 0 ]
    c=$(cosine "$WORK/a.npy" $row "$FIXTURES/instruments_audio.npy")
    check "$wav: the C engine = PyTorch (cosine $c >= 0.9999)" \
        awk -v c="$c" 'BEGIN { exit !(c >= 0.9999) }'
    row=$((row + 1))
done
row=0
for picture in nn_alpha.png nn_photo.jpg; do
    "$EAR" embed --model "$MODEL" --image "$SOURCE/tests/fixtures/nn/$picture" -o "$WORK/i.npy" \
        2>"$WORK/err"
    check "embed $picture: exit 0 ($(cat "$WORK/err"))" [ $? -eq 0 ]
    c=$(cosine "$WORK/i.npy" $row "$FIXTURES/instruments_image.npy")
    check "$picture: the C engine = PyTorch (cosine $c >= 0.9999)" \
        awk -v c="$c" 'BEGIN { exit !(c >= 0.9999) }'
    row=$((row + 1))
done

# 3. The smoke test through /query.
SMOKE=$FIXTURES/instruments
make_index "$SMOKE/data" "$WORK/index.ear" "$MODEL"
check "index of the smoke dataset: exit 0 ($(tail -n 3 "$WORK/index.log"))" [ $? -eq 0 ]
start_server --model "$MODEL" --index "$WORK/index.ear" --data "$SMOKE/data" || finish
firsts() { # the first label of each column: "<same> <cross>"
    sed -n 's/.*"cross_modality":\[{"label":"\([^"]*\)".*"same_modality":\[{"label":"\([^"]*\)".*/\2 \1/p' "$WORK/$1.b"
}
# Both columns must be right for most, not all: on the held-out soundfont sound -> picture R@1
# is about 0.78 and sound -> sound about 0.77 over all 19 instruments (README), so six right of
# six is not to be counted on; here chance is one in six, and 5 of 6 by chance about 7 in 10,000.
queries=0
same_right=0
cross_right=0
for query in "$SMOKE"/queries/*.webm; do
    [ -f "$query" ] || continue
    instrument=$(basename "$query" | sed 's/-timgm-.*//')
    fetch q -F "file=@$query" "$(URL /query)"
    check "$(basename "$query"): 200 (got $code: $(head -c 200 "$WORK/q.b"))" [ "$code" = 200 ]
    read -r same cross <<<"$(firsts q)"
    [ "$cross" = "$instrument" ] && cross_right=$((cross_right + 1))
    [ "$same" = "$instrument" ] && same_right=$((same_right + 1))
    echo "$(basename "$query"): first sound $same, first picture $cross"
    queries=$((queries + 1))
done
check "six queries, found $queries" [ "$queries" -eq 6 ]
check "a picture of the instrument first for at least 5 of 6, got $cross_right" [ "$cross_right" -ge 5 ]
check "a sound of the instrument first for at least 5 of 6, got $same_right" [ "$same_right" -ge 5 ]
stop_server
finish
