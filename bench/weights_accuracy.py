#!/usr/bin/python3
"""How far each weight type (`--weights bf16|int8`) moves Ear's answers from float32's.

Issue 13 asks for every weight type's accuracy against f32, "cosine per query, top-5 agreement
over a query set", and for the default to be the fastest type that keeps cosine >= 0.999. This
measures it with the `ear` binary alone (numpy for the arithmetic):

- every query is embedded at each weight type as `ear search` and `ear serve` embed one: `ear
  embed --weights T`, one process per query (`--path index`: all at once by `ear index --weights
  T`, one model load per type, the vectors read from the index file, docs/index-format.md;
  faster, but at bf16/int8 the index's vectors differ from `ear embed`'s by ~1e-4 on the
  wav2vec2 family, so its `ear search` check may then differ at near-ties);
- cosine per query = the T vector against the f32 vector of the same file (min, median, mean);
- top-5: each query vector scored against the dataset's index built at f32, as `ear search` does
  (dot products of unit vectors over one kind's rows); agreement = the fraction of queries whose
  top-5 (the same items in the same order; and, looser, the same set) equals f32's. A query that
  is itself an item of the searched kind is left out of its own list (else rank 1 is free).
  A few queries are also run through `ear search --weights T` to check that this arithmetic
  lists what `ear` lists.

Families:
- original: the full-size random-weight `best_audio_visual_clip.pt` (tools/make_original_model.py)
  over a generated dataset in the original's layout (sines, noise, chirps, 0.5-12 s, WAV and
  WebM/Opus; testsrc frames and PIL pictures). Random weights give near-tied scores (every
  embedding is close to every other), so its top-5 agreement is pessimistic: tiny moves reorder
  near-ties. The trained demo models' agreement is the meaningful one.
- compact: demo/instruments.safetensors and demo/model.safetensors over the instrument dataset
  (tools/demo_instruments.sh makes it under .cache/ear-demo/instruments), a subset of its sounds
  and all its pictures as queries.

usage: /usr/bin/python3 bench/weights_accuracy.py [--ear build/ear] [--work DIR]
           [--original MODEL.pt | --no-original] [--instruments DIR | --no-compact]
           [--sounds N] [--jobs N] [--path embed|index] [--json OUT]
"""
import argparse
import concurrent.futures
import json
import os
import shutil
import struct
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TYPES = ("f32", "bf16", "int8")


