#!/usr/bin/env bash
# ear-site --dev against a stand-in for Ear (fake_ear, which records what reaches it): /ear/…
# is forwarded with the prefix stripped, as nginx does (method, path and query as sent,
# forwarded headers, bodies byte for byte, chunked uploads, up to 50 MiB), the answer is
# relayed (status, headers, body); 502 when Ear is down, the rest of the site unaffected;
# content edits show without a restart; --ear-redirect redirects instead.
set -u
test_name=site_dev_proxy
source "$(dirname "$0")/lib.sh"

content=$work/content
cp -r "$EAR_SOURCE_DIR/site/content" "$content"
record=$work/record
mkdir -p "$record"

"$EAR_FAKE_EAR_BIN" "$work/fake.port" "$record" &
fake_pid=$!
started "$fake_pid"
for _ in $(seq 100); do
    [ -s "$work/fake.port" ] && break
    sleep 0.05
done
fake_port=$(cat "$work/fake.port")
start_site "$work/site.log" --dev --content "$content" --ear-upstream "127.0.0.1:$fake_port" ||
    exit 1
base=http://127.0.0.1:$site_port

# recorded NAME: what fake_ear last received (head with CRs removed, or body).
recorded_head() { tr -d '\r' <"$record/head"; }
forget() { rm -f "$record/head" "$record/body"; }

forget
check "GET /ear/ 200" [ "$(status "$base/ear/")" = 200 ]
check "Ear saw GET / (prefix stripped)" [ "$(head -n 1 "$work/body")" = "GET / body 0 bytes" ]
check "forwarded as HTTP/1.0" [ "$(recorded_head | head -n 1)" = "GET / HTTP/1.0" ]
check "Host kept" grep -qx "Host: 127.0.0.1:$site_port" <(recorded_head)
check "X-Real-IP set" grep -qx "X-Real-IP: 127.0.0.1" <(recorded_head)
check "X-Forwarded-For set" grep -qx "X-Forwarded-For: 127.0.0.1" <(recorded_head)
check "X-Forwarded-Proto set" grep -qx "X-Forwarded-Proto: http" <(recorded_head)
check "Ear's headers relayed" [ "$(header X-Fake-Ear)" = yes ]
check "Ear's cookies relayed" [ "$(header Set-Cookie)" = fake=1 ]

forget
status "$base/ear/data/frames/a%20b.jpg?x=1&y=%2F" -H "X-Forwarded-For: 10.1.2.3" \
    -H "X-Custom: kept" >/dev/null
check "path and query passed as sent" \
    [ "$(recorded_head | head -n 1)" = "GET /data/frames/a%20b.jpg?x=1&y=%2F HTTP/1.0" ]
check "X-Forwarded-For appended to" grep -qx "X-Forwarded-For: 10.1.2.3, 127.0.0.1" <(recorded_head)
check "other headers passed" grep -qx "X-Custom: kept" <(recorded_head)

head -c 1000000 /dev/urandom >"$work/upload"
forget
code=$(status "$base/ear/api/search?k=3" -X POST --data-binary @"$work/upload" \
    -H "Content-Type: application/octet-stream")
check "POST /ear/api/search relayed ($code)" [ "$code" = 200 ]
check "Ear saw POST /api/search?k=3" \
    [ "$(recorded_head | head -n 1)" = "POST /api/search?k=3 HTTP/1.0" ]
check "the body arrived byte for byte" cmp -s "$work/upload" "$record/body"
check "Content-Length forwarded" grep -qx "Content-Length: 1000000" <(recorded_head)
check "Expect not forwarded" bash -c "! tr -d '\r' <'$record/head' | grep -qi '^expect:'"

forget
curl -s -o /dev/null --max-time 30 -H "Transfer-Encoding: chunked" --data-binary @"$work/upload" \
    "$base/ear/api/search"
check "a chunked upload arrives whole" cmp -s "$work/upload" "$record/body"
check "... with its length" grep -qx "Content-Length: 1000000" <(recorded_head)

for path in "/ear/../etc/passwd" "/ear/data/%2e%2e/%2e%2e/x" "/ear/data/..%2f..%2fx"; do
    forget
    code=$(status "$base$path" --path-as-is)
    check "$path refused: 400 ($code)" [ "$code" = 400 ]
    check "... before it reached Ear" [ ! -e "$record/head" ]
