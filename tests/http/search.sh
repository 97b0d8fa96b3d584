#!/bin/bash
# POST /api/search: multipart and raw bodies at both prefixes, the same answer
# as `ear search`, k, kind and against, image queries (field image, a raw JPEG or
# PNG, `ear search` with an image), each error of the spec (400 bad_request and
# undecodable_audio, 413 from the headers and from a growing chunked body, 422,
# 503 busy with Retry-After), a client that leaves mid-upload, and 16
# simultaneous searches with one worker, none lost.
source "$(dirname "$0")/lib.sh"

make_dataset "$WORK/data" || { echo "could not make the dataset" >&2; exit 1; }
make_index "$WORK/data" "$WORK/index.ear" || { cat "$WORK/index.log" >&2; exit 1; }
ffmpeg -nostdin -v error -f lavfi -i "sine=frequency=300:duration=3" -ac 2 -ar 48000 \
    -c:a libopus "$WORK/query.webm" &&
    ffmpeg -nostdin -v error -f lavfi -i "sine=frequency=300:duration=0.05" -ar 16000 "$WORK/short.wav" &&
    ffmpeg -nostdin -v error -f lavfi -i "sine=frequency=500:duration=60" -c:a libopus \
        "$WORK/long.webm" || { echo "could not make the test sounds" >&2; exit 1; }
head -c 5000 /dev/urandom >"$WORK/noise.bin"

# --idle-timeout 2: libmicrohttpd 0.9.75 with epoll now and then misses a client's
# close in the middle of a body and only notices it at the idle timeout.
start_server --model "$MODEL" --index "$WORK/index.ear" --data "$WORK/data" --max-seconds 2 \
    --idle-timeout 2 || exit 1

# results NAME: the answer without its timings, which differ from run to run.
results() { sed 's/,"timing_ms".*//' "$WORK/$1.b"; }
ranks() { grep -o '"rank":' "$WORK/$1.b" | wc -l; }

"$EAR" search --model "$MODEL" --index "$WORK/index.ear" --max-seconds 2 -k 3 "$WORK/query.webm" \
    >"$WORK/cli.b" 2>"$WORK/cli.err"
check "ear search runs: $(cat "$WORK/cli.err")" [ -s "$WORK/cli.b" ]

for prefix in "" /ear; do
    fetch multipart -F "audio=@$WORK/query.webm;type=audio/webm" "$(URL "$prefix/api/search?k=3")"
    check "multipart $prefix: 200 (got $code: $(head -c 300 "$WORK/multipart.b"))" [ "$code" = 200 ]
    check "multipart $prefix: application/json" [ "$(header multipart Content-Type)" = application/json ]
    check "multipart $prefix: the answer of ear search" [ "$(results multipart)" = "$(results cli)" ]
    check "multipart $prefix: timings" body_has multipart '"timing_ms":{"decode":[0-9.]*,"embed":[0-9.]*,"search":[0-9.]*,"total":[0-9.]*}}$'
    check "multipart $prefix: cut at --max-seconds 2" body_has multipart '"query":{"kind":"audio","duration_s":2,"format":"[a-z,]*webm[a-z,]*","truncated":true}'

    fetch raw --data-binary "@$WORK/query.webm" -H "Content-Type: audio/webm" "$(URL "$prefix/api/search?k=3")"
    check "raw $prefix: 200 (got $code)" [ "$code" = 200 ]
    check "raw $prefix: the same answer as multipart" [ "$(results raw)" = "$(results multipart)" ]
done

# A multipart form with other fields first, and curl's default raw type.
fetch form -F "note=hello" -F "audio=@$WORK/data/audio/cow.wav" -F "extra=@$WORK/noise.bin" "$(URL /api/search?k=1)"
check "multipart with other fields: 200 (got $code)" [ "$code" = 200 ]
check "multipart with other fields: cow first" body_has form '"rank":1,"id":"cow"'
fetch rawform --data-binary "@$WORK/data/audio/cow.wav" "$(URL /api/search?k=1)"
check "raw body sent as x-www-form-urlencoded: the same answer" [ "$(results rawform)" = "$(results form)" ]

