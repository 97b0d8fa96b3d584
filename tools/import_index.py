#!/usr/bin/python3
"""Converts an index saved by PyTorch (torch.save) into an Ear index (docs/index-format.md).

Run with Debian's Python (it has torch):

    /usr/bin/python3 tools/import_index.py --model M --data DIR INPUT.pt -o INDEX \\
        [--against frames|sounds] [--dtype f32|f16] [--fingerprint HEX]

Layouts understood (docs/index-format.md, "Importing a PyTorch index"):
  - the original service's indexed_db.pt: {"metadata": [{"type": "audio"|"image",
    "url": "/ear/data/<path>", "label"}], "tensor": [N, D]}: each row its own item of its
    type, its path under DIR from the URL (every file must exist);
  - an older guess at it: {"ids", "labels", "frames", "audio", "embeddings"[N, D]};
  - a dict with an [N, D] tensor or array under "embeddings", "embs", "features" or "vectors"
    and a list of ids or file paths under "ids", "paths", "files" or "names" (optionally
    "labels", "frames", "audio");
  - a tuple or list (embeddings, ids).
Outside the original's layout the embeddings are images (--against sounds: sounds),
L2-normalised; file names missing from the layout are looked up by id in DIR/frames and
DIR/audio.
The model's fingerprint (XXH64 of the model file, as `ear info MODEL` prints) is computed here
(--fingerprint gives it instead). The index is written to .INDEX.tmp.PID, fsynced, renamed.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

MAGIC = b"EARINDEX"
VERSION = 2
HEADER_SIZE = 256
ITEM_SIZE = 24
KINDS = {"image": 0, "audio": 1}
ALIGN = 64
NO_STRING = 0xFFFFFFFFFFFFFFFF
NO_ROW = 0xFFFFFFFF
DTYPES = {"f32": 1, "f16": 2}
EMBEDDING_KEYS = ("embeddings", "embs", "features", "vectors")
ID_KEYS = ("ids", "paths", "files", "names")

MASK = (1 << 64) - 1
P1, P2, P3 = 0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9
P4, P5 = 0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & MASK


def _round(acc, lane):
    return (_rotl((acc + lane * P2) & MASK, 31) * P1) & MASK


def xxh64(path, seed=0):
    """XXH64 of a file's bytes (the algorithm of src/nn/fingerprint.c, from xxHash's spec)."""
    data = open(path, "rb").read()
    n = len(data)
    i = 0
    if n >= 32:
        v = [(seed + P1 + P2) & MASK, (seed + P2) & MASK, seed & MASK, (seed - P1) & MASK]
        stripes = n // 32
        words = struct.unpack_from("<%dQ" % (stripes * 4), data)
        v1, v2, v3, v4 = v
        for s in range(0, stripes * 4, 4):
            v1 = _round(v1, words[s])
            v2 = _round(v2, words[s + 1])
            v3 = _round(v3, words[s + 2])
            v4 = _round(v4, words[s + 3])
        i = stripes * 32
        h = (_rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)) & MASK
        for lane in (v1, v2, v3, v4):
            h = ((h ^ _round(0, lane)) * P1 + P4) & MASK
    else:
        h = (seed + P5) & MASK
    h = (h + n) & MASK
    while i + 8 <= n:
        (k,) = struct.unpack_from("<Q", data, i)
        h = (_rotl(h ^ _round(0, k), 27) * P1 + P4) & MASK
        i += 8
    if i + 4 <= n:
        (k,) = struct.unpack_from("<I", data, i)
        h = (_rotl(h ^ (k * P1 & MASK), 23) * P2 + P3) & MASK
        i += 4
    while i < n:
        h = (_rotl(h ^ (data[i] * P5 & MASK), 11) * P1) & MASK
        i += 1
    h ^= h >> 33
    h = (h * P2) & MASK
    h ^= h >> 29
    h = (h * P3) & MASK
    h ^= h >> 32
    return "%016x" % h


def model_embed_dim(path):
    """embed_dim from an Ear model's header (safetensors metadata ear.config)."""
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise ValueError("%s: not a safetensors file" % path)
        (n,) = struct.unpack("<Q", raw)
        if n > 100 << 20:
            raise ValueError("%s: not a safetensors file (header of %d bytes)" % (path, n))
        header = json.loads(f.read(n))
    meta = header.get("__metadata__", {})
    if meta.get("ear.format") != "avclip":
        raise ValueError("%s: not an Ear model (no ear.format avclip)" % path)
    return int(json.loads(meta["ear.config"])["embed_dim"])


def _as_matrix(value):
    if hasattr(value, "detach"):
        value = value.detach().cpu().float().numpy()
    m = np.asarray(value, dtype=np.float32)
    if m.ndim != 2:
        raise ValueError("the embeddings are %d-dimensional, not [N, D]" % m.ndim)
    return m


def _names(value, n, what):
    if value is None:
        return None
    value = list(value)
    if len(value) != n:
        raise ValueError("%d %s for %d embeddings" % (len(value), what, n))
    return [None if v is None else str(v) for v in value]


