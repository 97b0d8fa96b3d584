#!/usr/bin/env bash
# The main job, for now: make a spoken sample the way a browser records it
# (WebM/Opus, 48 kHz stereo), decode it with Ear and show its log-mel.
set -euo pipefail
ear=${1:-build/ear}
work=${TMPDIR:-/tmp}/ear-demo
mkdir -p "$work"
espeak-ng -w "$work/speech.wav" "Ear turns a sound into the pictures that go with it."
ffmpeg -nostdin -v error -y -i "$work/speech.wav" -ac 2 -ar 48000 -c:a libopus -b:a 48k \
  "$work/speech.webm"
echo "sample: $work/speech.webm ($(stat -c %s "$work/speech.webm") bytes, WebM/Opus 48 kHz stereo)"
"$ear" decode "$work/speech.webm" -o "$work/speech.npy"
"$ear" mel "$work/speech.webm" -o "$work/speech-mel.npy" --show
