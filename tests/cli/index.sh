#!/bin/bash
# `ear index`, `ear search`, `ear info INDEX` on datasets made here (ffmpeg): Ear's flat
# layout (every file its own item, labels.tsv), the original's (audio/<label>/**,
# frames/<label>/**, nested, spaces and UTF-8, a kind's folder missing), odd names, a
# broken image and an undecodable sound (reported, left out), the same file whatever
# --jobs, searches whose answer is known (a sound or an image finds itself), the kind
# filter, models with one tower, refusals (other model, damaged files, the first index
# format), and failed builds that leave the previous index as it was.
set -u
EAR=${EAR_BIN:?EAR_BIN is not set}
SOURCE=${EAR_SOURCE_DIR:-.}
WORK=$(mktemp -d "${EAR_TEST_TMP:-/tmp}/cli_index.XXXXXX")
trap 'chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT
MODEL=$SOURCE/tests/fixtures/nn/nn_basic_f32.safetensors
OTHER_MODEL=$SOURCE/tests/fixtures/nn/nn_bottleneck_f16.safetensors
AUDIO_MODEL=$SOURCE/tests/fixtures/nn/nn_audio_bf16.safetensors
IMAGE_MODEL=$SOURCE/tests/fixtures/nn/nn_image_f32.safetensors
. "$(dirname "$0")/../check.sh"

# Runs ear with its status in $status, stdout and stderr in $WORK/stdout and $WORK/stderr.
# Under the sanitizers a leak or error also exits non-zero; their reports fail the test.
run_ear() {
    "$EAR" "$@" >"$WORK/stdout" 2>"$WORK/stderr"
    status=$?
    check "ear $*: no sanitizer report: $(head -c 2000 "$WORK/stderr")" \
        eval '! grep -q "Sanitizer\|runtime error:" "$WORK/stderr"'
}
stderr_has() { grep -q -- "$1" "$WORK/stderr"; }
stdout_has() { grep -q -- "$1" "$WORK/stdout"; }
# The ids of a search answer, in rank order, one a line.
result_ids() { grep -o '"id":"[^"]*"' "$WORK/stdout" | sed 's/"id":"//; s/"$//'; }
first_score() { grep -o '"score":[-0-9.e]*' "$WORK/stdout" | head -1 | cut -d: -f2; }
info_field() { grep "^  $1 " "$WORK/stdout" | awk '{print $2}'; }

make_image() { # make_image PATH COLOUR SIZE
    ffmpeg -nostdin -v error -y -f lavfi -i "color=c=$2:s=$3" -frames:v 1 "$1"
}
make_sound() { # make_sound PATH FREQUENCY SECONDS
    ffmpeg -nostdin -v error -y -f lavfi -i "sine=frequency=$2:duration=$3" -ar 8000 "$1"
}

DATA=$WORK/data
mkdir -p "$DATA/frames" "$DATA/audio" "$WORK/out"
{
    make_image "$DATA/frames/cow.png" red 48x40 &&
        make_sound "$DATA/audio/cow.wav" 220 0.7 &&
        make_image "$DATA/frames/dog bark.jpg" blue 40x56 &&
        make_sound "$DATA/audio/dog bark.ogg" 660 1.3 &&
        make_image "$DATA/frames/café.jpg" green 64x48 &&
        make_sound "$DATA/audio/café.flac" 1500 0.9 &&
        make_sound "$DATA/audio/rain.wav" 3000 0.6 &&
        make_image "$DATA/frames/sunset.png" orange 50x50 &&
        make_sound "$DATA/audio/broken.wav" 440 0.8 &&
        make_image "$DATA/frames/noise.png" gray 30x30 &&
        make_image "$DATA/frames/cow.jpg" yellow 30x30 &&
        make_sound "$DATA/audio/blip.wav" 440 0.05
} || { echo "could not make the test dataset" >&2; exit 1; }
printf 'this is not an image' >"$DATA/frames/broken.jpg"
printf 'RIFF\x10\x00\x00\x00WAVEjunkjunkjunk' >"$DATA/audio/noise.wav"
printf 'not an image either' >"$DATA/frames/empty.png"
printf 'ignored' >"$DATA/frames/.DS_Store"
mkdir "$DATA/frames/subfolder.jpg"
printf 'cow\tA cow.\r\ncafé\tCafé noise ✓\nnot a line\n\nrain\tRain on a roof.\nrain\tRain, later line.\n' \
    >"$DATA/labels.tsv"
