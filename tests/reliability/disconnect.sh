#!/bin/bash
# Clients that go away: 20 uploads cut after 1 MB of a 5 MB body, 20 searches
# closed before their answer, 20 downloads of a 30 MB file closed after 64 KiB.
# The service stays up, its descriptors return to where they were, its RSS to
# within 24 MiB of where it was, the metrics count the aborted requests, and
# (in the ASan build) it exits at SIGTERM with no leak reported.
. "$(dirname "$0")/../http/lib.sh"
make_dataset "$WORK/data" && make_index "$WORK/data" "$WORK/ear.index" ||
    { echo "could not make the dataset: $(cat "$WORK/index.log")" >&2; exit 1; }
head -c $((30 << 20)) /dev/urandom >"$WORK/data/audio/big.wav"
# A search whose client left while it ran keeps its connection until the idle
# timeout (libmicrohttpd's epoll loop misses the FIN that came while the
# connection was suspended), so the timeout is short here and waited for.
start_server --model "$MODEL" --index "$WORK/ear.index" --data "$WORK/data" --workers 1 \
    --idle-timeout 3 || exit 1
fds() { ls "/proc/$SERVER_PID/fd" 2>/dev/null | wc -l; }
rss_kib() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$SERVER_PID/status"; }

# Warm-up: what each kind of request allocates once and keeps (sessions, buffers).
fetch search -X POST --data-binary @"$WORK/data/audio/cow.wav" "$(URL /api/search)"
check "a search answers 200 (got $code)" [ "$code" = 200 ]
fetch big -r 0-65535 "$(URL /data/audio/big.wav)"
check "a download answers 206 (got $code)" [ "$code" = 206 ]
base_fds=$(fds)
base_rss=$(rss_kib)

for i in $(seq 20); do
    ( # upload cut short
        exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 1
        printf 'POST /api/search HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\nContent-Length: %d\r\n\r\n' \
            $((5 << 20)) >&3
        head -c $((1 << 20)) /dev/zero >&3 2>/dev/null
    )
    ( # search abandoned before its answer
        exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 1
        printf 'POST /api/search HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\nContent-Length: %d\r\n\r\n' \
            "$(stat -c %s "$WORK/data/audio/cow.wav")" >&3
        cat "$WORK/data/audio/cow.wav" >&3
    )
    ( # download cut short
        exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 1
        printf 'GET /data/audio/big.wav HTTP/1.1\r\nHost: x\r\n\r\n' >&3
        head -c 65536 <&3 >/dev/null
    )
done
# The service notices each closed connection when it next reads or writes it,
# or at the idle timeout.
for _ in $(seq 100); do
    [ "$(fds)" -le "$base_fds" ] && break
    sleep 0.1
done
check "the service is running" kill -0 "$SERVER_PID"
check "its descriptors are back ($(fds), base $base_fds)" [ "$(fds)" -le "$base_fds" ]
[ "$(fds)" -gt "$base_fds" ] && ss -tn state all "( sport = :$PORT )"
end_rss=$(rss_kib)
# (ASan's quarantine holds freed memory on purpose: there, LeakSanitizer at exit is the check.)
grep -aq AddressSanitizer "$EAR" ||
    check "its RSS is back (${end_rss} KiB, base ${base_rss} KiB, at most +24 MiB)" \
        [ "$end_rss" -le $((base_rss + 24 * 1024)) ]
fetch metrics "$(URL /metrics)"
aborted=$(grep '^ear_http_requests_total.*aborted' "$WORK/metrics.b" | tr '\n' ' ')
check "the metrics count aborted requests ($aborted)" grep -q 'aborted' "$WORK/metrics.b"
fetch search -X POST --data-binary @"$WORK/data/audio/cow.wav" "$(URL /api/search)"
check "a search still answers 200 (got $code)" [ "$code" = 200 ]
echo "60 abandoned requests: descriptors $base_fds -> $(fds); RSS $base_rss -> $end_rss KiB; $aborted"
stop_server
[ "$failed" -eq 0 ] || grep -B2 -A30 "ERROR: LeakSanitizer" "$WORK/serve.log" | head -80
finish
