#!/bin/bash
# tools/import_index.py: the original service's EAR_INDEX_PT and a {"features", "paths"} layout
# become Ear indexes that `ear info` and `ear search` accept for the model; the committed
# import (tests/fixtures/index/seed.earindex, read by test_index_import without torch) is
# what the tool makes today. Skipped (77) where /usr/bin/python3 has no torch.
set -u
EAR=${EAR_BIN:?EAR_BIN is not set}
SOURCE=${EAR_SOURCE_DIR:-.}
PYTHON=/usr/bin/python3
if ! "$PYTHON" -c "import torch, numpy" 2>/dev/null; then
    echo "skipped: $PYTHON cannot import torch (tools/ need Debian's python3-torch)"
    exit 77
fi
WORK=$(mktemp -d "${EAR_TEST_TMP:-/tmp}/cli_index_import.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
FIXTURES=$SOURCE/tests/fixtures/index
MODEL=$SOURCE/tests/fixtures/nn/nn_basic_f32.safetensors
TOOL=$SOURCE/tools/import_index.py
. "$(dirname "$0")/../check.sh"
run() { # run COMMAND...: status in $status, output in $WORK/stdout and $WORK/stderr
    "$@" >"$WORK/stdout" 2>"$WORK/stderr"
    status=$?
}
stderr_has() { grep -q -- "$1" "$WORK/stderr"; }
stdout_has() { grep -q -- "$1" "$WORK/stdout"; }
result_ids() { grep -o '"id":"[^"]*"' "$WORK/stdout" | sed 's/"id":"//; s/"$//'; }

mkdir -p "$WORK/data/frames" "$WORK/data/audio"
for name in bird cow rain; do touch "$WORK/data/frames/$name.jpg"; done
touch "$WORK/data/audio/cow.wav" "$WORK/data/audio/train.ogg"
ffmpeg -nostdin -v error -y -f lavfi -i "sine=frequency=440:duration=0.6" -ar 8000 \
    "$WORK/query.wav" || { echo "could not make the query sound" >&2; exit 1; }

# 1. The original's indexed_db.pt: the same bytes as the committed fixture.
run "$PYTHON" "$TOOL" --model "$MODEL" --data "$FIXTURES/seed_data" "$FIXTURES/seed.pt" \
    -o "$WORK/seed.index"
check "seed: exit 0 ($(cat "$WORK/stderr"))" [ "$status" -eq 0 ]
check "seed: as committed" cmp -s "$WORK/seed.index" "$FIXTURES/seed.earindex"
check "seed: no temporary" [ -z "$(ls -A "$WORK" | grep '\.tmp\.')" ]
run "$EAR" search --model "$MODEL" --index "$WORK/seed.index" -k 10 --kind all "$WORK/query.wav"
check "seed: ear search accepts it ($(cat "$WORK/stderr"))" [ "$status" -eq 0 ]
check "seed: five results" [ "$(result_ids | wc -l)" -eq 5 ]
check "seed: labels" stdout_has '"label":"café"'
check "seed: nested paths" stdout_has '"url":"data/audio/caf%C3%A9/deep/c%201.wav"'
check "seed: kinds" eval 'stdout_has "\"kind\":\"image\"" && stdout_has "\"kind\":\"audio\""'
run "$PYTHON" "$TOOL" --model "$MODEL" --data "$WORK/data" "$FIXTURES/seed.pt" -o "$WORK/x.index"
check "seed, files missing: exit 1" [ "$status" -eq 1 ]
check "seed, files missing: says which" stderr_has "5 files of the index are not under"

# 2. {"features" (not normalised), "paths"}: ids from the paths, sounds found on disk.
run "$PYTHON" "$TOOL" --model "$MODEL" --data "$WORK/data" "$FIXTURES/features.pt" \
    -o "$WORK/features.index" --dtype f16
check "features: exit 0 ($(cat "$WORK/stderr"))" [ "$status" -eq 0 ]
run "$EAR" search --model "$MODEL" --index "$WORK/features.index" -k 10 "$WORK/query.wav"
check "features: ear search accepts it ($(cat "$WORK/stderr"))" [ "$status" -eq 0 ]
check "features: ids from paths" [ "$(result_ids | sort | tr '\n' ' ')" = "bird cow rain train " ]
check "features: frame names from paths" stdout_has '"frame_url":"data/frames/train.jpg"'
check "features: normalised (scores within [-1, 1])" eval \
    'grep -o "\"score\":[-0-9.e]*" "$WORK/stdout" | cut -d: -f2 | awk "{ if (\$1 > 1.001 || \$1 < -1.001) exit 1 }"'
run "$PYTHON" "$TOOL" --model "$MODEL" --data "$WORK/data" "$FIXTURES/features.pt" \
    -o "$WORK/sounds.index" --against sounds
run "$EAR" search --model "$MODEL" --index "$WORK/sounds.index" --against sounds "$WORK/query.wav"
check "features --against sounds: searchable against sounds" [ "$status" -eq 0 ]
check "features --against sounds: sounds" stdout_has '"kind":"audio"' 

# 3. Refusals: another model's dimension, an unknown layout; nothing written.
OTHER=$SOURCE/tests/fixtures/nn/nn_bottleneck_f16.safetensors
run "$PYTHON" "$TOOL" --model "$OTHER" --data "$FIXTURES/seed_data" "$FIXTURES/seed.pt" -o "$WORK/x.index"
check "wrong dimension: exit 1" [ "$status" -eq 1 ]
check "wrong dimension: says so" stderr_has "8 dimensions, the model 12"
"$PYTHON" -c "import torch; torch.save({'weights': torch.zeros(3, 8)}, '$WORK/odd.pt')"
run "$PYTHON" "$TOOL" --model "$MODEL" --data "$WORK/data" "$WORK/odd.pt" -o "$WORK/x.index"
check "unknown layout: exit 1 and says which keys" eval '[ "$status" -eq 1 ] && stderr_has "weights"'
check "refusals: nothing written" [ ! -e "$WORK/x.index" ]

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
