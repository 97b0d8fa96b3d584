#!/bin/bash
# `make bench`: `ear serve` next to the Python services it replaces, measured side by side in
# one run; writes BENCHMARKS.md, bench/benchmarks.png and bench/results.json. Two pairs:
#   - the original's model (wav2vec2-base + ResNet-50, best_audio_visual_clip.pt, full size,
#     random weights): Ear's /query against the original service, ../shared/peers/seed-python;
#   - the compact family (log-mel ResNets): Ear's /api/search against
#     ../shared/peers/compact-python.
# See bench/compare_seed.py for what is measured and how.
#
#   bash bench/compare_seed.sh [EAR_BINARY]        (default: build/ear; make bench builds it)
#
# Installs the peers' Debian packages first (python3-torch, -torchaudio, -torchvision, -flask,
# -soundfile, -pil, -matplotlib, gunicorn; apt-get, idempotent), then runs the harness with
# Debian's /usr/bin/python3. Environment, for a quicker or narrower run:
#   the original's model: ORIGINAL_ROUNDS (3), ORIGINAL_REQUESTS (8 answers of each query per
#     start), ORIGINAL_DEPLOYED (1: one more start of the original without the one-thread
#     variables; 0: not), ORIGINAL_DIR;
#   the compact family: ROUNDS (3), SWEEP_ROUNDS (2), REQUESTS (20 searches per latency run at
#     concurrency 1; twice that at 4), SIZES (1000,100000,1000000), CLIPS (1,5,30,60; 5 must be
#     there), EAR_BEFORE (a second ear binary measured next to the first, for a before/after),
#     COMPACT_DIR;
#   SKIP: parts to leave out, comma-separated: original, models, clips, sizes, encoder, compact
#     (the last four together); BENCH_RESULTS, BENCH_MARKDOWN, BENCH_PLOT (where the outputs
#     go, for a trial run).
# About 13 minutes on 2 cores; 1,000,000 items need about 6 GB of memory and disk.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
EAR=$(realpath "${1:-$ROOT/build/ear}")
COMPACT_DIR=${COMPACT_DIR:-$ROOT/../shared/peers/compact-python}
ORIGINAL_DIR=${ORIGINAL_DIR:-$ROOT/../shared/peers/seed-python}

packages=(python3-torch python3-torchaudio python3-torchvision python3-numpy python3-flask
          python3-soundfile python3-pil python3-matplotlib gunicorn ffmpeg linux-perf)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench: installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    # linux-perf is optional (the profile): the rest are not.
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
        $sudo apt-get install -y -qq --no-install-recommends \
            $(printf '%s\n' "${missing[@]}" | grep -vx linux-perf) >/dev/null
fi

[ -x "$EAR" ] || { echo "bench: no ear binary at $EAR (make first)" >&2; exit 1; }
for peer in "$COMPACT_DIR" "$ORIGINAL_DIR"; do
    [ -f "$peer/service.py" ] || { echo "bench: no $peer/service.py" >&2; exit 1; }
done
exec /usr/bin/python3 "$ROOT/bench/compare_seed.py" --ear "$EAR" --compact-dir "$COMPACT_DIR" \
    --original-dir "$ORIGINAL_DIR"
