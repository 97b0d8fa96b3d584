#!/bin/bash
# `kill -9` in the middle of `ear index` over an existing index: the old index is still there,
# byte for byte, and loads; the next run replaces it and clears temporaries of dead writers.
set -u
EAR=${EAR_BIN:?EAR_BIN is not set}
SOURCE=${EAR_SOURCE_DIR:-.}
WORK=$(mktemp -d "${EAR_TEST_TMP:-/tmp}/cli_index_kill.XXXXXX")
ITEMS=${EAR_TEST_KILL_ITEMS:-4000}
MODEL=$SOURCE/tests/fixtures/nn/nn_basic_f32.safetensors
builder=
trap '[ -n "$builder" ] && kill -9 "$builder" 2>/dev/null; rm -rf "$WORK"' EXIT
. "$(dirname "$0")/../check.sh"
temporaries() { ls -A "$WORK/out" | grep '^\.ear\.index\.tmp\.' ; }

mkdir -p "$WORK/small/frames" "$WORK/small/audio" "$WORK/big/frames" "$WORK/big/audio" "$WORK/out"
ffmpeg -nostdin -v error -y -f lavfi -i "color=c=red:s=40x30" -frames:v 1 "$WORK/small/frames/a.png" &&
    ffmpeg -nostdin -v error -y -f lavfi -i "sine=frequency=300:duration=0.5" -ar 8000 \
        "$WORK/small/audio/a.wav" &&
    ffmpeg -nostdin -v error -y -f lavfi -i "color=c=blue:s=40x30" -frames:v 1 "$WORK/small/frames/b.png" ||
    { echo "could not make the test dataset" >&2; exit 1; }
# Thousands of items, all links to one frame and one sound: a run long enough to be killed.
for i in $(seq -w 1 "$ITEMS"); do
    ln "$WORK/small/frames/a.png" "$WORK/big/frames/item$i.png"
    ln "$WORK/small/audio/a.wav" "$WORK/big/audio/item$i.wav"
done

INDEX=$WORK/out/ear.index
"$EAR" index --model "$MODEL" --data "$WORK/small" -o "$INDEX" 2>"$WORK/stderr"
check "first index: exit 0 ($(cat "$WORK/stderr"))" [ $? -eq 0 ]
cp "$INDEX" "$WORK/before.index"
# A temporary left by a writer that died earlier (no such process).
touch "$WORK/out/.ear.index.tmp.99999999"

"$EAR" index --model "$MODEL" --data "$WORK/big" -o "$INDEX" --jobs 1 2>"$WORK/big.stderr" &
builder=$!
for _ in $(seq 1 1200); do # up to 60 s for the first progress line
    grep -q "items (" "$WORK/big.stderr" && break
    kill -0 "$builder" 2>/dev/null || break
    sleep 0.05
done
check "the build was under way: $(head -c 500 "$WORK/big.stderr")" grep -q "items (" "$WORK/big.stderr"
check "killed while running (raise EAR_TEST_KILL_ITEMS if it finished first)" \
    kill -9 "$builder"
{ wait "$builder"; } 2>/dev/null # no "Killed" line from bash
status=$?
builder=
check "exit by SIGKILL ($status)" [ "$status" -eq 137 ]
check "the old index is untouched" cmp -s "$INDEX" "$WORK/before.index"
"$EAR" search --model "$MODEL" --index "$INDEX" "$WORK/small/audio/a.wav" >"$WORK/stdout" 2>"$WORK/stderr"
check "the old index loads and answers ($(cat "$WORK/stderr"))" grep -q '"id":"a"' "$WORK/stdout"

# The next run replaces the index and removes the dead writers' temporaries.
"$EAR" index --model "$MODEL" --data "$WORK/small" -o "$INDEX" --jobs 1 2>"$WORK/stderr"
check "next run: exit 0 ($(cat "$WORK/stderr"))" [ $? -eq 0 ]
check "next run: no temporary left ($(temporaries))" [ -z "$(temporaries)" ]
check "next run: the same index as the first" cmp -s "$INDEX" "$WORK/before.index"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
