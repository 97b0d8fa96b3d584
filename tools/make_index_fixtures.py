#!/usr/bin/python3
"""Fixtures for tools/import_index.py and the index reader (tests/index, tests/cli/index_import.sh).

Run once with Debian's Python (torch), from anywhere, and commit what it writes under
tests/fixtures/index/ (a few KB):

    /usr/bin/python3 tools/make_index_fixtures.py

Files:
  seed.pt            the original service's EAR_INDEX_PT layout (ids, labels, frames, audio,
                     embeddings [5, 8]) as torch.save writes it, for nn_basic_f32.safetensors;
                     odd ids (a space, UTF-8), an item without a sound, ids out of order
  features.pt        another layout: {"features": [4, 8] not normalised, "paths": [...]}
  seed.earindex      seed.pt imported by tools/import_index.py (read by C tests without torch)
  seed_expected.tsv  what seed.earindex must hold, in id order: id, label, frame, audio ("-": none)
  seed_expected.npy  its frame embeddings in id order, L2-normalised here with NumPy, float32
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
    ids = ["zebra", "cow", "dog bark", "caf\u00e9", "apple"]
    labels = ["A zebra.", "A cow.", "dog bark", "Caf\u00e9 noise \u2713", "An apple."]
    frames = ["zebra.jpg", "cow.png", "dog bark.jpg", "caf\u00e9.jpg", "apple.jpg"]
    audio = ["zebra.wav", "cow.ogg", None, "caf\u00e9.flac", "apple.wav"]
    emb = rng.standard_normal((len(ids), DIM)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    torch.save({"ids": ids, "labels": labels, "frames": frames, "audio": audio,
                "embeddings": torch.from_numpy(emb)}, os.path.join(OUT, "seed.pt"))

    paths = ["/data/ear/frames/%s.jpg" % n for n in ("bird", "cow", "rain", "train")]
    features = (rng.standard_normal((len(paths), DIM)) * 3).astype(np.float32)
    torch.save({"features": torch.from_numpy(features), "paths": paths},
               os.path.join(OUT, "features.pt"))

    order = sorted(range(len(ids)), key=lambda i: ids[i].encode("utf-8"))
    with open(os.path.join(OUT, "seed_expected.tsv"), "w", encoding="utf-8") as f:
        for i in order:
            f.write("%s\t%s\t%s\t%s\n" % (ids[i], labels[i], frames[i], audio[i] or "-"))
    np.save(os.path.join(OUT, "seed_expected.npy"), emb[order].astype("<f4"))

    # The importer itself, as a user runs it; its output is what the C tests read.
    subprocess.run([sys.executable, os.path.join(HERE, "import_index.py"), "--model", MODEL,
                    "--data", OUT, os.path.join(OUT, "seed.pt"),
                    "-o", os.path.join(OUT, "seed.earindex")], check=True)
    for name in sorted(os.listdir(OUT)):
        print("%8d  %s" % (os.path.getsize(os.path.join(OUT, name)), name))


if __name__ == "__main__":
    main()
