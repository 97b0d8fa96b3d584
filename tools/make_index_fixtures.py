#!/usr/bin/python3
"""Fixtures for tools/import_index.py and the index reader (tests/index, tests/cli/index_import.sh).

Run once with Debian's Python (torch), from anywhere, and commit what it writes under
tests/fixtures/index/ (a few KB):

    /usr/bin/python3 tools/make_index_fixtures.py

Files:
  seed.pt            the original service's indexed_db.pt layout ({"metadata": [{type, url,
                     label}], "tensor": [5, 8]}) as torch.save writes it, for
                     nn_basic_f32.safetensors; sounds and frames mixed, nested folders, a
                     space and UTF-8 in paths and labels, rows out of path order
  seed_data/         the dataset those URLs name (empty files: only their presence is checked)
  features.pt        another layout: {"features": [4, 8] not normalised, "paths": [...]}
  seed.earindex      seed.pt imported by tools/import_index.py (read by C tests without torch)
  seed_expected.tsv  what seed.earindex must hold, in path order: path, kind, label
  seed_expected.npy  its embeddings in path order, L2-normalised here with NumPy, float32
"""
import os
import subprocess
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(ROOT, "tests", "fixtures", "index")
MODEL = os.path.join(ROOT, "tests", "fixtures", "nn", "nn_basic_f32.safetensors")
DIM = 8


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240501)
    metadata = [
        {"type": "audio", "url": "/ear/data/audio/zebra/z1.wav", "label": "zebra"},
        {"type": "audio", "url": "/ear/data/audio/caf\u00e9/deep/c 1.wav", "label": "caf\u00e9"},
        {"type": "image", "url": "/ear/data/frames/zebra/z1.jpg", "label": "zebra"},
        {"type": "image", "url": "/ear/data/frames/dog bark/d.jpg", "label": "dog bark"},
        {"type": "audio", "url": "/ear/data/audio/apple/a.wav", "label": "apple"},
    ]
    emb = rng.standard_normal((len(metadata), DIM)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    torch.save({"metadata": metadata, "tensor": torch.from_numpy(emb)},
               os.path.join(OUT, "seed.pt"))
    data = os.path.join(OUT, "seed_data")
    for m in metadata:
        path = os.path.join(data, *m["url"][len("/ear/data/"):].split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "wb").close()

    paths = ["/data/ear/frames/%s.jpg" % n for n in ("bird", "cow", "rain", "train")]
    features = (rng.standard_normal((len(paths), DIM)) * 3).astype(np.float32)
    torch.save({"features": torch.from_numpy(features), "paths": paths},
               os.path.join(OUT, "features.pt"))

    paths = [m["url"][len("/ear/data/"):] for m in metadata]
    order = sorted(range(len(paths)), key=lambda i: paths[i].encode("utf-8"))
    with open(os.path.join(OUT, "seed_expected.tsv"), "w", encoding="utf-8") as f:
        for i in order:
            f.write("%s\t%s\t%s\n" % (paths[i], metadata[i]["type"], metadata[i]["label"]))
    np.save(os.path.join(OUT, "seed_expected.npy"), emb[order].astype("<f4"))

    # The importer itself, as a user runs it; its output is what the C tests read.
    subprocess.run([sys.executable, os.path.join(HERE, "import_index.py"), "--model", MODEL,
                    "--data", data, os.path.join(OUT, "seed.pt"),
                    "-o", os.path.join(OUT, "seed.earindex")], check=True)
    for name in sorted(os.listdir(OUT)):
        print("%8d  %s" % (os.path.getsize(os.path.join(OUT, name)), name))


if __name__ == "__main__":
    main()
