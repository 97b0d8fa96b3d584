#!/usr/bin/env bash
# Installs, from Debian's packages, what building and testing Ear need.
# Idempotent and quiet when everything is there.
set -euo pipefail

packages=(
  cmake make gcc clang libclang-rt-14-dev pkg-config
  libavformat-dev libavcodec-dev libavutil-dev libswresample-dev
  libfftw3-dev libopenblas-dev libdnnl-dev libjpeg62-turbo-dev libpng-dev
  libmicrohttpd-dev libcjson-dev libseccomp-dev
  ffmpeg sox espeak-ng
  fluidsynth   # the instrument demo renders its sounds with it (tools/demo_instruments.sh)
  timidity     # and renders freepats with it (a patch set fluidsynth cannot read)
  libcmark-dev nginx supervisor systemd curl
  wrk valgrind
  chromium
  # tools/ only (converter and import tests; skipped without them): Debian's PyTorch.
  python3-numpy python3-pil python3-torch python3-torchaudio python3-torchvision
  # tests/tools/peer_query.sh: the original service reproduced (shared/peers/seed-python).
  python3-flask python3-soundfile gunicorn
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The browser test's node and npm: Debian's, unless some are already on PATH.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)

if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# playwright-core for tests/browser, from its lock file, when missing or older
# than the lock; it drives Debian's chromium, so no browser is downloaded.
browser_tests="$(cd "$(dirname "$0")/.." && pwd)/tests/browser"
if [ ! -f "$browser_tests/node_modules/.package-lock.json" ] ||
   [ "$browser_tests/package-lock.json" -nt "$browser_tests/node_modules/.package-lock.json" ]; then
  echo "deps: npm ci in tests/browser"
  (cd "$browser_tests" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund \
     --loglevel=error >/dev/null)
fi
