#!/usr/bin/env bash
# The original service's nginx block (deploy/nginx/ear-original.conf, only its port
# changed to a free one) in front of a real `ear serve --project` over a folder in the
# original's layout (pretrained_models/best_audio_visual_clip.pt, ear_data/audio/<label>/**,
# ear_data/frames/<label>/**, no indexed_db.pt: built at start): /ear redirects to /ear/,
# /ear/ is the page, /ear/query answers sounds and pictures in the original's shape,
# its /ear/data/... URLs load through nginx (nested folders too), /ear/ce-loss and
# /ear/api/config answer, and nginx refuses 51 MiB with 413. nginx is Debian's, started
# by the test on a loopback port. Skipped (77) while this build's `ear serve` has no
# POST /query.
set -u
test_name=site_original_nginx
source "$(dirname "$0")/lib.sh"

command -v nginx >/dev/null || { echo "nginx missing: run make deps" >&2; exit 1; }
model=$EAR_SOURCE_DIR/tests/fixtures/nn/nn_basic_f32.safetensors

# The original's project folder: ear_data/ as it laid it out.
data=$work/project/ear_data
made=1
item() { # item PATH LAVFI-SOURCE
    mkdir -p "$(dirname "$data/$1")"
    case $1 in
    *.jpg) ffmpeg -nostdin -v error -f lavfi -i "$2" -frames:v 1 -q:v 3 "$data/$1" || made=0 ;;
    *) ffmpeg -nostdin -v error -f lavfi -i "$2" -t 1 -ar 16000 -ac 1 "$data/$1" || made=0 ;;
    esac
}
item frames/violin/f1.jpg "testsrc2=size=160x120:rate=1"
item frames/violin/bow/f2.jpg "smptehdbars=size=160x90:rate=1"
item frames/drum/d1.jpg "mandelbrot=size=160x120:rate=1"
item audio/violin/v1.wav "sine=frequency=440:duration=1"
item audio/drum/kit/d1.wav "anoisesrc=d=1:c=brown:seed=3"
[ "$made" = 1 ] || { echo "ffmpeg could not make the dataset" >&2; exit 1; }

ear_port=$(free_port)
nginx_port=$(free_port)
while [ "$nginx_port" = "$ear_port" ]; do nginx_port=$(free_port); done
# The original's folder as it is (`ear serve --project`, with the small original-family
# model fixture as its best_audio_visual_clip.pt); an ear without --project gets an index
# of its own built from the same ear_data/.
original_model=$EAR_SOURCE_DIR/tests/fixtures/w2v/w2v_gn.pt
if "$EAR_BIN" serve --help 2>&1 | grep -q -- --project && [ -f "$original_model" ]; then
    mkdir -p "$work/project/pretrained_models"
    cp "$original_model" "$work/project/pretrained_models/best_audio_visual_clip.pt"
    serve_args=(--project "$work/project")
else
    "$EAR_BIN" index --model "$model" --data "$data" -o "$work/ear.index" >/dev/null 2>"$work/index.log" ||
        { echo "SKIPPED: ear index does not read the original's layout yet: $(tail -1 "$work/index.log")"; exit 77; }
    serve_args=(--model "$model" --index "$work/ear.index" --data "$data")
fi
echo "ear serve ${serve_args[*]}"
"$EAR_BIN" serve "${serve_args[@]}" --port "$ear_port" 2>"$work/ear.log" &
started $!

# The original's block, inside a server of its own; only the upstream port differs.
block=$EAR_SOURCE_DIR/deploy/nginx/ear-original.conf
sed "/proxy_pass/s/127\.0\.0\.1:5001/127.0.0.1:$ear_port/" "$block" >"$work/ear-original.conf"
check "the block differs from the file in the port only" \
    [ "$(diff "$block" "$work/ear-original.conf" | grep -c '^[<>]')" = 2 ]
nginx_user=
[ "$(id -u)" = 0 ] && nginx_user="user root;"
cat >"$work/nginx.conf" <<CONF
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
    server {
        listen 127.0.0.1:$nginx_port;
        server_name _;
        location / { return 200 "the main site\n"; }
        include $work/ear-original.conf;
    }
}
CONF
nginx -p "$work" -e "$work/nginx-error.log" -c "$work/nginx.conf" &
started $!
if ! wait_for_port "$ear_port" 120 || ! wait_for_port "$nginx_port" 10; then
    echo "the servers did not start:" >&2
    tail -n 20 "$work/ear.log" "$work/nginx-error.log" >&2
    exit 1
fi
base=http://127.0.0.1:$nginx_port
if [ "${serve_args[0]}" = --project ]; then
    check "--project built the missing index in the folder" [ -s "$work/project/indexed_db.earindex" ]
