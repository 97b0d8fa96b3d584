#!/bin/bash
# POST /query (and /ear/query), the original service's search: a dataset in the
# original's layout (audio/<label>/**, frames/<label>/**, nested, spaces and UTF-8
# in names), sound and image queries whatever their names say, the answer byte
# for byte as Flask's jsonify wrote it (keys sorted, no spaces, \u escapes, scores
# as Python's round(x, 3), a final newline), five per column at most, and every
# error of the original with its status and message.
source "$(dirname "$0")/lib.sh"

DATA=$WORK/ear_data
CAFE=$'caf\u00e9 bells'
mkdir -p "$DATA/audio/violin/deep" "$DATA/audio/$CAFE" "$DATA/frames/violin" \
    "$DATA/frames/$CAFE/deep"
i=0
for f in 220 330 440 550 660 770 880; do
    case $i in
    0 | 1 | 2) folder="$DATA/audio/violin" ;;
    3 | 4) folder="$DATA/audio/violin/deep" ;;
    *) folder="$DATA/audio/$CAFE" ;;
    esac
    ffmpeg -nostdin -v error -f lavfi -i "sine=frequency=$f:duration=0.8" -ar 16000 \
        "$folder/s $i.wav" || { echo "could not make the sounds" >&2; exit 1; }
    i=$((i + 1))
done
cp "$SOURCE/tests/fixtures/image/photo_77x52.jpg" "$DATA/frames/violin/a.jpg"
cp "$SOURCE/tests/fixtures/image/rgba_64x45.png" "$DATA/frames/violin/b.png"
cp "$SOURCE/tests/fixtures/image/tiny_20x13.png" "$DATA/frames/violin/c.png"
cp "$SOURCE/tests/fixtures/image/cmyk_40x30.jpg" "$DATA/frames/$CAFE/d 1.jpg"
cp "$SOURCE/tests/fixtures/image/palette_50x37.png" "$DATA/frames/$CAFE/deep/e.png"
cp "$SOURCE/tests/fixtures/image/gray_40x52.jpg" "$DATA/frames/$CAFE/deep/f.png"
make_index "$DATA" "$WORK/index.ear" || { cat "$WORK/index.log" >&2; exit 1; }
check "the index: 13 items, 7 sounds and 6 frames ($(tail -1 "$WORK/index.log"))" \
    grep -q "13 items (6 images, 7 sounds)" "$WORK/index.log"
head -c 3000 /dev/urandom >"$WORK/noise.bin"
: >"$WORK/empty.bin"
printf '\xff\xd8\xff\xe0broken' >"$WORK/broken.jpg"

start_server --model "$MODEL" --index "$WORK/index.ear" --data "$DATA" --max-upload 1M || exit 1

# original_json NAME: the body is what Python's json.dumps(sort_keys=True,
# separators=(",", ":")) (Flask's jsonify) writes of it, plus a newline.
PYTHON=$(command -v python3 || true)
original_json() {
    [ -z "$PYTHON" ] && return 0
    "$PYTHON" - "$WORK/$1.b" <<'EOF'
import json, sys
raw = open(sys.argv[1], "rb").read()
value = json.loads(raw)
sys.exit(0 if raw == (json.dumps(value, sort_keys=True, separators=(",", ":")) + "\n").encode() else 1)
EOF
}
# columns NAME: "same cross" counts.
columns() {
    [ -z "$PYTHON" ] && { echo "? ?"; return; }
    "$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d["same_modality"]), len(d["cross_modality"]))' "$WORK/$1.b"
}

for prefix in "" /ear; do
    fetch sound -F "file=@$DATA/audio/violin/s 0.wav" "$(URL "$prefix/query")"
    check "sound $prefix: 200 (got $code: $(head -c 300 "$WORK/sound.b"))" [ "$code" = 200 ]
    check "sound $prefix: application/json" [ "$(header sound Content-Type)" = application/json ]
    check "sound $prefix: the keys in the original's order" \
        grep -q '^{"cross_modality":\[{"label":"[^"]*","score":[-0-9.]*,"type":"image","url":"/ear/data/frames/' "$WORK/sound.b"
    check "sound $prefix: query_type audio, same_modality last" \
        grep -q '\],"query_type":"audio","same_modality":\[{"label":"violin","score":1.0,"type":"audio","url":"/ear/data/audio/violin/s 0.wav"}' "$WORK/sound.b"
    check "sound $prefix: jsonify's bytes, a final newline" original_json sound
    check "sound $prefix: five per column (got $(columns sound))" eval '[ "$(columns sound)" = "5 5" ] || [ -z "$PYTHON" ]'
done
fetch utf8 -F "file=@$DATA/audio/$CAFE/s 6.wav" "$(URL /query)"
check "UTF-8 labels and paths as \\u escapes" grep -qF '{"label":"caf\u00e9 bells","score":1.0,"type":"audio","url":"/ear/data/audio/caf\u00e9 bells/s 6.wav"}' "$WORK/utf8.b"
check "UTF-8: jsonify's bytes" original_json utf8
# Scores: three decimals at most, as round() prints them (no 0.900, no 1e-05).
check "scores as Python prints round(x, 3)" eval \
    '! grep -o "\"score\":[^,]*" "$WORK/sound.b" | cut -d: -f2 | grep -vqE "^-?[0-9]\.([0-9]{0,2}[1-9]|0)$"'

