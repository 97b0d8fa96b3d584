#!/bin/bash
# Damaged files at start-up: `ear serve` with a truncated or corrupted model or
# index exits 1 with one line "ear: ..." saying what is wrong, and never listens.
# (tests/cli/serve.sh covers missing files, an index of another model, a model
# given as the index; tests/cli/index_kill.sh a writer killed mid-index.)
. "$(dirname "$0")/../http/lib.sh"
make_dataset "$WORK/data" && make_index "$WORK/data" "$WORK/ear.index" ||
    { echo "could not make the dataset: $(cat "$WORK/index.log")" >&2; exit 1; }
model_size=$(stat -c %s "$MODEL")
index_size=$(stat -c %s "$WORK/ear.index")

# damage NAME FROM SIZE: a copy of FROM cut to SIZE bytes (or as it is when SIZE is "all").
damage() {
    if [ "$3" = all ]; then cp "$2" "$WORK/$1"; else head -c "$3" "$2" >"$WORK/$1"; fi
}
# poke FILE OFFSET HEX: overwrites bytes at OFFSET.
poke() { printf "$(echo "$3" | sed 's/../\\x&/g')" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }

# refused WHAT MODEL INDEX PATTERN: the service refuses to start, saying PATTERN.
refused() {
    local what=$1 model=$2 index=$3 pattern=$4
    timeout 20 "$EAR" serve --model "$model" --index "$index" --data "$WORK/data" --port 0 \
        >"$WORK/stdout" 2>"$WORK/stderr"
    local status=$?
    check "$what: exit 1 (got $status)" [ "$status" -eq 1 ]
    check "$what: one line \"ear: ...$pattern...\" ($(head -3 "$WORK/stderr"))" \
        eval '[ "$(grep -c . "$WORK/stderr")" -eq 1 ] && grep -q "^ear: .*$pattern" "$WORK/stderr"'
    check "$what: never listened" eval '! grep -q "listening" "$WORK/stderr"'
    check "$what: no sanitizer report" eval '! grep -q "Sanitizer\|runtime error" "$WORK/stderr"'
}

damage empty.safetensors "$MODEL" 0
refused "an empty model" "$WORK/empty.safetensors" "$WORK/ear.index" "."
damage short.safetensors "$MODEL" 5
refused "a model of 5 bytes" "$WORK/short.safetensors" "$WORK/ear.index" "."
damage half.safetensors "$MODEL" $((model_size / 2))
refused "a model cut in half" "$WORK/half.safetensors" "$WORK/ear.index" "."
damage last.safetensors "$MODEL" $((model_size - 1))
refused "a model one byte short" "$WORK/last.safetensors" "$WORK/ear.index" "."
damage huge_header.safetensors "$MODEL" all
poke "$WORK/huge_header.safetensors" 0 ffffffffffffff7f
refused "a model whose header length is 2^63" "$WORK/huge_header.safetensors" "$WORK/ear.index" "."
damage json.safetensors "$MODEL" all
poke "$WORK/json.safetensors" 8 5b5b5b5b # '[[[[' where the JSON object starts
refused "a model with a broken JSON header" "$WORK/json.safetensors" "$WORK/ear.index" "."
damage flipped.safetensors "$MODEL" all
poke "$WORK/flipped.safetensors" $((model_size - 100)) 00
# Any weight byte is a valid number: the model loads, but it is no longer the
# model the index was built with, and its fingerprint says so.
refused "a model with one weight byte changed" "$WORK/flipped.safetensors" "$WORK/ear.index" \
    "fingerprint"

damage empty.index "$WORK/ear.index" 0
refused "an empty index" "$MODEL" "$WORK/empty.index" "."
damage header.index "$WORK/ear.index" 40
refused "an index cut inside its header" "$MODEL" "$WORK/header.index" "."
damage half.index "$WORK/ear.index" $((index_size / 2))
refused "an index cut in half" "$MODEL" "$WORK/half.index" "."
damage last.index "$WORK/ear.index" $((index_size - 1))
refused "an index one byte short" "$MODEL" "$WORK/last.index" "."
damage magic.index "$WORK/ear.index" all
poke "$WORK/magic.index" 0 4541524944583030 # EARIDX00
refused "an index with another magic" "$MODEL" "$WORK/magic.index" "."
damage version.index "$WORK/ear.index" all
poke "$WORK/version.index" 8 63000000
refused "an index of format version 99" "$MODEL" "$WORK/version.index" "."
head -c $((index_size + 4096)) /dev/urandom >"$WORK/noise.index"
refused "an index of random bytes" "$MODEL" "$WORK/noise.index" "."
damage item.index "$WORK/ear.index" all
poke "$WORK/item.index" 263 7f # the first item's id points far outside the strings
refused "an index whose item table points outside the file" "$MODEL" "$WORK/item.index" "."
finish