fi

code=$(status "$base/ear/query" -F "file=@$data/audio/violin/v1.wav")
if [ "$code" = 404 ]; then
    echo "SKIPPED: this build's ear serve has no POST /query yet"
    exit 77
fi

# /ear redirects to /ear/; /ear/ is Ear's page.
check "GET /ear: 301 ($(status "$base/ear"))" [ "$(status "$base/ear")" = 301 ]
check "... to /ear/ ($(header Location))" bash -c "[[ '$(header Location)' == */ear/ ]]"
check "GET /ear/: 200" [ "$(status "$base/ear/")" = 200 ]
check "... the page" grep -q '<title>EAR (Embedding Audio-visual Retrieval)</title>' "$work/body"
curl -s "http://127.0.0.1:$ear_port/" >"$work/direct.html"
check "... the same bytes as ear serve's own /" cmp -s "$work/body" "$work/direct.html"
code=$(status "$base/ear" -L)
check "GET /ear followed: the page ($code)" bash -c "[ $code = 200 ] && grep -q '<title>EAR' '$work/body'"
for asset in app.js style.css ce-loss ce-loss.js api/config; do
    check "GET /ear/$asset: 200" [ "$(status "$base/ear/$asset")" = 200 ]
done
check "... api/config gives the home URL" grep -q '"home_url"' "$work/body"

# /ear/query: a sound, then a picture, in the original's shape.
code=$(status "$base/ear/query" -F "file=@$data/audio/violin/v1.wav")
check "POST /ear/query, a sound: 200 ($code)" [ "$code" = 200 ]
check "... query_type audio" grep -q '"query_type": *"audio"' "$work/body"
check "... sounds in same_modality" grep -q '"same_modality": *\[{[^]]*"type": *"audio"' "$work/body"
check "... frames in cross_modality" grep -q '"cross_modality": *\[{[^]]*"type": *"image"' "$work/body"
cp "$work/body" "$work/sound.json"
code=$(status "$base/ear/query" -F "file=@$data/frames/violin/f1.jpg")
check "POST /ear/query, a picture: 200 ($code)" [ "$code" = 200 ]
check "... query_type image" grep -q '"query_type": *"image"' "$work/body"
cp "$work/body" "$work/image.json"
code=$(status "$base/ear/query" -F "other=@$data/audio/violin/v1.wav")
check "POST /ear/query without the field file: 400 ($code)" [ "$code" = 400 ]
check "... {\"error\": \"No file\"}" grep -q '"error": *"No file"' "$work/body"

# Every URL the answers give loads through nginx, byte for byte (nested ones too).
urls=$(cat "$work/sound.json" "$work/image.json" | grep -o '"url": *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/' | sort -u)
check "the answers' URLs: the original's /ear/data/ ($(echo $urls))" \
    bash -c "[ -n '$urls' ] && ! echo '$urls' | grep -qv '^/ear/data/\(audio\|frames\)/[a-z]*/'"
for url in $urls; do
    code=$(status "$base$url")
    check "GET $url: 200 ($code)" [ "$code" = 200 ]
    check "... byte for byte" cmp -s "$work/body" "$data/${url#/ear/data/}"
done
check "a nested frame among them" bash -c "echo '$urls' | grep -q '^/ear/data/frames/violin/bow/f2.jpg$'"
code=$(status "$base/ear/data/frames/violin/bow/f2.jpg")
check "GET /ear/data/frames/violin/bow/f2.jpg: an image" \
    bash -c "[ $code = 200 ] && [[ '$(header Content-Type)' == image/jpeg* ]]"
for path in ../../etc/passwd %2e%2e/%2e%2e/etc/passwd ..%2f..%2fetc%2fpasswd; do
    status "$base/ear/data/$path" --path-as-is >/dev/null
    check "GET /ear/data/$path: no file from outside the dataset" bash -c "! grep -q '^root:' '$work/body'"
done

# 50M: nginx refuses more before Ear sees a byte.
head -c $((51 * 1024 * 1024)) /dev/zero >"$work/big.wav"
code=$(status "$base/ear/query" -F "file=@$work/big.wav")
check "51 MiB to /ear/query: nginx's 413 ($code)" [ "$code" = 413 ]

# Ear saw the paths with /ear stripped, as the original did behind this block.
check "Ear saw POST /query" grep -q '^ear serve: [^ ]* POST /query ' "$work/ear.log"
check "Ear never saw an /ear/ path" bash -c "! grep -q '^ear serve: [^ ]* [A-Z]* /ear' '$work/ear.log'"
finish
