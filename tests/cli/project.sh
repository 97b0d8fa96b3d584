#!/bin/bash
# `ear serve --project DIR` on a folder laid out as the original service's
# (pretrained_models/best_audio_visual_clip.pt, ear_data/, indexed_db.pt): without
# indexed_db.pt the index is built (plain progress lines off a terminal) into
# DIR/indexed_db.earindex and reused at the next start; one that no longer fits is
# rebuilt; an indexed_db.pt that does not fit the model is refused; a folder laid out
# otherwise is refused. The model is the small original-family fixture (w2v_gn.pt).
set -u
EAR=${EAR_BIN:?EAR_BIN is not set}
SOURCE=${EAR_SOURCE_DIR:-.}
WORK=$(mktemp -d "${EAR_TEST_TMP:-/tmp}/cli_project.XXXXXX")
SERVER_PID=
trap '[ -n "$SERVER_PID" ] && kill -KILL "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"' EXIT
. "$(dirname "$0")/../check.sh"
W2V=$SOURCE/tests/fixtures/w2v
P=$WORK/project
mkdir -p "$P/pretrained_models" "$P/ear_data/audio/violin/deep" "$P/ear_data/audio/drum" \
    "$P/ear_data/frames/violin" "$P/ear_data/frames/drum kit"
cp "$W2V/w2v_gn.pt" "$P/pretrained_models/best_audio_visual_clip.pt"
ffmpeg -nostdin -v error -f lavfi -i "sine=frequency=440:duration=1" -ar 16000 "$P/ear_data/audio/violin/a.wav" &&
    ffmpeg -nostdin -v error -f lavfi -i "sine=frequency=660:duration=1" -ar 16000 "$P/ear_data/audio/violin/deep/b.wav" &&
    ffmpeg -nostdin -v error -f lavfi -i "anoisesrc=d=1:c=pink:seed=3" -ar 16000 "$P/ear_data/audio/drum/c.wav" ||
    { echo "could not make the sounds" >&2; exit 1; }
cp "$W2V/photo.jpg" "$P/ear_data/frames/violin/f.jpg"
cp "$W2V/grey.jpg" "$P/ear_data/frames/drum kit/g.jpg"

# start NAME ARGS...: `ear serve --port 0 ARGS` in the background, its log in $WORK/NAME.log;
# PORT set once it listens (empty when it exited first).
start() {
    local name=$1
    shift
    "$EAR" serve --port 0 "$@" 2>"$WORK/$name.log" &
    SERVER_PID=$!
    PORT=
    for _ in $(seq 1200); do
        PORT=$(sed -n 's|.*listening on http://[^ ]*:\([0-9][0-9]*\).*|\1|p' "$WORK/$name.log")
        [ -n "$PORT" ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    wait "$SERVER_PID"
    SERVER_PID=
    return 1
}
stop() {
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID"
    check "exit 0 at SIGTERM" [ $? -eq 0 ]
    SERVER_PID=
}

# 1. No indexed_db.pt: built, with progress lines, then served.
start first --project "$P"
check "first start: listening ($(tail -3 "$WORK/first.log"))" [ -n "$PORT" ]
check "first start: says it builds, and where" grep -q "building the index of $P/ear_data into $P/indexed_db.earindex" "$WORK/first.log"
check "first start: plain progress lines off a terminal" grep -q "^ear serve: 5/5 items (100%)" "$WORK/first.log"
check "first start: no bar off a terminal" eval '! grep -q "\[#" "$WORK/first.log"'
check "first start: the index beside the project" [ -s "$P/indexed_db.earindex" ]
if [ -n "$PORT" ]; then
    code=$(curl -s -o "$WORK/q.b" -w '%{http_code}' -F "file=@$P/ear_data/audio/violin/deep/b.wav" "http://127.0.0.1:$PORT/ear/query")
    check "first start: /ear/query 200 (got $code $(head -c 300 "$WORK/q.b"))" [ "$code" = 200 ]
    check "first start: the sound finds itself" grep -q '"same_modality":\[{"label":"violin","score":1.0,"type":"audio","url":"/ear/data/audio/violin/deep/b.wav"}' "$WORK/q.b"
    check "first start: both frames across" eval '[ "$(grep -o "\"type\":\"image\"" "$WORK/q.b" | wc -l)" -eq 2 ]'
    code=$(curl -s -o "$WORK/i.b" -w '%{http_code}' -F "file=@$P/ear_data/frames/violin/f.jpg;filename=webcam_capture.jpg" "http://127.0.0.1:$PORT/query")
    check "first start: an image query (got $code $(head -c 200 "$WORK/i.b"))" \
        eval '[ "$code" = 200 ] && grep -q "\"query_type\":\"image\",\"same_modality\":\[{\"label\":\"violin\",\"score\":1.0" "$WORK/i.b"'
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/ear/data/frames/drum%20kit/g.jpg")
    check "first start: a nested frame at /ear/data/ (got $code)" [ "$code" = 200 ]
    stop
fi

# 2. The next start reuses it.
before=$(stat -c %Y.%s "$P/indexed_db.earindex")
start second --project "$P"
check "second start: listening" [ -n "$PORT" ]
check "second start: nothing built" eval '! grep -q "building" "$WORK/second.log"'
check "second start: the same index file" [ "$(stat -c %Y.%s "$P/indexed_db.earindex")" = "$before" ]
[ -n "$PORT" ] && stop

# 3. An index of the first format in its place: rebuilt, saying why.
{ head -c 8 "$P/indexed_db.earindex"; printf '\x01\x00\x00\x00'; tail -c +13 "$P/indexed_db.earindex"; } >"$WORK/v1"
mv "$WORK/v1" "$P/indexed_db.earindex"
start third --project "$P"
check "an old index: rebuilt ($(grep "does not fit" "$WORK/third.log"))" \
    eval 'grep -q "does not fit: .*format version 1" "$WORK/third.log" && grep -q building "$WORK/third.log" && [ -n "$PORT" ]'
[ -n "$PORT" ] && stop

# 4. An indexed_db.pt is served as it is, and refused when it does not fit the model.
cp "$SOURCE/tests/fixtures/index/seed.pt" "$P/indexed_db.pt"
start fourth --project "$P"
check "an indexed_db.pt of another dimension: refused, exit 1 ($(tail -1 "$WORK/fourth.log"))" \
    eval '[ -z "$PORT" ] && grep -q "dimension 8; the model" "$WORK/fourth.log"'
rm "$P/indexed_db.pt"

# 5. Bad usage and folders laid out otherwise.
"$EAR" serve --project "$P" --model x >/dev/null 2>"$WORK/err"
check "--project with --model: exit 2" [ $? -eq 2 ]
"$EAR" serve --project "$WORK/none" >/dev/null 2>"$WORK/err"
check "--project on a missing folder: exit 1" [ $? -eq 1 ]
mkdir -p "$WORK/odd/ear_data"
"$EAR" serve --project "$WORK/odd" >/dev/null 2>"$WORK/err"
check "--project without the model: exit 1, says what is missing" \
    eval '[ $? -eq 1 ] || true; grep -q "pretrained_models/best_audio_visual_clip.pt" "$WORK/err"'

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
