#!/bin/bash
# The original's indexed_db.pt read by Ear itself (no PyTorch): `ear index --import`
# converts it (every URL a file under --data, the dimension the model's; what cannot be
# checked said), `ear search` and `ear serve` read it as it is, and what is not such an
# index, or does not fit the model or the dataset, is refused with the reason.
# The fixture is tests/fixtures/index/seed.pt (tools/make_index_fixtures.py): 3 sounds and
# 2 frames, nested folders, a space and UTF-8 in paths and labels, dimension 8.
set -u
EAR=${EAR_BIN:?EAR_BIN is not set}
SOURCE=${EAR_SOURCE_DIR:-.}
WORK=$(mktemp -d "${EAR_TEST_TMP:-/tmp}/cli_import_pt.XXXXXX")
SERVER_PID=
trap '[ -n "$SERVER_PID" ] && kill -KILL "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"' EXIT
. "$(dirname "$0")/../check.sh"
# A TMPDIR of its own: "nothing left in TMPDIR" must not see another test's (or another
# process's) ear-import-* folder in a shared /tmp (ctest -j2 ran cli_index_import beside it).
export TMPDIR=$WORK/tmp
mkdir -p "$TMPDIR"
FIXTURES=$SOURCE/tests/fixtures/index
PT=$FIXTURES/seed.pt
DATA=$FIXTURES/seed_data
MODEL=$SOURCE/tests/fixtures/nn/nn_basic_f32.safetensors
OTHER_MODEL=$SOURCE/tests/fixtures/nn/nn_bottleneck_f16.safetensors
run() { "$@" >"$WORK/stdout" 2>"$WORK/stderr"; status=$?; }
stderr_has() { grep -q -- "$1" "$WORK/stderr"; }
stdout_has() { grep -q -- "$1" "$WORK/stdout"; }
ffmpeg -nostdin -v error -f lavfi -i "sine=frequency=440:duration=0.6" -ar 8000 "$WORK/q.wav" ||
    { echo "could not make the query" >&2; exit 1; }

# 1. ear index --import: the rows as they are, what was checked and what was not.
run "$EAR" index --import "$PT" --model "$MODEL" --data "$DATA" -o "$WORK/x.earindex"
check "import: exit 0 ($(cat "$WORK/stderr"))" [ "$status" -eq 0 ]
check "import: counts" stderr_has "5 items (2 images, 3 sounds)"
check "import: says what it could not check" stderr_has "not checked: which model made the vectors"
run "$EAR" info "$WORK/x.earindex"
check "info: 5 items, no fingerprint" eval 'stdout_has "items          5" && stdout_has "fingerprint    0000000000000000"'
check "info: verified" stdout_has verified
run "$EAR" search --model "$MODEL" --index "$WORK/x.earindex" --kind all -k 10 "$WORK/q.wav"
check "search the import: exit 0 ($(cat "$WORK/stderr"))" [ "$status" -eq 0 ]
check "search the import: the note" stderr_has "cannot be checked"
check "search the import: five results" [ "$(grep -o '"rank":' "$WORK/stdout" | wc -l)" -eq 5 ]
check "search the import: nested UTF-8 path, label" stdout_has \
    '"id":"café/deep/c 1","kind":"audio","label":"café",[^}]*"url":"data/audio/caf%C3%A9/deep/c%201.wav"'
sed 's/,"timing_ms".*//' "$WORK/stdout" >"$WORK/imported.json"

# 2. The .pt read directly: the same answer.
run "$EAR" search --model "$MODEL" --index "$PT" --data "$DATA" --kind all -k 10 "$WORK/q.wav"
check "search the .pt itself: exit 0 ($(cat "$WORK/stderr"))" [ "$status" -eq 0 ]
check "search the .pt itself: the answer of the import" \
    [ "$(sed 's/,"timing_ms".*//' "$WORK/stdout")" = "$(cat "$WORK/imported.json")" ]
check "search the .pt itself: nothing left in TMPDIR" [ -z "$(ls -A "${TMPDIR:-/tmp}" 2>/dev/null | grep '^ear-import-')" ]

