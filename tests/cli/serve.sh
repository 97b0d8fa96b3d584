#!/bin/bash
# `ear serve` start-up: bad usage exits 2, every start-up failure exits 1 with
# one `ear: ...: why` line (an index from another model, missing files, a port
# in use), and --help exits 0.
source "$EAR_SOURCE_DIR/tests/http/lib.sh"

make_dataset "$WORK/data" || { echo "could not make the dataset" >&2; exit 1; }
make_index "$WORK/data" "$WORK/index.ear" || { cat "$WORK/index.log" >&2; exit 1; }
make_index "$WORK/data" "$WORK/other.ear" "$OTHER_MODEL" || { cat "$WORK/index.log" >&2; exit 1; }

# run_serve ARGS...: `ear serve` that is expected to end by itself (10 s at most).
run_serve() {
    timeout 10 "$EAR" serve "$@" >"$WORK/stdout" 2>"$WORK/stderr"
    status=$?
}
one_line() { [ "$(wc -l <"$WORK/stderr")" -eq 1 ] && grep -q "^ear: .*$1" "$WORK/stderr"; }

run_serve --help
check "--help: exit 0 (got $status)" [ "$status" -eq 0 ]
check "--help: usage on stdout" grep -q "^usage: ear serve --model M --index INDEX --data DIR" "$WORK/stdout"

good=(--model "$MODEL" --index "$WORK/index.ear" --data "$WORK/data")
for args in "--index $WORK/index.ear --data $WORK/data" "--model $MODEL --data $WORK/data" \
    "--model $MODEL --index $WORK/index.ear" "${good[*]} --port 70000" "${good[*]} --port x" \
    "${good[*]} --workers 0" "${good[*]} --queue 0" "${good[*]} --max-upload 0" \
    "${good[*]} --max-upload 5X" "${good[*]} --max-seconds -1" "${good[*]} --idle-timeout 0" "${good[*]} --body-timeout 0" \
    "${good[*]} --threads 0" "${good[*]} --max-connections 0" "${good[*]} --bogus" \
    "${good[*]} extra" "${good[*]} --port" "${good[*]} --no-sandbox=1" "${good[*]} --decode-timeout 0" \
    "${good[*]} --max-body-memory 0"; do
    # shellcheck disable=SC2086
    run_serve $args
    check "serve $args: exit 2 (got $status)" [ "$status" -eq 2 ]
    check "serve $args: says so on stderr" grep -q "^ear serve: " "$WORK/stderr"
done

run_serve --model "$WORK/none.safetensors" --index "$WORK/index.ear" --data "$WORK/data"
check "a missing model: exit 1 (got $status)" [ "$status" -eq 1 ]
check "a missing model: one line naming it: $(cat "$WORK/stderr")" one_line "none.safetensors"
run_serve --model "$MODEL" --index "$WORK/none.ear" --data "$WORK/data"
check "a missing index: exit 1 (got $status)" [ "$status" -eq 1 ]
check "a missing index: one line naming it: $(cat "$WORK/stderr")" one_line "none.ear"
run_serve --model "$MODEL" --index "$WORK/other.ear" --data "$WORK/data"
check "an index from another model: exit 1 (got $status)" [ "$status" -eq 1 ]
check "an index from another model: one line on the fingerprint: $(cat "$WORK/stderr")" one_line "fingerprint"
run_serve --model "$MODEL" --index "$MODEL" --data "$WORK/data"
check "a model given as the index: exit 1 (got $status)" [ "$status" -eq 1 ]
run_serve --model "$MODEL" --index "$WORK/index.ear" --data "$WORK/none"
check "a missing data folder: exit 1 (got $status)" [ "$status" -eq 1 ]
check "a missing data folder: one line naming it: $(cat "$WORK/stderr")" one_line "none"
run_serve --model "$SOURCE/tests/fixtures/nn/nn_image_f32.safetensors" --index "$WORK/index.ear" --data "$WORK/data"
check "a model without an audio tower: exit 1 (got $status)" [ "$status" -eq 1 ]
run_serve "${good[@]}" --host no.such.host.invalid
check "an unknown host: exit 1 (got $status)" [ "$status" -eq 1 ]

# A port in use: the second server cannot listen.
start_server "${good[@]}" || exit 1
run_serve "${good[@]}" --port "$PORT"
check "a port in use: exit 1 (got $status)" [ "$status" -eq 1 ]
check "a port in use: one line saying so: $(cat "$WORK/stderr")" one_line "Address already in use"
# The options reach the service: a 10-byte upload limit.
stop_server
start_server "${good[@]}" --max-upload 10 --workers 2 --queue 3 || exit 1
fetch big --data-binary "@$WORK/data/audio/cow.wav" "$(URL /api/search)"
check "--max-upload 10: 413 (got $code)" [ "$code" = 413 ]
fetch metrics "$(URL /metrics)"
check "--workers 2 --queue 3 reach /metrics" eval 'body_has metrics "^ear_search_workers 2$" && body_has metrics "^ear_search_queue_capacity 3$"'
stop_server
check "the listening line names the address: $(head -1 "$WORK/serve.log")" \
    grep -q "^ear serve: listening on http://127.0.0.1:$PORT " "$WORK/serve.log"
finish
