#!/usr/bin/env bash
# ear-site over HTTP in production mode, on the sample content in site/content: every page,
# the feed, static files, and bad requests (unknown posts, traversal, huge headers, wrong
# methods) answered 4xx without taking the server down.
set -u
test_name=site_http
source "$(dirname "$0")/lib.sh"
# A copy of the sample content, plus traps: a hidden file and a link out of static/.
content=$work/content
cp -r "$EAR_SOURCE_DIR/site/content" "$content"
echo secret >"$content/static/.hidden"
ln -s /etc "$content/static/etc"

start_site "$work/site.log" --content "$content" || exit 1
base=http://127.0.0.1:$site_port
site_title=$(sed -n 's/^title: *//p' "$content/index.md" | head -n 1)

check "home 200" [ "$(status "$base/")" = 200 ]
check "home is HTML" [ "$(header Content-Type)" = "text/html; charset=utf-8" ]
check "home shows the site's title" grep -qF "$site_title" "$work/body"
check "home links to Ear" grep -q 'href="/ear/"' "$work/body"
check "home links the stylesheet" grep -q 'href="/static/style.css"' "$work/body"
check "no placeholder left" bash -c "! grep -q '{{' '$work/body'"

check "blog index 200" [ "$(status "$base/blog/")" = 200 ]
cp "$work/body" "$work/blog.html"
posts=0
for file in "$content"/posts/*.md; do
    slug=$(basename "$file" .md)
    if grep -q '^draft: *true' "$file"; then
        continue
    fi
    posts=$((posts + 1))
    title=$(sed -n 's/^title: *//p' "$file" | head -n 1)
    check "blog index lists $slug" grep -q "href=\"/blog/$slug\"" "$work/blog.html"
    check "post $slug 200" [ "$(status "$base/blog/$slug")" = 200 ]
    check "post $slug shows its title" grep -qF "$title" "$work/body"
done
check "the sample content has 2-3 posts" [ "$posts" -ge 2 ]
check "/blog redirects to /blog/" [ "$(status "$base/blog")" = 301 ]
check "... with Location /blog/" [ "$(header Location)" = /blog/ ]

check "feed 200" [ "$(status "$base/feed.xml")" = 200 ]
check "feed is Atom" [ "$(header Content-Type)" = "application/atom+xml; charset=utf-8" ]
check "feed has one entry per post" [ "$(grep -c '<entry>' "$work/body")" = "$posts" ]
if [ -x /usr/bin/python3 ]; then
    check "feed is well-formed XML" /usr/bin/python3 -c \
        'import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])' "$work/body"
fi

check "stylesheet 200" [ "$(status "$base/static/style.css")" = 200 ]
check "stylesheet is CSS" [ "$(header Content-Type)" = "text/css; charset=utf-8" ]
check "stylesheet bytes as on disk" cmp -s "$work/body" "$content/static/style.css"
etag=$(header ETag)
check "stylesheet has an ETag" [ -n "$etag" ]
check "If-None-Match gives 304" [ "$(status "$base/static/style.css" -H "If-None-Match: $etag")" = 304 ]
check "HEAD / 200" [ "$(status "$base/" -I)" = 200 ]
check "healthz 200" [ "$(status "$base/healthz")" = 200 ]

# Bad requests: 4xx, and the server carries on.
code=$(status "$base/blog/no-such-post")
check "unknown post 404 ($code)" [ "$code" = 404 ]
check "unknown page 404" [ "$(status "$base/nothing/here")" = 404 ]
check "post slug with a dot 404" [ "$(status "$base/blog/hello.md")" = 404 ]
for path in "/static/../../../../etc/passwd" "/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd" \
            "/static/..%2f..%2f..%2fetc/passwd" "/blog/../../etc/passwd" "/static/.hidden" \
            "/static/" "/static//etc/passwd" "/static/style.css%00.txt" "/static/etc/passwd"; do
    code=$(status "$base$path" --path-as-is)
    check "$path gives 4xx ($code)" [ "${code:0:1}" = 4 ]
    check "$path leaks nothing" bash -c "! grep -qE 'root:|^secret$' '$work/body'"
