#!/bin/bash
# tools/convert.py: a user's checkpoint (torchvision resnet18 image encoder with its fc, a
# one-channel resnet18 audio encoder, a Linear and an MLP head, nested under model_state_dict
# beside an optimizer) converts with everything inferred, and `ear embed` on the result gives
# what the same torch modules give (tools/make_convert_case.py), to the spec's tolerance.
# Then every refusal: one line naming the prefix, key or tensor, exit 1 (2 for usage), and no
# output file (an existing one is left as it was). Skipped (77) without torch/torchvision.
set -u
EAR=${EAR_BIN:?EAR_BIN is not set}
SOURCE=${EAR_SOURCE_DIR:-.}
PYTHON=/usr/bin/python3
if ! "$PYTHON" -c "import torch, torchvision, torchaudio, numpy, PIL" 2>/dev/null; then
    echo "skipped: $PYTHON cannot import torch, torchvision (tools/ need Debian's python3-torch)"
    exit 77
fi
WORK=$(mktemp -d "${EAR_TEST_TMP:-/tmp}/tools_convert.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
CONVERT=$SOURCE/tools/convert.py
CASE=$WORK/case
OUT=$WORK/out
mkdir -p "$CASE" "$OUT"
PREFIXES=(--audio-encoder sound_net --audio-head sound_proj
          --image-encoder vision --image-head vision_proj.)
. "$(dirname "$0")/../check.sh"
run() { # run COMMAND...: status in $status, output in $WORK/stdout and $WORK/stderr
    "$@" >"$WORK/stdout" 2>"$WORK/stderr"
    status=$?
}
stderr_has() { grep -qF -- "$1" "$WORK/stderr"; }
stdout_has() { grep -qF -- "$1" "$WORK/stdout"; }
one_line() { [ "$(wc -l <"$WORK/stderr")" -eq 1 ]; }
nothing_left() { [ -z "$(ls -A "$OUT")" ]; }
# Under the sanitizers a leak or error also fails the test.
run_ear() {
    run "$EAR" "$@"
    check "ear $*: no sanitizer report: $(head -c 2000 "$WORK/stderr")" \
        not_in_stderr "Sanitizer\|runtime error:"
}
not_in_stderr() { ! grep -q -- "$1" "$WORK/stderr"; }
# "cosine C max_difference D" of two .npy vectors -> passes when C >= 0.9999 and D <= 1e-4.
close_enough() {
    awk '$1 == "cosine" && $3 == "max_difference" { ok = ($2 + 0 >= 0.9999 && $4 + 0 <= 1e-4) }
         END { exit !ok }' <<<"$1"
}

run "$PYTHON" "$SOURCE/tools/make_convert_case.py" make "$CASE"
if [ "$status" -ne 0 ]; then
    echo "could not make the case: $(cat "$WORK/stderr")" >&2
    exit 1
fi

# 1. Everything inferred, and said.
MODEL=$OUT/model.safetensors
run "$PYTHON" "$CONVERT" "$CASE/checkpoint.pt" -o "$MODEL" "${PREFIXES[@]}"
cat "$WORK/stdout"
check "convert: exit 0 ($(cat "$WORK/stderr"))" [ "$status" -eq 0 ]
check "convert: found under model_state_dict" stdout_has "state_dict from key 'model_state_dict'"
check "convert: optimizer ignored" stdout_has "ignored: epoch, optimizer, config"
RESNET18="resnet, basic blocks [2, 2, 2, 2], widths [64, 128, 256, 512]"
check "convert: audio encoder inferred" stdout_has \
    "audio encoder 'sound_net.': $RESNET18, 1 input channel -> 512 features (inferred)"
check "convert: image encoder inferred" stdout_has \
    "image encoder 'vision.': $RESNET18, 3 input channels -> 512 features (inferred)"
check "convert: fc dropped, and said" stdout_has "dropped 'vision.fc.bias', 'vision.fc.weight'"
check "convert: audio head inferred" stdout_has "audio head 'sound_proj.': linear 512 -> 256"
check "convert: image head inferred" stdout_has \
    "image head 'vision_proj.': mlp 512 -> 384 -> ReLU -> 256"
check "convert: embed_dim" stdout_has "embed_dim 256"
check "convert: the rest named" stdout_has \
    "not converted: 1 tensor outside the given prefixes (temperature)"
check "convert: only the model in the folder" [ "$(ls -A "$OUT")" = model.safetensors ]

# 2. The C engine gives the torch modules' embeddings.
run_ear info "$MODEL"
check "ear info: exit 0 ($(cat "$WORK/stderr"))" [ "$status" -eq 0 ]
check "ear info: no fc" [ "$(grep -c 'fc' "$WORK/stdout")" -eq 0 ]
for tower in audio image; do
    input=$CASE/sound.wav
    [ "$tower" = image ] && input=$CASE/image.png
    run_ear embed --model "$MODEL" --"$tower" "$input" -o "$WORK/ear_$tower.npy"
    check "$tower: ear embed exit 0 ($(cat "$WORK/stderr"))" [ "$status" -eq 0 ]
    result=$("$PYTHON" "$SOURCE/tools/make_convert_case.py" compare "$WORK/ear_$tower.npy" \
        "$CASE/torch_$tower.npy" 2>&1)
    echo "$tower: ear embed against torch: $result"
    check "$tower: cosine >= 0.9999 and max |difference| <= 1e-4: $result" close_enough "$result"
done

# 3. A --config that agrees with the shapes (and says the spec's settings) gives the same file.
cat >"$WORK/config.json" <<'EOF'
{"embed_dim": 256,
 "audio": {"sample_rate": 16000, "n_mels": 64, "segment_seconds": 5.0,
           "encoder": {"type": "resnet", "block": "basic", "layers": [2, 2, 2, 2]},
           "head": {"type": "linear"}},
 "image": {"size": 224, "head": {"type": "mlp", "hidden": 384}}}
EOF
run "$PYTHON" "$CONVERT" "$CASE/checkpoint.pt" -o "$WORK/agreed.safetensors" "${PREFIXES[@]}" \
    --config "$WORK/config.json"
check "config agrees: exit 0 ($(cat "$WORK/stderr"))" [ "$status" -eq 0 ]
check "config agrees: said" stdout_has "(--config agrees)"
check "config agrees: the same file" cmp -s "$WORK/agreed.safetensors" "$MODEL"
rm -f "$WORK/agreed.safetensors"

# 4. Refusals: exit 1, one line naming the culprit, nothing written.
rm -f "$MODEL"
refused() { # refused WHAT NEEDLE: the last run failed with status 1, saying NEEDLE, leaving nothing
    check "$1: exit 1 (status $status: $(cat "$WORK/stderr"))" [ "$status" -eq 1 ]
    check "$1: names $2 ($(cat "$WORK/stderr"))" stderr_has "$2"
    check "$1: one line" one_line
    check "$1: no output ($(ls -A "$OUT"))" nothing_left
}
run "$PYTHON" "$CONVERT" "$CASE/checkpoint.pt" -o "$MODEL" --audio-encoder sound_nett \
    --audio-head sound_proj
refused "wrong prefix" "no tensor starts with 'sound_nett.' (--audio-encoder)"
run "$PYTHON" "$CONVERT" "$CASE/checkpoint.pt" -o "$MODEL" --image-encoder vision \
    --image-head vision.layer4
refused "head prefix on an encoder" "--image-head 'vision.layer4.' is not a head"
run "$PYTHON" "$CONVERT" "$CASE/no_state.pt" -o "$MODEL" "${PREFIXES[@]}"
refused "no state_dict" "no state_dict"
check "no state_dict: names the keys it has" \
    stderr_has "the top-level keys are 'epoch', 'optimizer'"
run "$PYTHON" "$CONVERT" "$CASE/checkpoint.pt" -o "$MODEL" "${PREFIXES[@]}" \
    --config '{"audio": {"encoder": {"layers": [3, 4, 6, 3]}}}'
refused "config disagrees" \
    "audio.encoder.layers is [3, 4, 6, 3] but the checkpoint's 'sound_net.' has [2, 2, 2, 2]"
run "$PYTHON" "$CONVERT" "$CASE/checkpoint.pt" -o "$MODEL" "${PREFIXES[@]}" \
    --config '{"audio": {"n_mel": 80}}'
refused "config typo" "unknown key audio.n_mel"
run "$PYTHON" "$CONVERT" "$CASE/namespace.pt" -o "$MODEL" --audio-encoder w --audio-head v
refused "a pickled class" "argparse.Namespace"
check "a pickled class: suggests --allow-pickle" stderr_has "--allow-pickle"
run "$PYTHON" "$CONVERT" "$CASE/image.png" -o "$MODEL" "${PREFIXES[@]}"
refused "not a checkpoint" "not a PyTorch checkpoint"
run "$PYTHON" "$CONVERT" "$CASE/absent.pt" -o "$MODEL" "${PREFIXES[@]}"
refused "no such file" "absent.pt"
run "$PYTHON" "$CONVERT" "$CASE/checkpoint.pt" -o "$OUT/no/model.safetensors" "${PREFIXES[@]}"
refused "no output folder" "$OUT/no/model.safetensors: cannot write: no folder $OUT/no"
# An audio encoder with a head whose input width is not the encoder's output.
run "$PYTHON" "$CONVERT" "$CASE/checkpoint.pt" -o "$MODEL" --audio-encoder sound_net \
    --audio-head vision_proj.2
refused "head too narrow" \
    "tensor 'vision_proj.2.weight' takes 384 features but the audio encoder 'sound_net.' gives 512"
# The audio tower takes one channel: the image encoder is no audio encoder.
run "$PYTHON" "$CONVERT" "$CASE/checkpoint.pt" -o "$MODEL" --audio-encoder vision \
    --audio-head sound_proj
refused "three-channel audio" "tensor 'vision.conv1.weight' takes 3 input channels"

# A missing tensor; and a failed conversion leaves an existing file as it was.
echo "the previous model" >"$MODEL"
run "$PYTHON" "$CONVERT" "$CASE/missing.pt" -o "$MODEL" --audio-encoder sound_net \
    --audio-head sound_proj
check "missing tensor: exit 1 (status $status)" [ "$status" -eq 1 ]
check "missing tensor: named ($(cat "$WORK/stderr"))" \
    stderr_has "missing tensor 'sound_net.layer3.1.bn2.running_var' (--audio-encoder 'sound_net.')"
check "missing tensor: one line" one_line
check "missing tensor: the existing file untouched" [ "$(cat "$MODEL")" = "the previous model" ]
check "missing tensor: no temporary left" [ "$(ls -A "$OUT")" = model.safetensors ]
rm -f "$MODEL"

# Usage: a tower needs both prefixes, two roles cannot share one.
run "$PYTHON" "$CONVERT" "$CASE/checkpoint.pt" -o "$MODEL" --audio-encoder sound_net
check "usage: exit 2 (status $status)" [ "$status" -eq 2 ]
check "usage: names --audio-head" stderr_has "--audio-head is missing"
run "$PYTHON" "$CONVERT" "$CASE/checkpoint.pt" -o "$MODEL" --image-encoder vision \
    --image-head vision.
check "one prefix twice: exit 2 (status $status)" [ "$status" -eq 2 ]
check "one prefix twice: said" stderr_has "--image-encoder and --image-head are the same prefix"
check "usage: nothing written" nothing_left

echo "tools_convert: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
