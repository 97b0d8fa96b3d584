#!/bin/bash
# Ear against the original reproduced (shared/peers/seed-python, Flask under gunicorn): the
# same random-weight model in the original's format (tools/make_original_model.py, full size),
# the same dataset, and the indexed_db.pt the peer builds from it, which Ear then serves as it
# is. For sound and image queries (WAV, MP3, WebM, JPEG, PNG) the /query answers list the same
# items in the same order with scores within 0.002 and the same query_type; the errors (no
# file, an empty name, an unsupported file, an undecodable sound) have the same statuses and
# bodies. Skipped (77) without Debian's PyTorch, Flask, soundfile and gunicorn.
set -u
EAR=${EAR_BIN:?EAR_BIN is not set}
SOURCE=${EAR_SOURCE_DIR:-.}
PYTHON=/usr/bin/python3
PEER=${EAR_PEER_DIR:-$SOURCE/../shared/peers/seed-python}
[ -f "$PEER/service.py" ] || PEER=/work/shared/peers/seed-python
if ! "$PYTHON" -c "import torch, torchaudio, torchvision, flask, soundfile" 2>/dev/null ||
    ! command -v gunicorn >/dev/null || [ ! -f "$PEER/service.py" ]; then
    echo "skipped: needs $PYTHON with torch, torchaudio, torchvision, flask, soundfile, gunicorn and the peer"
    exit 77
