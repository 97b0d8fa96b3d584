#!/bin/bash
# The original's flows on the page, in Debian's chromium, headless, driven by
# playwright-core (original.test.js): a real `ear serve` over a dataset in the
# original's layout (audio/<label>/**, frames/<label>/**, nested folders too),
# searched through POST /query. Chromium's fake camera shows a dataset frame
# (a .y4m made here by ffmpeg) and takes the photo; an image upload; the fake
# microphone; /ce-loss; at / and under /ear/ (ear-site --dev's proxy strips
# the prefix as nginx does). Skipped (77) when chromium or node_modules is
# missing, or while this build's `ear serve` has no POST /query.
# EAR_BROWSER_FAKE=1 runs the same checks against tests/browser/fake_query.js
# instead (for working on the page without the service).
set -u
SOURCE=${EAR_SOURCE_DIR:-.}
CHROMIUM=${EAR_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
    echo "skipped: no $CHROMIUM (Debian's package chromium; make deps installs it)"
    exit 77
fi
if [ ! -f "$SOURCE/tests/browser/node_modules/playwright-core/package.json" ] ||
    ! command -v node >/dev/null; then
    echo "skipped: no tests/browser/node_modules (npm ci in tests/browser; make deps runs it)"
    exit 77
fi

source "$SOURCE/tests/http/lib.sh"
SITE_PID=
FAKE_PID=
ARTIFACTS=${EAR_BROWSER_ARTIFACTS:-$WORK/artifacts}
stop_all() {
    [ -n "$SITE_PID" ] && kill -KILL "$SITE_PID" 2>/dev/null
    [ -n "$FAKE_PID" ] && kill -KILL "$FAKE_PID" 2>/dev/null
    cleanup
}
trap stop_all EXIT

# The original's layout: every file its own item, the label its first folder.
# $WORK is the project folder (ear_data/, pretrained_models/).
data=$WORK/ear_data
made=1
item() { # item KIND PATH SOURCE: one frame or one sound, made by ffmpeg
    mkdir -p "$(dirname "$data/$2")"
    if [ "$1" = image ]; then
        ffmpeg -nostdin -v error -f lavfi -i "$3" -frames:v 1 -q:v 3 "$data/$2" || made=0
    else
        ffmpeg -nostdin -v error -f lavfi -i "$3" -t 2 -ar 16000 -ac 1 "$data/$2" || made=0
    fi
}
item image frames/violin/f1.jpg "testsrc2=size=320x240:rate=1"
item image frames/violin/bow/f2.jpg "smptehdbars=size=320x180:rate=1"
item image frames/drum/d1.jpg "mandelbrot=size=320x240:rate=1"
item image frames/drum/d2.jpg "rgbtestsrc=size=320x240:rate=1"
item image frames/bird/b1.jpg "cellauto=size=320x240:rate=1:rule=110"
item image frames/bird/b2.jpg "life=size=320x240:rate=1:mold=10:ratio=0.3:seed=4"
item audio audio/violin/v1.wav "sine=frequency=440:duration=2"
item audio audio/violin/v2.wav "sine=frequency=660:duration=2"
item audio audio/drum/d1.wav "anoisesrc=d=2:c=brown:seed=3"
item audio audio/drum/kit/d2.wav "anoisesrc=d=2:c=pink:seed=11"
item audio audio/bird/b1.wav "sine=frequency=2400:duration=2"
item audio audio/bird/b2.wav "sine=frequency=3100:duration=2"
# What the fake camera shows (a dataset frame, as chromium's .y4m), what the fake
# microphone plays (48 kHz WAV, as chromium wants), an image to upload, and a file
# that is no picture.
ffmpeg -nostdin -v error -loop 1 -i "$data/frames/drum/d1.jpg" -t 1 -r 10 \
    -vf "scale=320:240,format=yuv420p" -f yuv4mpegpipe "$WORK/camera.y4m" &&
    ffmpeg -nostdin -v error -f lavfi -i "sine=frequency=440:duration=8,tremolo=f=1.5:d=0.9" \
        -ar 48000 -ac 1 -c:a pcm_s16le "$WORK/microphone.wav" &&
    ffmpeg -nostdin -v error -f lavfi -i "testsrc=size=200x150:rate=1" -frames:v 1 \
        "$WORK/upload.png" || made=0
printf 'These are notes, not a picture.\n' >"$WORK/notes.png"
[ "$made" = 1 ] || { echo "could not make the test files" >&2; exit 1; }

# The real service, if it speaks /query; else the stand-in, or skipped.
# The original's folder as it is (`ear serve --project`, with the small original-family
# model fixture as its best_audio_visual_clip.pt); an ear without --project gets an index
# of its own built from the same ear_data/.
backend=
original_model=$SOURCE/tests/fixtures/w2v/w2v_gn.pt
serving() {
    if "$EAR" serve --help 2>&1 | grep -q -- --project && [ -f "$original_model" ]; then
        mkdir -p "$WORK/pretrained_models" &&
            cp "$original_model" "$WORK/pretrained_models/best_audio_visual_clip.pt" &&
            echo "ear serve --project (the original's folder as it is)" &&
            start_server --project "$WORK"
    else
        echo "ear serve --model --index --data (this ear has no --project)"
        "$EAR" index --model "$MODEL" --data "$data" -o "$WORK/index.ear" --jobs 1 \
            >/dev/null 2>"$WORK/index.log" &&
            start_server --model "$MODEL" --index "$WORK/index.ear" --data "$data"
    fi
}
if [ "${EAR_BROWSER_FAKE:-0}" != 1 ] && serving; then
    code=$(curl -s -o "$WORK/probe.json" -w '%{http_code}' --max-time 60 \
        -F "file=@$data/audio/violin/v1.wav" "http://127.0.0.1:$PORT/query")
    if [ "$code" = 200 ] && grep -q '"same_modality"' "$WORK/probe.json"; then
        backend=ear
    fi
fi
if [ -z "$backend" ]; then
    if [ "${EAR_BROWSER_FAKE:-0}" != 1 ]; then
        echo "skipped: this build's ear serve does not answer POST /query over the original's" \
             "layout yet (index: $(tail -1 "$WORK/index.log" 2>/dev/null); /query: ${code:-no server})"
        exit 77
    fi
    [ -n "$SERVER_PID" ] && kill -KILL "$SERVER_PID" 2>/dev/null
    SERVER_PID=
    node "$SOURCE/tests/browser/fake_query.js" "$SOURCE/web" "$data" "$WORK/fake.port" &
    FAKE_PID=$!
    for _ in $(seq 100); do [ -s "$WORK/fake.port" ] && break; sleep 0.05; done
    PORT=$(cat "$WORK/fake.port" 2>/dev/null)
    [ -n "$PORT" ] || { echo "the stand-in did not start" >&2; exit 1; }
    backend=fake
    echo "NOTE: checking the page against tests/browser/fake_query.js, not ear serve"
fi

# ear-site --dev forwards /ear/ to the service with the prefix stripped.
cp -r "$SOURCE/site/content" "$WORK/content"
"${EAR_SITE_BIN:?EAR_SITE_BIN is not set}" --port 0 --dev --content "$WORK/content" \
    --ear-upstream "127.0.0.1:$PORT" --quiet 2>"$WORK/site.log" &
SITE_PID=$!
SITE_PORT=
for _ in $(seq 200); do
    SITE_PORT=$(sed -n 's|^ear-site: serving http://[^ ]*:\([0-9]*\)/.*|\1|p' "$WORK/site.log")
    [ -n "$SITE_PORT" ] && break
    kill -0 "$SITE_PID" 2>/dev/null || break
    sleep 0.05
done
[ -n "$SITE_PORT" ] || { echo "ear-site did not start: $(cat "$WORK/site.log")" >&2; exit 1; }

mkdir -p "$ARTIFACTS"
rm -f "$ARTIFACTS"/original-*.png
EAR_URL="http://127.0.0.1:$PORT/" \
    EAR_PREFIX_URL="http://127.0.0.1:$SITE_PORT/ear/" \
    EAR_CHROMIUM="$CHROMIUM" \
    EAR_CAMERA="$WORK/camera.y4m" \
    EAR_MICROPHONE="$WORK/microphone.wav" \
    EAR_IMAGE="$WORK/upload.png" \
    EAR_NOT_IMAGE="$WORK/notes.png" \
    EAR_ARTIFACTS="$ARTIFACTS" \
    node "$SOURCE/tests/browser/original.test.js"
page_status=$?
check "the original's flows in chromium (original.test.js exited $page_status)" [ "$page_status" = 0 ]
if [ "$backend" = ear ]; then
    if [ "$page_status" != 0 ]; then
        echo "--- ear serve's log (last 30 lines) ---" >&2
        tail -30 "$WORK/serve.log" >&2
    fi
    check "the page's queries reached POST /query" grep -q " POST /query 200 " "$WORK/serve.log"
fi
kill -TERM "$SITE_PID" 2>/dev/null
wait "$SITE_PID" 2>/dev/null
SITE_PID=
[ -n "$SERVER_PID" ] && stop_server
echo "screenshots: $ARTIFACTS"
finish
