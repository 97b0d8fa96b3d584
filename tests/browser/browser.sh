#!/bin/bash
# The page in Debian's chromium, headless, driven by playwright-core (page.test.js):
# a real `ear serve` with a random-weight model over a small dataset made here, and
# chromium's fake microphone playing a WAV file. Recording, upload, examples, the
# page under /ear/ (through ear-site --dev's proxy, which strips the prefix as nginx
# does), every error the page explains, phone width and dark colours. Skipped (77)
# only when chromium or tests/browser/node_modules is missing.
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
ARTIFACTS=${EAR_BROWSER_ARTIFACTS:-$WORK/artifacts}
stop_all() {
    [ -n "$SITE_PID" ] && kill -KILL "$SITE_PID" 2>/dev/null
    cleanup
}
trap stop_all EXIT

# A dataset of eight items: lib.sh's three (cat has no sound) and five made
# by ffmpeg, so that the grid is full, with bigger frames and other sounds.
make_dataset "$WORK/data" || { echo "could not make the dataset" >&2; exit 1; }
data=$WORK/data
made=1
item() { # item ID LABEL VIDEO-SOURCE AUDIO-SOURCE
    ffmpeg -nostdin -v error -f lavfi -i "$3" -frames:v 1 -q:v 3 "$data/frames/$1.jpg" &&
        ffmpeg -nostdin -v error -f lavfi -i "$4" -t 2 -ar 16000 -ac 1 "$data/audio/$1.wav" &&
        printf '%s\t%s\n' "$1" "$2" >>"$data/labels.tsv" || made=0
}
item bird "A bird at dawn." "testsrc2=size=320x240:rate=1" "sine=frequency=2400:duration=2"
item rain "Rain on a roof." "mandelbrot=size=320x240:rate=1" "anoisesrc=d=2:c=brown:seed=3"
item bell "A church bell." "smptehdbars=size=320x180:rate=1" "sine=frequency=880:duration=2"
item engine "An engine idling." "rgbtestsrc=size=320x240:rate=1" "sine=frequency=70:duration=2"
item waves "Waves on a beach." "cellauto=size=320x240:rate=1:rule=110" "anoisesrc=d=2:c=pink:seed=11"
# What the fake microphone plays (48 kHz WAV, as chromium wants), a file to
# upload, one that is not a sound, and one over the 50 MB the page accepts.
ffmpeg -nostdin -v error -f lavfi -i "sine=frequency=440:duration=8,tremolo=f=1.5:d=0.9" -ar 48000 -ac 1 \
    -c:a pcm_s16le "$WORK/microphone.wav" &&
    ffmpeg -nostdin -v error -f lavfi -i "sine=frequency=600:duration=3,afade=t=in:d=0.5,afade=t=out:st=2:d=1" -ar 48000 -c:a libopus \
        "$WORK/upload.ogg" || made=0
printf 'These are notes, not a sound.\n' >"$WORK/notes.wav"
truncate -s 51M "$WORK/huge.wav" || made=0
[ "$made" = 1 ] || { echo "could not make the test files" >&2; exit 1; }
make_index "$data" "$WORK/index.ear" || { cat "$WORK/index.log" >&2; exit 1; }
start_server --model "$MODEL" --index "$WORK/index.ear" --data "$data" || exit 1

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
rm -f "$ARTIFACTS"/*.png
EAR_URL="http://127.0.0.1:$PORT/" \
    EAR_PREFIX_URL="http://127.0.0.1:$SITE_PORT/ear/" \
    EAR_CHROMIUM="$CHROMIUM" \
    EAR_MICROPHONE="$WORK/microphone.wav" \
    EAR_UPLOAD="$WORK/upload.ogg" \
    EAR_NOT_AUDIO="$WORK/notes.wav" \
    EAR_HUGE="$WORK/huge.wav" \
    EAR_ARTIFACTS="$ARTIFACTS" \
    node "$SOURCE/tests/browser/page.test.js"
page_status=$?
check "the page's checks in chromium (page.test.js exited $page_status)" [ "$page_status" = 0 ]
if [ "$page_status" != 0 ]; then
    echo "--- ear serve's log (last 30 lines) ---" >&2
    tail -30 "$WORK/serve.log" >&2
fi
# POST /query (the original's route), or api/search where this ear serve has no /query.
check "the page's searches reached the service" grep -qE " POST /(query|api/search) 200 " "$WORK/serve.log"
check "... and through the prefix-stripping proxy too" \
    eval '[ "$(grep -cE " POST /(query|api/search) 200 " "$WORK/serve.log")" -ge 4 ]'
check "the oversized file never reached the service" eval '! grep -q " 413 " "$WORK/serve.log"'
kill -TERM "$SITE_PID" 2>/dev/null
wait "$SITE_PID" 2>/dev/null
SITE_PID=
stop_server
echo "screenshots: $ARTIFACTS"
finish