def split_id(path):
    """(id, file name) of a path or name: the name without its last extension, as `ear index`."""
    name = os.path.basename(path)
    stem, ext = os.path.splitext(name)
    return (stem if ext else name), name


def parse_layout(obj):
    """(embeddings [N, D], ids, labels, frame names, audio names, whether the ids were the
    embedded files' paths); labels and names None where the layout has none."""
    if isinstance(obj, (tuple, list)) and len(obj) == 2:
        obj = {"embeddings": obj[0], "ids": obj[1]}
    if not isinstance(obj, dict):
        raise ValueError("not a layout this tool knows: %s (see --help)" % type(obj).__name__)
    emb_key = next((k for k in EMBEDDING_KEYS if k in obj), None)
    id_key = next((k for k in ID_KEYS if k in obj), None)
    if emb_key is None or id_key is None:
        raise ValueError("no %s among the keys %s (want one of %s and one of %s)" % (
            "embeddings" if emb_key is None else "ids", sorted(map(str, obj.keys())),
            "/".join(EMBEDDING_KEYS), "/".join(ID_KEYS)))
    emb = _as_matrix(obj[emb_key])
    n = emb.shape[0]
    raw_ids = _names(obj[id_key], n, id_key)
    if any(v is None or v == "" for v in raw_ids):
        raise ValueError("an empty id in %s" % id_key)
    frames = _names(obj.get("frames"), n, "frames")
    audio = _names(obj.get("audio"), n, "audio")
    paths_are_files = False
    if id_key == "ids":
        ids = raw_ids
    else:
        # Paths: the id is the file name without extension; the file itself is the frame
        # (or the sound with --against sounds) unless the layout names those separately.
        ids = [split_id(p)[0] for p in raw_ids]
        if frames is None and audio is None:
            frames = [split_id(p)[1] for p in raw_ids]
            paths_are_files = True
    labels = _names(obj.get("labels"), n, "labels")
    return emb, ids, labels, frames, audio, paths_are_files


def list_folder(folder):
    """{id: file name} for DIR/frames or DIR/audio, the same rules as `ear index`."""
    out = {}
    if not os.path.isdir(folder):
        return out
    files = [f for f in os.listdir(folder)
             if not f.startswith(".") and os.path.isfile(os.path.join(folder, f))]
    for name in sorted(files, key=lambda f: (split_id(f)[0].encode(), f.encode())):
        out.setdefault(split_id(name)[0], name)
    return out