# 3. Refusals, each with its reason; nothing written.
run "$EAR" index --import "$PT" --model "$OTHER_MODEL" --data "$DATA" -o "$WORK/y.earindex"
check "another model's dimension: exit 1, says so" \
    eval '[ "$status" -eq 1 ] && stderr_has "dimension 8; the model'"'"'s embeddings have 12"'
mkdir -p "$WORK/empty"
run "$EAR" index --import "$PT" --model "$MODEL" --data "$WORK/empty" -o "$WORK/y.earindex"
check "files missing: exit 1, counts and names them" \
    eval '[ "$status" -eq 1 ] && stderr_has "5 of its 5 files are not under" && stderr_has "audio/zebra/z1.wav"'
run "$EAR" index --import "$SOURCE/tests/fixtures/pt/state_dict.pt" --model "$MODEL" --data "$DATA" -o "$WORK/y.earindex"
check "a state dict, not an index: exit 1, says so" \
    eval '[ "$status" -eq 1 ] && stderr_has "not the original'"'"'s index"'
run "$EAR" index --import "$SOURCE/tests/fixtures/pt/os_system.pt" --model "$MODEL" --data "$DATA" -o "$WORK/y.earindex"
check "a pickle that calls os.system: refused" eval '[ "$status" -eq 1 ] && stderr_has "os"'
run "$EAR" index --import "$WORK/q.wav" --model "$MODEL" --data "$DATA" -o "$WORK/y.earindex"
check "not a .pt at all: exit 1" [ "$status" -eq 1 ]
check "refusals: nothing written" [ ! -e "$WORK/y.earindex" ]
run "$EAR" search --model "$OTHER_MODEL" --index "$WORK/x.earindex" "$WORK/q.wav"
check "an import searched with another model's dimension: refused" \
    eval '[ "$status" -eq 1 ] && stderr_has "dimension 8"'

# 4. ear serve --index indexed_db.pt: /query answers from it; the log says what it could not check.
"$EAR" serve --model "$MODEL" --index "$PT" --data "$DATA" --port 0 2>"$WORK/serve.log" &
SERVER_PID=$!
PORT=
for _ in $(seq 300); do
    PORT=$(sed -n 's|.*listening on http://[^ ]*:\([0-9][0-9]*\).*|\1|p' "$WORK/serve.log")
    [ -n "$PORT" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.05
done
check "serve indexed_db.pt: listening ($(head -c 500 "$WORK/serve.log"))" [ -n "$PORT" ]
check "serve indexed_db.pt: the log says what it could not check" grep -q "cannot be checked" "$WORK/serve.log"
if [ -n "$PORT" ]; then
    code=$(curl -s -o "$WORK/query.b" -w '%{http_code}' -F "file=@$WORK/q.wav" "http://127.0.0.1:$PORT/query")
    check "serve indexed_db.pt: /query 200 (got $code $(head -c 300 "$WORK/query.b"))" [ "$code" = 200 ]
    check "serve indexed_db.pt: the original's URLs" grep -q '"url":"/ear/data/audio/caf\\u00e9/deep/c 1.wav"' "$WORK/query.b"
    check "serve indexed_db.pt: three sounds, two frames" eval \
        '[ "$(grep -o "\"type\":\"audio\"" "$WORK/query.b" | wc -l)" -eq 3 ] && [ "$(grep -o "\"type\":\"image\"" "$WORK/query.b" | wc -l)" -eq 2 ]'
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/ear/data/frames/dog%20bark/d.jpg")
    check "serve indexed_db.pt: its files at /ear/data/ (got $code)" [ "$code" = 200 ]
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID"
    check "serve indexed_db.pt: exit 0 at SIGTERM" [ $? -eq 0 ]
    SERVER_PID=
fi
run "$EAR" serve --model "$MODEL" --index "$PT" --data "$WORK/empty" --port 0
check "serve indexed_db.pt without its files: exit 1, says so" \
    eval '[ "$status" -eq 1 ] && stderr_has "files are not under"'

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
