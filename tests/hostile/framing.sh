#!/bin/bash
# Strict HTTP framing and clean output over raw sockets (framing.py), then the
# shared budget for bodies in flight (--max-body-memory): 503 busy with
# Retry-After, early, and nothing allocated for a declared length.
source "$(dirname "$0")/../http/lib.sh"

make_dataset "$WORK/data" || { echo "could not make the dataset" >&2; exit 1; }
make_index "$WORK/data" "$WORK/index.ear" || { cat "$WORK/index.log" >&2; exit 1; }
start_server --model "$MODEL" --index "$WORK/index.ear" --data "$WORK/data" \
    --max-upload 2M --max-body-memory 4M || exit 1

python3 "$SOURCE/tests/hostile/framing.py" "$PORT" "$WORK/serve.log"
check "framing and output over raw sockets (framing.py)" [ $? -eq 0 ]

# Bodies in flight: two uploads of 2 MiB declared, 1.5 MiB sent, hold the whole
# 4 MiB budget; a third is refused at its headers, 503 busy with Retry-After.
python3 - "$PORT" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
def open_upload(declared, send):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /api/search HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % declared)
    s.sendall(b"\0" * send)
    return s
held = [open_upload(2 << 20, 1536 << 10) for _ in range(2)]
time.sleep(1)
third = socket.create_connection(("127.0.0.1", port))
third.settimeout(5)
third.sendall(b"POST /api/search HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (2 << 20))
answer = b""
try:
    while True:
        d = third.recv(4096)
        if not d:
            break
        answer += d
except socket.timeout:
    pass
ok = answer.startswith(b"HTTP/1.1 503") and b"\r\nRetry-After: 1\r\n" in answer and b'"busy"' in answer
print("third upload:", answer.split(b"\r\n")[0], file=sys.stderr)
# The same to POST /query: the original's {"error": ...} shape.
fourth = socket.create_connection(("127.0.0.1", port))
fourth.settimeout(5)
fourth.sendall(b"POST /query HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (2 << 20))
answer = b""
try:
    while True:
        d = fourth.recv(4096)
        if not d:
            break
        answer += d
except socket.timeout:
    pass
ok = ok and answer.startswith(b"HTTP/1.1 503") and b"\r\nRetry-After: 1\r\n" in answer and \
    b'{"error":"the service is receiving other uploads' in answer
print("fourth upload (/query):", answer.split(b"\r\n")[0], answer[-120:], file=sys.stderr)
# The two held ones finish: answered (their zeros are no audio), the budget given back.
for s in held:
    s.sendall(b"\0" * (512 << 10))
    s.settimeout(10)
    first = s.recv(64)
    ok = ok and first.startswith(b"HTTP/1.1 400")
    s.close()
sys.exit(0 if ok else 1)
PY
check "past --max-body-memory: 503 busy with Retry-After at the headers; the others answered" [ $? -eq 0 ]
fetch after "$(URL /api/search)" --data-binary "@$SOURCE/tests/fixtures/audio/mel_cli.wav"
check "after the budget is given back, a search: 200 (got $code)" [ "$code" = 200 ]

# A declared length is neither allocated nor counted: two connections that
# declare 2 MiB each (the whole budget) and send a byte leave room for a search.
exec {c1}<>/dev/tcp/127.0.0.1/"$PORT" {c2}<>/dev/tcp/127.0.0.1/"$PORT"
for fd in $c1 $c2; do printf 'POST /api/search HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\n\r\nx' >&"$fd"; done
sleep 0.3
fetch declared "$(URL /api/search)" --data-binary "@$SOURCE/tests/fixtures/audio/mel_cli.wav"
check "declared but unsent bodies take none of the budget: a search 200 (got $code)" [ "$code" = 200 ]
exec {c1}>&- {c2}>&-
fetch health "$(URL /healthz)"
check "/healthz: 200 (got $code)" [ "$code" = 200 ]
stop_server
finish
