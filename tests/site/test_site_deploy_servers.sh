#!/usr/bin/env bash
# The whole deployment with the real servers, on loopback with free ports: `make install`
# fills deploy/ in for a scratch prefix; supervisord runs `ear serve` (a golden model, an
# index built by `ear index`) and ear-site from the installed supervisor files; nginx runs the
# installed server block. Through nginx: the site's pages, Ear's page, searches, frames, a
# 49 MiB upload reaching Ear and a 51 MiB one refused with 413; kill -9 of Ear and of the site
# brings them back within 5 s; with Ear stopped the site still serves and /ear/ is 502. Then
# ear-site --dev passes the same /ear/ checks without nginx.
set -u
test_name=site_deploy_servers
source "$(dirname "$0")/lib.sh"

if ! "$EAR_BIN" serve --help >/dev/null 2>&1; then
    echo "SKIPPED: this build's ear has no 'serve' command yet"
    exit 77
fi
for tool in nginx supervisord supervisorctl; do
    command -v "$tool" >/dev/null || { echo "$tool missing: run make deps" >&2; exit 1; }
done

fixtures=$EAR_SOURCE_DIR/tests/fixtures/nn
model=$fixtures/nn_basic_f32.safetensors
clip=$fixtures/nn_clip.wav

# A two-item dataset from the golden fixtures, and its index.
data=$work/data
mkdir -p "$data/frames" "$data/audio"
cp "$fixtures/nn_photo.jpg" "$data/frames/photo.jpg"
cp "$fixtures/nn_alpha.png" "$data/frames/alpha.png"
cp "$clip" "$data/audio/photo.wav"
printf 'photo\tA photo.\nalpha\tA transparent picture.\n' >"$data/labels.tsv"
"$EAR_BIN" index --model "$model" --data "$data" -o "$work/ear.index" 2>"$work/index.log" ||
    { echo "ear index failed:" >&2; cat "$work/index.log" >&2; exit 1; }

ear_port=$(free_port)
site_port=$(free_port)
nginx_port=$(free_port)
while [ "$site_port" = "$ear_port" ]; do site_port=$(free_port); done
while [ "$nginx_port" = "$ear_port" ] || [ "$nginx_port" = "$site_port" ]; do
    nginx_port=$(free_port)
done

# deploy/ filled in by `make install`, for a prefix inside the test's folder.
prefix=$work/prefix
make -s -C "$EAR_SOURCE_DIR" install BUILD="$(dirname "$EAR_BIN")" INIT=supervisor \
    PREFIX="$prefix" SYSCONFDIR="$work/etc" LOGDIR="$work/log" SERVICE_USER="$(id -un)" \
    LISTEN="127.0.0.1:$nginx_port" EAR_PORT="$ear_port" SITE_PORT="$site_port" \
    EAR_MODEL="$model" EAR_INDEX="$work/ear.index" EAR_DATA="$data" >"$work/install.log" 2>&1 ||
    { echo "make install failed:" >&2; cat "$work/install.log" >&2; exit 1; }
content=$prefix/share/ear/site