# k: default 8 (the index has 5 items: 3 frames, 2 sounds), 1 to 50, anything else 400.
fetch k --data-binary "@$WORK/query.webm" "$(URL /api/search?kind=all)"
check "no k: every one of the 5 items (got $(ranks k))" [ "$(ranks k)" -eq 5 ]
fetch k --data-binary "@$WORK/query.webm" "$(URL /api/search)"
check "no kind: the 3 frames, as against=frames was (got $(ranks k))" \
    eval '[ "$(ranks k)" -eq 3 ] && ! body_has k "\"url\":\"data/audio"'
for k in 1 2 50; do
    fetch k --data-binary "@$WORK/query.webm" "$(URL "/api/search?k=$k&kind=all")"
    expected=$((k < 5 ? k : 5))
    check "k=$k: 200 with $expected results (got $code, $(ranks k))" [ "$code" = 200 ] && [ "$(ranks k)" -eq "$expected" ]
done
for k in 0 51 -1 abc 2x "" 1.5; do
    fetch badk --data-binary "@$WORK/query.webm" "$(URL "/api/search?k=$k")"
    check "k=$k: 400 bad_request (got $code)" error_is badk 400 bad_request
done

# against=sounds: only the items that have a sound; the query is dog's own sound.
fetch sounds --data-binary "@$WORK/data/audio/dog.wav" "$(URL "/ear/api/search?k=8&against=sounds")"
check "against=sounds: 200 (got $code)" [ "$code" = 200 ]
check "against=sounds: the 2 items with a sound (got $(ranks sounds))" [ "$(ranks sounds)" -eq 2 ]
check "against=sounds: dog first with score 1" body_has sounds '"rank":1,"id":"dog","kind":"audio","label":"A dog.","score":1[,.]'
check "against=sounds: its URL" body_has sounds '"url":"data/audio/dog.wav","frame_url":null,"audio_url":"data/audio/dog.wav"'
fetch bad --data-binary "@$WORK/query.webm" "$(URL "/api/search?against=everything")"
check "against=everything: 400 bad_request" error_is bad 400 bad_request

# kind=audio|image|all filters the results; against= is its older name.
fetch kind --data-binary "@$WORK/data/audio/dog.wav" "$(URL "/api/search?kind=audio")"
check "kind=audio: the 2 sounds, nothing else (got $(ranks kind))" \
    eval '[ "$(ranks kind)" -eq 2 ] && ! body_has kind "\"kind\":\"image\""'
check "kind=audio: the same answer as against=sounds" [ "$(results kind)" = "$(results sounds)" ]
fetch kind --data-binary "@$WORK/data/audio/dog.wav" "$(URL "/api/search?kind=image")"
# (the query's own "kind":"audio" is the one sound the answer names)
check "kind=image: the 3 frames, nothing else (got $(ranks kind))" \
    eval '[ "$(ranks kind)" -eq 3 ] && [ "$(grep -o "\"kind\":\"audio\"" "$WORK/kind.b" | wc -l)" -eq 1 ]'
fetch kind --data-binary "@$WORK/data/audio/dog.wav" "$(URL "/api/search?kind=all&k=50")"
check "kind=all: both kinds, 5 results (got $(ranks kind))" \
    eval '[ "$(ranks kind)" -eq 5 ] && body_has kind "\"kind\":\"image\"" && body_has kind "\"kind\":\"audio\""'
for bad_kind in "kind=sound" "kind=" "kind=image&against=sounds"; do
    fetch bad --data-binary "@$WORK/query.webm" "$(URL "/api/search?$bad_kind")"
    check "$bad_kind: 400 bad_request (got $code)" error_is bad 400 bad_request
done

# Image queries: the field image, a raw JPEG or PNG body, any name; `ear search` the same.
fetch image -F "image=@$WORK/data/frames/cow.jpg" "$(URL "/api/search?kind=image&k=1")"
check "image field: 200, the frame itself first (got $code: $(head -c 300 "$WORK/image.b"))" \
    eval '[ "$code" = 200 ] && body_has image "\"rank\":1,\"id\":\"cow\",\"kind\":\"image\",\"label\":\"A cow.\",\"score\":1[,.]"'
