#!/usr/bin/env bash
# The sandbox's cost and what it buys (issue 15): bench/sandbox.sh [EAR] [N]
#  - p50/p99 of a 5 s WebM search, N each (default 300), sandboxed and --no-sandbox: both
#    services up, the requests alternating between them, so that both see the same load
#  - a helper's start (pool of one, `ear decode` with and without it) and the pool's RSS/PSS
#  - the two repros of the issue, before (--no-sandbox) and after, with one worker (the
#    default): the service's peak RSS (VmHWM), the answer's time, and a normal search's
#    latency sent 0.3 s after it.
# Prints a Markdown table; nothing is written. Uses ports 5940-5941.
set -euo pipefail
ear=$(realpath "${1:-build/ear}")
n=${2:-300}
source_dir=$(cd "$(dirname "$0")/.." && pwd)
model=$source_dir/tests/fixtures/nn/nn_basic_f32.safetensors
work=$(mktemp -d "${TMPDIR:-/tmp}/ear-bench-sandbox.XXXXXX")
server=
trap '[ -n "$server" ] && kill -KILL "$server" 2>/dev/null; [ -n "${plain:-}" ] && kill -KILL "$plain" 2>/dev/null; rm -rf "$work"; true' EXIT

mkdir -p "$work/data/frames" "$work/data/audio"
cp "$source_dir/tests/fixtures/image/photo_77x52.jpg" "$work/data/frames/cow.jpg"
ffmpeg -nostdin -v error -f lavfi -i "sine=frequency=440:duration=1" -ar 16000 "$work/data/audio/cow.wav"
printf 'cow\tA cow.\n' >"$work/data/labels.tsv"
"$ear" index --model "$model" --data "$work/data" -o "$work/index.ear" --jobs 1 >/dev/null 2>&1
ffmpeg -nostdin -v error -f lavfi -i "sine=frequency=300:duration=5" -ac 2 -ar 48000 \
    -c:a libopus "$work/query.webm"
python3 "$source_dir/tests/hostile/make_files.py" "$work/files"

start() { # start PORT ARGS...
    local port=$1
    shift
    "$ear" serve --model "$model" --index "$work/index.ear" --data "$work/data" --port "$port" \
        "$@" 2>"$work/serve-$port.log" &
    server=$!
    for _ in $(seq 200); do
        curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && return 0
        sleep 0.05
    done
    echo "the server did not start" >&2
    exit 1
}
stop() { kill -TERM "$server"; wait "$server" 2>/dev/null || true; server=; }
percentiles() { # times (s) on stdin -> "p50 p99" in ms
    sort -n | awk '{ v[NR] = $1 } END { i50 = int(NR * 0.5); i99 = int(NR * 0.99); if (i50 < 1) i50 = 1; if (i99 < 1) i99 = 1;
                   printf "%.2f %.2f", v[i50] * 1000, v[i99] * 1000 }'
}
searches() { # searches PORT_A PORT_B: N alternating searches, times in $work/times.PORT
    : >"$work/times.$1"
    : >"$work/times.$2"
    : >"$work/decode.$1"
    : >"$work/decode.$2"
    for i in $(seq $((n + 20))); do
        for port in "$1" "$2"; do
            t=$(curl -s -o "$work/answer" -w '%{time_total}' --data-binary "@$work/query.webm" \
                "http://127.0.0.1:$port/api/search")
            [ "$i" -gt 20 ] || continue
            echo "$t" >>"$work/times.$port"
            # The answer's own decode time, in s like curl's: the HTTP path's noise left out.
            sed -n 's/.*"timing_ms":{"decode":\([0-9.]*\).*/\1/p' "$work/answer" |
                awk '{ print $1 / 1000 }' >>"$work/decode.$port"
        done
    done
}
kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
pool_memory() { # the helpers' (children of $server) RSS and PSS sums, in kB
    local rss=0 pss=0
    for status in /proc/[0-9]*/status; do
        local pid=${status#/proc/}
        pid=${pid%/status}
        [ "$(awk '$1 == "PPid:" { print $2 }' "$status" 2>/dev/null)" = "$server" ] || continue
        rss=$((rss + $(kb "$pid" VmRSS)))
        pss=$((pss + $(awk '$1 == "Pss:" { print $2 }' "/proc/$pid/smaps_rollup")))
    done
    echo "$rss $pss"
}
repro() { # repro PORT FILE -> "peak_rss_mb answer_s alongside_ms code"
    local port=$1 file=$2
    local hwm_before
    hwm_before=$(kb "$server" VmHWM)
    (sleep 0.3; curl -s -o /dev/null -w '%{time_total}\n' --data-binary "@$work/query.webm" \
        "http://127.0.0.1:$port/api/search" >"$work/alongside") &
    local other=$!
    local out
    out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 300 --data-binary "@$file" \
        "http://127.0.0.1:$port/api/search")
    wait "$other"
    echo "$(($(kb "$server" VmHWM) / 1024)) ${out#* } $(awk '{ printf "%.0f", $1 * 1000 }' "$work/alongside") ${out% *} (peak before: $((hwm_before / 1024)))"
}

