#!/usr/bin/env python3
"""Strict HTTP framing and clean output, over raw sockets (issue 15):
framing.py PORT SERVE_LOG. Prints one line per failed check; exits 1 if any."""
import json
import socket
import sys
import time

PORT = int(sys.argv[1])
LOG = sys.argv[2]
failed = 0
passed = 0


def check(what, ok):
    global failed, passed
    if ok:
        passed += 1
    else:
        failed += 1
        print("check failed: " + what, file=sys.stderr)


def exchange(raw, wait=5.0, pause=None):
    """Sends raw, reads until the server closes or wait passes: (bytes, closed, seconds)."""
    s = socket.create_connection(("127.0.0.1", PORT))
    s.settimeout(wait)
    start = time.time()
    s.sendall(raw)
    out = b""
    closed = False
    try:
        while True:
            d = s.recv(65536)
            if not d:
                closed = True
                break
            out += d
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    return out, closed, time.time() - start


def parse(answer):
    """The first answer's status, headers (lower-case names) and body."""
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0].startswith(b"HTTP/1.1 ") else 0
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode("latin1")] = value.strip().decode("latin1")
    length = int(headers.get("content-length", len(body)))
    return status, headers, body[:length]


def refused(name, raw, status, code):
    answer, closed, took = exchange(raw)
    got, headers, body = parse(answer)
    check(f"{name}: answered {status} (got {got}: {answer[:200]!r})", got == status)
    check(f"{name}: one status line, nothing smuggled after it ({answer.count(b'HTTP/1.1 ')})",
          answer.count(b"HTTP/1.1 ") == 1)
    check(f"{name}: the connection is closed ({took:.1f} s)", closed and took < 3)
    check(f"{name}: JSON with the service's headers ({headers})",
          headers.get("content-type") == "application/json" and
          headers.get("x-content-type-options") == "nosniff" and
          "content-security-policy" in headers and "x-request-id" in headers)
    try:
        check(f"{name}: error code {code} ({body!r})", json.loads(body)["error"]["code"] == code)
    except ValueError:
        check(f"{name}: the body is JSON ({body!r})", False)


smuggled = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
refused("two Content-Length",
        b"POST /api/search HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\n"
        b"hello" + smuggled, 400, "bad_request")
refused("Content-Length and Transfer-Encoding",
        b"POST /api/search HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, 400, "bad_request")
refused("Transfer-Encoding: identity",
        b"POST /api/search HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\nhello",
        400, "bad_request")
refused("Transfer-Encoding: gzip, chunked",
        b"POST /api/search HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n", 400, "bad_request")
refused("two Transfer-Encoding",
        b"POST /api/search HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "bad_request")
refused("Content-Length and Transfer-Encoding on a GET",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, 400, "bad_request")
refused("500 query parameters",
        b"GET /healthz?" + b"&".join(b"p%d=%d" % (i, i) for i in range(500)) +
        b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long")



def refused_original(name, raw, status, start):
    """As refused, for POST /query: the original's {"error": message} shape."""
    answer, closed, took = exchange(raw)
    got, headers, body = parse(answer)
    check(f"{name}: answered {status} (got {got}: {answer[:200]!r})", got == status)
    check(f"{name}: one status line ({answer.count(b'HTTP/1.1 ')})",
          answer.count(b"HTTP/1.1 ") == 1)
    check(f"{name}: the connection is closed ({took:.1f} s)", closed and took < 3)
    check(f"{name}: JSON with the service's headers ({headers})",
          headers.get("content-type") == "application/json" and
          headers.get("x-content-type-options") == "nosniff" and "x-request-id" in headers)
    try:
        error = json.loads(body)["error"]
        check(f"{name}: {{\"error\": \"{start}...\"}} ({body!r})",
              isinstance(error, str) and error.startswith(start))
    except (ValueError, TypeError, KeyError):
        check(f"{name}: the body is the original's JSON ({body!r})", False)


refused_original("/query, two Content-Length",
                 b"POST /query HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                 b"Content-Length: 40\r\n\r\nhello" + smuggled, 400,
                 "the request's body is framed ambiguously")
refused_original("/ear/query, Transfer-Encoding: gzip, chunked",
                 b"POST /ear/query HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                 b"5\r\nhello\r\n0\r\n\r\n", 400, "the request's body is framed ambiguously")
refused_original("/query, 500 query parameters",
                 b"POST /query?" + b"&".join(b"p%d=%d" % (i, i) for i in range(500)) +
                 b" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 414,
                 "the query has 500 parameters")

# A plain chunked body is still fine (the control): read as a search, whose
# 5 bytes are no audio.
answer, closed, took = exchange(b"POST /api/search HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                                b"\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
check(f"a chunked body: 400 undecodable_audio ({answer[:120]!r})",
      parse(answer)[0] == 400 and b"undecodable_audio" in answer)

# JSON is valid UTF-8 whatever the client sent.
answer, _, _ = exchange(b"POST /api/search?k=%ff%fe%c3 HTTP/1.1\r\nHost: x\r\nContent-Length: 0"
                        b"\r\nConnection: close\r\n\r\n")
status, headers, body = parse(answer)
try:
    text = body.decode("utf-8")
    check(f"?k=%ff: 400 bad_request in valid UTF-8 JSON ({text})",
          status == 400 and json.loads(text)["error"]["code"] == "bad_request" and "\ufffd" in text)
except UnicodeDecodeError:
    check(f"?k=%ff: the JSON error is valid UTF-8 ({body!r})", False)

# The access log escapes every byte that is not printable.
exchange(b"GET /nothing/%01%1b%7f%ff%22%5c%20end HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
time.sleep(0.3)
with open(LOG, "rb") as f:
    log = f.read()
line = [x for x in log.split(b"\n") if b"/nothing/" in x]
check(f"the access log escapes control and non-ASCII bytes ({line})",
      len(line) == 1 and b"/nothing/\\x01\\x1b\\x7f\\xff\\x22\\x5c\\x20end 404" in line[0])
check("no raw control byte in the log",
      all(b >= 0x20 or b in (0x0a,) for b in log.replace(b"\t", b" ")))

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