check "image field: the query says image, jpeg" body_has image '"query":{"kind":"image","duration_s":0,"format":"jpeg","truncated":false}'
fetch imageraw --data-binary "@$WORK/data/frames/cow.jpg" -H "Content-Type: image/jpeg" "$(URL "/ear/api/search?kind=image&k=1")"
check "raw JPEG: the same answer" [ "$(results imageraw)" = "$(results image)" ]
fetch imagepng -F "audio=@$WORK/data/frames/dog.png;filename=x.wav" "$(URL "/api/search?k=1&kind=image")"
check "a PNG in the audio field named .wav: still an image, dog first" \
    body_has imagepng '"rank":1,"id":"dog","kind":"image"'
"$EAR" search --model "$MODEL" --index "$WORK/index.ear" -k 1 --kind image "$WORK/data/frames/cow.jpg" \
    >"$WORK/cliimage.b" 2>"$WORK/cliimage.err"
check "ear search with an image: the answer of /api/search ($(cat "$WORK/cliimage.err"))" \
    [ "$(results cliimage)" = "$(results image)" ]
printf '\xff\xd8\xff\xe0broken' >"$WORK/broken.jpg"
fetch bad -F "image=@$WORK/broken.jpg" "$(URL /api/search)"
check "a broken JPEG: 400 undecodable_image (got $code)" error_is bad 400 undecodable_image

# Bodies that are not audio, too short, or missing.
fetch bad --data-binary "@$WORK/noise.bin" -H "Content-Type: audio/ogg" "$(URL /api/search)"
check "noise: 400 undecodable_audio (got $code)" error_is bad 400 undecodable_audio
check "undecodable: the message says what was received: $(cat "$WORK/bad.b")" body_has bad '5000 bytes (audio/ogg)'
fetch bad -F "audio=@$WORK/noise.bin;type=audio/webm;filename=rec.webm" "$(URL /api/search)"
check "multipart noise: 400 undecodable_audio" error_is bad 400 undecodable_audio
check "multipart noise: names the field's type and file: $(cat "$WORK/bad.b")" body_has bad '5000 bytes in the upload field (audio/webm, file rec.webm)'
fetch bad -X POST "$(URL /api/search)"
check "no body: 400 undecodable_audio (got $code)" error_is bad 400 undecodable_audio
fetch bad --data-binary "@$WORK/short.wav" "$(URL /api/search)"
check "0.05 s: 422 audio_too_short (got $code)" error_is bad 422 audio_too_short
fetch bad -F "sound=@$WORK/query.webm" "$(URL /api/search)"
check "multipart without an audio or image field: 400 bad_request (got $code)" error_is bad 400 bad_request
fetch bad -H "Content-Type: multipart/form-data" --data-binary "@$WORK/query.webm" "$(URL /api/search)"
check "multipart without a boundary: 400 bad_request (got $code)" error_is bad 400 bad_request
fetch bad -H "Content-Type: multipart/form-data; boundary=xyz" --data-binary "@$WORK/noise.bin" "$(URL /api/search)"
check "a multipart body that is not one: 400 bad_request (got $code)" error_is bad 400 bad_request

# 413 from the headers alone: 51 MiB announced, not one byte of the body sent.
exec {tcp}<>"/dev/tcp/127.0.0.1/$PORT"
printf 'POST /api/search HTTP/1.1\r\nHost: test\r\nContent-Type: audio/webm\r\nContent-Length: %d\r\n\r\n' \
    $((51 * 1024 * 1024)) >&$tcp
timeout 10 cat <&$tcp >"$WORK/big.b"
exec {tcp}>&-
check "51 MiB announced: 413 before any body is sent (got $(head -1 "$WORK/big.b"))" \
    grep -q "^HTTP/1.1 413 " "$WORK/big.b"
check "51 MiB announced: payload_too_large" grep -q '{"error":{"code":"payload_too_large"' "$WORK/big.b"
check "51 MiB announced: the common headers" grep -q "^X-Content-Type-Options: nosniff" "$WORK/big.b"

# 413 from a chunked body without end: refused once it passes 50 MiB, never read to its end.
code=$(cat /dev/zero | timeout 60 curl -s -X POST -T - -H "Transfer-Encoding: chunked" -H "Content-Type: audio/webm" \
    -D "$WORK/chunked.h" -o "$WORK/chunked.b" -w '%{http_code}' "$(URL /api/search)")
check "an endless chunked body: 413 payload_too_large (got $code)" error_is chunked 413 payload_too_large
check "an endless chunked body: the common headers" [ "$(header chunked X-Content-Type-Options)" = nosniff ]

