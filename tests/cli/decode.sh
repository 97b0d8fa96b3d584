#!/bin/bash
# `ear decode`: a valid 1-D .npy of what ffmpeg decodes, --rate and --max-seconds,
# failures as exit 1 with one `ear: FILE: why` line and no output left, and bad
# usage as exit 2. The sounds are made at test time (tests/audio/decode_sounds.sh).
set -u
EAR=${EAR_BIN:?EAR_BIN is not set}
SOURCE=${EAR_SOURCE_DIR:-.}
WORK=$(mktemp -d "${EAR_TEST_TMP:-/tmp}/cli_decode.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
. "$(dirname "$0")/../check.sh"

stderr_has() { grep -q -- "$1" "$WORK/stderr"; }
stderr_lines() { wc -l <"$WORK/stderr" | tr -d ' '; }

# Runs ear, keeping its status in $status and its stderr in $WORK/stderr. Under
# the sanitizers a leak or error also exits 1, so their reports fail the test.
run_ear() {
    "$EAR" "$@" >"$WORK/stdout" 2>"$WORK/stderr"
    status=$?
    check "ear $*: no sanitizer report: $(head -c 2000 "$WORK/stderr")" \
        eval '! grep -q "Sanitizer\|runtime error:" "$WORK/stderr"'
}

# The .npy header's dictionary, and its length in bytes (magic to newline).
npy_header() { head -c 256 "$1" | tr -d '\0' | grep -ao "{.*}"; }
npy_header_length() { echo $((10 + $(od -An -tu2 -j8 -N2 "$1" | tr -d ' '))); }
npy_shape() { npy_header "$1" | grep -o "'shape': ([0-9, ]*" | sed "s/'shape': (//; s/,$//"; }

# A well-formed 1-D float32 .npy of N samples: magic, version 1.0, the header
# padded to a multiple of 64 and ending in a newline, the data's size exact.
valid_npy() { # valid_npy FILE N
    local length
    length=$(npy_header_length "$1")
    [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "934e554d50590100" ] &&
        [ $((length % 64)) -eq 0 ] &&
        [ "$(tail -c +"$length" "$1" | head -c 1 | od -An -tx1 | tr -d ' ')" = "0a" ] &&
        npy_header "$1" | grep -q "'descr': '<f4', 'fortran_order': False, 'shape': ($2,)" &&
        [ "$(stat -c %s "$1")" -eq $((length + 4 * $2)) ]
}

bash "$SOURCE/tests/audio/decode_sounds.sh" "$WORK" webm-opus.webm wav-s16-16k-mono.wav \
    wav-s16-44k-stereo.wav webm-opus-70s.webm m4a-aac.m4a image.png wav-adpcm.wav \
    video-only.mp4 || { echo "could not make the test sounds" >&2; exit 1; }

# 1. Browser audio (WebM/Opus, 48 kHz stereo, 4 s) to 16 kHz: 64000 samples.
run_ear decode "$WORK/webm-opus.webm" -o "$WORK/opus.npy"
check "webm: exit 0 (status $status: $(cat "$WORK/stderr"))" [ "$status" -eq 0 ]
check "webm: nothing on stderr: $(cat "$WORK/stderr")" [ ! -s "$WORK/stderr" ]
check "webm: a valid .npy of 64000 samples: $(npy_header "$WORK/opus.npy")" \
    valid_npy "$WORK/opus.npy" 64000

# 2. A 16 kHz mono WAV needs no resampling: the samples are ffmpeg's, bit for bit.
run_ear decode "$WORK/wav-s16-16k-mono.wav" -o "$WORK/wav.npy"
check "wav: exit 0 (status $status)" [ "$status" -eq 0 ]
ffmpeg -nostdin -v error -i "$WORK/wav-s16-16k-mono.wav" -f f32le - >"$WORK/wav.raw"
check "wav: the same samples as ffmpeg -f f32le" \
    cmp -s <(tail -c +$(($(npy_header_length "$WORK/wav.npy") + 1)) "$WORK/wav.npy") "$WORK/wav.raw"

# 3. --rate: 4 s at 8 kHz and at 44.1 kHz.
for rate in 8000 44100; do
    run_ear decode --rate "$rate" "$WORK/wav-s16-44k-stereo.wav" -o "$WORK/rate.npy"
    check "--rate $rate: exit 0 (status $status)" [ "$status" -eq 0 ]
    check "--rate $rate: $((4 * rate)) samples, got $(npy_shape "$WORK/rate.npy")" \
        valid_npy "$WORK/rate.npy" $((4 * rate))
done

# 4. The cap: 70 s gives 60 s by default, 2 s with --max-seconds 2, all with 0;
#    a cut says so on stderr (one line) and still succeeds.
run_ear decode "$WORK/webm-opus-70s.webm" -o "$WORK/long.npy"
check "70 s: exit 0 (status $status)" [ "$status" -eq 0 ]
check "70 s: 960000 samples, got $(npy_shape "$WORK/long.npy")" valid_npy "$WORK/long.npy" 960000
check "70 s: the cut is reported: $(cat "$WORK/stderr")" stderr_has "first 60 s"
run_ear decode --max-seconds 2 "$WORK/webm-opus-70s.webm" -o "$WORK/long.npy"
check "--max-seconds 2: 32000 samples, got $(npy_shape "$WORK/long.npy")" \
    valid_npy "$WORK/long.npy" 32000
check "--max-seconds 2: one line on stderr" [ "$(stderr_lines)" -eq 1 ]
run_ear decode --max-seconds 0 "$WORK/webm-opus-70s.webm" -o "$WORK/long.npy"
check "--max-seconds 0: 1120000 samples, got $(npy_shape "$WORK/long.npy")" \
    valid_npy "$WORK/long.npy" 1120000
check "--max-seconds 0: nothing on stderr" [ ! -s "$WORK/stderr" ]

# 5. Failures: exit 1, a single line `ear: FILE: why`, no output file, no
#    temporary file left beside it.
head -c $(($(stat -c %s "$WORK/m4a-aac.m4a") / 2)) "$WORK/m4a-aac.m4a" >"$WORK/cut.m4a"
: >"$WORK/empty.webm"
printf 'not a sound at all\n' >"$WORK/notes.txt"
head -c 20000 /dev/urandom >"$WORK/random.mp3"
mkdir "$WORK/out"
failure() { # failure FILE WORDS_IN_MESSAGE
    run_ear decode "$1" -o "$WORK/out/bad.npy"
    check "$(basename "$1"): exit 1, got $status" [ "$status" -eq 1 ]
    check "$(basename "$1"): one line, got $(stderr_lines): $(cat "$WORK/stderr")" \
        [ "$(stderr_lines)" -eq 1 ]
    check "$(basename "$1"): 'ear: $1: ...', got: $(cat "$WORK/stderr")" stderr_has "^ear: $1: ."
    check "$(basename "$1"): message says '$2'" stderr_has "$2"
    check "$(basename "$1"): nothing left in the output folder: $(ls -A "$WORK/out")" \
        [ -z "$(ls -A "$WORK/out")" ]
}
failure "$WORK/cut.m4a" "moov atom not found"
failure "$WORK/empty.webm" "empty"
failure "$WORK/notes.txt" "unrecognised"
failure "$WORK/random.mp3" "unrecognised"
failure "$WORK/image.png" "png"
failure "$WORK/wav-adpcm.wav" "adpcm_ms"
failure "$WORK/video-only.mp4" "no audio stream"
failure "$WORK/no-such-file.wav" "No such file"
run_ear decode "$WORK/webm-opus.webm" -o "$WORK/no-such-folder/out.npy"
check "unwritable output: exit 1, got $status" [ "$status" -eq 1 ]
check "unwritable output: one 'ear: ' line: $(cat "$WORK/stderr")" \
    [ "$(stderr_lines)" -eq 1 -a "$(grep -c "^ear: " "$WORK/stderr")" -eq 1 ]

# 6. Bad usage: exit 2, nothing written.
usage() { # usage DESCRIPTION ARGS...
    local what=$1
    shift
    run_ear decode "$@"
    check "$what: exit 2, got $status ($(cat "$WORK/stderr"))" [ "$status" -eq 2 ]
    check "$what: no output" [ -z "$(ls -A "$WORK/out")" ]
}
usage "no arguments"
usage "no -o" "$WORK/webm-opus.webm"
usage "no input" -o "$WORK/out/x.npy"
usage "two inputs" "$WORK/webm-opus.webm" "$WORK/webm-opus.webm" -o "$WORK/out/x.npy"
usage "--rate abc" --rate abc "$WORK/webm-opus.webm" -o "$WORK/out/x.npy"
usage "--rate 10" --rate 10 "$WORK/webm-opus.webm" -o "$WORK/out/x.npy"
usage "--max-seconds -1" --max-seconds -1 "$WORK/webm-opus.webm" -o "$WORK/out/x.npy"
usage "--model" --model m.ear "$WORK/webm-opus.webm" -o "$WORK/out/x.npy"
usage "unknown option" --loud "$WORK/webm-opus.webm" -o "$WORK/out/x.npy"
usage "-o without a value" "$WORK/webm-opus.webm" -o
run_ear decode --help
check "--help: exit 0, got $status" [ "$status" -eq 0 ]
check "--help: usage on stdout" grep -q "usage: ear decode" "$WORK/stdout"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
