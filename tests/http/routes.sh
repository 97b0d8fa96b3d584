#!/bin/bash
# Every route at / and at /ear/: the page and its files, /healthz, /metrics,
# 404 and 405 (with Allow), the /ear redirect, the headers every answer
# carries, request ids and the access log.
source "$(dirname "$0")/lib.sh"

make_dataset "$WORK/data" || { echo "could not make the dataset" >&2; exit 1; }
make_index "$WORK/data" "$WORK/index.ear" || { cat "$WORK/index.log" >&2; exit 1; }
start_server --model "$MODEL" --index "$WORK/index.ear" --data "$WORK/data" || exit 1

CSP="default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; script-src 'self'; style-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
# common NAME: the headers of every answer.
common() {
    [ "$(header "$1" Content-Security-Policy)" = "$CSP" ] &&
        [ "$(header "$1" X-Content-Type-Options)" = "nosniff" ] &&
        [ "$(header "$1" Referrer-Policy)" = "no-referrer" ] &&
        header "$1" X-Request-Id | grep -qE '^[0-9a-f]{16}$'
}

for prefix in "" /ear; do
    # The page, at /, /index.html and /ear/ (not /ear: that redirects).
    for page in / /index.html; do
        fetch page "$(URL "$prefix$page")"
        check "GET $prefix$page: 200 (got $code)" [ "$code" = 200 ]
        check "GET $prefix$page: text/html" [ "$(header page Content-Type)" = "text/html; charset=utf-8" ]
        check "GET $prefix$page: the page of web/index.html" cmp -s "$WORK/page.b" "$SOURCE/web/index.html"
        check "GET $prefix$page: the common headers" common page
    done
    # Every other file of web/, with its type.
    for file in "$SOURCE"/web/*; do
        name=$(basename "$file")
        fetch web "$(URL "$prefix/$name")"
        check "GET $prefix/$name: 200 (got $code)" [ "$code" = 200 ]
        check "GET $prefix/$name: the file's bytes" cmp -s "$WORK/web.b" "$file"
        case $name in
        *.js) type="text/javascript; charset=utf-8" ;;
        *.css) type="text/css; charset=utf-8" ;;
        *.html) type="text/html; charset=utf-8" ;;
        *) type=$(header web Content-Type) ;;
        esac
        check "GET $prefix/$name: Content-Type $type (got $(header web Content-Type))" \
            [ "$(header web Content-Type)" = "$type" ]
        etag=$(header web ETag)
        check "GET $prefix/$name: an ETag" [ -n "$etag" ]
        fetch web304 -H "If-None-Match: $etag" "$(URL "$prefix/$name")"
        check "GET $prefix/$name with its ETag: 304 (got $code)" [ "$code" = 304 ]
        check "304: no body" [ ! -s "$WORK/web304.b" ]
    done

    fetch health "$(URL "$prefix/healthz")"
    check "GET $prefix/healthz: 200 (got $code)" [ "$code" = 200 ]
    check "GET $prefix/healthz: {\"status\":\"ok\"} (got $(cat "$WORK/health.b"))" \
        [ "$(cat "$WORK/health.b")" = '{"status":"ok"}' ]
    check "GET $prefix/healthz: application/json" [ "$(header health Content-Type)" = application/json ]
    check "GET $prefix/healthz: the common headers" common health

    fetch config "$(URL "$prefix/api/config")"
    check "GET $prefix/api/config: 200 {\"home_url\":\"/\"} (got $code $(cat "$WORK/config.b"))" \
        eval '[ "$code" = 200 ] && [ "$(cat "$WORK/config.b")" = "{\"home_url\":\"/\"}" ]'
    check "GET $prefix/api/config: application/json" [ "$(header config Content-Type)" = application/json ]

    fetch head -I "$(URL "$prefix/healthz")"
    body_bytes=$(curl -s -I -o /dev/null -w '%{size_download}' "$(URL "$prefix/healthz")")
    check "HEAD $prefix/healthz: 200 and no body (got $code, $body_bytes bytes)" \
        eval '[ "$code" = 200 ] && [ "$body_bytes" = 0 ]'

    fetch missing "$(URL "$prefix/no/such/route")"
    check "GET $prefix/no/such/route: 404 not_found" error_is missing 404 not_found
    check "404: the common headers" common missing

    fetch wrong -X DELETE "$(URL "$prefix/healthz")"
    check "DELETE $prefix/healthz: 405 method_not_allowed" error_is wrong 405 method_not_allowed
    check "405: Allow: GET, HEAD (got $(header wrong Allow))" [ "$(header wrong Allow)" = "GET, HEAD" ]
    fetch wrong -X POST --data-binary x "$(URL "$prefix/")"
    check "POST $prefix/: 405" error_is wrong 405 method_not_allowed
    fetch wrong "$(URL "$prefix/api/search")"
    check "GET $prefix/api/search: 405" error_is wrong 405 method_not_allowed
    check "405 on the search: Allow: POST (got $(header wrong Allow))" [ "$(header wrong Allow)" = POST ]
    fetch wrong -X PUT --data-binary x "$(URL "$prefix/data/frames/cow.jpg")"
    check "PUT $prefix/data/frames/cow.jpg: 405" error_is wrong 405 method_not_allowed
done

# /ear without its slash: relative URLs need it.
fetch redirect "$(URL /ear)"
check "GET /ear: 301 (got $code)" [ "$code" = 301 ]
check "GET /ear: Location ear/ (got $(header redirect Location))" [ "$(header redirect Location)" = "ear/" ]
fetch follow -L "$(URL /ear)"
check "GET /ear, followed: the page" cmp -s "$WORK/follow.b" "$SOURCE/web/index.html"
# The prefix is taken once only.
fetch twice "$(URL /ear/ear/healthz)"
check "GET /ear/ear/healthz: 404" error_is twice 404 not_found

# Request ids: a sane one is echoed, anything else replaced.
fetch id -H "X-Request-Id: trace-42.a_b:c" "$(URL /healthz)"
check "a sane X-Request-Id is echoed (got $(header id X-Request-Id))" \
    [ "$(header id X-Request-Id)" = "trace-42.a_b:c" ]
fetch id -H "X-Request-Id: bad id <script>" "$(URL /healthz)"
check "an odd X-Request-Id is replaced (got $(header id X-Request-Id))" \
    eval 'header id X-Request-Id | grep -qE "^[0-9a-f]{16}$"'
fetch id "$(URL /healthz)"
first=$(header id X-Request-Id)
fetch id "$(URL /healthz)"
check "generated ids differ" [ "$first" != "$(header id X-Request-Id)" ]

# A kept-alive connection answers several requests (curl reuses it).
curl -s -v -o /dev/null -o /dev/null "$(URL /healthz)" "$(URL /ear/healthz)" 2>"$WORK/keepalive.log"
check "keep-alive: the second request reuses the connection" grep -q "Re-using existing connection" "$WORK/keepalive.log"

# The metrics: counters by route and status, the histogram, the gauges.
fetch metrics "$(URL /metrics)"
check "GET /metrics: 200" [ "$code" = 200 ]
check "/metrics: Prometheus text type" eval '[[ "$(header metrics Content-Type)" == text/plain\;\ version=0.0.4* ]]'
check "/metrics: healthz 200 counted (GET and 2 HEAD at 2 prefixes, 4 id checks, 2 kept alive: 12)" \
    body_has metrics '^ear_http_requests_total{route="healthz",status="200"} 12$'
check "/metrics: 404s counted" body_has metrics '^ear_http_requests_total{route="unknown",status="404"} 3$'
check "/metrics: 405 on the search counted" body_has metrics '^ear_http_requests_total{route="search",status="405"} 2$'
check "/metrics: the redirect counted" body_has metrics '^ear_http_requests_total{route="redirect",status="301"} 2$'
check "/metrics: a latency histogram" body_has metrics '^ear_http_request_duration_seconds_bucket{route="page",le="+Inf"} '
check "/metrics: histogram count (the 12 and the two 405s)" body_has metrics '^ear_http_request_duration_seconds_count{route="healthz"} 14$'
check "/metrics: queue depth 0" body_has metrics '^ear_search_queue_depth 0$'
check "/metrics: 5 items" body_has metrics '^ear_index_items 5$'
rss=$(sed -n 's/^process_resident_memory_bytes //p' "$WORK/metrics.b")
check "/metrics: resident memory above 1 MB (got $rss)" [ "${rss:-0}" -gt 1000000 ]
check "/metrics: every sample line is 'name{labels} value'" \
    eval '! grep -v "^#" "$WORK/metrics.b" | grep -qvE "^[a-z_]+(\{[a-z_]+=\"[^\"]*\"(,[a-z_]+=\"[^\"]*\")*\})? [0-9.e+-]+$"'

# The access log: one line per request with method, path, status, bytes, time and id.
check "access log: GET /healthz 200 15 B ... id=trace-42.a_b:c" \
    grep -qE '^ear serve: 127\.0\.0\.1 GET /healthz 200 15 B [0-9.]+ ms id=trace-42\.a_b:c$' "$WORK/serve.log"
check "access log: the 404" grep -qE ' GET /ear/no/such/route 404 [0-9]+ B [0-9.]+ ms id=[0-9a-f]{16}$' "$WORK/serve.log"

stop_server

# --home-url reaches the page through /api/config, JSON-escaped.
start_server --model "$MODEL" --index "$WORK/index.ear" --data "$WORK/data" \
    --home-url 'https://example.org/a"b' || exit 1
fetch config "$(URL /api/config)"
check "--home-url: /api/config says it, escaped (got $(cat "$WORK/config.b"))" \
    [ "$(cat "$WORK/config.b")" = '{"home_url":"https://example.org/a\"b"}' ]
stop_server
finish