def read_index(path):
    """{path: (kind, vector)} and per kind (paths, matrix) from an Ear index file (version 2)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"EARINDEX":
        raise SystemExit(f"{path}: not an Ear index")
    version, = struct.unpack_from("<I", data, 8)
    if version != 2:
        raise SystemExit(f"{path}: index version {version}, this reads 2")
    n, = struct.unpack_from("<Q", data, 32)
    dim, dtype = struct.unpack_from("<II", data, 40)
    n_img, n_aud = struct.unpack_from("<QQ", data, 48)
    items, strings = struct.unpack_from("<QQ", data, 72)
    images, image_map, audios, audio_map = struct.unpack_from("<QQQQ", data, 96)
    np_type = {1: np.float32, 2: np.float16}[dtype]

    def string(offset):
        end = data.index(b"\0", strings + offset)
        return data[strings + offset:end].decode()

    kinds = {}
    for kind, rows, at, at_map in (("image", n_img, images, image_map),
                                   ("audio", n_aud, audios, audio_map)):
        matrix = np.frombuffer(data, np_type, rows * dim, at).reshape(rows, dim).astype(np.float32)
        row_items = np.frombuffer(data, np.uint32, rows, at_map)
        paths = [string(struct.unpack_from("<Q", data, items + 24 * int(i))[0]) for i in row_items]
        kinds[kind] = (paths, matrix)
    assert n == n_img + n_aud
    vectors = {}
    for kind, (paths, matrix) in kinds.items():
        for p, v in zip(paths, matrix):
            vectors[p] = (kind, v)
    return vectors, kinds


def run(cmd, **kw):
    t = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return r.stdout, time.time() - t


def ear_index(ear, model, data, out, weights, jobs):
    env = dict(os.environ, EAR_WEIGHTS=weights)
    _, seconds = run([ear, "index", "--model", model, "--data", data, "-o", out, "--weights",
                      weights, "--jobs", str(jobs), "--max-seconds", "60"], env=env)
    return seconds


def ear_embed(ear, model, root, name, weights, work):
    kind = "--audio" if name.startswith("audio/") else "--image"
    out = os.path.join(work, "embed-" + name.replace("/", "_") + f".{weights}.npy")
    run([ear, "embed", "--model", model, kind, os.path.join(root, name), "-o", out, "--weights",
         weights, "--max-seconds", "60"])
    return np.load(out).astype(np.float32)


def top5(matrix, paths, vector, exclude):
    scores = matrix @ vector
    order = np.argsort(-scores, kind="stable")
    out = []
    for i in order:
        if paths[i] == exclude:
            continue
        out.append(paths[i])
        if len(out) == 5:
            break
    return out


def measure(name, ear, model, data, queries, work, jobs, checks, path):
    """Embeds the queries at every type against data's f32 index; returns the rows of the table."""
    os.makedirs(work, exist_ok=True)
    ref_index = os.path.join(work, "data-f32.index")
    seconds = {}
    seconds["data f32"] = ear_index(ear, model, data, ref_index, "f32", jobs)
    ref_vectors, ref_kinds = read_index(ref_index)
    embedded = {}
    if path == "index":
        # f32's query vectors are the f32 index's rows (the same files, model and type).
        embedded["f32"] = ref_vectors
        seconds["f32"] = seconds["data f32"]
        for t in TYPES[1:]:
            out = os.path.join(work, f"queries-{t}.index")
            seconds[t] = ear_index(ear, model, queries, out, t, jobs)
            embedded[t], _ = read_index(out)
    else:
        # As `ear search` and `ear serve` embed a query: `ear embed`, one process per query.
        files = sorted(os.path.relpath(os.path.join(b, f), queries)
                       for sub in ("audio", "frames")
                       for b, _, fs in os.walk(os.path.join(queries, sub)) for f in fs)
        for t in TYPES:
            t0 = time.time()
            with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
                vectors = list(pool.map(lambda f: ear_embed(ear, model, queries, f, t, work), files))
            seconds[t] = time.time() - t0
            embedded[t] = {f: (ref_vectors[f][0], v) for f, v in zip(files, vectors)}
    ref = {p: ref_vectors[p] for p in embedded["f32"]} if path == "index" else embedded["f32"]
    names = sorted(embedded["bf16"])
    searches = (("sound->image", "audio", "image"), ("sound->sound", "audio", "audio"),
                ("image->image", "image", "image"))
    rows = []
    for t in TYPES:
        got = embedded[t]
        missing = [p for p in names if p not in got]
        if missing:
            raise SystemExit(f"{name} {t}: {len(missing)} queries missing, e.g. {missing[0]}")
        row = {"family": name, "weights": t, "seconds": round(seconds[t], 2)}
        for kind in ("audio", "image"):
            qs = [p for p in names if ref[p][0] == kind]
            cos = np.array([float(np.dot(got[p][1], ref[p][1]) /
                                  (np.linalg.norm(got[p][1]) * np.linalg.norm(ref[p][1])))
                            for p in qs])
            label = "sound" if kind == "audio" else "image"
            row[f"{label} queries"] = len(qs)
            if len(qs):
                row[f"{label} cosine min"] = float(cos.min())
                row[f"{label} cosine median"] = float(np.median(cos))
                row[f"{label} below 0.999"] = int((cos < 0.999).sum())
        for search, qkind, skind in searches:
            qs = [p for p in names if ref[p][0] == qkind]
            paths, matrix = ref_kinds[skind]
            if not qs or len(paths) < 6:
                continue
            same_order = same_set = same_first = overlap = 0
            for p in qs:
                a = top5(matrix, paths, ref[p][1], p)
                b = top5(matrix, paths, got[p][1], p)
                same_order += a == b
                same_set += set(a) == set(b)
                same_first += a[0] == b[0]
                overlap += len(set(a) & set(b)) / 5
            row[f"{search} queries"] = len(qs)
            row[f"{search} top-1"] = same_first / len(qs)
            row[f"{search} top-5 order"] = same_order / len(qs)
            row[f"{search} top-5 set"] = same_set / len(qs)
            row[f"{search} top-5 overlap"] = overlap / len(qs)
        rows.append(row)
    # `ear search` itself, for a few queries: its list must be this script's (self included).
    for p in checks:
        kind = ref[p][0]
        for t in ("bf16", "int8"):
            out, _ = run([ear, "search", "--model", model, "--index", ref_index, "-k", "5",
                          "--kind", "image", "--weights", t, os.path.join(queries, p)])
            listed = [r.get("path") or r.get("url") for r in json.loads(out)["results"]]
            paths, matrix = ref_kinds["image"]
            mine = top5(matrix, paths, embedded[t][p][1], None)
            ok = all(str(x).endswith(m) for x, m in zip(listed, mine)) and len(listed) == 5
            print(f"  check {name} {t} {kind} {p}: ear search {'agrees' if ok else 'DIFFERS'}",
                  file=sys.stderr)
            if not ok:
                print(f"    ear: {listed}\n    here: {mine}", file=sys.stderr)
    return rows


