#!/bin/bash
# tools/demo_instruments.sh --small: the instrument dataset's layout and counts, as the original's
# (audio/<instrument>/*.wav, frames/<instrument>/*.jpg), made offline from the .debs cached in
# .cache/ear-demo/deb (timgm6mb-soundfont and a picture package; `tools/demo_instruments.sh`
# fetches them once). Skips (77) without fluidsynth or those packages: tests never download.
set -u
SOURCE=${EAR_SOURCE_DIR:-.}
. "$SOURCE/tests/check.sh"
CACHE=${EAR_DEMO_CACHE:-$SOURCE/.cache/ear-demo}
SCRIPT=$SOURCE/tools/demo_instruments.sh
WORK=$(mktemp -d "${EAR_TEST_TMP:-/tmp}/instruments_data.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

command -v fluidsynth >/dev/null || { echo "skip: fluidsynth is not installed"; exit 77; }
have() { [ -n "$(find "$CACHE/deb" -maxdepth 1 -name "${1}_*_all.deb" 2>/dev/null)" ]; }
have timgm6mb-soundfont || { echo "skip: no timgm6mb-soundfont .deb in $CACHE/deb"; exit 77; }
have tuxpaint-stamps-default || have openclipart-png ||
    { echo "skip: no picture package .deb in $CACHE/deb"; exit 77; }

# Bad input first: an unknown option, and --offline with an empty cache (nothing made).
bash "$SCRIPT" --bogus >"$WORK/out" 2>&1
check "unknown option: exit 2, got $?" [ $? -eq 2 ]
mkdir -p "$WORK/empty"
bash "$SCRIPT" --small --offline "$WORK/empty" "$WORK/none" >"$WORK/out" 2>&1
status=$?
check "--offline without the packages: exit 77 (got $status: $(cat "$WORK/out"))" [ $status -eq 77 ]
check "--offline without the packages: nothing made" [ ! -e "$WORK/none" ]
check "--offline without the packages: says which" grep -q "is not in" "$WORK/out"

OUT=$WORK/data
bash "$SCRIPT" --small --offline "$CACHE" "$OUT" >"$WORK/out" 2>&1
status=$?
check "--small: exit 0 (got $status: $(tail -n 5 "$WORK/out"))" [ $status -eq 0 ]
check "--small: rendered with fluidsynth" grep -q "rendering with timgm6mb" "$WORK/out"

instruments="cello drum_kit violin"
check "audio/ holds the three instruments, got: $(ls "$OUT/audio" 2>/dev/null | tr '\n' ' ')" \
    [ "$(ls "$OUT/audio" 2>/dev/null | tr '\n' ' ')" = "$instruments " ]
check "frames/ holds the three instruments, got: $(ls "$OUT/frames" 2>/dev/null | tr '\n' ' ')" \
    [ "$(ls "$OUT/frames" 2>/dev/null | tr '\n' ' ')" = "$instruments " ]
for instrument in $instruments; do
    sounds=$(find "$OUT/audio/$instrument" -name 'timgm-*.wav' 2>/dev/null | wc -l)
    check "$instrument: 3 rendered sounds, got $sounds" [ "$sounds" -eq 3 ]
    for wav in "$OUT/audio/$instrument"/timgm-*.wav; do
        [ -f "$wav" ] || continue
        info=$(ffprobe -v error -show_entries stream=sample_rate,channels,codec_name \
               -show_entries format=duration -of default=nw=1 "$wav")
        check "$wav: mono 16-bit 22050 Hz ($info)" \
            grep -qz "codec_name=pcm_s16le.*sample_rate=22050.*channels=1" <<<"$info"
        duration=$(sed -n 's/^duration=//p' <<<"$info")
        check "$wav: 0.2 to 8 s long ($duration)" \
            awk -v d="$duration" 'BEGIN { exit !(d >= 0.2 && d <= 8) }'
        # Not silence: the loudest sample of the first second is above -40 dB.
        peak=$(ffmpeg -nostdin -v info -i "$wav" -af volumedetect -f null - 2>&1 |
               sed -n 's/.*max_volume: \(-*[0-9.]*\) dB.*/\1/p')
        check "$wav: not silent (peak $peak dB)" awk -v p="$peak" 'BEGIN { exit !(p > -40) }'
    done
    pictures=$(find "$OUT/frames/$instrument" -name '*.jpg' 2>/dev/null | wc -l)
    check "$instrument: at least one picture, got $pictures" [ "$pictures" -ge 1 ]
    for jpg in "$OUT/frames/$instrument"/*.jpg; do
        [ -f "$jpg" ] || continue
        check "$jpg: a JPEG" [ "$(head -c 3 "$jpg" | od -An -tx1 | tr -d ' ')" = "ffd8ff" ]
        size=$(ffprobe -v error -show_entries stream=width,height -of csv=p=0:s=x "$jpg")
        check "$jpg: longer side at most 512 ($size)" \
            awk -F x -v s="$size" 'BEGIN { split(s, a, "x"); exit !(a[1] <= 512 && a[2] <= 512 && a[1] > 0) }'
    done
done
others=$(find "$OUT" -type f ! -path '*/audio/*' ! -path '*/frames/*' -printf '%f\n' | sort | tr '\n' ' ')
check "nothing else but .held-out and .made-from, got: $others" [ "$others" = ".held-out .made-from " ]
held=$(grep -c '^audio/.*/timgm-' "$OUT/.held-out")
check "every timgm sound is held out (9), got $held" [ "$held" -eq 9 ]
while read -r path; do
    check ".held-out names a file that exists: $path" [ -f "$OUT/$path" ]
done <"$OUT/.held-out"

# A second run finds it made and renders nothing.
bash "$SCRIPT" --small --offline "$CACHE" "$OUT" >"$WORK/out" 2>&1
check "second run: exit 0, nothing rendered ($(cat "$WORK/out"))" \
    bash -c '[ $0 -eq 0 ] && ! grep -q rendering "$1"' $? "$WORK/out"
check "no scratch folder left behind" [ -z "$(find "$WORK" -maxdepth 1 -name 'make.*')" ]

echo "instruments_data: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