echo "bench/sandbox.sh on $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $n searches each"
echo
start 5941 --workers 2 --no-sandbox
plain=$server
start 5940 --workers 2
searches 5940 5941
read -r s50 s99 <<<"$(percentiles <"$work/times.5940")"
read -r u50 u99 <<<"$(percentiles <"$work/times.5941")"
read -r sd50 sd99 <<<"$(percentiles <"$work/decode.5940")"
read -r ud50 ud99 <<<"$(percentiles <"$work/decode.5941")"
read -r pool_rss pool_pss <<<"$(pool_memory)"
service_rss=$(($(kb "$server" VmRSS) / 1024))
stop
server=$plain
plain=
stop
start 5940
wav_after=$(repro 5940 "$work/files/wav_list_info_2gib.wav")
mp3_after=$(repro 5940 "$work/files/mp3_txxx_50k.mp3")
stop
start 5941 --no-sandbox
wav_before=$(repro 5941 "$work/files/wav_list_info_2gib.wav")
mp3_before=$(repro 5941 "$work/files/mp3_txxx_50k.mp3")
stop

start_ms() { # a pool of one started, used and stopped by `ear decode`, less the same in-process
    local t0 t1 t2
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        t0=$(date +%s%N)
        "$ear" decode "$work/data/audio/cow.wav" -o "$work/o.npy"
        t1=$(date +%s%N)
        "$ear" decode --no-sandbox "$work/data/audio/cow.wav" -o "$work/o.npy"
        t2=$(date +%s%N)
        echo "$(((t1 - t0) - (t2 - t1)))"
    done | sort -n | awk '{ v[NR] = $1 } END { printf "%.1f", v[int((NR + 1) / 2)] / 1e6 }'
}

echo "| measure | sandbox | --no-sandbox |"
echo "| --- | ---: | ---: |"
echo "| 5 s WebM search p50 (ms) | $s50 | $u50 |"
echo "| 5 s WebM search p99 (ms) | $s99 | $u99 |"
echo "| ... its decode (timing_ms.decode) p50 (ms) | $sd50 | $ud50 |"
echo "| ... its decode (timing_ms.decode) p99 (ms) | $sd99 | $ud99 |"
echo "| helper start (ms, \`ear decode\` with less without, median of 10) | $(start_ms) | |"
echo "| pool of 2 helpers: RSS / PSS (MiB) | $((pool_rss / 1024)) / $((pool_pss / 1024)) | |"
echo "| service RSS after the searches (MiB) | $service_rss | |"
echo
echo "Repros (peak RSS = the service's VmHWM after; answer: its time in s; alongside: a normal"
echo "search sent 0.3 s after, in ms; then the status):"
echo
echo "| upload | after (sandbox): peak MiB, answer s, alongside ms, status | before (--no-sandbox) |"
echo "| --- | --- | --- |"
echo "| 59-byte WAV, LIST/INFO claims 2 GiB | $wav_after | $wav_before |"
echo "| MP3, 50k TXXX frames | $mp3_after | $mp3_before |"
