#!/usr/bin/env bash
# How well the demo model finds a stamp from its sound as a user would send it, with the C
# engine (`ear index`, `ear search`), nothing from PyTorch.
#
#   tools/demo_recall.sh [MODEL] [DATA] [EAR]
#       defaults: demo/model.safetensors, .cache/ear-demo/data (tools/demo_data.sh), build/ear
#
# 1. Held out, every item: its sound in a room, with noise, band-limited, coded as a browser
#    uploads it (WebM/Opus, 48 kHz stereo). Everything here is made by ffmpeg's own filters
#    (aecho rooms, anoisesrc noise with seeds of its own, highpass/lowpass) and bitrates of
#    32 and 48 kbit/s, none of which tools/train_demo.py uses (it makes its rooms and noise in
#    NumPy and codes at 12/16/24/40/64 kbit/s). Recall@1 and @5 of audio -> frame, per condition
#    and over all; the exit status is 1 when Recall@1 < 0.90 or Recall@5 < 0.98 over all.
# 2. Never heard: espeak-ng saying what an animal says ("moo", "woof", ...), through the same
#    browser path, and another speaker (Debian's asterisk-core-sounds-en-wav, fetched once into
#    the demo cache with apt-get download) saying the digits the number stamps say; where the
#    right stamp ranks. Printed for information, not a pass mark.
# WORK (default a temporary folder) keeps the queries and the answers when set.
set -euo pipefail
export LC_ALL=C
repo=$(cd "$(dirname "$0")/.." && pwd)
model=${1:-$repo/demo/model.safetensors}
data=${2:-$repo/.cache/ear-demo/data}
ear=${3:-$repo/build/ear}
for f in "$model" "$data/labels.tsv" "$ear"; do
    [ -e "$f" ] || { echo "demo recall: $f is missing" >&2; exit 1; }
done
if [ -n "${WORK:-}" ]; then mkdir -p "$WORK"; work=$WORK; else
    work=$(mktemp -d "${TMPDIR:-/tmp}/ear-recall.XXXXXX"); trap 'rm -rf "$work"' EXIT; fi

"$ear" index --model "$model" --data "$data" -o "$work/ear.index" >/dev/null

# The first K ids of `ear search`'s JSON, one a line.
ranked() { "$ear" search --model "$model" --index "$work/ear.index" -k 5 "$1" |
    grep -o '"id": *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/'; }

# rank_of QUERY ID: 1-5, or 0 when ID is not among the first five.
rank_of() { ranked "$1" | awk -v id="$2" '$0 == id { print NR; found = 1; exit } END { if (!found) print 0 }'; }

# condition NAME FILTER NOISE KBPS: FILTER shapes the sound (48 kHz), NOISE is an anoisesrc
# colour and amplitude; the seed differs per item.
conditions=(
  "room-pink-32k~adelay=400|0,apad=pad_dur=0.6,aecho=0.8:0.6:37|61:0.3|0.2,highpass=f=150,lowpass=f=6500~pink:0.02~32"
  "hall-brown-48k~adelay=700|0,apad=pad_dur=0.4,aecho=0.8:0.5:90|160|230:0.35|0.25|0.15,highpass=f=250,lowpass=f=4500,volume=0.5~brown:0.04~48"
  "laptop-white-32k~adelay=250|0,apad=pad_dur=0.8,aecho=0.8:0.7:23:0.4,highpass=f=300,lowpass=f=7500,volume=1.6,alimiter=limit=0.9~white:0.01~32"
)
n=0
declare -A hit1=() hit5=() count=()
echo "demo recall: $(wc -l <"$data/labels.tsv") items, $(basename "$model"), held-out conditions:"
seed=90001
while IFS=$'\t' read -r id _; do
    for c in "${conditions[@]}"; do
        IFS="~" read -r name shape noise kbps <<<"$c"
        q=$work/$id.$name.webm
        seed=$((seed + 1))
        ffmpeg -nostdin -v error -y -i "$data/audio/$id.ogg" \
            -f lavfi -i "anoisesrc=color=${noise%%:*}:amplitude=${noise##*:}:seed=$seed:sample_rate=48000" \
            -filter_complex "[0:a]aresample=48000,aformat=channel_layouts=mono,$shape[s];[s][1:a]amix=inputs=2:duration=first:normalize=0[m]" \
            -map "[m]" -ac 2 -ar 48000 -c:a libopus -b:a "${kbps}k" "$q"
        r=$(rank_of "$q" "$id")
        count[$name]=$((${count[$name]:-0} + 1))
        [ "$r" = 1 ] && hit1[$name]=$((${hit1[$name]:-0} + 1))
        [ "$r" -ge 1 ] && hit5[$name]=$((${hit5[$name]:-0} + 1))
        [ "$r" = 1 ] || echo "  miss@1: $id ($name): rank ${r/#0/>5}, first $(ranked "$q" | head -n 1)"
        n=$((n + 1))
    done
