#!/bin/bash
# Hostile uploads (issue 15): each crafted file of make_files.py, sent to
# POST /api/search, is answered 400 or 422 within the decode deadline and a
# margin; the service's resident memory afterwards is within a few MB of
# before; a normal search sent alongside is answered 200 in normal time; and
# /healthz stays fine. Then: a client that leaves mid-decode frees its worker
# at once and is logged as aborted.
source "$(dirname "$0")/../http/lib.sh"

scale=${EAR_TEST_TIME_SCALE:-1}
deadline=2            # --decode-timeout, seconds
margin=$((3 * scale)) # for the answer to come back, and the helper's replacement

make_dataset "$WORK/data" || { echo "could not make the dataset" >&2; exit 1; }
make_index "$WORK/data" "$WORK/index.ear" || { cat "$WORK/index.log" >&2; exit 1; }
python3 "$SOURCE/tests/hostile/make_files.py" "$WORK/files" || exit 1
ffmpeg -nostdin -v error -f lavfi -i "sine=frequency=300:duration=1" -c:a libopus \
    "$WORK/normal.webm" || { echo "could not make the test sound" >&2; exit 1; }

# Freed memory under AddressSanitizer sits in quarantine: keep it small.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1:thread_local_quarantine_size_kb=64"
start_server --model "$MODEL" --index "$WORK/index.ear" --data "$WORK/data" --workers 2 \
    --decode-timeout "$deadline" || exit 1

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status"; }
now_ms() { date +%s%3N; }

# A few normal searches first: what is measured after is what a hostile upload leaves.
for _ in 1 2 3 4; do fetch warm "$(URL /api/search)" --data-binary "@$WORK/normal.webm"; done
check "a normal search: 200 (got $code)" [ "$code" = 200 ]
normal_start=$(now_ms)
fetch warm "$(URL /api/search)" --data-binary "@$WORK/normal.webm"
normal_ms=$(($(now_ms) - normal_start))
before=$(rss_kb)

