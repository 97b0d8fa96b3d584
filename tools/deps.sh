#!/usr/bin/env bash
# Installs, from Debian's packages, what building and testing Ear need.
# Idempotent and quiet when everything is there.
set -euo pipefail

packages=(
  cmake make gcc clang libclang-rt-14-dev pkg-config
  libavformat-dev libavcodec-dev libavutil-dev libswresample-dev
  libfftw3-dev libopenblas-dev libjpeg62-turbo-dev libpng-dev
  libmicrohttpd-dev libcjson-dev
  ffmpeg sox espeak-ng
  libcmark-dev nginx supervisor systemd curl
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
