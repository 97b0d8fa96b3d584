#!/bin/bash
# `ear mel`: the log-mel of a WAV against torchaudio's (tests/fixtures/audio/mel_cli*,
# from tools/make_mel_fixtures.py), the shape against the frame formula for
# decoded clips of other rates, and every bad input refused with the right status.
set -u
EAR=${EAR_BIN:?EAR_BIN is not set}
FIXTURES=${EAR_SOURCE_DIR:-.}/tests/fixtures/audio
WORK=$(mktemp -d "${EAR_TEST_TMP:-/tmp}/cli_mel.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
TOLERANCE=1e-3
. "$(dirname "$0")/../check.sh"

# Largest |a - b| over two .npy files of the same shape ("size differs" if not).
max_difference() {
    if [ "$(npy_shape "$1")" != "$(npy_shape "$2")" ]; then
        echo "size differs"
        return
    fi
    paste <(npy_values "$1") <(npy_values "$2") | awk '
        { d = $1 - $2; if (d < 0) d = -d; if (d > m || d != d) m = d; n++ }
        END { if (n == 0) print "empty"; else printf "%.3g\n", m }'
}

within_tolerance() { # within_tolerance DIFFERENCE
    awk -v d="$1" -v t="$TOLERANCE" 'BEGIN { exit !(d ~ /^[0-9.e+-]+$/ && d + 0 <= t + 0) }'
}

# Runs ear, keeping its status in $status and its stderr in $WORK/stderr. Under
# the sanitizers a leak or error also exits 1, so their reports fail the test.
run_ear() {
    "$EAR" "$@" 2>"$WORK/stderr"
    status=$?
    check "ear $*: no sanitizer report: $(head -c 2000 "$WORK/stderr")" \
        not_in_stderr "Sanitizer\|runtime error:"
}

not_in_stderr() { ! grep -q -- "$1" "$WORK/stderr"; }

stderr_has() { grep -q -- "$1" "$WORK/stderr"; }

# 1. Defaults: the spec's example configuration, against torchaudio.
run_ear mel "$FIXTURES/mel_cli.wav" -o "$WORK/default.npy"
check "default: exit 0 (status $status: $(cat "$WORK/stderr"))" [ "$status" -eq 0 ]
check "default: shape [64, 51], got [$(npy_shape "$WORK/default.npy")]" \
    [ "$(npy_shape "$WORK/default.npy")" = "64, 51" ]
difference=$(max_difference "$WORK/default.npy" "$FIXTURES/mel_cli_default.npy")
echo "default:       max |ear mel - torchaudio| = $difference"
check "default: max difference $difference" within_tolerance "$difference"

# 1b. --show draws it: 16 band rows, one column per frame (51 < 96), and the
# range of the values it drew; without -o it writes no file.
run_ear mel "$FIXTURES/mel_cli.wav" --show >"$WORK/show.txt"
check "--show: exit 0 (status $status: $(cat "$WORK/stderr"))" [ "$status" -eq 0 ]
check "--show: 16 rows drawn, got $(grep -c '|$' "$WORK/show.txt")" \
    [ "$(grep -c '|$' "$WORK/show.txt")" -eq 16 ]
check "--show: rows of 51 columns" \
    [ "$(grep -m1 '|$' "$WORK/show.txt" | sed 's/^[^|]*|//; s/|$//' | tr -d '\n' | LC_ALL=C.UTF-8 wc -m)" -eq 51 ]
check "--show: says 64 mel bands x 51 frames" grep -q "64 mel bands x 51 frames" "$WORK/show.txt"
run_ear mel "$FIXTURES/mel_cli.wav" --show -o "$WORK/show.npy" >/dev/null
check "--show with -o: same file as without" cmp -s "$WORK/show.npy" "$WORK/default.npy"
run_ear decode "$FIXTURES/mel_cli.wav" --show -o "$WORK/bad.npy"
check "decode --show: exit 2, got $status" [ "$status" -eq 2 ]

# 2. --config with the spec's `audio` object.
run_ear mel --config "$FIXTURES/mel_cli.json" "$FIXTURES/mel_cli.wav" -o "$WORK/config.npy"
check "config: exit 0 (status $status: $(cat "$WORK/stderr"))" [ "$status" -eq 0 ]
check "config: shape [40, 81], got [$(npy_shape "$WORK/config.npy")]" \
    [ "$(npy_shape "$WORK/config.npy")" = "40, 81" ]
difference=$(max_difference "$WORK/config.npy" "$FIXTURES/mel_cli_cli.npy")
echo "--config:      max |ear mel - torchaudio| = $difference"
check "config: max difference $difference" within_tolerance "$difference"

# 3. A whole configuration holding that object gives the very same bytes.
printf '{"embed_dim": 8, "audio": %s}\n' "$(cat "$FIXTURES/mel_cli.json")" >"$WORK/whole.json"
run_ear mel --config "$WORK/whole.json" "$FIXTURES/mel_cli.wav" -o "$WORK/whole.npy"
check "whole configuration: exit 0 ($(cat "$WORK/stderr"))" [ "$status" -eq 0 ]
check "whole configuration: same output as the audio object" \
    cmp -s "$WORK/whole.npy" "$WORK/config.npy"

# 4. Other rates: the clip is decoded at the configuration's rate, and the
#    output has n_mels rows and 1 + samples / hop_length frames.
sox -n -r 44100 -c 2 -b 16 "$WORK/stereo.wav" synth 1.3 sine 440 sine 3000 2>/dev/null
printf '{"sample_rate": 22050, "n_fft": 1024, "win_length": 1024, "hop_length": 256, "n_mels": 80, "f_max": 11025}\n' \
    >"$WORK/22k.json"
for input in "$FIXTURES/mel_cli.wav" "$WORK/stereo.wav"; do
    for rate in 16000 22050; do
        config=() n_mels=64 hop=160
        if [ "$rate" = 22050 ]; then config=(--config "$WORK/22k.json") n_mels=80 hop=256; fi
        run_ear decode --rate "$rate" "$input" -o "$WORK/wave.npy"
        samples=$(npy_shape "$WORK/wave.npy")
        run_ear mel "${config[@]}" "$input" -o "$WORK/rate.npy"
        expected="$n_mels, $((1 + ${samples:-0} / hop))"
        check "$(basename "$input") at $rate Hz: shape [$expected] for $samples samples, got [$(npy_shape "$WORK/rate.npy")] ($(cat "$WORK/stderr"))" \
            [ -n "$samples" -a "$(npy_shape "$WORK/rate.npy")" = "$expected" ]
    done
done

# 5. Bad configurations: exit 1, one `ear: ...` line naming the problem, no output.
bad_config() { # bad_config NAME JSON WORD_IN_MESSAGE
    printf '%s\n' "$2" >"$WORK/$1.json"
    rm -f "$WORK/bad.npy"
    run_ear mel --config "$WORK/$1.json" "$FIXTURES/mel_cli.wav" -o "$WORK/bad.npy"
    check "bad config $1: exit 1, got $status" [ "$status" -eq 1 ]
    check "bad config $1: message names '$3': $(cat "$WORK/stderr")" stderr_has "$3"
    check "bad config $1: message starts 'ear: '" stderr_has "^ear: "
    check "bad config $1: no output left" [ ! -e "$WORK/bad.npy" ]
}
bad_config not_json '{"n_fft": 512,' "JSON"
bad_config string '{"audio": {"n_fft": "big"}}' "n_fft"
bad_config window '{"n_fft": 256, "win_length": 400}' "win_length"
bad_config f_max '{"f_min": 5000, "f_max": 4000}' "f_max"
bad_config hop '{"hop_length": 0}' "hop_length"
bad_config std '{"std": 0}' "std"
rm -f "$WORK/bad.npy"
run_ear mel --config "$WORK/no-such.json" "$FIXTURES/mel_cli.wav" -o "$WORK/bad.npy"
check "missing config: exit 1, got $status" [ "$status" -eq 1 ]
check "missing config: message names the file" stderr_has "no-such.json"
check "missing config: no output left" [ ! -e "$WORK/bad.npy" ]

# 6. A clip too short for reflect padding (160 samples <= n_fft / 2): exit 1.
sox -n -r 16000 -c 1 -b 16 "$WORK/short.wav" synth 0.01 sine 440 2>/dev/null
run_ear mel "$WORK/short.wav" -o "$WORK/bad.npy"
check "short clip: exit 1, got $status" [ "$status" -eq 1 ]
check "short clip: message says so: $(cat "$WORK/stderr")" stderr_has "too short"
check "short clip: no output left" [ ! -e "$WORK/bad.npy" ]

# 7. Bad usage: exit 2.
run_ear mel "$FIXTURES/mel_cli.wav"
check "no -o: exit 2, got $status" [ "$status" -eq 2 ]
check "no -o: message says -o" stderr_has "-o"
run_ear mel -o "$WORK/bad.npy"
check "no input: exit 2, got $status" [ "$status" -eq 2 ]
run_ear mel --config "$FIXTURES/mel_cli.json" --model m.ear "$FIXTURES/mel_cli.wav" -o "$WORK/bad.npy"
check "--model with --config: exit 2, got $status" [ "$status" -eq 2 ]
run_ear mel --rate 8000 "$FIXTURES/mel_cli.wav" -o "$WORK/bad.npy"
check "--rate: exit 2, got $status" [ "$status" -eq 2 ]
run_ear mel --config
check "--config without a value: exit 2, got $status" [ "$status" -eq 2 ]
check "bad usage: no output left" [ ! -e "$WORK/bad.npy" ]
run_ear mel --help >/dev/null
check "--help: exit 0, got $status" [ "$status" -eq 0 ]

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
