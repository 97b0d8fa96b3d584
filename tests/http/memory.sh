#!/bin/bash
# Memory stays flat: the resident size after 2,000 searches is within 5 MB of
# the size after the first 100 (the model mapped once, one arena per worker,
# each request's buffers freed).
source "$(dirname "$0")/lib.sh"

make_dataset "$WORK/data" || { echo "could not make the dataset" >&2; exit 1; }
make_index "$WORK/data" "$WORK/index.ear" || { cat "$WORK/index.log" >&2; exit 1; }
ffmpeg -nostdin -v error -f lavfi -i "sine=frequency=300:duration=0.5" -ac 2 -ar 48000 \
    -c:a libopus "$WORK/query.webm" || { echo "could not make the test sound" >&2; exit 1; }

# Under AddressSanitizer freed memory is held in quarantine: keep it small so
# that what is measured is what the service keeps, not what the tool does.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1:thread_local_quarantine_size_kb=64"
start_server --model "$MODEL" --index "$WORK/index.ear" --data "$WORK/data" || exit 1

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status"; }

# searches N: N searches over one kept-alive connection, half multipart, half
# raw; the count of 200s in $ok.
searches() {
    local n=$1 half=$(($1 / 2))
    for _ in $(seq "$half"); do printf 'url = "%s"\noutput = "/dev/null"\n' "$(URL "/api/search?k=3")"; done >"$WORK/urls"
    ok=$(curl -s -K "$WORK/urls" -F "audio=@$WORK/query.webm" -w '%{http_code}\n' | grep -c '^200$')
    ok=$((ok + $(curl -s -K "$WORK/urls" --data-binary "@$WORK/query.webm" -w '%{http_code}\n' | grep -c '^200$')))
}

searches 100
check "the first 100 searches: 200 (got $ok)" [ "$ok" -eq 100 ]
after_100=$(rss_kb)
searches 1900
check "1,900 more: 200 (got $ok)" [ "$ok" -eq 1900 ]
after_2000=$(rss_kb)
echo "resident: ${after_100} kB after 100 searches, ${after_2000} kB after 2000"
check "RSS after 2,000 searches ($after_2000 kB) within 5 MB of after 100 ($after_100 kB)" \
    [ $((after_2000 - after_100)) -lt 5120 ]
fetch metrics "$(URL /metrics)"
check "/metrics: 2,000 searches answered 200" body_has metrics '^ear_http_requests_total{route="search",status="200"} 2000$'
stop_server
finish
