#!/bin/bash
# `ear embed` of a WAV and of a PNG against the seed service's embeddings
# (tests/fixtures/nn/, from tools/make_nn_fixtures.py), `ear info` on models,
# `ear mel --model`, and every bad input refused with the right status and no output left.
set -u
EAR=${EAR_BIN:?EAR_BIN is not set}
FIXTURES=${EAR_SOURCE_DIR:-.}/tests/fixtures/nn
MODEL=$FIXTURES/nn_basic_f32.safetensors
WORK=$(mktemp -d "${EAR_TEST_TMP:-/tmp}/cli_model.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
TOLERANCE=1e-4 # the contract: max |difference| per embedding
. "$(dirname "$0")/../check.sh"

# Largest |a - b| between the values of a .npy file and the first values of another.
max_difference() { # max_difference GOT.npy EXPECTED.npy
    local count
    count=$(npy_values "$1" | wc -l)
    paste <(npy_values "$1") <(npy_values "$2" | head -n "$count") | awk '
        NF != 2 { bad = 1 }
        { d = $1 - $2; if (d < 0) d = -d; if (d > m || d != d) m = d; n++ }
        END { if (n == 0 || bad) print "size differs"; else printf "%.3g\n", m }'
}

within_tolerance() { # within_tolerance DIFFERENCE
    awk -v d="$1" -v t="$TOLERANCE" 'BEGIN { exit !(d ~ /^[0-9.e+-]+$/ && d + 0 <= t + 0) }'
}

# Runs ear, keeping its status in $status and its stderr in $WORK/stderr. Under
# the sanitizers a leak or error also exits 1, so their reports fail the test.
run_ear() {
    "$EAR" "$@" >"$WORK/stdout" 2>"$WORK/stderr"
    status=$?
    check "ear $*: no sanitizer report: $(head -c 2000 "$WORK/stderr")" \
        not_in_stderr "Sanitizer\|runtime error:"
}

not_in_stderr() { ! grep -q -- "$1" "$WORK/stderr"; }
stderr_has() { grep -q -- "$1" "$WORK/stderr"; }
stdout_has() { grep -q -- "$1" "$WORK/stdout"; }
differ() { ! cmp -s "$1" "$2"; }

# 1. The embedding of a sound (1.2 s at the model's 8 kHz: three 0.5 s segments, the last
#    overlapping) and of an RGBA PNG, against the seed service's.
run_ear embed --model "$MODEL" --audio "$FIXTURES/nn_clip.wav" -o "$WORK/audio.npy"
check "audio: exit 0 (status $status: $(cat "$WORK/stderr"))" [ "$status" -eq 0 ]
check "audio: shape [8], got [$(npy_shape "$WORK/audio.npy")]" [ "$(npy_shape "$WORK/audio.npy")" = "8" ]
difference=$(max_difference "$WORK/audio.npy" "$FIXTURES/nn_basic_f32_clip.npy")
echo "audio: max |ear embed - PyTorch| = $difference"
check "audio: max difference $difference" within_tolerance "$difference"

run_ear embed --model "$MODEL" --image "$FIXTURES/nn_alpha.png" -o "$WORK/image.npy" --threads 2
check "image: exit 0 (status $status: $(cat "$WORK/stderr"))" [ "$status" -eq 0 ]
difference=$(max_difference "$WORK/image.npy" "$FIXTURES/nn_basic_f32_image.npy")
echo "image: max |ear embed - PyTorch| = $difference"
check "image: max difference $difference" within_tolerance "$difference"
check "image and audio embeddings differ" differ "$WORK/image.npy" "$WORK/audio.npy"

# 2. ear info: the configuration and the fingerprint of the file's bytes.
run_ear info "$MODEL"
check "info: exit 0 (status $status: $(cat "$WORK/stderr"))" [ "$status" -eq 0 ]
fingerprint=$(awk '$1 == "nn_basic_f32.safetensors" { print $2 }' "$FIXTURES/nn_fingerprints.txt")
check "info: fingerprint $fingerprint" stdout_has "fingerprint *$fingerprint"
for word in "embed_dim *8" "parameters" "137 F32, 26 I64" "layers \[2, 1, 1, 1\]" "mlp 16 -> 12"; do
    check "info: says '$word'" stdout_has "$word"
done
run_ear info "$FIXTURES/nn_bottleneck_f16.safetensors"
check "info f16: exit 0 and F16" [ "$status" -eq 0 ]
check "info f16: bottleneck" stdout_has "bottleneck"
check "info f16: F16" stdout_has "F16"

# 2b. --weights: bf16 and int8 embeddings stay within cosine 0.999 of float32's (this suite
#     runs with EAR_WEIGHTS=f32, the float32 contract); the default without EAR_WEIGHTS is
#     int8 (bench/weights_accuracy.py); a bad type, in the option or the variable, is a usage error.
cosine() { # cosine A.npy B.npy
    paste <(npy_values "$1") <(npy_values "$2") |
        awk '{ d += $1 * $2; a += $1 * $1; b += $2 * $2 } END { printf "%.6f\n", d / sqrt(a * b) }'
}
for weights in bf16 int8; do
    run_ear embed --model "$MODEL" --audio "$FIXTURES/nn_clip.wav" -o "$WORK/audio_$weights.npy" \
        --weights "$weights"
    check "$weights: exit 0 (status $status: $(cat "$WORK/stderr"))" [ "$status" -eq 0 ]
    c=$(cosine "$WORK/audio_$weights.npy" "$WORK/audio.npy")
    echo "audio $weights: cosine against f32 $c"
    check "$weights: cosine $c >= 0.999" awk -v c="$c" 'BEGIN { exit !(c >= 0.999) }'
done
EAR_WEIGHTS= run_ear embed --model "$MODEL" --audio "$FIXTURES/nn_clip.wav" -o "$WORK/audio_default.npy"
check "default: exit 0 (status $status)" [ "$status" -eq 0 ]
check "default is int8" cmp -s "$WORK/audio_default.npy" "$WORK/audio_int8.npy"
# The compact family's int8 runs its convolutions in bf16 (the same bits as bf16), so the default
# is told apart on the wav2vec2 family, whose matrix products int8 quantises.
W2V_MODEL=${EAR_SOURCE_DIR:-.}/tests/fixtures/w2v/w2v_tiny.pt
for weights in bf16 int8 default; do
    opt=(--weights "$weights")
    [ "$weights" = default ] && opt=()
    EAR_WEIGHTS= run_ear embed --model "$W2V_MODEL" --audio "$FIXTURES/nn_clip.wav" \
        -o "$WORK/w2v_$weights.npy" "${opt[@]}"
    check "w2v $weights: exit 0 (status $status: $(cat "$WORK/stderr"))" [ "$status" -eq 0 ]
done
check "w2v: int8 and bf16 differ" sh -c "! cmp -s '$WORK/w2v_int8.npy' '$WORK/w2v_bf16.npy'"
check "w2v: the default is int8" cmp -s "$WORK/w2v_default.npy" "$WORK/w2v_int8.npy"
run_ear embed --model "$MODEL" --audio "$FIXTURES/nn_clip.wav" -o "$WORK/bad.npy" --weights fp16
check "--weights fp16: exit 2, named, no output" \
    sh -c "[ $status -eq 2 ] && grep -q fp16 '$WORK/stderr' && [ ! -e '$WORK/bad.npy' ]"
EAR_WEIGHTS=fp8 run_ear embed --model "$MODEL" --audio "$FIXTURES/nn_clip.wav" -o "$WORK/bad.npy"
check "EAR_WEIGHTS=fp8: exit 2, named" sh -c "[ $status -eq 2 ] && grep -q 'EAR_WEIGHTS' '$WORK/stderr'"

# 3. ear mel --model: the model's log-mel parameters (16 mels, hop 80 at 8 kHz).
run_ear mel --model "$MODEL" "$FIXTURES/nn_clip.wav" -o "$WORK/mel.npy"
check "mel --model: exit 0 (status $status: $(cat "$WORK/stderr"))" [ "$status" -eq 0 ]
check "mel --model: shape [16, 121], got [$(npy_shape "$WORK/mel.npy")]" \
    [ "$(npy_shape "$WORK/mel.npy")" = "16, 121" ]

# 4. Failures: exit 1, one `ear: ...` line naming the problem, no output left.
failure() { # failure NAME WORD_IN_MESSAGE ARGS...
    local name=$1 word=$2
    shift 2
    rm -f "$WORK/bad.npy"
    run_ear "$@"
    check "$name: exit 1, got $status" [ "$status" -eq 1 ]
    check "$name: message names '$word': $(cat "$WORK/stderr")" stderr_has "$word"
    check "$name: message starts 'ear: '" stderr_has "^ear: "
    check "$name: no output left" [ ! -e "$WORK/bad.npy" ]
}
sox -n -r 8000 -c 1 -b 16 "$WORK/short.wav" synth 0.01 sine 440 2>/dev/null # 80 samples
head -c 1000 "$FIXTURES/nn_photo.jpg" >"$WORK/cut.jpg"
printf 'not a sound at all' >"$WORK/noise.wav"
head -c 3000 "$MODEL" >"$WORK/cut.safetensors"
failure "short clip" "too short" embed --model "$MODEL" --audio "$WORK/short.wav" -o "$WORK/bad.npy"
failure "missing model" "no-such.safetensors" embed --model "$WORK/no-such.safetensors" --audio "$FIXTURES/nn_clip.wav" -o "$WORK/bad.npy"
failure "truncated model" "cut.safetensors" embed --model "$WORK/cut.safetensors" --audio "$FIXTURES/nn_clip.wav" -o "$WORK/bad.npy"
failure "not a model" "nn_clip.wav" embed --model "$FIXTURES/nn_clip.wav" --audio "$FIXTURES/nn_clip.wav" -o "$WORK/bad.npy"
failure "undecodable audio" "noise.wav" embed --model "$MODEL" --audio "$WORK/noise.wav" -o "$WORK/bad.npy"
failure "truncated image" "cut.jpg" embed --model "$MODEL" --image "$WORK/cut.jpg" -o "$WORK/bad.npy"
failure "missing image" "no-such.png" embed --model "$MODEL" --image "$WORK/no-such.png" -o "$WORK/bad.npy"
failure "no image tower" "no image tower" embed --model "$FIXTURES/nn_audio_bf16.safetensors" --image "$FIXTURES/nn_alpha.png" -o "$WORK/bad.npy"
failure "no audio tower" "no audio tower" embed --model "$FIXTURES/nn_image_f32.safetensors" --audio "$FIXTURES/nn_clip.wav" -o "$WORK/bad.npy"
failure "mel without audio tower" "no audio tower" mel --model "$FIXTURES/nn_image_f32.safetensors" "$FIXTURES/nn_clip.wav" -o "$WORK/bad.npy"
failure "mel, truncated model" "cut.safetensors" mel --model "$WORK/cut.safetensors" "$FIXTURES/nn_clip.wav" -o "$WORK/bad.npy"
failure "unwritable output" "no-such-folder" embed --model "$MODEL" --image "$FIXTURES/nn_alpha.png" -o "$WORK/no-such-folder/bad.npy"
failure "info, truncated model" "cut.safetensors" info "$WORK/cut.safetensors"
failure "info, missing file" "no-such" info "$WORK/no-such"
failure "info, not a model" "nn_alpha.png" info "$FIXTURES/nn_alpha.png"

# The wav2vec2 family decodes as the original's `ffmpeg -ar 16000 -ac 1` did (16-bit samples,
# FFmpeg's downmix): in the sandboxed helper (the default) exactly as in-process, and as the
# original embedded it (tests/fixtures/w2v, from PyTorch).
W2V=${EAR_SOURCE_DIR:-.}/tests/fixtures/w2v
for sound in s_10s.mp3 stereo_48k.webm stereo_44k.wav; do
    run_ear embed --model "$W2V/w2v_gn.pt" --audio "$W2V/$sound" -o "$WORK/w2v_sandbox.npy"
    check "w2v $sound in the sandbox: exit 0 ($(cat "$WORK/stderr"))" [ "$status" -eq 0 ]
    run_ear embed --model "$W2V/w2v_gn.pt" --audio "$W2V/$sound" -o "$WORK/w2v_in_process.npy" \
        --no-sandbox
    check "w2v $sound: the same embedding in and out of the sandbox" \
        cmp -s "$WORK/w2v_sandbox.npy" "$WORK/w2v_in_process.npy"
    if [ -e "$W2V/w2v_gn_$sound.npy" ]; then
        difference=$(max_difference "$WORK/w2v_sandbox.npy" "$W2V/w2v_gn_$sound.npy")
        check "w2v $sound in the sandbox: within $TOLERANCE of PyTorch's, got $difference" \
            within_tolerance "$difference"
    fi
done

# 5. Bad usage: exit 2.
usage() { # usage NAME ARGS...
    local name=$1
    shift
    rm -f "$WORK/bad.npy"
    run_ear "$@"
    check "$name: exit 2, got $status" [ "$status" -eq 2 ]
    check "$name: no output left" [ ! -e "$WORK/bad.npy" ]
}
usage "embed without --model" embed --audio "$FIXTURES/nn_clip.wav" -o "$WORK/bad.npy"
usage "embed without input" embed --model "$MODEL" -o "$WORK/bad.npy"
usage "embed with both inputs" embed --model "$MODEL" --audio "$FIXTURES/nn_clip.wav" --image "$FIXTURES/nn_alpha.png" -o "$WORK/bad.npy"
usage "embed without -o" embed --model "$MODEL" --audio "$FIXTURES/nn_clip.wav"
usage "embed with an unknown option" embed --model "$MODEL" --audio "$FIXTURES/nn_clip.wav" -o "$WORK/bad.npy" --fast
usage "embed with a stray argument" embed --model "$MODEL" --audio "$FIXTURES/nn_clip.wav" -o "$WORK/bad.npy" extra
usage "embed with --threads 0" embed --model "$MODEL" --audio "$FIXTURES/nn_clip.wav" -o "$WORK/bad.npy" --threads 0
usage "info without a file" info
usage "info with two files" info "$MODEL" "$MODEL"
run_ear embed --help
check "embed --help: exit 0" [ "$status" -eq 0 ]
check "embed --help: usage" stdout_has "usage: ear embed"
run_ear info --help
check "info --help: exit 0" [ "$status" -eq 0 ]
run_ear --help
check "ear --help lists embed and info" sh -c "grep -q '^  embed' '$WORK/stdout' && grep -q '^  info' '$WORK/stdout'"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
