#!/bin/bash
# `ear serve` next to the original Python service (../shared/peers/seed-python),
# on the same random-weight model (the spec's example towers: ResNet-18 audio,
# ResNet-50 image), the same dataset and the same 5 s WebM/Opus query: the
# resident memory of each when idle, and the median latency of a search as
# the client sees it (curl, one request at a time, multipart upload).
#
#   bash bench/compare_seed.sh [EAR_BINARY]        (default: build/ear)
#
# Environment: SEARCHES (default 30), ITEMS (dataset size, default 24), SEED_DIR.
# Needs Debian's /usr/bin/python3 with torch and torchaudio, and python3-flask,
# python3-soundfile, gunicorn, python3-pil; ffmpeg and curl. Takes a few minutes.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
EAR=$(realpath "${1:-$ROOT/build/ear}")
SEED_DIR=${SEED_DIR:-$ROOT/../shared/peers/seed-python}
SEARCHES=${SEARCHES:-30}
ITEMS=${ITEMS:-24}
PYTHON=/usr/bin/python3
WORK=$(mktemp -d "${TMPDIR:-/tmp}/compare_seed.XXXXXX")
EAR_PID=
SEED_PID=
cleanup() {
    [ -n "$EAR_PID" ] && kill "$EAR_PID" 2>/dev/null
    [ -n "$SEED_PID" ] && kill "$SEED_PID" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

for tool in ffmpeg curl; do
    command -v "$tool" >/dev/null || { echo "compare_seed: $tool is missing" >&2; exit 1; }
done
[ -x "$EAR" ] || { echo "compare_seed: no ear binary at $EAR (make first)" >&2; exit 1; }
[ -f "$SEED_DIR/service.py" ] || { echo "compare_seed: no $SEED_DIR/service.py" >&2; exit 1; }
"$PYTHON" -c "import torch, torchaudio, flask, soundfile, gunicorn, PIL" 2>/dev/null || {
    echo "compare_seed: $PYTHON lacks torch/torchaudio/flask/soundfile/gunicorn/PIL" >&2
    echo "  (apt-get install python3-flask python3-soundfile gunicorn python3-pil)" >&2
    exit 1
}

echo "== model, dataset and query (in $WORK)"
"$PYTHON" "$ROOT/tools/make_random_model.py" --tower both -o "$WORK/model.safetensors"
mkdir -p "$WORK/data/frames" "$WORK/data/audio"
images=("$ROOT"/tests/fixtures/image/*.jpg "$ROOT"/tests/fixtures/image/*.png)
: >"$WORK/data/labels.tsv"
for i in $(seq "$ITEMS"); do
    id=$(printf 'item%03d' "$i")
    image=${images[$(((i - 1) % ${#images[@]}))]}
    cp "$image" "$WORK/data/frames/$id.${image##*.}"
    ffmpeg -nostdin -v error -f lavfi -i "sine=frequency=$((200 + 37 * i)):duration=3" \
        -ar 16000 "$WORK/data/audio/$id.wav"
    printf '%s\tItem %d\n' "$id" "$i" >>"$WORK/data/labels.tsv"
done
# Browser-like: 5 s of Opus in WebM, 48 kHz stereo.
ffmpeg -nostdin -v error -f lavfi -i "sine=frequency=440:duration=5" -f lavfi \
    -i "anoisesrc=d=5:c=pink:a=0.1" -filter_complex amix=inputs=2 -ac 2 -ar 48000 \
    -c:a libopus -b:a 48k "$WORK/query.webm"

# wait_ready URL: until it answers 200 (3 minutes at most).
wait_ready() {
    for _ in $(seq 1800); do
        curl -s -o /dev/null -f "$1" && return 0
        sleep 0.1
    done
    echo "compare_seed: $1 never answered" >&2
    return 1
}
# memory PID...: resident and proportional set sizes, in MiB, summed over the processes.
memory() {
    local rss=0 pss=0 pid
    for pid in "$@"; do
        rss=$((rss + $(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")))
        pss=$((pss + $(awk '/^Pss:/ { print $2 }' "/proc/$pid/smaps_rollup")))
    done
    echo "$((rss / 1024)) $((pss / 1024))"
}
# latencies URL: median and 90th percentile, in ms, of SEARCHES searches after 3 to warm up.
latencies() {
    local url=$1 i
    for i in 1 2 3; do curl -s -o /dev/null -F "audio=@$WORK/query.webm" "$url"; done
    for i in $(seq "$SEARCHES"); do
        curl -s -o "$WORK/answer.json" -w '%{http_code} %{time_total}\n' \
            -F "audio=@$WORK/query.webm;type=audio/webm" "$url"
    done >"$WORK/times"
    if grep -qv '^200 ' "$WORK/times"; then
        echo "compare_seed: some searches failed: $(grep -v '^200 ' "$WORK/times" | head -3)" >&2
        head -c 300 "$WORK/answer.json" >&2
        return 1
    fi
    awk '{ print $2 * 1000 }' "$WORK/times" | sort -n | awk '
        { v[NR] = $1 }
        END { printf "%.1f %.1f\n", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2),
                                 v[int(NR * 0.9 + 0.5)] }'
}

echo "== ear serve"
"$EAR" index --model "$WORK/model.safetensors" --data "$WORK/data" -o "$WORK/index.ear" \
    2>"$WORK/index.log" || { cat "$WORK/index.log" >&2; exit 1; }
"$EAR" serve --model "$WORK/model.safetensors" --index "$WORK/index.ear" --data "$WORK/data" \
    --port 0 --workers 1 2>"$WORK/ear.log" &
EAR_PID=$!
for _ in $(seq 600); do
    EAR_PORT=$(sed -n 's|.*listening on http://[^ ]*:\([0-9][0-9]*\).*|\1|p' "$WORK/ear.log")
    [ -n "$EAR_PORT" ] && break
    sleep 0.1
done
wait_ready "http://127.0.0.1:$EAR_PORT/healthz"
sleep 1
read -r ear_idle_rss ear_idle_pss < <(memory "$EAR_PID")
read -r ear_median ear_p90 < <(latencies "http://127.0.0.1:$EAR_PORT/api/search?k=8")
read -r ear_busy_rss ear_busy_pss < <(memory "$EAR_PID")
ear_server_ms=$(sed -n 's/.*"total":\([0-9.]*\)}}$/\1/p' "$WORK/answer.json")
kill "$EAR_PID"
wait "$EAR_PID" || true
EAR_PID=

echo "== seed (gunicorn, 1 worker, --preload)"
SEED_PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
EAR_MODEL="$WORK/model.safetensors" EAR_DATA="$WORK/data" EAR_INDEX_PT="$WORK/seed_index.pt" \
    EAR_UPLOADS="$WORK/uploads" "$PYTHON" -m gunicorn 'service:app' --chdir "$SEED_DIR" \
    --bind "127.0.0.1:$SEED_PORT" --workers 1 --timeout 120 --preload 2>"$WORK/seed.log" &
SEED_PID=$!
wait_ready "http://127.0.0.1:$SEED_PORT/healthz"
sleep 1
seed_pids=("$SEED_PID" $(pgrep -P "$SEED_PID"))
read -r seed_idle_rss seed_idle_pss < <(memory "${seed_pids[@]}")
read -r seed_median seed_p90 < <(latencies "http://127.0.0.1:$SEED_PORT/api/search?k=8")
read -r seed_busy_rss seed_busy_pss < <(memory "${seed_pids[@]}")
seed_server_ms=$(sed -n 's/.*"total":\([0-9.]*\).*/\1/p' "$WORK/answer.json" | head -1)
kill "$SEED_PID"
wait "$SEED_PID" || true
SEED_PID=

echo
echo "same model ($(du -m "$WORK/model.safetensors" | cut -f1) MB, random weights), $ITEMS items, 5 s WebM/Opus query,"
echo "$SEARCHES searches one at a time over loopback; $(nproc) CPU cores; memory of all the service's processes"
printf '%-28s %14s %14s\n' "" "ear serve" "seed (python)"
printf '%-28s %14s %14s\n' "idle RSS / PSS (MiB)" "$ear_idle_rss / $ear_idle_pss" "$seed_idle_rss / $seed_idle_pss"
printf '%-28s %14s %14s\n' "RSS / PSS after (MiB)" "$ear_busy_rss / $ear_busy_pss" "$seed_busy_rss / $seed_busy_pss"
printf '%-28s %14s %14s\n' "median latency (ms)" "$ear_median" "$seed_median"
printf '%-28s %14s %14s\n' "90th percentile (ms)" "$ear_p90" "$seed_p90"
printf '%-28s %14s %14s\n' "server's own total (ms)" "${ear_server_ms:-?}" "${seed_server_ms:-?}"