FINGERPRINT=$(grep nn_basic_f32 "$SOURCE/tests/fixtures/nn/nn_fingerprints.txt" | awk '{print $2}')

# 1. Build: problems named with file and reason, the summary, exit 0.
INDEX=$WORK/out/ear.index
run_ear index --model "$MODEL" --data "$DATA" -o "$INDEX" --jobs 3
check "index: exit 0 (status $status: $(cat "$WORK/stderr"))" [ "$status" -eq 0 ]
check "index: the broken image is named" stderr_has "frames/broken.jpg"
check "index: the undecodable sound is named" stderr_has "audio/noise.wav"
check "index: the 0.05 s sound is named" stderr_has "audio/blip.wav: too short: 0.050 s"
check "index: summary" stderr_has "wrote $INDEX: 11 items (6 images, 5 sounds)"
check "index: four files left out, four problems" stderr_has "4 files left out, 4 problems"
check "index: plain progress lines off a terminal" stderr_has "ear index: 15/15 items (100%)"
check "index: no bar off a terminal" eval '! grep -q "\[#" "$WORK/stderr"'
check "index: no temporary left" [ -z "$(ls -A "$WORK/out" | grep -v '^ear.index$')" ]

run_ear info "$INDEX"
check "info: exit 0 ($(cat "$WORK/stderr"))" [ "$status" -eq 0 ]
check "info: fingerprint" [ "$(info_field fingerprint)" = "$FINGERPRINT" ]
check "info: items" [ "$(info_field items)" = 11 ]
check "info: images" [ "$(info_field images)" = 6 ]
check "info: sounds" [ "$(info_field sounds)" = 5 ]
check "info: dimension" [ "$(info_field dimension)" = 8 ]
check "info: element type" grep -q "element type   f32" "$WORK/stdout"
check "info: size" grep -q "file  *$(stat -c %s "$INDEX") bytes" "$WORK/stdout"
check "info: verified" stdout_has "verified"

# 2. The same bytes whatever the number of jobs.
run_ear index --model "$MODEL" --data "$DATA" -o "$WORK/out/one-job.index" --jobs 1
check "index --jobs 1: exit 0" [ "$status" -eq 0 ]
check "index --jobs 1 and --jobs 3: the same file" cmp -s "$INDEX" "$WORK/out/one-job.index"

# 3. Searches. A sound against the sounds finds itself first, with score 1.
run_ear search --model "$MODEL" --index "$INDEX" --against sounds -k 10 "$DATA/audio/dog bark.ogg"
check "search sounds: exit 0 ($(cat "$WORK/stderr"))" [ "$status" -eq 0 ]
check "search sounds: itself first" [ "$(result_ids | head -1)" = "dog bark" ]
check "search sounds: score 1" awk -v s="$(first_score)" 'BEGIN { exit !(s > 0.9999 && s < 1.0001) }'
check "search sounds: the five sounds" [ "$(result_ids | wc -l)" -eq 5 ]
check "search sounds: no broken sound" eval '! result_ids | grep -qx noise'
check "search sounds: percent-encoded URL" stdout_has '"url":"data/audio/dog%20bark.ogg"'
check "search sounds: percent-encoded sound" stdout_has '"audio_url":"data/audio/dog%20bark.ogg"'
check "search sounds: UTF-8 label" stdout_has '"label":"Café noise ✓"'
check "search sounds: UTF-8 URL" stdout_has '"audio_url":"data/audio/caf%C3%A9.flac"'
check "search sounds: last label line wins" stdout_has '"label":"Rain, later line."'
SCORE='"score":[-0-9.e]*'
check "search sounds: a sound has no frame" stdout_has \
    "\"id\":\"rain\",\"kind\":\"audio\",\"label\":\"Rain, later line.\",$SCORE,\"url\":\"data/audio/rain.wav\",\"frame_url\":null,\"audio_url\":\"data/audio/rain.wav\""