# supervisord around the installed program files. Its socket lives in a short /tmp path:
# unix socket paths are limited to 108 bytes.
socket_dir=$(mktemp -d /tmp/ear-supervisor.XXXXXX)
cat >"$work/supervisord.conf" <<EOF
[unix_http_server]
file=$socket_dir/supervisor.sock
[supervisord]
nodaemon=true
logfile=$work/supervisord.log
pidfile=$work/supervisord.pid
childlogdir=$work/log
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[supervisorctl]
serverurl=unix://$socket_dir/supervisor.sock
[include]
files = $work/etc/supervisor/conf.d/*.conf
EOF
supervisorctl() { command supervisorctl -c "$work/supervisord.conf" "$@"; }

# nginx around the installed server block.
nginx_user=
[ "$(id -u)" = 0 ] && nginx_user="user root;"
cat >"$work/nginx.conf" <<EOF
$nginx_user
daemon off;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events {}
http {
    include /etc/nginx/mime.types;
    access_log $work/nginx-access.log;
    client_body_temp_path $work/nginx-body;
    proxy_temp_path $work/nginx-proxy;
    fastcgi_temp_path $work/nginx-fastcgi;
    uwsgi_temp_path $work/nginx-uwsgi;
    scgi_temp_path $work/nginx-scgi;
    include $work/etc/nginx/sites-available/ear;
}
EOF

# The programs' pids (a stopped program's is 0, left out).
supervisor_pids() { supervisorctl pid all 2>/dev/null | grep -E '^[1-9][0-9]*$'; }
stop_supervised() {
    local pids
    pids=$(supervisor_pids)
    supervisorctl stop all >/dev/null 2>&1
    stop_process "$supervisord_pid"
    # Should supervisord itself have been killed, its children must not outlive the test.
    for pid in $pids; do
        stop_process "$pid"
    done
}
supervisord_pid=
trap 'stop_supervised; cleanup; rm -rf "$socket_dir"' EXIT

mkdir -p "$work/log"
supervisord -c "$work/supervisord.conf" >"$work/supervisord.out" 2>&1 &
supervisord_pid=$!
nginx -p "$work" -e "$work/nginx-error.log" -c "$work/nginx.conf" &
started $!

# wait_for_200 URL SECONDS: until URL answers 200; prints how long it took, in seconds.
wait_for_200() {
    local start deadline=$((SECONDS + $2))
    start=$(date +%s.%N)
    while [ $SECONDS -le $deadline ]; do
        if [ "$(curl -s -o /dev/null --max-time 2 -w '%{http_code}' "$1")" = 200 ]; then
            awk -v start="$start" -v now="$(date +%s.%N)" 'BEGIN { printf "%.2f\n", now - start }'
            return 0
        fi
        sleep 0.05
    done
    return 1
}
ear_direct=http://127.0.0.1:$ear_port
base=http://127.0.0.1:$nginx_port
if ! wait_for_200 "$ear_direct/healthz" 60 >/dev/null || ! wait_for_port "$site_port" 10 ||
    ! wait_for_port "$nginx_port" 10; then
    echo "the servers did not start:" >&2
    tail -n 20 "$work"/log/*.log "$work/supervisord.log" "$work/nginx-error.log" >&2
    exit 1
fi

# ear_checks BASE WHAT: Ear's routes under BASE/ear/, as a browser would use them.
ear_checks() {
    local base=$1 what=$2 code
    curl -s "$ear_direct/" >"$work/ear-page-direct.html"
    check "$what: GET /ear/ 200" [ "$(status "$base/ear/")" = 200 ]
    check "$what: ... Ear's page" grep -qi '<html' "$work/body"
    check "$what: ... the same page as Ear's own" cmp -s "$work/body" "$work/ear-page-direct.html"
    check "$what: GET /ear/healthz 200" [ "$(status "$base/ear/healthz")" = 200 ]

    code=$(status "$base/ear/api/search?k=2" -F "audio=@$clip")
    check "$what: POST /ear/api/search (multipart) 200 ($code)" [ "$code" = 200 ]
    check "$what: ... two results" [ "$(grep -o '"rank"' "$work/body" | wc -l)" = 2 ]
    frame_url=$(grep -o '"frame_url": *"[^"]*"' "$work/body" | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/')
    check "$what: ... with a frame URL ($frame_url)" [ -n "$frame_url" ]
    code=$(status "$base/ear/api/search" --data-binary @"$clip" -H "Content-Type: audio/wav")
    check "$what: POST /ear/api/search (raw bytes) 200 ($code)" [ "$code" = 200 ]

    code=$(status "$base/ear/$frame_url")
    check "$what: the first result's frame loads ($code)" [ "$code" = 200 ]
    check "$what: ... byte for byte" cmp -s "$work/body" "$data/${frame_url#data/}"
    check "$what: ... as an image" bash -c "grep -qi '^content-type: image/' '$work/headers'"
    code=$(status "$base/ear/data/audio/photo.wav")
    check "$what: a dataset sound loads ($code)" [ "$code" = 200 ]

    code=$(status "$base/ear/api/search" --data-binary @"$work/junk49")
    local answered=no
    if [ "$code" != 413 ] && { [ "$code" = 200 ] || [ "${code:0:1}" = 4 ]; } &&
        grep -qE '"(error|results)"' "$work/body"; then
        answered=yes
    fi
    check "$what: a 49 MiB upload reaches Ear, which answers it ($code)" [ "$answered" = yes ]
    code=$(status "$base/ear/api/search" --data-binary @"$work/junk51")
    check "$what: a 51 MiB upload gets 413 ($code)" [ "$code" = 413 ]
}
head -c $((49 * 1024 * 1024)) /dev/urandom >"$work/junk49"
head -c $((51 * 1024 * 1024)) /dev/urandom >"$work/junk51"

# Through nginx.
site_title=$(sed -n 's/^title: *//p' "$content/index.md" | head -n 1)
check "nginx: GET / is the site's home 200" [ "$(status "$base/")" = 200 ]
check "nginx: ... with its title" grep -qF "$site_title" "$work/body"
post=$(basename "$(ls "$content"/posts/*.md | head -n 1)" .md)
check "nginx: GET /blog/$post 200" [ "$(status "$base/blog/$post")" = 200 ]
check "nginx: GET /feed.xml 200" [ "$(status "$base/feed.xml")" = 200 ]
check "nginx: GET /ear redirects to /ear/" [ "$(status "$base/ear")" = 301 ]
ear_checks "$base" nginx
check "nginx: the 413 is nginx's, Ear never saw it" grep -qi nginx "$work/body"
# Ear answers under /ear/ too, so only its log shows that nginx stripped the prefix.
ear_log=$work/log/ear_service.log
check "nginx: Ear saw POST /api/search, /ear stripped" \
    grep -q '^ear serve: [^ ]* POST /api/search ' "$ear_log"
