# Shared by the HTTP service's tests: checks, a small dataset made at test
# time, its index, and an `ear serve` started on a free port.
set -u
EAR=${EAR_BIN:?EAR_BIN is not set}
SOURCE=${EAR_SOURCE_DIR:-.}
MODEL=$SOURCE/tests/fixtures/nn/nn_basic_f32.safetensors
OTHER_MODEL=$SOURCE/tests/fixtures/nn/nn_bottleneck_f16.safetensors
WORK=$(mktemp -d "${EAR_TEST_TMP:-/tmp}/http.XXXXXX")
SERVER_PID=
PORT=
. "$(dirname "${BASH_SOURCE[0]}")/../check.sh"

cleanup() {
    [ -n "$SERVER_PID" ] && kill -KILL "$SERVER_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit $?
}

# make_dataset DIR: three frames (two with a sound) and labels, as in interfaces.md.
make_dataset() {
    local dir=$1
    mkdir -p "$dir/frames" "$dir/audio"
    cp "$SOURCE/tests/fixtures/image/photo_77x52.jpg" "$dir/frames/cow.jpg"
    cp "$SOURCE/tests/fixtures/image/rgba_64x45.png" "$dir/frames/dog.png"
    cp "$SOURCE/tests/fixtures/image/tiny_20x13.png" "$dir/frames/cat.png"
    ffmpeg -nostdin -v error -f lavfi -i "sine=frequency=440:duration=1" -ar 16000 "$dir/audio/cow.wav" &&
        ffmpeg -nostdin -v error -f lavfi -i "anoisesrc=d=1:c=pink:seed=7" -ar 16000 \
            "$dir/audio/dog.wav" &&
        printf 'cow\tA cow.\ndog\tA dog.\n' >"$dir/labels.tsv"
}

# make_index DATA INDEX [MODEL]
make_index() {
    "$EAR" index --model "${3:-$MODEL}" --data "$1" -o "$2" --jobs 1 >/dev/null 2>"$WORK/index.log"
}

# start_server ARGS...: `ear serve --port 0 ARGS` in the background; sets PORT
# and SERVER_PID; its stderr goes to $WORK/serve.log.
start_server() {
    : >"$WORK/serve.log"
    "$EAR" serve --port 0 "$@" 2>"$WORK/serve.log" &
    SERVER_PID=$!
    PORT=
    for _ in $(seq 300); do
        PORT=$(sed -n 's|.*listening on http://[^ ]*:\([0-9][0-9]*\).*|\1|p' "$WORK/serve.log")
        [ -n "$PORT" ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "the server did not start: $(cat "$WORK/serve.log")" >&2
    return 1
}

# stop_server: SIGTERM, then the exit status in $server_status.
stop_server() {
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID"
    server_status=$?
    SERVER_PID=
    check "the server exits 0 at SIGTERM (got $server_status): $(tail -5 "$WORK/serve.log")" \
        [ "$server_status" -eq 0 ]
    check "no sanitizer report: $(grep -A5 "Sanitizer\|runtime error:" "$WORK/serve.log" | head -20)" \
        eval '! grep -q "Sanitizer\|runtime error:" "$WORK/serve.log"'
}

URL() { echo "http://127.0.0.1:$PORT$1"; }

# fetch NAME CURL-ARGS...: headers to $WORK/NAME.h, body to $WORK/NAME.b, status in $code.
fetch() {
    local name=$1
    shift
    rm -f "$WORK/$name.h" "$WORK/$name.b" # curl writes no file for an empty body
    code=$(curl -s -S --max-time 30 -D "$WORK/$name.h" -o "$WORK/$name.b" -w '%{http_code}' "$@")
}

header() { # header NAME FIELD: the value of a header of fetch NAME's answer
    grep -i "^$2:" "$WORK/$1.h" | head -1 | sed 's/^[^:]*: *//' | tr -d '\r'
}

body_has() { grep -q -- "$2" "$WORK/$1.b"; }

# error_is NAME STATUS CODE: the answer is the spec's JSON error.
error_is() {
    [ "$code" = "$2" ] && [ "$(header "$1" Content-Type)" = "application/json" ] &&
        grep -q "^{\"error\":{\"code\":\"$3\",\"message\":\"[^\"]" "$WORK/$1.b"
}