check "search sounds: only sounds" eval '! stdout_has "\"kind\":\"image\""'
check "search: query" stdout_has '"query":{"kind":"audio","duration_s":1.3,"format":"ogg","truncated":false}'
MS='[0-9.e-]*'
check "search: timings" \
    stdout_has "\"timing_ms\":{\"decode\":$MS,\"embed\":$MS,\"search\":$MS,\"total\":$MS}"
SOUNDS_ORDER=$(result_ids | tr '\n' ' ')

run_ear search --model "$MODEL" --index "$INDEX" -k 3 "$DATA/audio/cow.wav"
check "search frames: exit 0 ($(cat "$WORK/stderr"))" [ "$status" -eq 0 ]
check "search frames: k=3" [ "$(result_ids | wc -l)" -eq 3 ]
check "search frames: ranks" stdout_has '"rank":1,.*"rank":2,.*"rank":3,'
check "search frames: one JSON line" [ "$(wc -l <"$WORK/stdout")" -eq 1 ]
run_ear search --model "$MODEL" --index "$INDEX" -k 50 --kind all "$DATA/audio/cow.wav"
check "search --kind all: every item" [ "$(result_ids | wc -l)" -eq 11 ]
run_ear search --model "$MODEL" --index "$INDEX" -k 50 "$DATA/audio/cow.wav"
check "search without --kind: the frames, as --against frames was" [ "$(result_ids | wc -l)" -eq 6 ]
run_ear search --model "$MODEL" --index "$INDEX" -k 50 --kind image "$DATA/audio/cow.wav"
check "search frames: every frame, no more" [ "$(result_ids | wc -l)" -eq 6 ]
check "search frames: no sound" eval '! result_ids | grep -qx rain'
check "search frames: a frame has no sound" stdout_has \
    "\"id\":\"sunset\",\"kind\":\"image\",\"label\":\"sunset\",$SCORE,\"url\":\"data/frames/sunset.png\",\"frame_url\":\"data/frames/sunset.png\",\"audio_url\":null"
check "search frames: both cows, each its own item" eval \
    'stdout_has "\"url\":\"data/frames/cow.jpg\"" && stdout_has "\"url\":\"data/frames/cow.png\""'
FRAMES_ORDER=$(result_ids | tr '\n' ' ')
check "search frames: sorted by score" eval \
    'grep -o "\"score\":[-0-9.e]*" "$WORK/stdout" | cut -d: -f2 | sort -gr -c'

# The F16 index ranks these alike and gives scores within 1e-3.
run_ear index --model "$MODEL" --data "$DATA" -o "$WORK/out/half.index" --dtype f16 --jobs 2
check "index f16: exit 0" [ "$status" -eq 0 ]
run_ear info "$WORK/out/half.index"
check "info f16: element type" grep -q "element type   f16" "$WORK/stdout"
check "info f16: smaller" [ "$(stat -c %s "$WORK/out/half.index")" -lt "$(stat -c %s "$INDEX")" ]
run_ear search --model "$MODEL" --index "$WORK/out/half.index" -k 50 --kind image "$DATA/audio/cow.wav"
check "search f16: the same order" [ "$(result_ids | tr '\n' ' ')" = "$FRAMES_ORDER" ]
run_ear search --model "$MODEL" --index "$WORK/out/half.index" --against sounds -k 10 \
    "$DATA/audio/dog bark.ogg"
check "search f16 sounds: the same order" [ "$(result_ids | tr '\n' ' ')" = "$SOUNDS_ORDER" ]
check "search f16 sounds: score ~1" awk -v s="$(first_score)" 'BEGIN { exit !(s > 0.999 && s < 1.001) }'