def write_index(path, fingerprint, dim, dtype, items):
    """items: dicts with kind ("image" or "audio"), path (under the dataset root), label (or
    None: the path) and embedding, any order. Same layout as src/index/writer.c (format 2),
    written atomically."""
    for it in items:
        if any("\0" in (it.get(k) or "") for k in ("path", "label")):
            raise ValueError("%r: a NUL character in a string" % it["path"])
        if not it["path"]:
            raise ValueError("an item has no path")
    items = sorted(items, key=lambda it: it["path"].encode("utf-8", "surrogateescape"))
    for a, b in zip(items, items[1:]):
        if a["path"] == b["path"]:
            raise ValueError("two items have the path %r" % a["path"])
    count = len(items)
    elem = np.float32 if dtype == "f32" else np.float16
    row_bytes = dim * np.dtype(elem).itemsize
    strings = bytearray()
    records = bytearray()
    rows = [[], []]
    for number, it in enumerate(items):
        path_at = len(strings)
        strings += it["path"].encode("utf-8", "surrogateescape") + b"\0"
        label = it.get("label")
        label_at = path_at
        if label is not None and label != it["path"]:
            label_at = len(strings)
            strings += label.encode("utf-8", "surrogateescape") + b"\0"
        kind = KINDS[it["kind"]]
        records += struct.pack("<2Q2I", path_at, label_at, kind, len(rows[kind]))
        rows[kind].append(number)
    items_at = HEADER_SIZE
    image_map = items_at + count * ITEM_SIZE
    audio_map = image_map + 4 * len(rows[0])
    strings_at = audio_map + 4 * len(rows[1])
    images_at = -(-(strings_at + len(strings)) // ALIGN) * ALIGN
    audios_at = -(-(images_at + len(rows[0]) * row_bytes) // ALIGN) * ALIGN
    size = audios_at + len(rows[1]) * row_bytes

    header = bytearray(HEADER_SIZE)
    header[0:8] = MAGIC
    struct.pack_into("<II", header, 8, VERSION, HEADER_SIZE)
    header[16:32] = fingerprint.encode("ascii")
    struct.pack_into("<QII", header, 32, count, dim, DTYPES[dtype])
    struct.pack_into("<QQQQQQQQQQ", header, 48, len(rows[0]), len(rows[1]), size, items_at,
                     strings_at, len(strings), images_at, image_map, audios_at, audio_map)
    checksum = 0xCBF29CE484222325
    for byte in bytes(header[:248]):
        checksum = ((checksum ^ byte) * 0x100000001B3) & MASK
    struct.pack_into("<Q", header, 248, checksum)

    folder = os.path.dirname(path) or "."
    tmp = os.path.join(folder, ".%s.tmp.%d" % (os.path.basename(path), os.getpid()))
    try:
        with open(tmp, "wb") as f:
            f.write(header)
            f.write(records)
            f.write(np.asarray(rows[0], dtype="<u4").tobytes())
            f.write(np.asarray(rows[1], dtype="<u4").tobytes())
            f.write(strings)
            f.write(b"\0" * (images_at - f.tell()))
            for kind in (0, 1):
                if kind == 1:
                    f.write(b"\0" * (audios_at - f.tell()))
                for number in rows[kind]:
                    f.write(np.asarray(items[number]["embedding"], dtype=elem).astype(
                        "<f4" if dtype == "f32" else "<f2").tobytes())
            if f.tell() != size:
                raise RuntimeError("wrote %d bytes, the layout says %d" % (f.tell(), size))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def original_items(obj, data):
    """The items of the original's indexed_db.pt: (embeddings [N, D], items without
    embeddings, missing files)."""
    meta = obj["metadata"]
    emb = _as_matrix(obj["tensor"])
    if len(meta) != emb.shape[0]:
        raise ValueError("%d metadata entries for %d rows" % (len(meta), emb.shape[0]))
    items, missing = [], []
    for i, m in enumerate(meta):
        if not isinstance(m, dict) or m.get("type") not in KINDS or "url" not in m:
            raise ValueError("metadata %d is not {type: audio|image, url, label}" % i)
        url = str(m["url"])
        at = url.find("/data/")
        if at < 0:
            raise ValueError("metadata %d: the URL %r has no /data/" % (i, url))
        rel = url[at + len("/data/"):]
        parts = rel.split("/")
        if not rel or any(p in ("", ".", "..") for p in parts):
            raise ValueError("metadata %d: the URL %r leaves the dataset" % (i, url))
        if not os.path.isfile(os.path.join(data, *parts)):
            missing.append(rel)
        items.append({"kind": m["type"], "path": rel, "label": str(m.get("label", ""))})
    return emb, items, missing


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 2)[2])
    ap.add_argument("input", help="the file torch.save wrote")
    ap.add_argument("--model", required=True, help="the Ear model the embeddings come from")
    ap.add_argument("--data", required=True, help="the dataset folder (frames/, audio/)")
    ap.add_argument("-o", "--output", required=True, help="the Ear index to write")
    ap.add_argument("--against", choices=("frames", "sounds"), default="frames",
                    help="what the embeddings are of (default frames)")
    ap.add_argument("--dtype", choices=("f32", "f16"), default="f32")
    ap.add_argument("--fingerprint", help="the model's fingerprint, instead of hashing it")
    args = ap.parse_args()
    try:
        import torch
        obj = torch.load(args.input, map_location="cpu")
        original = isinstance(obj, dict) and "metadata" in obj and "tensor" in obj
        if original:
            emb, items, missing_files = original_items(obj, args.data)
            if missing_files:
                raise ValueError("%d files of the index are not under %s: %s" % (
                    len(missing_files), args.data, ", ".join(missing_files[:5])))
        else:
            emb, ids, labels, frames, audio, paths_are_files = parse_layout(obj)
        dim = model_embed_dim(args.model)
        if emb.shape[1] != dim:
            raise ValueError("the embeddings have %d dimensions, the model %d"
                             % (emb.shape[1], dim))
        if not np.all(np.isfinite(emb)):
            raise ValueError("some embeddings are not finite")
        norms = np.linalg.norm(emb.astype(np.float64), axis=1)
        if np.any(norms == 0):
            raise ValueError("embedding %d is zero" % int(np.argmin(norms)))
        if np.any(np.abs(norms - 1) > 1e-4):
            emb = (emb / norms[:, None]).astype(np.float32)
        fingerprint = args.fingerprint or xxh64(args.model)
        if len(fingerprint) != 16 or any(c not in "0123456789abcdef" for c in fingerprint):
            raise ValueError("--fingerprint must be 16 lowercase hex digits")
        missing = 0
        if original:
            for i, it in enumerate(items):
                it["embedding"] = emb[i]
        else:
            if paths_are_files and args.against == "sounds":
                audio, frames = frames, None
            key = "frame" if args.against == "frames" else "audio"
            folder = "frames" if key == "frame" else "audio"
            given = frames if key == "frame" else audio
            on_disk = list_folder(os.path.join(args.data, folder))
            items = []
            for i, item_id in enumerate(ids):
                name = given[i] if given is not None else on_disk.get(item_id)
                if not name:
                    missing += 1
                    print("import_index: %r has no %s file in %s" % (item_id, key, args.data),
                          file=sys.stderr)
                items.append({"kind": "image" if key == "frame" else "audio",
                              "path": "%s/%s" % (folder, os.path.basename(name) if name
                                                 else item_id),
                              "label": labels[i] if labels else item_id,
                              "embedding": emb[i]})
        write_index(args.output, fingerprint, dim, args.dtype, items)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        print("import_index: %s" % e, file=sys.stderr)
        return 1
    print("import_index: wrote %s: %d items (%s, %s), model %s%s" % (
        args.output, len(items), "images and sounds" if original else args.against,
        args.dtype, fingerprint,
        "; %d without a file" % missing if missing else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