def ffmpeg(*args):
    run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args])


def make_original_dataset(root, seed=7):
    """Sounds (0.5-12 s sines, noise, chirps; WAV and WebM/Opus) and pictures (testsrc frames,
    PIL drawings) in the original layout, audio/<label>/ and frames/<label>/."""
    from PIL import Image, ImageDraw
    rng = np.random.default_rng(seed)
    lengths = [0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 12.0]
    sounds = []
    for i in range(36):
        seconds = lengths[i % len(lengths)]
        kind = ("sine", "noise", "chirp")[i % 3]
        if kind == "sine":
            src = f"sine=frequency={int(rng.integers(110, 3000))}:sample_rate=44100:duration={seconds}"
        elif kind == "noise":
            color = ("white", "pink", "brown")[i % 9 // 3]
            src = f"anoisesrc=color={color}:amplitude=0.3:sample_rate=44100:duration={seconds}"
        else:
            f0 = int(rng.integers(100, 800))
            src = (f"aevalsrc=0.4*sin(2*PI*({f0}+{int(rng.integers(200, 2000))}*t/{seconds})*t)"
                   f":s=44100:d={seconds}")
        ext = "webm" if i % 4 == 3 else "wav"
        out = os.path.join(root, "audio", kind, f"{kind}{i:02d}.{ext}")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        codec = ["-c:a", "libopus", "-ac", "2", "-ar", "48000"] if ext == "webm" else []
        ffmpeg("-f", "lavfi", "-i", src, *codec, out)
        sounds.append(out)
    for i in range(12):
        out = os.path.join(root, "frames", "testsrc", f"testsrc{i:02d}.jpg")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        pattern = ("testsrc", "testsrc2", "smptebars", "rgbtestsrc")[i % 4]
        ffmpeg("-f", "lavfi", "-i", f"{pattern}=size={320 + 40 * i}x{240 + 20 * i}:rate=1",
               "-ss", str(i % 5), "-frames:v", "1", out)
    for i in range(24):
        label = ("circles", "stripes", "blocks")[i % 3]
        size = (int(rng.integers(200, 700)), int(rng.integers(200, 700)))
        img = Image.new("RGB", size, tuple(int(c) for c in rng.integers(0, 256, 3)))
        d = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(3, 12))):
            box = sorted(rng.integers(0, size[0], 2)), sorted(rng.integers(0, size[1], 2))
            xy = [int(box[0][0]), int(box[1][0]), int(box[0][1]) + 1, int(box[1][1]) + 1]
            fill = tuple(int(c) for c in rng.integers(0, 256, 3))
            if label == "circles":
                d.ellipse(xy, fill=fill)
            elif label == "stripes":
                d.line(xy, fill=fill, width=int(rng.integers(4, 30)))
            else:
                d.rectangle(xy, fill=fill)
        ext = "png" if i % 4 == 1 else "jpg"
        out = os.path.join(root, "frames", label, f"{label}{i:02d}.{ext}")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        img.save(out)