# 4. Models with one tower.
run_ear index --model "$AUDIO_MODEL" --data "$DATA" -o "$WORK/out/audio-only.index"
check "audio-only model: exit 0 ($(cat "$WORK/stderr"))" [ "$status" -eq 0 ]
check "audio-only model: sounds only" stderr_has "(0 images, 5 sounds)"
check "audio-only model: says why the frames are left out" \
    stderr_has "the model has no image tower: 8 files left out"
run_ear search --model "$AUDIO_MODEL" --index "$WORK/out/audio-only.index" \
    "$DATA/audio/cow.wav"
check "audio-only index, images asked: exit 1" [ "$status" -eq 1 ]
check "audio-only index, images asked: says why" stderr_has "the index holds no images"
run_ear search --model "$AUDIO_MODEL" --index "$WORK/out/audio-only.index" --against sounds \
    "$DATA/audio/cow.wav"
check "audio-only index against sounds: itself first" [ "$(result_ids | head -1)" = "cow" ]
check "audio-only index: sounds only" eval '! stdout_has "\"kind\":\"image\""'
run_ear index --model "$IMAGE_MODEL" --data "$DATA" -o "$WORK/out/image-only.index"
check "image-only model: frames only" stderr_has "(6 images, 0 sounds)"
run_ear search --model "$IMAGE_MODEL" --index "$WORK/out/image-only.index" "$DATA/audio/cow.wav"
check "image-only model cannot search: exit 1" [ "$status" -eq 1 ]
check "image-only model cannot search: says why" stderr_has "no audio tower"

# 5. Refusals.
run_ear search --model "$OTHER_MODEL" --index "$INDEX" "$DATA/audio/cow.wav"
check "other model: exit 1" [ "$status" -eq 1 ]
check "other model: says so" stderr_has "built by another model (fingerprint $FINGERPRINT"
head -c 300 "$INDEX" >"$WORK/truncated.index"
run_ear info "$WORK/truncated.index"
check "truncated: exit 1" [ "$status" -eq 1 ]
check "truncated: says so" stderr_has "truncated index: 300 bytes"
run_ear search --model "$MODEL" --index "$WORK/truncated.index" "$DATA/audio/cow.wav"
check "truncated search: exit 1 and says so" eval '[ "$status" -eq 1 ] && stderr_has truncated'
run_ear search --model "$MODEL" --index "$MODEL" "$DATA/audio/cow.wav"
check "a model as index: not an Ear index" eval '[ "$status" -eq 1 ] && stderr_has "not an Ear index"'
{ head -c 8 "$INDEX"; printf '\x03\x00\x00\x00'; tail -c +13 "$INDEX"; } >"$WORK/v3.index"
run_ear info "$WORK/v3.index"
check "version 3: exit 1 and says so" eval '[ "$status" -eq 1 ] && stderr_has "index format version 3"'
{ head -c 8 "$INDEX"; printf '\x01\x00\x00\x00'; tail -c +13 "$INDEX"; } >"$WORK/v1.index"
run_ear search --model "$MODEL" --index "$WORK/v1.index" "$DATA/audio/cow.wav"
check "the first format: exit 1, rebuild it" eval \
    '[ "$status" -eq 1 ] && stderr_has "format version 1" && stderr_has "rebuild it with \`ear index\`"'
{ head -c 40 "$INDEX"; printf '\x09'; tail -c +42 "$INDEX"; } >"$WORK/corrupt.index"
run_ear info "$WORK/corrupt.index"
check "corrupt header: exit 1 and says so" eval '[ "$status" -eq 1 ] && stderr_has "checksum"'
run_ear search --model "$MODEL" --index "$INDEX" --kind image "$DATA/frames/cow.jpg"
check "an image as query: exit 0 ($(cat "$WORK/stderr"))" [ "$status" -eq 0 ]
check "an image as query: itself first, score 1" eval \
    'stdout_has "^{\"results\":\[{\"rank\":1,\"id\":\"cow\",\"kind\":\"image\",\"label\":\"A cow.\",\"score\":1[,.]" &&
     stdout_has "\"url\":\"data/frames/cow.jpg\",\"frame_url\""'
