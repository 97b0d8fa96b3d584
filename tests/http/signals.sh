#!/bin/bash
# Signals: SIGTERM while a search is in flight (it is answered 200, new
# connections are refused, the process exits 0), SIGINT likewise, and SIGHUP
# reopening a rebuilt index (new results), keeping the old one when the new
# file is refused, and doing so while searches run.
source "$(dirname "$0")/lib.sh"

make_dataset "$WORK/data" || { echo "could not make the dataset" >&2; exit 1; }
make_index "$WORK/data" "$WORK/index.ear" || { cat "$WORK/index.log" >&2; exit 1; }
ffmpeg -nostdin -v error -f lavfi -i "sine=frequency=300:duration=3" -ar 16000 "$WORK/query.wav" ||
    { echo "could not make the test sound" >&2; exit 1; }

ids() { grep -o '"id":"[a-z]*"' "$WORK/$1.b" | sed 's/"id":"//; s/"//' | sort | tr '\n' ' '; }

# SIGTERM while a search's body is still arriving (about 3 s at 32 KB/s).
start_server --model "$MODEL" --index "$WORK/index.ear" --data "$WORK/data" || exit 1
curl -s -o "$WORK/slow.b" -w '%{http_code}' --limit-rate 32K --data-binary "@$WORK/query.wav" \
    "$(URL /api/search)" >"$WORK/slow.code" &
client=$!
sleep 1
kill -TERM "$SERVER_PID"
sleep 0.3
curl -s -o /dev/null --max-time 5 "$(URL /healthz)"
refused=$?
check "after SIGTERM, new connections are refused (curl status $refused)" [ "$refused" -eq 7 ]
check "after SIGTERM, the server is still finishing the search" kill -0 "$SERVER_PID"
wait "$client"
check "the search in flight at SIGTERM is answered 200 (got $(cat "$WORK/slow.code"))" \
    [ "$(cat "$WORK/slow.code")" = 200 ]
check "the search in flight: a full answer" grep -q '"results":\[{"rank":1' "$WORK/slow.b"
wait "$SERVER_PID"
server_status=$?
SERVER_PID=
check "exit 0 after SIGTERM (got $server_status)" [ "$server_status" -eq 0 ]
check "the log says why it stopped" grep -q "SIGTERM: finishing the requests in flight" "$WORK/serve.log"
check "the search was logged before the end" \
    eval 'grep -n "POST /api/search 200" "$WORK/serve.log" | cut -d: -f1 | xargs -I{} test {} -lt "$(grep -n "stopped" "$WORK/serve.log" | cut -d: -f1)"'
check "no sanitizer report" eval '! grep -q "Sanitizer\|runtime error:" "$WORK/serve.log"'

# SIGINT: the same, with nothing in flight.
start_server --model "$MODEL" --index "$WORK/index.ear" --data "$WORK/data" || exit 1
kill -INT "$SERVER_PID"
wait "$SERVER_PID"
server_status=$?
SERVER_PID=
check "exit 0 after SIGINT (got $server_status)" [ "$server_status" -eq 0 ]

# SIGHUP: a rebuilt index is picked up.
start_server --model "$MODEL" --index "$WORK/index.ear" --data "$WORK/data" || exit 1
fetch before --data-binary "@$WORK/query.wav" "$(URL "/api/search?k=50&kind=image")"
check "before SIGHUP: the 3 frames (got $(ids before))" [ "$(ids before)" = "cat cow dog " ]

reloads=0
# hup PATTERN: SIGHUP, then wait for the log line that says how it went.
hup() {
    reloads=$((reloads + 1))
    kill -HUP "$SERVER_PID"
    for _ in $(seq 200); do
        [ "$(grep -c "SIGHUP:" "$WORK/serve.log")" -ge "$reloads" ] && break
        sleep 0.05
    done
    grep "SIGHUP:" "$WORK/serve.log" | tail -1 | grep -q "$1"
}

cp "$SOURCE/tests/fixtures/image/gray_33x47.png" "$WORK/data/frames/bird.png"
ffmpeg -nostdin -v error -f lavfi -i "sine=frequency=2000:duration=1" -ar 16000 "$WORK/data/audio/bird.wav"
make_index "$WORK/data" "$WORK/index.ear"
check "SIGHUP after a rebuild: reopened" hup "reopened the index"
fetch after --data-binary "@$WORK/query.wav" "$(URL "/api/search?k=50&kind=image")"
check "after SIGHUP: 4 frames, bird among them (got $(ids after))" [ "$(ids after)" = "bird cat cow dog " ]
fetch metrics "$(URL /metrics)"
check "/metrics: 7 items (4 frames, 3 sounds)" body_has metrics '^ear_index_items 7$'

# Refused files leave the index in service as it was.
cp "$WORK/index.ear" "$WORK/good.ear"
# Replaced by a rename, as `ear index` does: the file in service is mapped and
# must never be written over in place.
head -c 4096 /dev/urandom >"$WORK/garbage.ear"
mv "$WORK/garbage.ear" "$WORK/index.ear"
check "SIGHUP with a garbage file: the previous index kept" hup "still serving the previous index"
rm -f "$WORK/index.ear" # `ear index` will not write over a file that is not an index
make_index "$WORK/data" "$WORK/index.ear" "$OTHER_MODEL" || cat "$WORK/index.log" >&2
check "SIGHUP with another model's index: refused" hup "still serving the previous index"
check "the refusal says why: $(grep "SIGHUP:" "$WORK/serve.log" | tail -1)" \
    eval 'grep "SIGHUP:" "$WORK/serve.log" | tail -1 | grep -qi "fingerprint\|model"'
rm -f "$WORK/index.ear"
check "SIGHUP with no file: refused" hup "still serving the previous index"
fetch kept --data-binary "@$WORK/query.wav" "$(URL "/api/search?k=50&kind=image")"
check "after the refusals: still the 4 frames (got $code, $(ids kept))" \
    eval '[ "$code" = 200 ] && [ "$(ids kept)" = "bird cat cow dog " ]'

# Reloads while searches run: every search answers 200.
cp "$WORK/good.ear" "$WORK/index.ear"
for _ in $(seq 100); do printf 'url = "%s"\noutput = "/dev/null"\n' "$(URL "/api/search?k=2")"; done >"$WORK/urls"
curl -s -K "$WORK/urls" --data-binary "@$WORK/data/audio/cow.wav" -w '%{http_code}\n' \
    >"$WORK/codes" &
client=$!
for _ in $(seq 10); do
    hup "reopened the index" || break
done
wait "$client"
check "100 searches during 10 reloads: all 200 ($(sort "$WORK/codes" | uniq -c | head -5 | tr '\n' ' '))" \
    [ "$(grep -c '^200$' "$WORK/codes")" -eq 100 ]
stop_server
finish