# A client that goes away in the middle of its upload: counted, logged, nothing kept.
exec {tcp}<>"/dev/tcp/127.0.0.1/$PORT"
printf 'POST /api/search HTTP/1.1\r\nHost: test\r\nContent-Length: 100000\r\n\r\n' >&$tcp
head -c 20000 "$WORK/long.webm" >&$tcp
exec {tcp}>&-
for _ in $(seq 200); do
    grep -q "POST /api/search - " "$WORK/serve.log" && break
    sleep 0.05
done
check "a client gone mid-upload: logged without a status" grep -q "POST /api/search - .*closed before the answer" "$WORK/serve.log"
fetch health "$(URL /healthz)"
check "the service still answers (got $code)" [ "$code" = 200 ]

# concurrent N FILE: N searches on N connections whose bodies all complete at
# the same moment (the last byte of each held back); answers in $WORK/answer.I.
concurrent() {
    local n=$1 file=$2 size last fd i
    size=$(stat -c %s "$file")
    last=$(tail -c 1 "$file" | od -An -to1 | tr -d ' \n')
    local fds=()
    for i in $(seq "$n"); do
        exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"
        fds+=("$fd")
        printf 'POST /api/search?k=2 HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: audio/webm\r\nContent-Length: %d\r\n\r\n' "$size" >&"$fd"
        head -c $((size - 1)) "$file" >&"$fd"
    done
    sleep 0.3
    for fd in "${fds[@]}"; do printf "\\$last" >&"$fd"; done
    i=0
    for fd in "${fds[@]}"; do
        i=$((i + 1))
        timeout $((60 * ${EAR_TEST_TIME_SCALE:-1})) cat <&"$fd" >"$WORK/answer.$i"
        exec {fd}>&-
    done
}
answers_with() { grep -l "^HTTP/1.1 $1 " "$WORK"/answer.* 2>/dev/null | wc -l; }

# One worker, a queue of 16: sixteen at once all wait their turn.
rm -f "$WORK"/answer.*
concurrent 16 "$WORK/query.webm"
check "16 at once, queue 16: all 200 (got $(answers_with 200))" [ "$(answers_with 200)" -eq 16 ]
fetch metrics "$(URL /metrics)"
check "/metrics: the queue is empty again" body_has metrics '^ear_search_queue_depth 0$'
check "/metrics: search 413s counted" body_has metrics '^ear_http_requests_total{route="search",status="413"} 2$'
check "/metrics: the upload that was cut counted" body_has metrics '^ear_http_requests_total{route="search",status="aborted"} 1$'
stop_server

# One worker, a queue of 1, long clips: the others are told to come back.
start_server --model "$MODEL" --index "$WORK/index.ear" --data "$WORK/data" --workers 1 --queue 1 || exit 1
rm -f "$WORK"/answer.*
concurrent 16 "$WORK/long.webm"
ok=$(answers_with 200)
busy=$(answers_with 503)
check "16 at once, queue 1: each answer 200 or 503, none lost (200: $ok, 503: $busy)" [ $((ok + busy)) -eq 16 ]
check "16 at once, queue 1: some refused (got $busy)" [ "$busy" -ge 1 ]
check "16 at once, queue 1: at least the first answered (got $ok)" [ "$ok" -ge 1 ]
for f in $(grep -l "^HTTP/1.1 503 " "$WORK"/answer.*); do
    check "503: Retry-After and busy" eval 'grep -q "^Retry-After: 1" "$f" && grep -q "{\"error\":{\"code\":\"busy\"" "$f"'
done
stop_server

# Two workers share the work and give the same answers.
start_server --model "$MODEL" --index "$WORK/index.ear" --data "$WORK/data" --workers 2 --max-seconds 2 || exit 1
rm -f "$WORK"/answer.*
concurrent 8 "$WORK/query.webm"
check "two workers: 8 answers 200 (got $(answers_with 200))" [ "$(answers_with 200)" -eq 8 ]
sed -n 's/.*\({"results".*\),"timing_ms".*/\1/p' "$WORK"/answer.* | sort -u >"$WORK/distinct"
check "two workers: one answer, 8 times" [ "$(wc -l <"$WORK/distinct")" -eq 1 ]
stop_server
finish
