#!/bin/bash
# GET /data/<path>, nested folders included: types, ETag and Last-Modified
# with 304, byte ranges (206, 416), HEAD; and nothing outside the dataset:
# "..", "\", NUL and their percent-encodings, empty segments, absolute paths,
# symbolic links (to files or folders, at any depth), folders and FIFOs all
# answer 404.
source "$(dirname "$0")/lib.sh"

make_dataset "$WORK/data" || { echo "could not make the dataset" >&2; exit 1; }
make_index "$WORK/data" "$WORK/index.ear" || { cat "$WORK/index.log" >&2; exit 1; }
echo "secret" >"$WORK/secret.txt"
echo "not secret" >"$WORK/data/notes.txt"         # the dataset's root: served, as the original did
mkdir -p "$WORK/data/frames/violin/deep" "$WORK/data/audio/café 1"
cp "$WORK/data/frames/cow.jpg" "$WORK/data/frames/violin/deep/x y.jpg"
cp "$WORK/data/audio/cow.wav" "$WORK/data/audio/café 1/c.wav"
ln -s "$WORK" "$WORK/data/frames/violin/up"
ln -s "$WORK/secret.txt" "$WORK/data/frames/evil.jpg"
ln -s cow.jpg "$WORK/data/frames/alias.jpg"      # a link even to a file inside is refused
ln -s "$WORK" "$WORK/data/frames/outside"
mkdir "$WORK/data/frames/folder.jpg"
mkfifo "$WORK/data/frames/pipe.jpg"
cp "$WORK/data/frames/cow.jpg" "$WORK/data/frames/a b.jpg"
cp "$WORK/data/frames/cow.jpg" "$WORK/data/frames/.hidden.jpg"
for ext in webp gif; do head -c 100 /dev/urandom >"$WORK/data/frames/x.$ext"; done
for ext in mp3 ogg oga opus webm m4a mp4 flac; do head -c 100 /dev/urandom >"$WORK/data/audio/x.$ext"; done
head -c 3000000 /dev/urandom >"$WORK/data/audio/big.flac"

start_server --model "$MODEL" --index "$WORK/index.ear" --data "$WORK/data" || exit 1

