#!/bin/bash
# Load (label `load`): wrk holds 64 connections on POST /api/search for
# EAR_LOAD_SECONDS (60) with a real 5 s WebM sound. Only 200 and 503 (queue
# full) may come back, the service must not crash, and its resident memory,
# sampled every second, must stay bounded: no growth in the second half of the
# run beyond the first half's peak (+16 MiB), under 512 MiB (both without
# sanitizers). Prints requests/s, p50/p99 latency and RSS.
. "$(dirname "$0")/../http/lib.sh"
SECONDS_LOAD=${EAR_LOAD_SECONDS:-60}
command -v wrk >/dev/null || { echo "wrk is not installed (make deps)"; exit 77; }

make_dataset "$WORK/data" && make_index "$WORK/data" "$WORK/ear.index" ||
    { echo "could not make the dataset: $(cat "$WORK/index.log")" >&2; exit 1; }
ffmpeg -nostdin -v error -f lavfi -i "sine=frequency=330:duration=5" -f lavfi \
    -i "anoisesrc=d=5:c=pink:a=0.1:seed=3" -filter_complex amix=inputs=2 -ac 1 -ar 48000 \
    -c:a libopus -b:a 32k "$WORK/five.webm" || { echo "could not make the sound" >&2; exit 1; }

start_server --model "$MODEL" --index "$WORK/ear.index" --data "$WORK/data" --workers 2 \
    --queue 16 || exit 1
rss_kib() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$SERVER_PID/status" 2>/dev/null; }
# Warm-up: one search, so that the baseline includes the sessions' first use.
fetch warm -X POST --data-binary @"$WORK/five.webm" -H 'Content-Type: audio/webm' "$(URL /api/search)"
check "warm-up search answers 200 (got $code)" [ "$code" = 200 ]
rss_start=$(rss_kib)

EAR_LOAD_BODY=$WORK/five.webm wrk -t 4 -c 64 -d "${SECONDS_LOAD}s" --timeout 30s \
    -s "$(dirname "$0")/search.lua" "$(URL /api/search)" >"$WORK/wrk.out" 2>&1 &
wrk_pid=$!
: >"$WORK/rss"
while kill -0 "$wrk_pid" 2>/dev/null; do
    rss_kib >>"$WORK/rss"
    sleep 1
done
wait "$wrk_pid"
check "wrk ran (exit $?): $(tail -5 "$WORK/wrk.out")" grep -q '^requests ' "$WORK/wrk.out"
check "the service is still running" kill -0 "$SERVER_PID"

others=$(awk '$1 == "status" && $2 != 200 && $2 != 503' "$WORK/wrk.out")
ok=$(awk '$1 == "status" && $2 == 200 { print $3 }' "$WORK/wrk.out")
busy=$(awk '$1 == "status" && $2 == 503 { print $3 }' "$WORK/wrk.out")
check "only 200 and 503 came back (also: $others)" [ -z "$others" ]
check "searches were answered (200: ${ok:-0})" [ "${ok:-0}" -gt 0 ]
errors=$(sed -n 's/^errors connect \([0-9]*\) read \([0-9]*\) write \([0-9]*\) timeout \([0-9]*\).*/\1 \2 \3 \4/p' "$WORK/wrk.out")
check "no connection was refused, cut or timed out (connect read write timeout: $errors)" \
    [ "$errors" = "0 0 0 0" ]

samples=$(wc -l <"$WORK/rss")
half=$((samples / 2))
first_peak=$(head -n "$half" "$WORK/rss" | sort -n | tail -1)
second_peak=$(tail -n +"$((half + 1))" "$WORK/rss" | sort -n | tail -1)
# Under ASan the quarantine of freed memory grows RSS on purpose (up to 256 MiB);
# there LeakSanitizer at SIGTERM (stop_server) is the check instead.
if ! grep -aq AddressSanitizer "$EAR"; then
    check "RSS does not grow in the second half (${first_peak:-?} then ${second_peak:-?} KiB)" \
        [ "${second_peak:-0}" -le $((${first_peak:-0} + 16384)) ]
    check "RSS stays under 512 MiB (peak ${second_peak:-?} KiB)" \
        [ "$(sort -n "$WORK/rss" | tail -1)" -lt $((512 * 1024)) ]
fi
fetch health "$(URL /healthz)"
check "/healthz answers after the load (got $code)" [ "$code" = 200 ]

rate=$(awk '$1 == "requests" { printf "%.1f", $2 / '"$SECONDS_LOAD"' }' "$WORK/wrk.out")
echo "load: ${SECONDS_LOAD} s, 64 connections, 5 s WebM: ${rate} requests/s," \
    "200: ${ok:-0}, 503: ${busy:-0}; $(grep '^latency_ms' "$WORK/wrk.out");" \
    "RSS KiB: before ${rss_start:-?}, peak $(sort -n "$WORK/rss" | tail -1), end $(rss_kib)"
stop_server
finish
