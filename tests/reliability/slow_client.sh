#!/bin/bash
# A slow client: a search whose body is trickled one byte a second. With
# --body-timeout 2 the service closes it (a request's body gets at most that
# long to arrive, whatever the gaps between two bytes: the idle timeout alone
# never fires), and
# meanwhile a normal search is answered at once: no worker waits for a body.
. "$(dirname "$0")/../http/lib.sh"
make_dataset "$WORK/data" && make_index "$WORK/data" "$WORK/ear.index" ||
    { echo "could not make the dataset: $(cat "$WORK/index.log")" >&2; exit 1; }
start_server --model "$MODEL" --index "$WORK/ear.index" --data "$WORK/data" --workers 1 \
    --idle-timeout 2 --body-timeout 2 || exit 1

# The trickler: headers announcing 100 bytes, then one byte a second, for at
# most 20 s; it writes the second at which its connection was closed.
(
    trap '' PIPE
    exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 1
    printf 'POST /api/search HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\nContent-Length: 100\r\n\r\n' >&3
    start=$(date +%s.%N)
    for i in $(seq 20); do
        printf 'R' >&3 2>/dev/null || break
        # The answer, or the end of the connection, ends the wait early.
        if IFS= read -r -t 1 line <&3; then
            echo "answer $line" >>"$WORK/trickle.answer"
        elif [ $? -le 128 ]; then
            break # EOF: closed by the server
        fi
    done
    echo "$(date +%s.%N) - $start" | bc >"$WORK/trickle.closed"
) &
trickler=$!
sleep 0.5
started=$(date +%s.%N)
fetch search -X POST --data-binary @"$WORK/data/audio/cow.wav" -H 'Content-Type: audio/wav' \
    "$(URL /api/search)"
took=$(echo "$(date +%s.%N) - $started" | bc)
check "a normal search meanwhile answers 200 (got $code)" [ "$code" = 200 ]
check "and at once ($took s, under 1.5 s)" [ "$(echo "$took < 1.5" | bc)" = 1 ]
wait "$trickler"
closed=$(cat "$WORK/trickle.closed" 2>/dev/null)
closed_in_time() { [ -n "$closed" ] && [ "$(echo "$closed >= 1.5 && $closed < 6" | bc)" = 1 ]; }
check "the trickling client was closed after the idle timeout (after ${closed:-?} s)" closed_in_time
check "with a 408 request_timeout ($(head -1 "$WORK/trickle.answer" 2>/dev/null))" \
    grep -q "answer HTTP/1.1 408" "$WORK/trickle.answer"
check "the log says so" grep -q "POST /api/search 408" "$WORK/serve.log"
echo "slow client: closed after ${closed:-?} s; $(head -1 "$WORK/trickle.answer" 2>/dev/null)"; grep "api/search" "$WORK/serve.log"
fetch health "$(URL /healthz)"
check "/healthz answers afterwards (got $code)" [ "$code" = 200 ]
stop_server
finish