check "an image as query: the query says so" stdout_has '"query":{"kind":"image","duration_s":0,"format":"jpeg","truncated":false}'
run_ear search --model "$MODEL" --index "$INDEX" "$DATA/frames/broken.jpg"
check "a broken image as query: exit 1, names it" eval '[ "$status" -eq 1 ] && stderr_has "broken.jpg"'
run_ear search --model "$MODEL" --index "$INDEX" --kind everything "$DATA/audio/cow.wav"
check "--kind everything: exit 2" [ "$status" -eq 2 ]
make_sound "$WORK/short.wav" 440 0.05
run_ear search --model "$MODEL" --index "$INDEX" "$WORK/short.wav"
check "a 0.05 s query: exit 1 and says so" eval '[ "$status" -eq 1 ] && stderr_has "at least 0.100 s"'
run_ear search --model "$MODEL" --index "$INDEX" --max-seconds 0.5 "$DATA/audio/dog bark.ogg"
check "--max-seconds 0.5: cut and said" eval \
    '[ "$status" -eq 0 ] && stdout_has "\"query\":{\"kind\":\"audio\",\"duration_s\":0.5,\"format\":\"ogg\",\"truncated\":true}"'
run_ear search --model "$MODEL" --index "$INDEX" -k 0 "$DATA/audio/cow.wav"
check "-k 0: exit 2" [ "$status" -eq 2 ]
run_ear search --model "$MODEL" --index "$INDEX" --against everything "$DATA/audio/cow.wav"
check "--against everything: exit 2" [ "$status" -eq 2 ]
run_ear index --model "$MODEL" --data "$DATA"
check "index without -o: exit 2" [ "$status" -eq 2 ]
run_ear index --model "$MODEL" --data "$DATA" -o "$INDEX" --jobs 0
check "index --jobs 0: exit 2" [ "$status" -eq 2 ]
run_ear index --model "$MODEL" --data "$DATA" -o "$INDEX" --dtype f64
check "index --dtype f64: exit 2" [ "$status" -eq 2 ]
run_ear index --help
check "index --help" eval '[ "$status" -eq 0 ] && stdout_has "usage: ear index"'
run_ear search --help
check "search --help" eval '[ "$status" -eq 0 ] && stdout_has "usage: ear search"'

# 6. The original's layout: audio/<label>/** and frames/<label>/**, the label the first
# folder, nested folders, spaces and UTF-8; a flat file beside them keeps Ear's rules.
ORIG=$WORK/ear_data
CAFE=$'caf\u00e9 bells'
mkdir -p "$ORIG/audio/violin/deep/er" "$ORIG/audio/$CAFE" "$ORIG/frames/violin" "$ORIG/frames/$CAFE/x"
{
    make_sound "$ORIG/audio/violin/a 1.wav" 300 0.7 &&
        make_sound "$ORIG/audio/violin/deep/er/b.wav" 700 0.7 &&
        make_sound "$ORIG/audio/$CAFE/c.wav" 1200 0.7 &&
        make_sound "$ORIG/audio/flat.wav" 2000 0.7 &&
        make_image "$ORIG/frames/violin/v.png" red 40x40 &&
        make_image "$ORIG/frames/$CAFE/x/w.jpg" blue 40x40
} || { echo "could not make the original-layout dataset" >&2; exit 1; }
run_ear index --model "$MODEL" --data "$ORIG" -o "$WORK/out/orig.index"
check "original layout: exit 0 ($(cat "$WORK/stderr"))" [ "$status" -eq 0 ]
check "original layout: every file" stderr_has "6 items (2 images, 4 sounds)"
run_ear search --model "$MODEL" --index "$WORK/out/orig.index" -k 10 --kind all \
    "$ORIG/audio/violin/deep/er/b.wav"
check "original layout: a nested sound finds itself, labelled by its first folder" stdout_has \
    "^{\"results\":\[{\"rank\":1,\"id\":\"violin/deep/er/b\",\"kind\":\"audio\",\"label\":\"violin\","