# An image, whatever its name; a sound named as an image; the kind is in the bytes.
fetch image -F "file=@$DATA/frames/violin/a.jpg" "$(URL /query)"
check "image: 200, query_type image, itself first" eval \
    '[ "$code" = 200 ] && grep -q "\"query_type\":\"image\",\"same_modality\":\[{\"label\":\"violin\",\"score\":1.0,\"type\":\"image\",\"url\":\"/ear/data/frames/violin/a.jpg\"}" "$WORK/image.b"'
check "image: jsonify's bytes" original_json image
fetch webcam -F "file=@$DATA/frames/violin/a.jpg;filename=webcam_capture.jpg" "$(URL /query)"
check "the page's webcam_capture.jpg: the same answer" cmp -s "$WORK/webcam.b" "$WORK/image.b"
fetch misnamed -F "file=@$DATA/frames/violin/b.png;filename=photo.wav" "$(URL /query)"
check "a PNG named photo.wav: an image all the same (got $code)" \
    eval '[ "$code" = 200 ] && grep -q "\"query_type\":\"image\"" "$WORK/misnamed.b"'
fetch noext -F "file=@$DATA/audio/violin/s 1.wav;filename=recording" "$(URL /query)"
check "a sound without an extension: a sound (got $code)" \
    eval '[ "$code" = 200 ] && grep -q "\"query_type\":\"audio\"" "$WORK/noext.b"'

# The original's errors: status, {"error": message} and jsonify's newline.
# error_is_original NAME STATUS MESSAGE
error_is_original() {
    [ "$code" = "$2" ] && [ "$(header "$1" Content-Type)" = application/json ] &&
        [ "$(cat "$WORK/$1.b")" = "{\"error\":\"$3\"}" ] && [ "$(tail -c 1 "$WORK/$1.b" | od -An -c | tr -d ' ')" = '\n' ]
}
fetch e -F "audio=@$DATA/audio/violin/s 0.wav" "$(URL /query)"
check "no field file: 400 No file (got $code $(cat "$WORK/e.b"))" error_is_original e 400 "No file"
fetch e -F "file=@$DATA/audio/violin/s 0.wav;filename=" "$(URL /query)"
check "an empty file name: 400 No file (got $code $(cat "$WORK/e.b"))" error_is_original e 400 "No file"
fetch e -F "file=just text" "$(URL /query)"
check "a field that is not a file: 400 No file (got $code $(cat "$WORK/e.b"))" error_is_original e 400 "No file"
fetch e --data-binary "@$DATA/audio/violin/s 0.wav" -H "Content-Type: audio/wav" "$(URL /query)"
check "a raw body: 400 No file (got $code $(cat "$WORK/e.b"))" error_is_original e 400 "No file"
fetch e -X POST "$(URL /query)"
check "no body: 400 No file (got $code)" error_is_original e 400 "No file"
fetch e -F "file=@$WORK/noise.bin;filename=notes.txt" "$(URL /ear/query)"
check "noise named .txt: 400 Unsupported file type (got $code $(cat "$WORK/e.b"))" \
    error_is_original e 400 "Unsupported file type"
for name in rec.wav rec.WEBM rec.mp3 rec.ogg rec.m4a rec.mp4; do
    fetch e -F "file=@$WORK/noise.bin;filename=$name" "$(URL /query)"
    check "noise named $name: 400 Audio conversion failed (got $code $(cat "$WORK/e.b"))" \
        error_is_original e 400 "Audio conversion failed (FFmpeg error)"
done
fetch e -F "file=@$WORK/empty.bin;filename=empty.wav" "$(URL /query)"
check "an empty .wav: 400 Audio conversion failed (got $code $(cat "$WORK/e.b"))" \
    error_is_original e 400 "Audio conversion failed (FFmpeg error)"
fetch e -F "file=@$WORK/broken.jpg" "$(URL /query)"
check "a broken JPEG: 500 with the reason (got $code $(cat "$WORK/e.b"))" \
    eval '[ "$code" = 500 ] && grep -q "^{\"error\":\"[^\"]" "$WORK/e.b"'
fetch e -F "file=@$WORK/noise.bin;filename=x.png" "$(URL /query)"
check "noise named .png: 500 cannot identify image file (got $code $(cat "$WORK/e.b"))" \
    error_is_original e 500 "cannot identify image file 'x.png'"
fetch e "$(URL /query)"
check "GET /query: 405 with Allow: POST (got $code)" \
    eval '[ "$code" = 405 ] && [ "$(header e Allow)" = POST ]'

# 413 from the headers, before a byte of the body: {"error": ...} as the rest.
exec {tcp}<>"/dev/tcp/127.0.0.1/$PORT"
printf 'POST /query HTTP/1.1\r\nHost: test\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: %d\r\n\r\n' \
    $((2 * 1024 * 1024)) >&$tcp
timeout 10 cat <&$tcp >"$WORK/big.b"
exec {tcp}>&-
check "2 MiB announced over --max-upload 1M: 413 (got $(head -1 "$WORK/big.b"))" \
    grep -q "^HTTP/1.1 413 " "$WORK/big.b"
check "413: the original's error shape" grep -q '^{"error":"the body is 2097152 bytes; at most 1048576 are accepted"}$' "$WORK/big.b"

stop_server
finish