for prefix in "" /ear; do
    for pair in frames/cow.jpg:image/jpeg frames/dog.png:image/png frames/x.webp:image/webp \
        frames/x.gif:image/gif audio/cow.wav:audio/wav audio/x.mp3:audio/mpeg audio/x.ogg:audio/ogg \
        audio/x.oga:audio/ogg audio/x.opus:audio/ogg audio/x.webm:audio/webm audio/x.m4a:audio/mp4 \
        audio/x.mp4:audio/mp4 audio/x.flac:audio/flac; do
        file=${pair%%:*}
        type=${pair#*:}
        fetch f "$(URL "$prefix/data/$file")"
        check "GET $prefix/data/$file: 200 (got $code)" [ "$code" = 200 ]
        check "GET $prefix/data/$file: $type (got $(header f Content-Type))" [ "$(header f Content-Type)" = "$type" ]
        check "GET $prefix/data/$file: the file's bytes" cmp -s "$WORK/f.b" "$WORK/data/$file"
    done
done
fetch f "$(URL "/data/frames/a%20b.jpg")"
check "a name with a space, percent-encoded: 200 (got $code)" [ "$code" = 200 ]
fetch f "$(URL "/data/audio/big.flac")"
check "3 MB: 200, every byte (got $code)" eval '[ "$code" = 200 ] && cmp -s "$WORK/f.b" "$WORK/data/audio/big.flac"'
check "3 MB: Content-Length" [ "$(header f Content-Length)" = 3000000 ]
check "Accept-Ranges: bytes" [ "$(header f Accept-Ranges)" = bytes ]
check "the common headers on files" [ "$(header f X-Content-Type-Options)" = nosniff ]

# HEAD: the headers, no body.
fetch head -I "$(URL /data/audio/cow.wav)"
size=$(stat -c %s "$WORK/data/audio/cow.wav")
body_bytes=$(curl -s -I -o /dev/null -w '%{size_download}' "$(URL /data/audio/cow.wav)")
check "HEAD: 200, Content-Length $size, no body (got $code, $(header head Content-Length), $body_bytes)" \
    eval '[ "$code" = 200 ] && [ "$(header head Content-Length)" = "$size" ] && [ "$body_bytes" = 0 ]'

# Ranges.
file=$WORK/data/audio/cow.wav
fetch r -r 0-9 "$(URL /data/audio/cow.wav)"
check "bytes=0-9: 206 (got $code)" [ "$code" = 206 ]
check "bytes=0-9: Content-Range (got $(header r Content-Range))" [ "$(header r Content-Range)" = "bytes 0-9/$size" ]
check "bytes=0-9: those 10 bytes" cmp -s "$WORK/r.b" <(head -c 10 "$file")
fetch r -r 100- "$(URL /ear/data/audio/cow.wav)"
check "bytes=100-: 206 to the end" eval '[ "$code" = 206 ] && cmp -s "$WORK/r.b" <(tail -c +101 "$file")'
check "bytes=100-: Content-Range" [ "$(header r Content-Range)" = "bytes 100-$((size - 1))/$size" ]
fetch r -r -7 "$(URL /data/audio/cow.wav)"
check "bytes=-7: the last 7 bytes" eval '[ "$code" = 206 ] && cmp -s "$WORK/r.b" <(tail -c 7 "$file")'
fetch r -r 1000-1999 "$(URL /data/audio/big.flac)"
check "bytes=1000-1999 of 3 MB: exact" \
    eval '[ "$code" = 206 ] && cmp -s "$WORK/r.b" <(tail -c +1001 "$WORK/data/audio/big.flac" | head -c 1000)'
fetch r -r "$size-" "$(URL /data/audio/cow.wav)"
check "bytes=$size-: 416 (got $code)" [ "$code" = 416 ]
check "416: Content-Range bytes */$size (got $(header r Content-Range))" [ "$(header r Content-Range)" = "bytes */$size" ]
fetch r -r 5-2 "$(URL /data/audio/cow.wav)"
check "bytes=5-2 (invalid): the whole file, 200" eval '[ "$code" = 200 ] && cmp -s "$WORK/r.b" "$file"'
fetch r -r 0-1,5-6 "$(URL /data/audio/cow.wav)"
check "two ranges: the whole file, 200" eval '[ "$code" = 200 ] && cmp -s "$WORK/r.b" "$file"'

# ETag and Last-Modified.
fetch e "$(URL /data/frames/cow.jpg)"
etag=$(header e ETag)
modified=$(header e Last-Modified)
check "an ETag (got $etag)" eval '[[ "$etag" == \"*\" ]]'
check "a Last-Modified date (got $modified)" eval '[[ "$modified" =~ ^[A-Z][a-z]{2},\ [0-9]{2}\ [A-Z][a-z]{2}\ [0-9]{4}\ [0-9:]{8}\ GMT$ ]]'
fetch e -H "If-None-Match: $etag" "$(URL /data/frames/cow.jpg)"
check "If-None-Match: the ETag: 304 (got $code)" [ "$code" = 304 ]
check "304: no body, the ETag again" eval '[ ! -s "$WORK/e.b" ] && [ "$(header e ETag)" = "$etag" ]'
fetch e -H "If-None-Match: \"other\", W/$etag" "$(URL /ear/data/frames/cow.jpg)"
check "If-None-Match: a list holding it (weak): 304 (got $code)" [ "$code" = 304 ]
fetch e -H 'If-None-Match: "other"' "$(URL /data/frames/cow.jpg)"
check "If-None-Match: another tag: 200 (got $code)" [ "$code" = 200 ]
fetch e -H "If-Modified-Since: $modified" "$(URL /data/frames/cow.jpg)"
check "If-Modified-Since: its date: 304 (got $code)" [ "$code" = 304 ]
fetch e -H "If-Modified-Since: Thu, 01 Jan 1970 00:00:01 GMT" "$(URL /data/frames/cow.jpg)"
check "If-Modified-Since: long before: 200 (got $code)" [ "$code" = 200 ]
fetch e -r 0-3 -H "If-Range: \"stale\"" "$(URL /data/frames/cow.jpg)"
check "If-Range with another tag: the whole file, 200 (got $code)" [ "$code" = 200 ]
fetch e -r 0-3 -H "If-Range: $etag" "$(URL /data/frames/cow.jpg)"
check "If-Range with the tag: 206 (got $code)" [ "$code" = 206 ]
touch -d "2001-02-03 04:05:06" "$WORK/data/frames/cow.jpg"
fetch e -H "If-None-Match: $etag" "$(URL /data/frames/cow.jpg)"
check "the file changed: the old ETag gets 200 (got $code)" [ "$code" = 200 ]

# Nested paths, as the original's URLs name them, at both prefixes.
for prefix in "" /ear; do
    fetch nested "$(URL "$prefix/data/frames/violin/deep/x%20y.jpg")"
    check "GET $prefix/data/frames/violin/deep/x%20y.jpg: 200 image/jpeg (got $code)" \
        eval '[ "$code" = 200 ] && [ "$(header nested Content-Type)" = image/jpeg ]'
    check "GET $prefix nested: the file's bytes" cmp -s "$WORK/nested.b" "$WORK/data/frames/violin/deep/x y.jpg"
    fetch nested "$(URL "$prefix/data/audio/caf%C3%A9%201/c.wav")"
    check "GET $prefix/data/audio/caf%C3%A9%201/c.wav: 200 (got $code)" [ "$code" = 200 ]
    fetch nested -H "Range: bytes=0-9" "$(URL "$prefix/data/frames/violin/deep/x%20y.jpg")"
    check "GET $prefix nested with a range: 206, 10 bytes (got $code)" \
        eval '[ "$code" = 206 ] && [ "$(wc -c <"$WORK/nested.b")" -eq 10 ]'
done
fetch root "$(URL /data/notes.txt)"
check "GET /data/notes.txt (the dataset's root): 200 (got $code)" [ "$code" = 200 ]

# Nothing outside the dataset.
for path in "/data/frames/../secret.jpg" "/data/frames/../../$(basename "$WORK")/secret.txt" \
    "/data/frames/%2e%2e%2fsecret.jpg" "/data/frames/%2E%2E%2Fsecret.jpg" "/data/frames/..%2fsecret.jpg" \
    "/data/frames/%2e%2e/secret.jpg" "/data/frames/..%5csecret.jpg" "/data/frames/%2e%2e" "/data/frames/.." \
    "/data/frames//etc/passwd" "/data/frames/%2fetc%2fpasswd" "/data/frames/$WORK/secret.txt" \
    "/data/frames/%252e%252e%252fsecret.jpg" "/data/frames/cow.jpg%00.png" "/data/frames/cow.jpg%00" \
    "/data/frames/evil.jpg" "/data/frames/alias.jpg" "/data/frames/outside/secret.txt" \
    "/data/frames/outside%2fsecret.txt" "/data/frames/folder.jpg" "/data/frames/pipe.jpg" \
    "/data/frames/.hidden.jpg" "/data/frames/" "/data/other/cow.jpg" "/data/../secret.txt" \
    "/data/frames/violin/../../../secret.txt" "/data/frames/violin/deep/../../../../secret.txt" \
    "/data/frames/violin/%2e%2e/%2e%2e/%2e%2e/secret.txt" "/data/frames/violin//deep/x%20y.jpg" \
    "/data/frames/violin/up/secret.txt" "/data/frames/violin/deep/" "/data/frames/violin/deep" \
    "/data/frames/violin/.%2e/cow.jpg" "/data/" "/data" "/data/%2fetc/passwd" \
    "/ear/data/frames/..%2fsecret.jpg" "/ear/data/audio/%2e%2e%2f%2e%2e%2fsecret.txt"; do
    fetch t --path-as-is "$(URL "$path")"
    check "GET $path: 404 not_found (got $code)" error_is t 404 not_found
    check "GET $path: nothing of the secret" eval '! grep -q secret "$WORK/t.b"'
done
fetch health "$(URL /healthz)"
check "after the FIFO, the service still answers (got $code)" [ "$code" = 200 ]

stop_server
finish