done
big=$(head -c 100000 /dev/zero | tr '\0' a)
code=$(status "$base/" -H "X-Big: $big")
check "a 100 KB header gives 4xx ($code)" [ "${code:0:1}" = 4 ]
long_url="$base/blog/$(head -c 70000 /dev/zero | tr '\0' a)"
code=$(status "$long_url")
check "a 70 KB URL gives 4xx ($code)" [ "${code:0:1}" = 4 ]
code=$(status "$base/" -X POST --data-binary "x=1")
check "POST / gives 405 ($code)" [ "$code" = 405 ]
check "... with Allow" [ "$(header Allow)" = "GET, HEAD" ]
check "DELETE /blog/ gives 405" [ "$(status "$base/blog/" -X DELETE)" = 405 ]
raw_request() {
    timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$site_port; printf '$1' >&3; head -c 12 <&3" |
        cut -c10-12
}
code=$(raw_request 'GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n')
check "a malformed header line gives 400 ($code)" [ "$code" = 400 ]
raw_request 'GARBAGE\r\n\r\n' >/dev/null
check "a garbage request line leaves the site up" [ "$(status "$base/")" = 200 ]
code=$(status "$base/ear/")
check "/ear/ is nginx's in production: 404 ($code)" [ "$code" = 404 ]
check "/ear redirects to /ear/" [ "$(status "$base/ear")" = 301 ]

# Many at once (one thread each).
curl_pids=()
for _ in $(seq 40); do
    curl -s -o /dev/null -w '%{http_code}\n' --max-time 30 "$base/blog/" >>"$work/parallel" &
    curl_pids+=($!)
done
wait "${curl_pids[@]}"
check "40 parallel requests all 200" [ "$(grep -c '^200$' "$work/parallel")" = 40 ]
check "still serving after all that" [ "$(status "$base/")" = 200 ]
check "still running" kill -0 "$site_pid"

if ! sanitized "$EAR_SITE_BIN"; then
    rss=$(rss_kb "$site_pid")
    echo "ear-site resident memory after the test's requests: $rss KiB"
    check "ear-site stays small (RSS $rss KiB < 16 MiB)" [ "$rss" -lt 16384 ]
fi

stopped_cleanly ear-site "$site_pid" "$work/site.log"
check "... and it says so" grep -q "SIGTERM, stopping" "$work/site.log"
check "the access log has lines" grep -q '"\?GET /blog/' "$work/site.log"

# Start-up failures: clear message, status 1 or 2.
mkdir -p "$work/bad/posts"
printf -- '---\ntitle: Home\n---\n' >"$work/bad/index.md"
printf -- '---\ntitle: Broken\ndate: someday\n---\n' >"$work/bad/posts/broken.md"
"$EAR_SITE_BIN" --port 0 --content "$work/bad" 2>"$work/bad.log"
code=$?
check "a broken post stops start-up with status 1 ($code)" [ "$code" = 1 ]
check "... naming the file" grep -q "posts/broken.md" "$work/bad.log"
"$EAR_SITE_BIN" --port 0 --content "$work/missing" 2>"$work/missing.log"
check "a missing content folder: status 1" [ $? = 1 ]
check "... naming index.md" grep -q "missing/index.md" "$work/missing.log"
"$EAR_SITE_BIN" --port nope 2>/dev/null
check "a bad --port: status 2" [ $? = 2 ]
"$EAR_SITE_BIN" --dev --ear-upstream nohostport 2>/dev/null
check "a bad --ear-upstream: status 2" [ $? = 2 ]
"$EAR_SITE_BIN" --bogus 2>/dev/null
check "an unknown option: status 2" [ $? = 2 ]
check "--help: status 0" "$EAR_SITE_BIN" --help >/dev/null

finish