done
forget
code=$(timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$site_port
    printf 'POST /ear/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nabcdefg' >&3
    head -c 12 <&3" | cut -c10-12)
check "two different Content-Lengths: 400 ($code)" [ "$code" = 400 ]
check "... not forwarded" [ ! -e "$record/head" ]

check "status relayed: 418" [ "$(status "$base/ear/status/418")" = 418 ]
check "status relayed: 503" [ "$(status "$base/ear/status/503")" = 503 ]
check "HEAD relayed" [ "$(status "$base/ear/" -I)" = 200 ]
check "an answer without length, ended by close" [ "$(status "$base/ear/stream")" = 200 ]
check "... arrives whole" [ "$(wc -c <"$work/body")" -ge 300000 ]

# nginx's client_max_body_size 50M: 49 MiB passes, 51 MiB is refused before Ear sees it.
head -c $((49 * 1024 * 1024)) /dev/urandom >"$work/upload49"
forget
code=$(status "$base/ear/api/search" -X POST --data-binary @"$work/upload49")
check "49 MiB upload reaches Ear ($code)" [ "$code" = 200 ]
check "... whole" cmp -s "$work/upload49" "$record/body"
if ! sanitized "$EAR_SITE_BIN"; then
    rss=$(rss_kb "$site_pid")
    echo "ear-site resident memory after forwarding 49 MiB: $rss KiB"
    check "the upload was streamed, not held (RSS $rss KiB < 16 MiB)" [ "$rss" -lt 16384 ]
fi
rm -f "$work/upload49"
head -c $((51 * 1024 * 1024)) /dev/zero >"$work/upload51"
forget
code=$(status "$base/ear/api/search" -X POST --data-binary @"$work/upload51")
check "51 MiB upload refused: 413 ($code)" [ "$code" = 413 ]
check "... before it reached Ear" [ ! -e "$record/head" ]
code=$(status "$base/ear/api/search" -X POST -H "Transfer-Encoding: chunked" \
    --data-binary @"$work/upload51")
check "51 MiB chunked upload refused: 413 ($code)" [ "$code" = 413 ]
rm -f "$work/upload51"

# Content edits show at once in dev mode.
printf -- '---\ntitle: Written just now\ndate: 2030-01-01\n---\nFresh.\n' \
    >"$content/posts/fresh-post.md"
check "a new post shows without a restart" [ "$(status "$base/blog/fresh-post")" = 200 ]
check "... and on the blog index" grep -q 'href="/blog/fresh-post"' <(curl -s "$base/blog/")
printf -- '---\ntitle: Broken\ndate: never\n---\n' >"$content/posts/broken.md"
code=$(status "$base/blog/")
check "a broken post in dev mode: 500 naming it ($code)" [ "$code" = 500 ]
check "... naming it" grep -q "broken.md" "$work/body"
rm "$content/posts/broken.md"

# Ear down: /ear/ is 502, the site carries on.
stop_process "$fake_pid"
code=$(status "$base/ear/")
check "Ear down: GET /ear/ gives 502 ($code)" [ "$code" = 502 ]
check "... a plain page saying so" grep -q "not answering" "$work/body"
code=$(status "$base/ear/api/search" -X POST --data-binary @"$work/upload")
check "Ear down: POST /ear/api/search gives 502 ($code)" [ "$code" = 502 ]
check "Ear down: the home page still 200" [ "$(status "$base/")" = 200 ]
check "Ear down: a post still 200" [ "$(status "$base/blog/fresh-post")" = 200 ]
check "Ear down: static files still 200" [ "$(status "$base/static/style.css")" = 200 ]
stopped_cleanly "ear-site --dev" "$site_pid" "$work/site.log"

# Redirect mode.
start_site "$work/redirect.log" --content "$content" --ear-redirect "http://127.0.0.1:5999/" ||
    exit 1
code=$(status "http://127.0.0.1:$site_port/ear/data/x.jpg?a=1")
check "--ear-redirect: 307 ($code)" [ "$code" = 307 ]
check "... to the same path there" [ "$(header Location)" = "http://127.0.0.1:5999/data/x.jpg?a=1" ]
stopped_cleanly "ear-site --ear-redirect" "$site_pid" "$work/redirect.log"

finish
