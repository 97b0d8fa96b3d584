#!/bin/bash
# `make bench`: `ear serve` next to the original Python service (../shared/peers/seed-python),
# measured side by side in one run; writes BENCHMARKS.md, bench/benchmarks.png and
# bench/results.json. See bench/compare_seed.py for what is measured and how.
#
#   bash bench/compare_seed.sh [EAR_BINARY]        (default: build/ear; make bench builds it)
#
# Installs the seed's Debian packages first (python3-torch, -torchaudio, -flask, -soundfile,
# -pil, -matplotlib, gunicorn; apt-get, idempotent), then runs the harness with Debian's
# /usr/bin/python3. Environment, for a quicker or narrower run: ROUNDS (3), SWEEP_ROUNDS (2),
# REQUESTS (20 searches per latency run at concurrency 1; twice that at 4), SIZES
# (1000,100000,1000000), CLIPS (1,5,30,60), SKIP (models,clips,sizes,encoder), SEED_DIR,
# EAR_BEFORE (a second ear binary measured next to the first, for a before/after); BENCH_RESULTS,
# BENCH_MARKDOWN, BENCH_PLOT (where the outputs go, for a trial run).
# About 12 minutes on 2 cores; 1,000,000 items need about 6 GB of memory and disk.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
EAR=$(realpath "${1:-$ROOT/build/ear}")
SEED_DIR=${SEED_DIR:-$ROOT/../shared/peers/seed-python}

packages=(python3-torch python3-torchaudio python3-numpy python3-flask python3-soundfile
          python3-pil python3-matplotlib gunicorn ffmpeg linux-perf)
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
[ -f "$SEED_DIR/service.py" ] || { echo "bench: no $SEED_DIR/service.py" >&2; exit 1; }
exec /usr/bin/python3 "$ROOT/bench/compare_seed.py" --ear "$EAR" --seed-dir "$SEED_DIR"