fi
WORK=$(mktemp -d "${EAR_TEST_TMP:-/tmp}/peer_query.XXXXXX")
PEER_PID=
EAR_PID=
cleanup() {
    [ -n "$PEER_PID" ] && kill -TERM "$PEER_PID" 2>/dev/null && wait "$PEER_PID" 2>/dev/null
    [ -n "$EAR_PID" ] && kill -KILL "$EAR_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
. "$(dirname "$0")/../check.sh"

DATA=$WORK/ear_data
mkdir -p "$DATA/audio/violin/deep" "$DATA/audio/drum" "$DATA/frames/violin" "$DATA/frames/drum kit"
{
    ffmpeg -nostdin -v error -f lavfi -i "sine=frequency=440:duration=2" -ar 22050 "$DATA/audio/violin/a.wav" &&
        ffmpeg -nostdin -v error -f lavfi -i "sine=frequency=660:duration=1.5" -ac 2 -ar 44100 "$DATA/audio/violin/deep/b.wav" &&
        ffmpeg -nostdin -v error -f lavfi -i "anoisesrc=d=1.2:c=pink:seed=3" -ar 16000 "$DATA/audio/drum/c.wav" &&
        ffmpeg -nostdin -v error -f lavfi -i "sine=frequency=500:duration=2" -c:a libopus "$WORK/q.webm" &&
        ffmpeg -nostdin -v error -f lavfi -i "sine=frequency=450:duration=2" "$WORK/q.mp3"
} || { echo "could not make the sounds" >&2; exit 1; }
cp "$SOURCE/tests/fixtures/w2v/photo.jpg" "$DATA/frames/violin/f.jpg"
cp "$SOURCE/tests/fixtures/w2v/grey.jpg" "$DATA/frames/drum kit/g.jpg"
cp "$SOURCE/tests/fixtures/image/photo_77x52.jpg" "$DATA/frames/violin/h.jpg"
cp "$SOURCE/tests/fixtures/image/rgba_64x45.png" "$WORK/q.png"
head -c 300 /dev/urandom >"$WORK/junk"
"$PYTHON" "$SOURCE/tools/make_original_model.py" "$WORK/model.pt" ||
    { echo "could not make the model" >&2; exit 1; }

# The peer, as the original was started; it builds indexed_db.pt from the dataset.
EAR_MODEL=$WORK/model.pt EAR_INDEX_PT=$WORK/indexed_db.pt EAR_DATA=$DATA EAR_UPLOADS=$WORK/uploads \
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
    gunicorn 'service:app' --chdir "$PEER" --bind 127.0.0.1:0 --workers 1 --timeout 120 --preload \
    >"$WORK/peer.log" 2>&1 &
PEER_PID=$!
PEER_PORT=
for _ in $(seq 600); do
    PEER_PORT=$(sed -n 's|.*Listening at: http://127.0.0.1:\([0-9]*\).*|\1|p' "$WORK/peer.log" | head -1)
    [ -n "$PEER_PORT" ] && curl -s "http://127.0.0.1:$PEER_PORT/healthz" >/dev/null && break
    kill -0 "$PEER_PID" 2>/dev/null || break
    sleep 0.2
done
check "the peer runs ($(tail -3 "$WORK/peer.log"))" [ -n "$PEER_PORT" ]
check "the peer loaded the model" grep -q "model loaded from" "$WORK/peer.log"
check "the peer built indexed_db.pt" [ -s "$WORK/indexed_db.pt" ]

"$EAR" serve --model "$WORK/model.pt" --index "$WORK/indexed_db.pt" --data "$DATA" --port 0 \
    2>"$WORK/ear.log" &
EAR_PID=$!
EAR_PORT=
for _ in $(seq 600); do
    EAR_PORT=$(sed -n 's|.*listening on http://[^ ]*:\([0-9][0-9]*\).*|\1|p' "$WORK/ear.log")
    [ -n "$EAR_PORT" ] && break
    kill -0 "$EAR_PID" 2>/dev/null || break
    sleep 0.1
done
check "ear serves the peer's indexed_db.pt ($(tail -3 "$WORK/ear.log"))" [ -n "$EAR_PORT" ]
[ -n "$PEER_PORT" ] && [ -n "$EAR_PORT" ] || { echo "$passed passed, $failed failed"; exit 1; }

# ask NAME CURL-ARGS...: the same request to both; bodies in NAME.peer / NAME.ear, statuses.
ask() {
    local name=$1
    shift
    peer_code=$(curl -s -o "$WORK/$name.peer" -w '%{http_code}' "$@" "http://127.0.0.1:$PEER_PORT/query")
    ear_code=$(curl -s -o "$WORK/$name.ear" -w '%{http_code}' "$@" "http://127.0.0.1:$EAR_PORT/query")
}
# same_answer NAME: same query_type, the same items in the same order per column, scores
# within 0.002 (two items may trade places only where the peer's scores are that close).
same_answer() {
    "$PYTHON" - "$WORK/$1.peer" "$WORK/$1.ear" <<'PY'
import json, sys
peer, ear = (json.load(open(p)) for p in sys.argv[1:3])
ok = peer["query_type"] == ear["query_type"]
for column in ("same_modality", "cross_modality"):
    p, e = peer[column], ear[column]
    ok &= len(p) == len(e)
    ok &= sorted(x["url"] for x in p) == sorted(x["url"] for x in e)
    scores = {x["url"]: x["score"] for x in p}
    for a, b in zip(p, e):
        ok &= abs(a["score"] - b["score"]) <= 0.002
        if a["url"] == b["url"]:
            ok &= a["type"] == b["type"] and a["label"] == b["label"]
        else:  # a swap is fine only between scores the peer itself has within 0.002
            ok &= b["url"] in scores and abs(scores[b["url"]] - a["score"]) <= 0.002
if not ok:
    print("peer:", json.dumps(peer), "\near: ", json.dumps(ear), file=sys.stderr)
sys.exit(0 if ok else 1)
PY
}
identical=0
for query in "$DATA/audio/violin/a.wav" "$WORK/q.webm" "$WORK/q.mp3" "$DATA/frames/violin/f.jpg" "$WORK/q.png"; do
    name=$(basename "$query")
    ask "$name" -F "file=@$query"
    check "$name: both 200 (peer $peer_code, ear $ear_code: $(head -c 200 "$WORK/$name.ear"))" \
        eval '[ "$peer_code" = 200 ] && [ "$ear_code" = 200 ]'
    check "$name: the same items, order and query_type, scores within 0.002" same_answer "$name"
    cmp -s "$WORK/$name.peer" "$WORK/$name.ear" && identical=$((identical + 1))
done
ask webcam -F "file=@$DATA/frames/violin/h.jpg;filename=webcam_capture.jpg"
check "webcam_capture.jpg: the same answer" eval '[ "$ear_code" = 200 ] && same_answer webcam'
echo "byte-identical answers: $identical of 5"

# The errors the peer and Ear share, byte for byte.
for case in "no field|-F x=@$WORK/q.png" "an empty name|-F file=@$WORK/q.png;filename=" \
    "a field that is not a file|-F file=text" "a raw body|--data-binary @$WORK/q.png" \
    "an unsupported file|-F file=@$WORK/junk;filename=notes.txt" \
    "an undecodable .wav|-F file=@$WORK/junk;filename=a.wav" \
    "an undecodable .mp3|-F file=@$WORK/junk;filename=a.mp3"; do
    what=${case%%|*}
    args=${case#*|}
    # shellcheck disable=SC2086
    ask err $args
    check "$what: the same status and body (peer $peer_code $(cat "$WORK/err.peer"), ear $ear_code $(cat "$WORK/err.ear"))" \
        eval '[ "$peer_code" = "$ear_code" ] && cmp -s "$WORK/err.peer" "$WORK/err.ear"'
done
# An unreadable image: both 500 with the reason (the peer's names its temporary file).
ask err -F "file=@$WORK/junk;filename=a.jpg"
check "an unreadable .jpg: both 500 cannot identify image file" eval \
    '[ "$peer_code" = 500 ] && [ "$ear_code" = 500 ] && grep -q "cannot identify image file" "$WORK/err.peer" && grep -q "cannot identify image file" "$WORK/err.ear"'

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
