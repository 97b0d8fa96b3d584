#!/bin/bash
# GET /api/examples: the items with a sound that the page offers as one-click
# examples, at both prefixes; ?n= and its limits; items spread evenly over a
# larger index; URLs percent-encoded and served; 405 for other methods.
source "$(dirname "$0")/lib.sh"

make_dataset "$WORK/data" || { echo "could not make the dataset" >&2; exit 1; }
make_index "$WORK/data" "$WORK/index.ear" || { cat "$WORK/index.log" >&2; exit 1; }
start_server --model "$MODEL" --index "$WORK/index.ear" --data "$WORK/data" || exit 1

# cat has a frame and no sound: never an example.
both='{"examples":[{"id":"cow","label":"A cow.","audio_url":"data/audio/cow.wav","frame_url":"data/frames/cow.jpg"},{"id":"dog","label":"A dog.","audio_url":"data/audio/dog.wav","frame_url":"data/frames/dog.png"}]}'
for prefix in "" /ear; do
    fetch examples "$(URL "$prefix/api/examples")"
    check "GET $prefix/api/examples: 200 (got $code)" [ "$code" = 200 ]
    check "GET $prefix/api/examples: application/json" \
        [ "$(header examples Content-Type)" = application/json ]
    check "GET $prefix/api/examples: cow and dog, not cat (got $(cat "$WORK/examples.b"))" \
        [ "$(cat "$WORK/examples.b")" = "$both" ]
    fetch one "$(URL "$prefix/api/examples?n=1")"
    check "?n=1: the first item only (got $(cat "$WORK/one.b"))" \
        [ "$(cat "$WORK/one.b")" = '{"examples":[{"id":"cow","label":"A cow.","audio_url":"data/audio/cow.wav","frame_url":"data/frames/cow.jpg"}]}' ]
    # Each URL is relative to the page and is served.
    fetch sound "$(URL "$prefix/data/audio/dog.wav")"
    check "the example's audio_url is served (got $code)" [ "$code" = 200 ]
done

for bad in 0 51 -1 x 2.5 ""; do
    fetch bad "$(URL "/api/examples?n=$bad")"
    check "?n=$bad: 400 bad_request" error_is bad 400 bad_request
done
fetch wrong -X POST --data-binary x "$(URL /api/examples)"
check "POST /api/examples: 405" error_is wrong 405 method_not_allowed
check "405: Allow: GET, HEAD (got $(header wrong Allow))" [ "$(header wrong Allow)" = "GET, HEAD" ]
fetch head -I "$(URL /api/examples)"
check "HEAD /api/examples: 200 (got $code)" [ "$code" = 200 ]
fetch metrics "$(URL /metrics)"
check "/metrics counts the route as examples" \
    body_has metrics '^ear_http_requests_total{route="examples",status="200"} 5$'
stop_server

# Twelve items with a sound and one without: n=4 takes every third, in id order.
mkdir -p "$WORK/big/audio" "$WORK/big/frames"
for i in 00 01 02 03 04 05 06 07 08 09 10; do
    cp "$WORK/data/audio/cow.wav" "$WORK/big/audio/item$i.wav"
done
cp "$WORK/data/audio/dog.wav" "$WORK/big/audio/with space&plus+.wav"
cp "$WORK/data/frames/cat.png" "$WORK/big/frames/item00b.png"
make_index "$WORK/big" "$WORK/big.ear" || { cat "$WORK/index.log" >&2; exit 1; }
start_server --model "$MODEL" --index "$WORK/big.ear" --data "$WORK/big" || exit 1
fetch spread "$(URL "/api/examples?n=4")"
ids=$(grep -o '"id":"[^"]*"' "$WORK/spread.b" | tr '\n' ' ')
check "n=4 of 12: item00 item03 item06 item09 (got $ids)" \
    [ "$ids" = '"id":"item00" "id":"item03" "id":"item06" "id":"item09" ' ]
fetch all "$(URL "/api/examples?n=50")"
check "n=50 of 12: all twelve, the frame-only item left out" \
    [ "$(grep -o '"id":' "$WORK/all.b" | wc -l)" = 12 ]
check "no frame: frame_url null" body_has all '"id":"item01","label":"item01","audio_url":"data/audio/item01.wav","frame_url":null}'
check "a name with a space, & and +: percent-encoded" \
    body_has all '"audio_url":"data/audio/with%20space%26plus%2B.wav"'
url=$(grep -o '"audio_url":"data/audio/with[^"]*"' "$WORK/all.b" | sed 's/.*:"//; s/"$//')
fetch encoded "$(URL "/$url")"
check "... and served at that URL (got $code)" [ "$code" = 200 ]
stop_server

# Frames only: no examples, an empty list (the page then hides its panel).
mkdir -p "$WORK/mute/frames"
cp "$WORK/data/frames/"* "$WORK/mute/frames/"
make_index "$WORK/mute" "$WORK/mute.ear" || { cat "$WORK/index.log" >&2; exit 1; }
start_server --model "$MODEL" --index "$WORK/mute.ear" --data "$WORK/mute" || exit 1
fetch none "$(URL /api/examples)"
check "no sounds: 200 and an empty list (got $code $(cat "$WORK/none.b"))" \
    eval '[ "$code" = 200 ] && [ "$(cat "$WORK/none.b")" = "{\"examples\":[]}" ]'
stop_server
finish
