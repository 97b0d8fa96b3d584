#!/usr/bin/env bash
# The instrument demo's dataset, laid out as the original's: sounds rendered with fluidsynth from
# the General MIDI soundfonts Debian ships (and with timidity from freepats, a patch set fluidsynth
# cannot read), pictures from Debian's clip art and Tux Paint's stamps.
#
#   tools/demo_instruments.sh [--small] [--offline] [CACHE [OUT]]
#       CACHE  default .cache/ear-demo in the repository (git ignores it); the .debs go to CACHE/deb
#       OUT    default CACHE/instruments (CACHE/instruments-small with --small)
#
#   OUT/audio/<instrument>/<soundfont>-<nn>.wav   mono 16-bit 22.05 kHz; soundfont is fluidr3
#                                                 (fluid-soundfont-gm), musescore
#                                                 (musescore-general-soundfont), freepats
#                                                 (freepats, through timidity), csound
#                                                 (csound-soundfont) or timgm
#                                                 (timgm6mb-soundfont)
#   OUT/audio/<instrument>/tuxpaint-<stamp>.ogg   Tux Paint's real recordings of the instrument
#   OUT/frames/<instrument>/<source>-<name>.jpg   alpha over white, longer side at most 512, JPEG
#   OUT/.held-out                                 what training must not see: every timgm sound,
#                                                 the Tux Paint recordings and one picture of
#                                                 each instrument that has three or more
#
# 19 instruments (tools/instrument_midi.py lists them and writes the music: 24 clips each of
# single notes, scales and phrases, the drum kit's beats on channel 10), 5 × 24 sounds and 1-9
# pictures each. --small: violin, cello and drum kit, 3 clips each, from timgm6mb only (a 5 MB
# .deb), the pictures from one picture package, the first of tuxpaint-stamps-default and
# openclipart-png already in CACHE/deb.
# --offline: never download; a missing package exits 77 (what the tests use to skip).
#
# Only `apt-get download` (no install) reaches the network, once per package; fluidsynth itself
# and timidity themselves are installed by tools/deps.sh. The dataset is built in a scratch folder and renamed into place,
# so it is whole or absent; when it is there and was made from the same packages and the same
# tools/instrument_midi.py, the script only says so.
set -euo pipefail
export LC_ALL=C

small=0
offline=0
while [ $# -gt 0 ]; do
    case $1 in
        --small) small=1; shift ;;
        --offline) offline=1; shift ;;
        -*) echo "demo instruments: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${1:-$repo/.cache/ear-demo}
mkdir -p "$cache/deb"
cache=$(cd "$cache" && pwd)
if [ $small = 1 ]; then out=${2:-$cache/instruments-small}; else out=${2:-$cache/instruments}; fi
midi_tool=$repo/tools/instrument_midi.py
rate=22050

command -v fluidsynth >/dev/null || {
    echo "demo instruments: fluidsynth is not installed (make deps, or apt-get install fluidsynth)" >&2
    [ $offline = 1 ] && exit 77
    exit 1; }
if [ $small = 0 ]; then
    command -v timidity >/dev/null || {
        echo "demo instruments: timidity is not installed (make deps, or apt-get install timidity)" >&2
        [ $offline = 1 ] && exit 77
        exit 1; }
fi

# fetch PACKAGE: prints the path of its .deb in CACHE/deb, downloading it once.
fetch() {
    local deb
    deb=$(find "$cache/deb" -maxdepth 1 -name "${1}_*_all.deb" | sort | tail -n 1)
    if [ -z "$deb" ]; then
        if [ $offline = 1 ]; then echo "demo instruments: $1 is not in $cache/deb" >&2; exit 77; fi
        echo "demo instruments: downloading $1 into $cache/deb" >&2
        # As root, apt-get warns that its _apt user cannot write here; the download is the same.
        (cd "$cache/deb" && apt-get download -q "$1" 2>&1 | grep -v "unsandboxed" >&2 || true)
        deb=$(find "$cache/deb" -maxdepth 1 -name "${1}_*_all.deb" | sort | tail -n 1)
        [ -n "$deb" ] || { echo "demo instruments: apt-get download $1 failed" >&2; exit 1; }
    fi
    echo "$deb"
}

