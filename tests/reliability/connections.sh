#!/bin/bash
# 5,000 idle connections opened at once (hold_connections, a C helper).
# With --max-connections 6000 (and the open-file limit raised for it) the service
# holds them all and still answers /healthz; with --max-connections 1000 it
# keeps within that limit (libmicrohttpd stops accepting: the rest wait in the
# kernel's accept queue, or are dropped from it), stays up, closes the idle ones
# at --idle-timeout and takes the next from the queue; once the crowd leaves,
# /healthz answers again. Either way its descriptors return to where they were.
. "$(dirname "$0")/../http/lib.sh"
HOLD=${EAR_HOLD_CONNECTIONS:?EAR_HOLD_CONNECTIONS is not set}
COUNT=5000
ulimit -n 16384 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $((COUNT + 1100)) ] ||
    { echo "cannot raise the open-file limit to $((COUNT + 1100)) ($(ulimit -n))"; exit 77; }
make_dataset "$WORK/data" && make_index "$WORK/data" "$WORK/ear.index" ||
    { echo "could not make the dataset: $(cat "$WORK/index.log")" >&2; exit 1; }
fds() { ls "/proc/$SERVER_PID/fd" 2>/dev/null | wc -l; }
rss_kib() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$SERVER_PID/status"; }

# hold SECONDS: $COUNT connections held in the background, output in $WORK/hold.out;
# returns once they are all open (or failed).
hold() {
    : >"$WORK/hold.out"
    "$HOLD" "$PORT" "$COUNT" "$1" >"$WORK/hold.out" 2>&1 &
    holder=$!
    for _ in $(seq 600); do
        grep -q '^ready' "$WORK/hold.out" && return 0
        sleep 0.05
    done
    return 1
}
healthz_three_times() {
    local i
    for i in 1 2 3; do
        fetch health "$(URL /healthz)"
        [ "$code" = 200 ] || return 1
    done
}

# 1. Room for all of them.
start_server --model "$MODEL" --index "$WORK/ear.index" --data "$WORK/data" \
    --max-connections 6000 --idle-timeout 60 || exit 1
base_fds=$(fds)
base_rss=$(rss_kib)
check "the connections were opened" hold 30
check "all $COUNT connected ($(head -1 "$WORK/hold.out"))" grep -q "^connected $COUNT failed 0" "$WORK/hold.out"
for _ in $(seq 100); do # let the event loop accept the last ones
    [ "$(fds)" -ge $((base_fds + COUNT)) ] && break
    sleep 0.1
done
held_fds=$(fds)
held_rss=$(rss_kib)
holds_all() { [ "$held_fds" -ge $((base_fds + COUNT - 10)) ] && [ "$held_fds" -le $((base_fds + COUNT + 10)) ]; }
check "the service holds them ($held_fds descriptors, base $base_fds)" holds_all
code=
check "and answers /healthz meanwhile" healthz_three_times
fetch search -X POST --data-binary @"$WORK/data/audio/cow.wav" "$(URL /api/search)"
check "and searches meanwhile (got $code)" [ "$code" = 200 ]
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
for _ in $(seq 100); do [ "$(fds)" -le $((base_fds + 2)) ] && break; sleep 0.1; done
check "its descriptors return once they close ($(fds), base $base_fds)" [ "$(fds)" -le $((base_fds + 2)) ]
echo "$COUNT idle connections: descriptors $base_fds -> $held_fds, RSS ${base_rss} -> ${held_rss} KiB"
stop_server

# 2. A limit of 1000 and a 1 s idle timeout: five rounds of a thousand (held up to 90 s: the
#    holder ends as soon as the service has closed them all, which a loaded machine slows).
start_server --model "$MODEL" --index "$WORK/ear.index" --data "$WORK/data" \
    --max-connections 1000 --idle-timeout 1 || exit 1
base_fds=$(fds)
check "the connections were opened" hold 90
peak=0
for _ in $(seq 30); do # sample while they are held
    n=$(fds)
    [ "$n" -gt "$peak" ] && peak=$n
    sleep 0.1
done
check "the service stays within its limit ($peak descriptors, base $base_fds, limit 1000)" \
    [ "$peak" -le $((base_fds + 1000)) ]
check "and is running" kill -0 "$SERVER_PID"
wait "$holder" # it ends early once the service has closed every connection
closed=$(sed -n 's/^closed_by_server //p' "$WORK/hold.out")
connected=$(sed -n 's/^connected \([0-9]*\).*/\1/p' "$WORK/hold.out")
check "every connection was closed by the service in turn ($closed of $connected)" \
    [ "${closed:-0}" -eq "${connected:--1}" ]
check "/healthz answers after the idle timeout" healthz_three_times
for _ in $(seq 100); do [ "$(fds)" -le $((base_fds + 2)) ] && break; sleep 0.1; done
check "its descriptors are back ($(fds), base $base_fds)" [ "$(fds)" -le $((base_fds + 2)) ]
echo "limit 1000: at most $peak descriptors (base $base_fds); $closed of $connected closed by the service"
stop_server
finish
