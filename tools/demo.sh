#!/usr/bin/env bash
# `make demo`: the demo dataset (tools/demo_data.sh: Tux Paint's stamps), its index of both
# kinds, every frame and every sound its own item, built with the committed model (only when
# missing, older than the model or the dataset, or of an older index format), then
# `ear serve` on 127.0.0.1:5001 in the foreground (Ctrl-C stops it): a first search fills
# both columns, and image queries use the model's image tower.
#
#   tools/demo.sh [EAR] [PORT]      defaults: build/ear, 5001
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
ear=${1:-$repo/build/ear}
port=${2:-5001}
cache=$repo/.cache/ear-demo
model=$repo/demo/model.safetensors
index=$cache/ear.index

bash "$repo/tools/demo_data.sh" "$cache"
if [ ! -s "$index" ] || [ "$index" -ot "$model" ] || [ "$index" -ot "$cache/data/labels.tsv" ] ||
    ! "$ear" info "$index" >/dev/null 2>&1; then
    echo "demo: building $index with $(basename "$model")"
    "$ear" index --model "$model" --data "$cache/data" -o "$index"
fi
echo "demo: open http://127.0.0.1:$port/ - play a cow's moo at the microphone, say \"moo\","
echo "      or upload one of $cache/data/audio/*.ogg or $cache/data/frames/* (Ctrl-C stops)"
exec "$ear" serve --model "$model" --index "$index" --data "$cache/data" --host 127.0.0.1 \
    --port "$port"
