#!/bin/bash
# Connection limits: an idle connection is closed after --idle-timeout, a
# client that stalls in its upload holds no worker (its search is queued only
# once its body is whole), and --max-connections caps open connections.
source "$(dirname "$0")/lib.sh"

make_dataset "$WORK/data" || { echo "could not make the dataset" >&2; exit 1; }
make_index "$WORK/data" "$WORK/index.ear" || { cat "$WORK/index.log" >&2; exit 1; }
start_server --model "$MODEL" --index "$WORK/index.ear" --data "$WORK/data" --workers 1 \
    --idle-timeout 1 --max-connections 3 || exit 1

# A client that sends half of its body, then nothing.
exec {stalled}<>"/dev/tcp/127.0.0.1/$PORT"
size=$(stat -c %s "$WORK/data/audio/cow.wav")
printf 'POST /api/search HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n\r\n' "$size" >&$stalled
head -c $((size / 2)) "$WORK/data/audio/cow.wav" >&$stalled
start=$(date +%s%N)
fetch other --data-binary "@$WORK/data/audio/dog.wav" "$(URL /api/search)"
took=$((($(date +%s%N) - start) / 1000000))
check "the only worker is free while another upload stalls: 200 (got $code in $took ms)" \
    eval '[ "$code" = 200 ] && [ "$took" -lt $((900 * ${EAR_TEST_TIME_SCALE:-1})) ]'

# The stalled connection is closed once idle for a second.
start=$(date +%s%N)
timeout 10 cat <&$stalled >"$WORK/stalled.out"
took=$((($(date +%s%N) - start) / 1000000))
exec {stalled}>&-
check "the stalled upload is closed after --idle-timeout 1 (in $took ms)" [ "$took" -lt 4000 ]
check "the stalled upload got no answer" [ ! -s "$WORK/stalled.out" ]
check "the stalled upload is logged without a status" grep -q "POST /api/search - " "$WORK/serve.log"

# An idle kept-alive connection is closed too.
exec {idle}<>"/dev/tcp/127.0.0.1/$PORT"
printf 'GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n' >&$idle
start=$(date +%s%N)
timeout 10 cat <&$idle >"$WORK/idle.out"
took=$((($(date +%s%N) - start) / 1000000))
exec {idle}>&-
check "a kept-alive connection: answered, then closed when idle (in $took ms)" \
    eval 'grep -q "^HTTP/1.1 200 " "$WORK/idle.out" && [ "$took" -lt 4000 ]'

# --max-connections 3: a fourth connection is not served while three are open
# (it waits in the kernel's backlog until one closes, here by the idle timeout).
fds=()
for _ in 1 2 3; do
    exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"
    fds+=("$fd")
done
sleep 0.2
curl -s -o /dev/null --max-time 0.6 "$(URL /healthz)"
turned_away=$?
check "a fourth connection is not served (curl status $turned_away)" [ "$turned_away" -ne 0 ]
for fd in "${fds[@]}"; do exec {fd}>&-; done
sleep 0.3
fetch health "$(URL /healthz)"
check "once they are closed, connections are accepted again (got $code)" [ "$code" = 200 ]

stop_server
finish