check "nginx: Ear never saw an /ear/ path" bash -c "! grep -q '^ear serve: [^ ]* [A-Z]* /ear' '$ear_log'"

# What libmicrohttpd 0.9.75 answers with its own pages (README, "Hostile uploads"), or lets
# through ambiguously, nginx refuses itself: raw requests, nginx's status, Ear never asked.
nginx_refuses() { # nginx_refuses WHAT STATUS RAW-REQUEST (printf format)
    local answer
    answer=$(python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(5)
s.sendall(sys.argv[2].encode("latin1").decode("unicode_escape").encode("latin1"))
out = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
except socket.timeout:
    pass
sys.stdout.write(out.decode("latin1"))' "$nginx_port" "$3")
    check "nginx refuses $1: $2 from nginx (got: $(echo "$answer" | head -1))" \
        bash -c '[[ "$1" == "HTTP/1.1 $2 "* ]] && grep -qi "^Server: nginx" <<<"$1"' _ "$answer" "$2"
}
seen_before=$(grep -c '^ear serve: ' "$ear_log")
nginx_refuses "a Content-Length that is not a number" 400 \
    'POST /ear/api/search HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'
nginx_refuses "two Content-Lengths" 400 \
    'POST /ear/api/search HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 9\r\n\r\nhello'
nginx_refuses "a request line over 8 KB" 414 \
    "GET /ear/healthz?a=$(head -c 40000 /dev/zero | tr -c x x) HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"
nginx_refuses "a header over 8 KB" 400 \
    "GET /ear/healthz HTTP/1.1\\r\\nHost: x\\r\\nX-Big: $(head -c 40000 /dev/zero | tr -c x x)\\r\\n\\r\\n"
check "nginx: Ear saw none of those" [ "$(grep -c '^ear serve: ' "$ear_log")" = "$seen_before" ]

# supervisor brings a killed service back.
for program in ear_service ear_site; do
    old_pid=$(supervisorctl pid "$program")
    [ "$program" = ear_service ] && url=$base/ear/healthz || url=$base/healthz
    kill -9 "$old_pid"
    took=$(wait_for_200 "$url" 10)
    check "kill -9 $program: answering again" [ -n "$took" ]
    echo "kill -9 $program: answering again through nginx after ${took:-never} s"
    check "kill -9 $program: back within 5 s (${took:-never} s)" \
        awk -v took="${took:-99}" 'BEGIN { exit !(took < 5) }'
    new_pid=$(supervisorctl pid "$program")
    check "kill -9 $program: a new process ($old_pid -> $new_pid)" \
        [ "$new_pid" != "$old_pid" -a "$new_pid" != 0 ]
done

if ! sanitized "$EAR_BIN"; then
    echo "resident memory: ear serve $(rss_kb "$(supervisorctl pid ear_service)") KiB," \
         "ear-site $(rss_kb "$(supervisorctl pid ear_site)") KiB"
fi

# Ear stopped: the site carries on, /ear/ is 502.
supervisorctl stop ear_service >/dev/null
code=$(status "$base/ear/")
check "Ear stopped: nginx answers /ear/ with 502 ($code)" [ "$code" = 502 ]
check "Ear stopped: the home page 200" [ "$(status "$base/")" = 200 ]
check "Ear stopped: the blog 200" [ "$(status "$base/blog/")" = 200 ]
check "Ear stopped: a post 200" [ "$(status "$base/blog/$post")" = 200 ]
supervisorctl start ear_service >/dev/null
check "Ear started again" [ -n "$(wait_for_200 "$base/ear/healthz" 30)" ]

# Dev mode: the same /ear/ checks without nginx.
start_site "$work/dev.log" --dev --content "$content" --ear-upstream "127.0.0.1:$ear_port" ||
    exit 1
dev_pid=$site_pid
dev=http://127.0.0.1:$site_port
ear_checks "$dev" "dev mode"
check "dev mode: the 413 is the site's" grep -q "50 MiB" "$work/body"
check "dev mode: GET / 200" [ "$(status "$dev/")" = 200 ]
supervisorctl stop ear_service >/dev/null
code=$(status "$dev/ear/")
check "dev mode, Ear stopped: /ear/ 502 ($code)" [ "$code" = 502 ]
check "dev mode, Ear stopped: the home page 200" [ "$(status "$dev/")" = 200 ]
stopped_cleanly "ear-site --dev" "$dev_pid" "$work/dev.log"

finish