# Soundfonts: name, package, path inside it. The last one (timgm) is held out of training.
# freepats is a directory of GUS patches with a timidity configuration, rendered by timidity.
# Each is another instrument maker's samples, and the more of them training hears, the better it
# does on one it never heard (README: a third raised sound -> picture R@1 on the held-out one
# from 0.50 to 0.57, csound's small GM bank as a fourth to 0.69). Not here: opl3-soundfont
# (FM synthesis, no instrument's real timbre: as a fifth it lowered that to 0.62) and the
# FluidR3 and MuseScore derivatives (fluid-soundfont-gs, fluidr3mono-gm-soundfont,
# musescore-general-soundfont-small: the same samples again).
soundfonts=(
  "fluidr3 fluid-soundfont-gm usr/share/sounds/sf2/FluidR3_GM.sf2"
  "musescore musescore-general-soundfont usr/share/sounds/sf3/MuseScore_General_Full.sf3"
  "freepats freepats etc/timidity/freepats.cfg"
  "csound csound-soundfont usr/share/sounds/sf2/sf_GMbank.sf2"
  "timgm timgm6mb-soundfont usr/share/sounds/sf2/TimGM6mb.sf2"
)
held_out_font=timgm
[ $small = 1 ] && soundfonts=("${soundfonts[-1]}")

# Pictures: instrument, source (openclipart or tuxpaint), path inside the package. The first
# picture listed of an instrument with three or more is held out of training.
oc=usr/share/openclipart/png/recreation/music
tp=usr/share/tuxpaint/stamps/hobbies/music
pictures=(
  "piano openclipart $oc/piano_keys_jonathan_diet_01.png"
  "piano openclipart $oc/piano_geraint_luff_01.png"
  "piano openclipart $oc/piano_theory__ganson.png"
  "piano openclipart usr/share/openclipart/png/computer/icons/flat-theme/action/piano.png"
  "xylophone openclipart $oc/xylophone_ganson.png"
  "guitar openclipart $oc/guitar_jarno_vasamaa2.png"
  "guitar openclipart $oc/guitar_ganson.png"
  "guitar openclipart $oc/guitar_jarno_vasamaa1.png"
  "guitar openclipart $oc/guitar_profile_philippe__01.png"
  "guitar tuxpaint $tp/string/guitar2.png"
  "guitar tuxpaint $tp/string/guitar_classical.png"
  "electric_guitar openclipart $oc/electric_guitar_andrea__01r.png"
  "electric_guitar tuxpaint $tp/string/guitar_electric.png"
  "bass_guitar tuxpaint $tp/string/guitar_electric_bass2.svg"
  "bass_guitar openclipart $oc/bass_guitar_a.j._ashton_.png"
  "bass_guitar tuxpaint $tp/string/guitar_electric_bass.png"
  "violin openclipart $oc/violin_mo_01.png"
  "violin openclipart $oc/violin_colour_ganson.png"
  "violin openclipart $oc/violin_ganson.png"
  "violin tuxpaint $tp/string/violin.png"
  "violin tuxpaint $tp/string/violin2.svg"
  "cello openclipart $oc/cello_mo_02.png"
  "cello openclipart $oc/cello_ganson.png"
  "cello openclipart $oc/cello_mo_01.png"
  "cello tuxpaint $tp/string/cello.png"
  "harp openclipart $oc/harp_mo_01.png"
  "harp openclipart $oc/harp1_ganson.png"
  "harp openclipart $oc/harp2_ganson.png"
  "harp openclipart $oc/harp3_ganson.png"
  "trumpet openclipart $oc/trumpet_pocket_colour_ganso.png"
  "trumpet openclipart $oc/tpt_cubf_ganson.png"
  "trumpet openclipart $oc/trumpet_b_flat__ganson.png"
  "trumpet openclipart $oc/trumpet_b_flat_colour_ganso.png"
  "trumpet openclipart $oc/trumpet_harmon_mute__ganson.png"
  "trumpet openclipart $oc/trumpet_herald__ganson.png"
  "trumpet openclipart $oc/trumpet_pocket__ganson.png"
  "trumpet openclipart $oc/trumpet_straight_mute_ganson.png"
  "trumpet tuxpaint $tp/brass/trumpet.png"
  "trombone openclipart $oc/tenor_trombone_ganson.png"
  "french_horn openclipart $oc/french_horn_ganson.png"
  "saxophone openclipart $oc/saxophone_jarno_vasamaa_.png"
  "saxophone openclipart usr/share/openclipart/png/people/saxowoman_erwan_01.png"
  "oboe openclipart $oc/oboe_ganson.png"
  "bassoon tuxpaint $tp/wind/bassoon.png"
  "flute openclipart $oc/flute_ganson.png"
  "drum_kit tuxpaint $tp/percussion/drum_tomtom_floor.png"
  "drum_kit openclipart $oc/drums_jarno_vasamaa_.png"
  "drum_kit tuxpaint $tp/percussion/drumkit.png"
  "hand_drum openclipart $oc/africandrum_benji_park2.png"
  "hand_drum openclipart $oc/africandrum_benji_park1.png"
  "hand_drum openclipart $oc/africandrum_benji_park_.png"
  "hand_drum openclipart $oc/djambf_ganson.png"
  "hand_drum openclipart $oc/derbouk_jurgen_01.png"
  "cymbal tuxpaint $tp/percussion/cymbal_crash.png"
  "maracas openclipart $oc/maracas_ganson.png"
)
# Tux Paint's real recordings of instruments (never trained on): instrument, path.
recordings=(
  "violin $tp/string/violin.ogg"
  "cello $tp/string/cello.ogg"
  "bassoon $tp/wind/bassoon.ogg"
  "drum_kit $tp/percussion/drumkit.ogg"
  "drum_kit $tp/percussion/drum_tomtom_floor.ogg"
  "cymbal $tp/percussion/cymbal_crash.ogg"
)