def subset(src, dst, sounds):
    """Every picture of src and `sounds` of its sounds spread over the labels, copied to dst
    under the same relative paths (so the query vectors line up with the index's)."""
    if os.path.isdir(dst):
        shutil.rmtree(dst)
    audio = []
    for base, _, files in os.walk(os.path.join(src, "audio")):
        audio += [os.path.join(base, f) for f in sorted(files)]
    audio.sort()
    step = max(1, len(audio) // sounds)
    chosen = audio[::step][:sounds]
    for base, _, files in os.walk(os.path.join(src, "frames")):
        chosen += [os.path.join(base, f) for f in sorted(files)]
    for p in chosen:
        out = os.path.join(dst, os.path.relpath(p, src))
        os.makedirs(os.path.dirname(out), exist_ok=True)
        shutil.copyfile(p, out)


def print_table(rows):
    print("Cosine of each query's embedding against its f32 embedding:\n")
    cols = ["family", "weights", "sound queries", "sound cosine min", "sound cosine median",
            "image queries", "image cosine min", "image cosine median", "seconds"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        cells = [f"{r[c]:.6f}" if "cosine" in c and c in r else str(r.get(c, "")) for c in cols]
        print("| " + " | ".join(cells) + " |")
    print("\nTop-5 against the dataset's f32 index, each type's list against f32's (fraction of "
          "queries; overlap = mean share of f32's 5 items kept):\n")
    cols = ["queries", "top-1", "top-5 order", "top-5 set", "top-5 overlap"]
    print("| family | weights | search | " + " | ".join(cols) + " |")
    print("|" + "---|" * (len(cols) + 3))
    for r in rows:
        if r["weights"] == "f32":
            continue
        for search in ("sound->image", "sound->sound", "image->image"):
            if f"{search} queries" not in r:
                continue
            cells = [str(r[f"{search} queries"])] + [f"{r[f'{search} {c}']:.3f}" for c in cols[1:]]
            print(f"| {r['family']} | {r['weights']} | {search} | " + " | ".join(cells) + " |")
    print()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ear", default=os.path.join(ROOT, "build", "ear"))
    ap.add_argument("--work", default=os.path.join(ROOT, ".cache", "weights-accuracy"))
    ap.add_argument("--original", help="the original's model (default: make a random one in --work)")
    ap.add_argument("--no-original", action="store_true")
    ap.add_argument("--instruments", default=os.path.join(ROOT, ".cache", "ear-demo", "instruments"))
    ap.add_argument("--no-compact", action="store_true")
    ap.add_argument("--sounds", type=int, default=120, help="instrument sounds used as queries")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--path", choices=("embed", "index"), default="embed",
                    help="embed each query as `ear embed` (what search and serve do; default) or "
                         "all at once with `ear index --weights T` (faster)")
    ap.add_argument("--json", help="write the rows here too")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows = []
    if not args.no_original:
        work = os.path.join(args.work, "original")
        model = args.original or os.path.join(work, "best_audio_visual_clip.pt")
        if not os.path.exists(model):
            os.makedirs(work, exist_ok=True)
            run(["/usr/bin/python3", os.path.join(ROOT, "tools", "make_original_model.py"), model])
        data = os.path.join(work, "ear_data")
        if not os.path.isdir(data):
            make_original_dataset(data)
        # Every item is a query, searched against the f32 index of the same items.
        rows += measure("original (random)", args.ear, model, data, data, work, args.jobs,
                        ["audio/chirp/chirp02.wav", "frames/circles/circles00.jpg"], args.path)
    if not args.no_compact:
        if not os.path.isdir(args.instruments):
            print(f"skipping the compact family: no {args.instruments} (tools/demo_instruments.sh)",
                  file=sys.stderr)
        else:
            queries = os.path.join(args.work, "instrument-queries")
            subset(args.instruments, queries, args.sounds)
            first = sorted(os.listdir(os.path.join(queries, "audio")))[0]
            sound = sorted(os.listdir(os.path.join(queries, "audio", first)))[0]
            for m in ("instruments", "model"):
                model = os.path.join(ROOT, "demo", f"{m}.safetensors")
                rows += measure(f"compact demo/{m}", args.ear, model, args.instruments, queries,
                                os.path.join(args.work, m), args.jobs,
                                [f"audio/{first}/{sound}"], args.path)
    print_table(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