done <"$data/labels.tsv"
all1=0 all5=0
for c in "${conditions[@]}"; do
    name=${c%%~*}
    all1=$((all1 + ${hit1[$name]:-0})); all5=$((all5 + ${hit5[$name]:-0}))
    awk -v n="$name" -v a="${hit1[$name]:-0}" -v b="${hit5[$name]:-0}" -v c="${count[$name]}" \
        'BEGIN { printf "  %-18s Recall@1 %.3f  Recall@5 %.3f  (%d queries)\n", n, a / c, b / c, c }'
done
r1=$(awk -v a=$all1 -v n=$n 'BEGIN { printf "%.3f", a / n }')
r5=$(awk -v a=$all5 -v n=$n 'BEGIN { printf "%.3f", a / n }')
echo "  all                Recall@1 $r1  Recall@5 $r5  ($n queries)"

# 2. Never heard: espeak-ng's voice saying the animal's sound, as a browser would send it.
words=("moo:cow" "woof woof:dog" "oink oink:pig" "quack quack:duck" "baa:sheep"
       "neigh:horse" "cock a doodle doo:rooster" "ribbit:frog" "hoo hoo:owl" "roar:lion"
       "buzz:bee" "hee haw:donkey" "tweet tweet:blackbird" "gobble gobble:turkey")
ood1=0 ood5=0
echo "never heard (espeak-ng, WebM/Opus 32 kbit/s): rank of the stamp among all"
for w in "${words[@]}"; do
    text=${w%%:*} id=${w##*:}
    espeak-ng -w "$work/say.wav" "$text"
    ffmpeg -nostdin -v error -y -i "$work/say.wav" -ac 2 -ar 48000 -c:a libopus -b:a 32k \
        "$work/say.webm"
    r=$(rank_of "$work/say.webm" "$id")
    [ "$r" = 1 ] && ood1=$((ood1 + 1))
    [ "$r" -ge 1 ] && ood5=$((ood5 + 1))
    printf '  %-20s -> %-10s rank %-3s first: %s\n' "\"$text\"" "$id" "${r/#0/>5}" \
        "$(ranked "$work/say.webm" | head -n 3 | tr '\n' ' ')"
done
echo "  never heard: top-1 $ood1/${#words[@]}, top-5 $ood5/${#words[@]} (chance: 1/124, 5/124)"

# 3. Never heard: another speaker (Asterisk's Allison, Debian's asterisk-core-sounds-en-wav,
#    downloaded once into the demo cache) saying the digits the number stamps say.
cache=$(dirname "$data")
deb=$(find "$cache/deb" -maxdepth 1 -name 'asterisk-core-sounds-en-wav_*.deb' 2>/dev/null | sort | tail -n 1)
if [ -z "$deb" ]; then
    mkdir -p "$cache/deb"
    (cd "$cache/deb" && apt-get download -q asterisk-core-sounds-en-wav >/dev/null 2>&1) || true
    deb=$(find "$cache/deb" -maxdepth 1 -name 'asterisk-core-sounds-en-wav_*.deb' | sort | tail -n 1)
fi
if [ -n "$deb" ]; then
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" --wildcards '*/en_US_f_Allison/digits/[0-9].wav'
    d1=0 d5=0
    line=""
    for digit in 0 1 2 3 4 5 6 7 8 9; do
        ffmpeg -nostdin -v error -y -i "$(find "$work" -path "*/digits/$digit.wav" | head -n 1)" \
            -ac 2 -ar 48000 -c:a libopus -b:a 32k "$work/digit.webm"
        r=$(rank_of "$work/digit.webm" "$digit")
        [ "$r" = 1 ] && d1=$((d1 + 1))
        [ "$r" -ge 1 ] && d5=$((d5 + 1))
        line="$line $digit:${r/#0/>5}"
    done
    echo "never heard (Asterisk's voice saying 0-9, WebM/Opus): rank of the digit stamp:$line"
    echo "  digits: top-1 $d1/10, top-5 $d5/10"
else
    echo "never heard (Asterisk digits): skipped, asterisk-core-sounds-en-wav could not be downloaded"
fi

awk -v a="$r1" -v b="$r5" 'BEGIN { exit !(a >= 0.90 && b >= 0.98) }' ||
    { echo "demo recall: below the mark (Recall@1 >= 0.90, Recall@5 >= 0.98)" >&2; exit 1; }
