#!/bin/bash
# A full disk while `ear index` writes over an existing index: a small tmpfs is
# mounted for the test (exit 77, skipped, where mounting is not permitted),
# filled to a few KiB short of what the new index needs. The build fails with
# exit 1 and a message naming the lack of space; the old index is there byte
# for byte, still loads and answers, and no temporary file is left behind.
. "$(dirname "$0")/../http/lib.sh"
DISK=$WORK/disk
mkdir -p "$DISK"
mount -t tmpfs -o size=2m ear-test "$DISK" 2>"$WORK/mount.err" ||
    { echo "cannot mount a tmpfs here ($(cat "$WORK/mount.err")): skipped"; exit 77; }
trap 'umount "$DISK" 2>/dev/null; cleanup' EXIT

make_dataset "$WORK/data" && make_index "$WORK/data" "$DISK/ear.index" ||
    { echo "could not make the dataset: $(cat "$WORK/index.log")" >&2; exit 1; }
cp "$DISK/ear.index" "$WORK/before.index"
# A bigger dataset: 300 items, links to the same two files.
mkdir -p "$WORK/big/frames" "$WORK/big/audio"
for i in $(seq -w 1 300); do
    ln "$WORK/data/frames/cow.jpg" "$WORK/big/frames/item$i.jpg"
    ln "$WORK/data/audio/cow.wav" "$WORK/big/audio/item$i.wav"
done
# Fill the disk, then give back 8 KiB: far less than 300 items' embeddings.
dd if=/dev/zero of="$DISK/filler" bs=4k status=none 2>/dev/null
truncate -s -8K "$DISK/filler"

"$EAR" index --model "$MODEL" --data "$WORK/big" -o "$DISK/ear.index" --jobs 1 \
    >"$WORK/stdout" 2>"$WORK/stderr"
status=$?
check "the build fails: exit 1 (got $status)" [ "$status" -eq 1 ]
check "saying the disk is full: $(tail -2 "$WORK/stderr")" grep -q "^ear: .*No space left" "$WORK/stderr"
check "no sanitizer report" eval '! grep -q "Sanitizer\|runtime error" "$WORK/stderr"'
check "the old index is untouched" cmp -s "$DISK/ear.index" "$WORK/before.index"
check "no temporary is left: $(ls -A "$DISK")" eval '[ "$(ls -A "$DISK" | grep -vc "^ear.index$\|^filler$")" -eq 0 ]'
"$EAR" search --model "$MODEL" --index "$DISK/ear.index" "$WORK/data/audio/cow.wav" \
    >"$WORK/search.out" 2>"$WORK/search.err"
check "the old index loads and answers ($(cat "$WORK/search.err"))" grep -q '"id":"cow"' "$WORK/search.out"
# With room again, the same build succeeds.
rm -f "$DISK/filler"
"$EAR" index --model "$MODEL" --data "$WORK/big" -o "$DISK/ear.index" --jobs 1 \
    >"$WORK/stdout" 2>"$WORK/stderr"
check "with room again the build succeeds ($(tail -1 "$WORK/stderr"))" [ $? -eq 0 ]
finish
