#!/bin/bash
# ear serve --fill-columns: POST /query's columns are the best five of each kind, however far
# down the one ranking of both kinds they are. A dataset of 120 sounds and 6 frames, where the
# original's walk of the best 100 leaves a sound query's frame column short: without the flag
# the answer is the original's (fewer than 5 frames), with it 5 and 5, each column in the
# order /api/search gives for that kind alone; the answer keeps the original's bytes.
source "$(dirname "$0")/lib.sh"

DATA=$WORK/data
mkdir -p "$DATA/audio/tone" "$DATA/frames/picture"
for i in $(seq 100 219); do
    ffmpeg -nostdin -v error -f lavfi -i "sine=frequency=$((i * 4)):duration=0.5" -ar 16000 \
        "$DATA/audio/tone/s$i.wav" || { echo "could not make the sounds" >&2; exit 1; }
done
for f in photo_77x52.jpg rgba_64x45.png tiny_20x13.png cmyk_40x30.jpg palette_50x37.png \
    gray_40x52.jpg; do
    cp "$SOURCE/tests/fixtures/image/$f" "$DATA/frames/picture/$f"
done
make_index "$DATA" "$WORK/index.ear" || { cat "$WORK/index.log" >&2; exit 1; }
check "the index: 126 items ($(tail -1 "$WORK/index.log"))" \
    grep -q "126 items (6 images, 120 sounds)" "$WORK/index.log"

# count NAME KIND: how many items of KIND ("audio" or "image") fetch NAME's answer lists.
count() { grep -o "\"type\":\"$2\"" "$WORK/$1.b" | wc -l; }
# paths NAME: the dataset paths an answer lists, in order, one per line.
paths() { grep -o '"url":"[^"]*"' "$WORK/$1.b" | sed 's|.*data/||; s|"$||'; }

QUERY=$DATA/audio/tone/s150.wav
start_server --model "$MODEL" --index "$WORK/index.ear" --data "$DATA" || exit 1
fetch original -F "file=@$QUERY" "$(URL /query)"
check "without the flag: 200 (got $code)" [ "$code" = 200 ]
check "without the flag: five sounds (got $(count original audio))" \
    [ "$(count original audio)" -eq 5 ]
check "without the flag: the original's walk leaves fewer than 5 frames (got $(count original image))" \
    [ "$(count original image)" -lt 5 ]
stop_server

start_server --model "$MODEL" --index "$WORK/index.ear" --data "$DATA" --fill-columns || exit 1
fetch filled -F "file=@$QUERY" "$(URL /query)"
check "--fill-columns: 200 (got $code)" [ "$code" = 200 ]
check "--fill-columns: 5 sounds and 5 frames (got $(count filled audio), $(count filled image))" \
    eval '[ "$(count filled audio)" -eq 5 ] && [ "$(count filled image)" -eq 5 ]'
check "--fill-columns: the original's keys and order" \
    grep -q '^{"cross_modality":\[{"label":"picture","score":[-0-9.]*,"type":"image","url":"/ear/data/frames/picture/.*\],"query_type":"audio","same_modality":\[{"label":"tone","score":1.0,"type":"audio","url":"/ear/data/audio/tone/s150.wav"}' "$WORK/filled.b"
fetch frames -F "audio=@$QUERY" "$(URL '/api/search?kind=image&k=5')"
fetch sounds -F "audio=@$QUERY" "$(URL '/api/search?kind=audio&k=5')"
check "--fill-columns: the frames in /api/search's order ($(paths frames | tr '\n' ' '))" \
    eval '[ "$(paths filled | grep ^frames/)" = "$(paths frames)" ]'
check "--fill-columns: the sounds in /api/search's order" \
    eval '[ "$(paths filled | grep ^audio/)" = "$(paths sounds)" ]'
fetch image -F "file=@$DATA/frames/picture/photo_77x52.jpg" "$(URL /query)"
check "--fill-columns, an image: 5 frames and 5 sounds (got $(count image image), $(count image audio))" \
    eval '[ "$code" = 200 ] && [ "$(count image image)" -eq 5 ] && [ "$(count image audio)" -eq 5 ]'
stop_server
finish