check "original layout: UTF-8 label and URL" eval \
    'stdout_has "\"label\":\"$CAFE\"" && stdout_has "\"url\":\"data/audio/caf%C3%A9%20bells/c.wav\""'
check "original layout: nested frame" stdout_has '"url":"data/frames/caf%C3%A9%20bells/x/w.jpg"'
check "original layout: a flat file labelled by its id" stdout_has '"id":"flat","kind":"audio","label":"flat"'
# A kind's folder missing: the other kind alone.
mkdir -p "$WORK/sounds-only/audio/rain"
make_sound "$WORK/sounds-only/audio/rain/r.wav" 500 0.7
run_ear index --model "$MODEL" --data "$WORK/sounds-only" -o "$WORK/out/sounds-only.index"
check "no frames/ folder: the sounds alone" eval \
    '[ "$status" -eq 0 ] && stderr_has "1 items (0 images, 1 sounds)"'
mkdir -p "$WORK/empty-data/audio/violin" "$WORK/empty-data/frames"
run_ear index --model "$MODEL" --data "$WORK/empty-data" -o "$WORK/out/empty.index"
check "label folders without files: exit 1, says so" eval \
    '[ "$status" -eq 1 ] && stderr_has "no files in"'

# 7. Failed builds leave the previous index as it was, and no temporary.
cp "$INDEX" "$WORK/before.index"
cp "$MODEL" "$WORK/out/model.copy"
run_ear index --model "$MODEL" --data "$DATA" -o "$WORK/out/model.copy"
check "-o onto a model: refused" eval '[ "$status" -eq 1 ] && stderr_has "is not an Ear index"'
check "-o onto a model: untouched" cmp -s "$MODEL" "$WORK/out/model.copy"
mkdir -p "$WORK/broken-data/frames"
printf 'no image' >"$WORK/broken-data/frames/a.jpg"
run_ear index --model "$MODEL" --data "$WORK/broken-data" -o "$INDEX"
check "nothing indexable: exit 1" [ "$status" -eq 1 ]
check "nothing indexable: says so" stderr_has "nothing could be indexed"
check "nothing indexable: old index untouched" cmp -s "$INDEX" "$WORK/before.index"
run_ear index --model "$MODEL" --data "$WORK/no-such-data" -o "$INDEX"
check "no dataset: exit 1 and says so" eval '[ "$status" -eq 1 ] && stderr_has "no-such-data"'
# A write that fails part-way (a file size limit: EFBIG, as a full disk), as root too.
(trap '' XFSZ; ulimit -f 1; exec "$EAR" index --model "$MODEL" --data "$DATA" -o "$INDEX") \
    >"$WORK/stdout" 2>"$WORK/stderr"
status=$?
check "write fails: exit 1 ($status)" [ "$status" -eq 1 ]
check "write fails: says why" stderr_has "File too large"
check "write fails: old index untouched" cmp -s "$INDEX" "$WORK/before.index"
check "write fails: no temporary" [ -z "$(ls -A "$WORK/out" | grep '\.tmp\.')" ]
run_ear info "$INDEX"
check "write fails: old index loads" [ "$status" -eq 0 ]
# An unwritable folder (only where permissions bind: not as root).
mkdir "$WORK/locked"
cp "$INDEX" "$WORK/locked/ear.index"
chmod 555 "$WORK/locked"
if ! touch "$WORK/locked/probe" 2>/dev/null; then
    run_ear index --model "$MODEL" --data "$DATA" -o "$WORK/locked/ear.index"
    check "unwritable folder: exit 1" [ "$status" -eq 1 ]
    check "unwritable folder: says why" stderr_has "Permission denied"
    check "unwritable folder: old index untouched" cmp -s "$WORK/locked/ear.index" "$INDEX"
else
    rm -f "$WORK/locked/probe"
    echo "(running as root: the unwritable-folder case is covered by the size limit above)"
fi
chmod 755 "$WORK/locked"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
