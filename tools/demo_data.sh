#!/usr/bin/env bash
# The demo's dataset: Tux Paint's default stamps (Debian's tuxpaint-stamps-default), each with
# a picture, a real sound effect of the same base name and an English caption, laid out as Ear's
# dataset (../shared/spec/interfaces.md):
#
#   CACHE/data/audio/<id>.ogg    the stamp's sound, as shipped (Ogg Vorbis)
#   CACHE/data/frames/<id>.jpg   its picture, alpha over white, JPEG, longer side at most 512
#   CACHE/data/labels.tsv        <id><TAB><the first line of the stamp's .txt>
#
#   tools/demo_data.sh [CACHE]   (default: .cache/ear-demo in the repository; git ignores it)
#
# Only `apt-get download` (no install) reaches the network, once; the .deb stays in CACHE/deb.
# A stamp is kept only when `<base>.ogg` (not a localised `<base>_<lang>.ogg` or a spoken
# description `<base>_desc*.ogg`) sits beside `<base>.png` or `<base>.svg`. Ids are the base
# names; a base name found in more than one folder gets its folder as a prefix (`<folder>-<base>`),
# in sorted path order, so ids are unique and the same on every machine. A sound byte-identical to
# an earlier stamp's (the German umlaut letters share theirs between filled and outlined,
# upper and lower case) is left out: no search could tell such items apart.
# The dataset is built in a scratch folder and renamed into place, so it is whole or absent;
# when it is there and was made from the same .deb, the script only says so (under a second).
set -euo pipefail
export LC_ALL=C

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${1:-$repo/.cache/ear-demo}
package=tuxpaint-stamps-default
mkdir -p "$cache/deb"
cache=$(cd "$cache" && pwd)
data=$cache/data

deb=$(find "$cache/deb" -maxdepth 1 -name "${package}_*_all.deb" | sort | tail -n 1)
if [ -z "$deb" ]; then
    echo "demo data: downloading $package (about 160 MB) into $cache/deb"
    # As root, apt-get warns that its _apt user cannot write here; the download is the same.
    (cd "$cache/deb" && apt-get download -q "$package" 2>&1 | grep -v "unsandboxed" || true)
    deb=$(find "$cache/deb" -maxdepth 1 -name "${package}_*_all.deb" | sort | tail -n 1)
    [ -n "$deb" ] || { echo "demo data: apt-get download $package failed" >&2; exit 1; }
fi
stamp="$(basename "$deb")"
if [ -f "$data/.made-from" ] && [ "$(cat "$data/.made-from")" = "$stamp" ]; then
    echo "demo data: $data ($(wc -l <"$data/labels.tsv") items, from $stamp)"
    exit 0
fi

work=$(mktemp -d "$cache/make.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "demo data: unpacking $stamp"
dpkg-deb -x "$deb" "$work/pkg"
stamps=$work/pkg/usr/share/tuxpaint/stamps
[ -d "$stamps" ] || { echo "demo data: $deb holds no usr/share/tuxpaint/stamps" >&2; exit 1; }

# 1. The stamps with a sound and a picture, in sorted path order: "<path without extension>".
: >"$work/stamps"
while IFS= read -r sound; do
    base=${sound%.ogg}
    if [ -f "$base.png" ] || [ -f "$base.svg" ]; then echo "$base" >>"$work/stamps"; fi
done < <(find "$stamps" -type f -name '*.ogg' ! -name '*_desc*' | sort)

# 2. Ids: the base name, or <folder>-<base> where a base name is not unique; identical sounds
#    after the first are left out.
awk -F/ '{ n[$NF]++; path[NR] = $0; name[NR] = $NF; folder[NR] = $(NF - 1) }
    END {
        for (i = 1; i <= NR; i++) {
            id = n[name[i]] > 1 ? folder[i] "-" name[i] : name[i]
            gsub(/[^A-Za-z0-9_.-]/, "_", id)
            while (id in used) id = id "-" i   # two folders of the same name: still unique
            used[id] = 1
            print id "\t" path[i]
        }
    }' "$work/stamps" >"$work/ids"

out=$work/data
mkdir -p "$out/audio" "$out/frames"
: >"$out/labels.tsv"
declare -A seen_sound=()
kept=0
duplicates=()
while IFS=$'\t' read -r id base; do
    sum=$(md5sum <"$base.ogg" | cut -c1-32)
    if [ -n "${seen_sound[$sum]:-}" ]; then
        duplicates+=("$id (= ${seen_sound[$sum]})")
        continue
    fi
    seen_sound[$sum]=$id
    picture=$base.png
    [ -f "$picture" ] || picture=$base.svg
    cp "$base.ogg" "$out/audio/$id.ogg"
    # Alpha over white (as the model's image tower does), then at most 512 px on the longer side.
    ffmpeg -nostdin -v error -y -i "$picture" -filter_complex \
        "color=c=white[bg];[bg][0:v]scale2ref[bg][fg];[bg][fg]overlay=shortest=1:format=auto,scale='min(512,iw)':'min(512,ih)':force_original_aspect_ratio=decrease,format=yuvj444p" \
        -frames:v 1 -q:v 2 "$out/frames/$id.jpg"
    label=""
    [ -f "$base.txt" ] && label=$(head -n 1 "$base.txt" | tr -d '\r' | tr '\t' ' ' | sed 's/[[:space:]]*$//')
    [ -n "$label" ] || label=$(basename "$base" | tr '_' ' ')
    printf '%s\t%s\n' "$id" "$label" >>"$out/labels.tsv"
    kept=$((kept + 1))
done <"$work/ids"
[ "$kept" -gt 0 ] || { echo "demo data: no stamp with a sound and a picture in $deb" >&2; exit 1; }
echo "$stamp" >"$out/.made-from"

rm -rf "$data.old"
[ -e "$data" ] && mv "$data" "$data.old"
mv "$out" "$data"
rm -rf "$data.old"
echo "demo data: $data ($kept items; ${#duplicates[@]} left out for a sound already used:" \
    "${duplicates[*]:-none})"
