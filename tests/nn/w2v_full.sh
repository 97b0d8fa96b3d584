#!/bin/bash
# The full-size original model (torchaudio's wav2vec2_base + torchvision's resnet50, random
# weights, random norms and BatchNorm statistics), saved with torch.save(state_dict) as the
# original's best_audio_visual_clip.pt is: `ear embed` of a stereo 48 kHz WebM/Opus clip and of a
# JPEG equals PyTorch's embedding (cosine >= 0.9999, every |difference| <= 1e-4), and `ear info`
# names the architecture. The 455 MB fixture is made at test time by
# tools/make_w2v_fixtures.py --full (slow: about a minute); skipped (77) without Debian's
# /usr/bin/python3 with torch, torchaudio, torchvision, soundfile, or without ffmpeg.
set -u
EAR=${EAR_BIN:?EAR_BIN is not set}
SOURCE=${EAR_SOURCE_DIR:-.}
PYTHON=/usr/bin/python3
if ! "$PYTHON" -c "import torch, torchaudio, torchvision, soundfile, numpy, PIL" 2>/dev/null ||
    ! command -v ffmpeg >/dev/null; then
    echo "skipped: needs $PYTHON with torch, torchaudio, torchvision, soundfile, and ffmpeg"
    exit 77
fi
WORK=$(mktemp -d "${EAR_TEST_TMP:-/tmp}/nn_w2v_full.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
. "$(dirname "$0")/../check.sh"
"$PYTHON" "$SOURCE/tools/make_w2v_fixtures.py" --full "$WORK" || { echo "fixture failed"; exit 1; }

close() { # close GOT.npy EXPECTED.npy
    "$PYTHON" - "$1" "$2" <<'PY'
import sys
import numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
worst = float(np.abs(a - b).max())
print(f"{sys.argv[1]}: cosine {cos:.9f}, max |difference| {worst:.3g}")
sys.exit(0 if a.shape == b.shape and cos >= 0.9999 and worst <= 1e-4 else 1)
PY
}
check "ear info names wav2vec2 and resnet" \
    bash -c "'$EAR' info '$WORK/full.pt' >'$WORK/info' && grep -q 'width 768, 12 layers, 12 heads' '$WORK/info' && grep -q 'ffn 3072, post-LN' '$WORK/info' && grep -q 'layers \[3, 4, 6, 3\]' '$WORK/info'"
check "ear embed --audio runs" "$EAR" embed --weights f32 --model "$WORK/full.pt" \
    --audio "$WORK/clip.webm" -o "$WORK/clip.npy"
check "audio equals PyTorch" close "$WORK/clip.npy" "$WORK/full_clip.npy"
check "ear embed --image runs" "$EAR" embed --weights f32 --model "$WORK/full.pt" \
    --image "$WORK/photo.jpg" -o "$WORK/photo.npy"
check "image equals PyTorch" close "$WORK/photo.npy" "$WORK/full_photo.npy"
# bf16 and int8 (the default): cosine >= 0.999 against PyTorch's F32.
near() { # near GOT.npy EXPECTED.npy
    "$PYTHON" -c "import sys, numpy as np; a, b = np.load(sys.argv[1]), np.load(sys.argv[2]);
c = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))); print(sys.argv[1], 'cosine', c);
sys.exit(0 if c >= 0.999 else 1)" "$1" "$2"
}
[ -n "${EAR_WEIGHTS:-}" ] && [ "$EAR_WEIGHTS" != bf16 ] && [ "$EAR_WEIGHTS" != int8 ] &&
    cp "$WORK/clip.npy" "$WORK/clip_$EAR_WEIGHTS.npy"
for weights in bf16 int8; do
    check "ear embed --weights $weights runs" "$EAR" embed --weights $weights \
        --model "$WORK/full.pt" --audio "$WORK/clip.webm" -o "$WORK/clip_$weights.npy"
    check "$weights audio near PyTorch" near "$WORK/clip_$weights.npy" "$WORK/full_clip.npy"
done
# Without --weights: $EAR_WEIGHTS, else int8 (the tests' environment may set it).
check "the default runs" "$EAR" embed --model "$WORK/full.pt" --audio "$WORK/clip.webm" \
    -o "$WORK/clip_default.npy"
check "the default is \$EAR_WEIGHTS or int8" \
    cmp -s "$WORK/clip_default.npy" "$WORK/clip_${EAR_WEIGHTS:-int8}.npy"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
