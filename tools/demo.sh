#!/usr/bin/env bash
# `make demo`: a demo dataset, its index of both kinds (every frame and every sound its own
# item) built with its committed model (only when missing, older than the model or the
# dataset, or of an older index format), then `ear serve` on 127.0.0.1:5001 in the foreground
# (Ctrl-C stops it) with --fill-columns: every search fills both columns, and image queries
# use the model's image tower.
#
#   tools/demo.sh [EAR] [PORT] [DEMO]      defaults: build/ear, 5001, instruments
#
#   DEMO=instruments  tools/demo_instruments.sh: 19 instruments' sounds (rendered from Debian's
#                     General MIDI soundfonts) and pictures, in audio/<instrument>/ and
#                     frames/<instrument>/; demo/instruments.safetensors
#   DEMO=stamps       tools/demo_data.sh: Tux Paint's 124 stamps; demo/model.safetensors
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
ear=${1:-$repo/build/ear}
port=${2:-5001}
demo=${3:-instruments}
cache=$repo/.cache/ear-demo

case $demo in
    instruments)
        bash "$repo/tools/demo_instruments.sh" "$cache"
        data=$cache/instruments
        model=$repo/demo/instruments.safetensors
        index=$cache/instruments.index
        made=$data/.made-from
        try="play a note or a beat at the microphone, photograph a guitar (or any instrument),
      or upload a sound it never heard: $data/audio/<instrument>/timgm-*.wav" ;;
    stamps)
        bash "$repo/tools/demo_data.sh" "$cache"
        data=$cache/data
        model=$repo/demo/model.safetensors
        index=$cache/ear.index
        made=$data/labels.tsv
        try="play a cow's moo at the microphone, say \"moo\",
      or upload one of $data/audio/*.ogg" ;;
    *) echo "demo: DEMO must be instruments or stamps, not '$demo'" >&2; exit 2 ;;
esac
if [ ! -s "$index" ] || [ "$index" -ot "$model" ] || [ "$index" -ot "$made" ] ||
    ! "$ear" info "$index" >/dev/null 2>&1; then
    echo "demo: building $index with $(basename "$model")"
    "$ear" index --model "$model" --data "$data" -o "$index"
fi
echo "demo: open http://127.0.0.1:$port/ - $try (Ctrl-C stops)"
# --fill-columns: the instruments are 2,286 sounds and 55 pictures, so the original's walk of
# the best 100 would leave most sound queries with fewer than 5 pictures.
exec "$ear" serve --model "$model" --index "$index" --data "$data" --host 127.0.0.1 \
    --port "$port" --fill-columns