# The packages: every soundfont's; for pictures both in a full run, one already cached with
# --small.
debs=()
for sf in "${soundfonts[@]}"; do read -r _ package _ <<<"$sf"; debs+=("$(fetch "$package")"); done
picture_packages=(openclipart-png tuxpaint-stamps-default)
if [ $small = 1 ]; then
    picture_packages=()
    for p in tuxpaint-stamps-default openclipart-png; do
        if [ -n "$(find "$cache/deb" -maxdepth 1 -name "${p}_*_all.deb")" ]; then
            picture_packages=("$p")
            break
        fi
    done
    if [ ${#picture_packages[@]} = 0 ]; then
        [ $offline = 1 ] && { echo "demo instruments: no picture package in $cache/deb" >&2; exit 77; }
        picture_packages=(tuxpaint-stamps-default)
    fi
fi
declare -A picture_deb=()
for p in "${picture_packages[@]}"; do
    picture_deb[${p%%-*}]=$(fetch "$p")
    debs+=("${picture_deb[${p%%-*}]}")
done

made_from=$(for d in "${debs[@]}"; do basename "$d"; done; md5sum <"$midi_tool" | cut -c1-32;
            md5sum <"$0" | cut -c1-32; echo "small=$small")
if [ -f "$out/.made-from" ] && [ "$(cat "$out/.made-from")" = "$made_from" ]; then
    echo "demo instruments: $out ($(find "$out/audio" -type f | wc -l) sounds," \
        "$(find "$out/frames" -type f | wc -l) pictures)"
    exit 0
fi

mkdir -p "$(dirname "$out")"
work=$(mktemp -d "$(dirname "$out")/make.XXXXXX")
trap 'rm -rf "$work"' EXIT
data=$work/data
mkdir -p "$data/audio" "$data/frames" "$work/midi"
: >"$data/.held-out"
small_flag=()
[ $small = 1 ] && small_flag=(--small)
python3 "$midi_tool" midi "$work/midi" "${small_flag[@]}"
instruments=$(cut -f1 "$work/midi/all.tsv" | uniq)

# 1. Sounds: each soundfont renders all the music at once (loading a soundfont takes seconds),
#    then the rendering is cut into clips.
for sf in "${soundfonts[@]}"; do
    read -r name package path <<<"$sf"
    deb=$(fetch "$package")
    echo "demo instruments: rendering with $(basename "$deb")"
    mkdir -p "$work/sf"
    if [ "$name" = freepats ]; then
        # The whole package (the patches), its configuration pointed at where they now are.
        dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work/sf"
        sed "s|^dir /usr/share/midi/freepats|dir $work/sf/usr/share/midi/freepats|" \
            "$work/sf/$path" >"$work/sf/freepats.cfg"
        grep -q "^dir $work/sf/" "$work/sf/freepats.cfg" || {
            echo "demo instruments: $(basename "$deb") has no 'dir' line to relocate" >&2; exit 1; }
        # Raw, stereo, 16-bit signed little-endian, as fluidsynth's below; -c alone: no other
        # configuration (the system's timidity.cfg) mixes in.
        timidity -c "$work/sf/freepats.cfg" -s $rate -OrS1sl -o "$work/render.raw" \
            "$work/midi/all.mid" >/dev/null
    else
        dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work/sf" "./$path"
        fluidsynth -ni -q -g 0.5 -r $rate -T raw -O s16 -E little -F "$work/render.raw" \
            "$work/sf/$path" "$work/midi/all.mid" >/dev/null
    fi
    python3 "$midi_tool" split "$work/render.raw" $rate "$work/midi/all.tsv" "$data/audio" "$name"
    rm -rf "$work/sf" "$work/render.raw"
    if [ "$name" = "$held_out_font" ]; then
        (cd "$data" && find audio -name "$name-*.wav" | sort) >>"$data/.held-out"
    fi
done

# 2. Pictures of the instruments in this run, over white, as JPEG; Tux Paint's recordings.
declare -A count=()
for entry in "${pictures[@]}"; do
    read -r instrument source path <<<"$entry"
    grep -qx "$instrument" <<<"$instruments" || continue
    [ -n "${picture_deb[$source]:-}" ] || continue
    count[$instrument]=$((${count[$instrument]:-0} + 1))
done
# One pass over each package (unpacking a 130 MB .deb takes a while), every member at once.
mkdir -p "$work/pkg"
for source in "${!picture_deb[@]}"; do
    members=()
    for entry in "${pictures[@]}"; do
        read -r instrument from path <<<"$entry"
        [ "$from" = "$source" ] && grep -qx "$instrument" <<<"$instruments" && members+=("./$path")
    done
    if [ "$source" = tuxpaint ]; then
        for entry in "${recordings[@]}"; do
            read -r instrument path <<<"$entry"
            grep -qx "$instrument" <<<"$instruments" && members+=("./$path")
        done
    fi
    [ ${#members[@]} -gt 0 ] || continue
    dpkg-deb --fsys-tarfile "${picture_deb[$source]}" | tar -x -C "$work/pkg" "${members[@]}"
done
declare -A seen=()
for entry in "${pictures[@]}"; do
    read -r instrument source path <<<"$entry"
    grep -qx "$instrument" <<<"$instruments" || continue
    [ -n "${picture_deb[$source]:-}" ] || continue
    mkdir -p "$data/frames/$instrument"
    base=$(basename "$path"); base=${base%.*}
    frame=frames/$instrument/$source-$(tr -c 'A-Za-z0-9_\n-' '_' <<<"$base").jpg
    ffmpeg -nostdin -v error -y -i "$work/pkg/$path" -filter_complex \
        "color=c=white[bg];[bg][0:v]scale2ref[bg][fg];[bg][fg]overlay=shortest=1:format=auto,scale='min(512,iw)':'min(512,ih)':force_original_aspect_ratio=decrease,format=yuvj444p" \
        -frames:v 1 -q:v 2 "$data/$frame"
    if [ "${count[$instrument]}" -ge 3 ] && [ -z "${seen[$instrument]:-}" ]; then
        echo "$frame" >>"$data/.held-out"
    fi
    seen[$instrument]=1
done
if [ -n "${picture_deb[tuxpaint]:-}" ]; then
    for entry in "${recordings[@]}"; do
        read -r instrument path <<<"$entry"
        grep -qx "$instrument" <<<"$instruments" || continue
        base=$(basename "$path" .ogg)
        cp "$work/pkg/$path" "$data/audio/$instrument/tuxpaint-$base.ogg"
        echo "audio/$instrument/tuxpaint-$base.ogg" >>"$data/.held-out"
    done
fi
rm -rf "$work/pkg"
for instrument in $instruments; do
    [ -d "$data/frames/$instrument" ] || {
        echo "demo instruments: no picture of $instrument" >&2; exit 1; }
done
echo "$made_from" >"$data/.made-from"

rm -rf "$out.old"
[ -e "$out" ] && mv "$out" "$out.old"
mv "$data" "$out"
rm -rf "$out.old"
echo "demo instruments: $out ($(echo $instruments | wc -w) instruments," \
    "$(find "$out/audio" -type f | wc -l) sounds, $(find "$out/frames" -type f | wc -l) pictures," \
    "$(wc -l <"$out/.held-out") held out)"