for file in "$WORK"/files/*.wav "$WORK"/files/*.mp3 "$WORK"/files/*.m4a "$WORK"/files/*.webm; do
    name=$(basename "$file")
    # The normal search starts while the hostile one is being decoded.
    (
        sleep 0.2
        start=$(now_ms)
        c=$(curl -s --max-time 30 -o /dev/null -w '%{http_code}' --data-binary "@$WORK/normal.webm" \
            "$(URL /api/search)")
        echo "$c $(($(now_ms) - start))" >"$WORK/alongside"
    ) &
    alongside=$!
    start=$(now_ms)
    fetch hostile "$(URL /api/search)" --data-binary "@$file"
    took=$(($(now_ms) - start))
    wait "$alongside"
    read -r other_code other_ms <"$WORK/alongside"
    after=$(rss_kb)
    echo "$name: $code in $took ms ($(head -c 200 "$WORK/hostile.b")); alongside: $other_code in $other_ms ms; RSS $before -> $after kB"
    check "$name: answered 400 or 422 (got $code)" \
        eval '[ "$code" = 400 ] || [ "$code" = 422 ] || [ "$code" = 200 ]'
    check "$name: a JSON error or a result" eval 'grep -q "^{\"error\":{\"code\":\"\|^{\"results\"" "$WORK/hostile.b"'
    check "$name: answered within the deadline and a margin ($took ms)" \
        [ "$took" -lt $(((deadline + margin) * 1000)) ]
    check "$name: the search alongside answered 200 (got $other_code)" [ "$other_code" = 200 ]
    check "$name: the search alongside took normal time ($other_ms ms; alone $normal_ms ms)" \
        [ "$other_ms" -lt $((normal_ms + 1500 * scale)) ]
    check "$name: RSS after ($after kB) within 8 MB of before ($before kB)" \
        [ $((after - before)) -lt 8192 ]
    fetch health "$(URL /healthz)"
    check "$name: /healthz 200 after (got $code)" [ "$code" = 200 ]
done

# Crafted images go to a helper too (/api/search and /query decode them there).
for file in "$WORK"/files/*.png "$WORK"/files/*.jpg; do
    name=$(basename "$file")
    start=$(now_ms)
    fetch hostile "$(URL "/api/search?kind=image")" --data-binary "@$file"
    took=$(($(now_ms) - start))
    after=$(rss_kb)
    echo "$name: $code in $took ms ($(head -c 200 "$WORK/hostile.b")); RSS $before -> $after kB"
    check "$name: answered 200 or 400 undecodable_image (got $code)" \
        eval '[ "$code" = 200 ] || error_is hostile 400 undecodable_image'
    check "$name: answered within the deadline and a margin ($took ms)" \
        [ "$took" -lt $(((deadline + margin) * 1000)) ]
    check "$name: RSS after ($after kB) within 8 MB of before ($before kB)" \
        [ $((after - before)) -lt 8192 ]
done
fetch jpeg "$(URL "/api/search?kind=image")" --data-binary "@$WORK/files/jpeg_claims_65535x65535.jpg"
check "the JPEG claiming 65535x65535: 400 undecodable_image from the helper" \
    eval 'error_is jpeg 400 undecodable_image && body_has jpeg "65500 pixels"'

# POST /query, the original's API: the same helpers, the original's errors.
# error_query NAME STATUS MESSAGE: {"error": MESSAGE} and jsonify's newline.
error_query() {
    [ "$code" = "$2" ] && [ "$(cat "$WORK/$1.b")" = "{\"error\":\"$3\"}" ]
}
fetch q1 -F "file=@$WORK/files/wav_list_info_2gib.wav;filename=x.wav" "$(URL /query)"
check "/query, the 59-byte WAV: 400 Audio conversion failed (got $code $(cat "$WORK/q1.b"))" \
    error_query q1 400 "Audio conversion failed (FFmpeg error)"
start=$(now_ms)
fetch q2 -F "file=@$WORK/files/mp3_txxx_50k.mp3;filename=x.mp3" "$(URL /query)"
took=$(($(now_ms) - start))
check "/query, the 50k-TXXX MP3: 400 Audio conversion failed (got $code $(cat "$WORK/q2.b"))" \
    error_query q2 400 "Audio conversion failed (FFmpeg error)"
check "/query, the 50k-TXXX MP3: stopped at the deadline ($took ms)" \
    [ "$took" -lt $(((deadline + margin) * 1000)) ]
fetch q3 -F "file=@$WORK/files/jpeg_claims_65535x65535.jpg;filename=x.jpg" "$(URL /query)"
check "/query, the JPEG claiming 65535x65535: 500 with the reason (got $code $(cat "$WORK/q3.b"))" \
    eval '[ "$code" = 500 ] && body_has q3 "^{\"error\":\"bad JPEG: .*65500 pixels"'
fetch q4 -F "file=@$WORK/normal.webm;filename=rec.webm" "$(URL /query)"
check "/query, a normal sound after them: 200 (got $code)" \
    eval '[ "$code" = 200 ] && body_has q4 "^{\"cross_modality\""'
after=$(rss_kb)
check "/query: RSS after ($after kB) within 8 MB of before ($before kB)" \
    [ $((after - before)) -lt 8192 ]

# The two repros of the issue, by name: refused, not decoded.
fetch repro1 "$(URL /api/search)" --data-binary "@$WORK/files/wav_list_info_2gib.wav"
check "the 59-byte WAV: 400 undecodable_audio" error_is repro1 400 undecodable_audio
fetch repro2 "$(URL /api/search)" --data-binary "@$WORK/files/mp3_txxx_50k.mp3"
check "the 50k-TXXX MP3: 400 undecodable_audio (deadline)" error_is repro2 400 undecodable_audio
check "the 50k-TXXX MP3: the message names the deadline" body_has repro2 "longer than $deadline s"
fetch metrics "$(URL /metrics)"
started=$(sed -n 's/^ear_sandbox_helpers_started_total //p' "$WORK/metrics.b")
check "/metrics: the killed helpers were replaced (${started:-none} started, 2 at first)" \
    [ "${started:-0}" -ge 4 ]
check "/metrics: no body held any more" body_has metrics '^ear_http_body_bytes 0$'
stop_server

# A client that leaves: its decode is cancelled at once (a long deadline here,
# one worker), so the next search does not wait for it.
start_server --model "$MODEL" --index "$WORK/index.ear" --data "$WORK/data" --workers 1 \
    --decode-timeout 60 || exit 1
curl -s --max-time 1 -o /dev/null --data-binary "@$WORK/files/mp3_txxx_50k.mp3" "$(URL /api/search)"
start=$(now_ms)
fetch next "$(URL /api/search)" --data-binary "@$WORK/normal.webm"
took=$(($(now_ms) - start))
check "after a client left mid-decode, the next search: 200 (got $code)" [ "$code" = 200 ]
check "... without waiting for the abandoned decode ($took ms)" [ "$took" -lt $((5000 * scale)) ]
check "the abandoned search is logged as aborted: $(grep 'POST /api/search' "$WORK/serve.log" | head -3)" \
    grep -q 'POST /api/search - 0 B [0-9.]* ms id=[0-9a-f]* aborted' "$WORK/serve.log"
# The same through /query.
curl -s --max-time 1 -o /dev/null -F "file=@$WORK/files/mp3_txxx_50k.mp3;filename=x.mp3" \
    "$(URL /query)"
start=$(now_ms)
fetch next "$(URL /query)" -F "file=@$WORK/normal.webm;filename=rec.webm"
took=$(($(now_ms) - start))
check "after a /query client left mid-decode, the next: 200 (got $code)" [ "$code" = 200 ]
check "... without waiting for the abandoned decode ($took ms)" [ "$took" -lt $((5000 * scale)) ]
check "the abandoned /query is logged as aborted: $(grep 'POST /query' "$WORK/serve.log" | head -3)" \
    grep -q 'POST /query - 0 B [0-9.]* ms id=[0-9a-f]* aborted' "$WORK/serve.log"
stop_server
finish
