#!/usr/bin/python3
"""Golden fixtures for Ear's model engine (src/nn), from PyTorch.

Run once with Debian's Python (torch, torchaudio, torchvision, PIL), from anywhere:

    /usr/bin/python3 tools/make_nn_fixtures.py

and commit what it writes under tests/fixtures/nn/ (about 250 KB). Tiny random models (basic
and bottleneck blocks, linear and mlp heads, 2 to 4 stages, F32, F16 and BF16 weights, random
BatchNorm statistics) are written by tools/export.py; every expected embedding is computed by
the compact family's Python service's own code (../shared/peers/compact-python/service.py:
load_safetensors, resnet, head, embed_wave, embed_image, taken from its source) reading the
exported file, and checked against tools/avclip.py's module loaded from the same file.

Files (tests/nn/test_nn_golden.c and tests/cli/model.sh read them):
  nn_<model>.safetensors        the models of MODELS below
  nn_wave_<n>.npy               input waves, float32 [n] (the samples do not know their rate)
  nn_<model>_audio.npy          expected clip embeddings, float32 [len(WAVES), embed_dim]
  nn_<model>_mel_<n>.npy        the normalised log-mel of wave n's last segment [n_mels, frames]
  nn_<model>_mel_<n>_unit.npy   that segment's unit vector [embed_dim]
  nn_alpha.png, nn_photo.jpg    a non-square RGBA PNG and a portrait JPEG (made here with PIL)
  nn_<model>_image.npy          expected embeddings of [nn_alpha.png, nn_photo.jpg]
  nn_<model>_pixels.npy         nn_alpha.png preprocessed, float32 [3, size, size]
  nn_clip.wav                   8 kHz 16-bit WAV for `ear embed --audio`
  nn_<model>_clip.npy           its expected embedding (decoded samples are int16 / 32768)
  nn_fingerprints.txt           "<file> <xxh64 of the file's bytes, 16 hex digits>" per model
"""
import ast
import copy
import json
import os
import sys
import wave as wavefile

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(ROOT, "tests", "fixtures", "nn")
SEED = os.path.join(ROOT, "..", "shared", "peers", "compact-python", "service.py")
sys.path.insert(0, HERE)
import avclip  # noqa: E402
import export  # noqa: E402

torch.set_num_threads(1)

MEL_A = {"sample_rate": 8000, "n_fft": 256, "win_length": 200, "hop_length": 80, "n_mels": 16,
         "f_min": 0.0, "f_max": 4000.0, "log_offset": 1e-6, "mean": -4.0, "std": 4.0,
         "segment_seconds": 0.5}
# Another shape: n_fft = win_length, f_min > 0, other normalisation, 0.4 s segments.
MEL_B = {"sample_rate": 8000, "n_fft": 200, "win_length": 200, "hop_length": 100, "n_mels": 12,
         "f_min": 50.0, "f_max": 3800.0, "log_offset": 1e-5, "mean": -5.0, "std": 3.0,
         "segment_seconds": 0.4}
IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def encoder(block, widths, layers, in_channels):
    return {"type": "resnet", "block": block, "layers": layers, "widths": widths,
            "in_channels": in_channels}


def audio(mel, enc, head):
    return dict(mel, encoder=enc, head=head)


def image(size, enc, head):
    return dict(IMAGENET, size=size, encoder=enc, head=head)


LINEAR = {"type": "linear"}

# name -> (configuration, dtype, write num_batches_tracked, seed)
MODELS = {
    "basic_f32": ({"embed_dim": 8,
                   "audio": audio(MEL_A, encoder("basic", [4, 8, 8, 16], [2, 1, 1, 1], 1), LINEAR),
                   "image": image(32, encoder("basic", [4, 8, 8, 16], [1, 1, 1, 1], 3),
                                  {"type": "mlp", "hidden": 12})}, "F32", True, 1),
    "bottleneck_f16": ({"embed_dim": 12,
                        "audio": audio(MEL_A, encoder("bottleneck", [4, 4, 8, 8], [1, 2, 1, 1], 1),
                                       {"type": "mlp", "hidden": 16}),
                        "image": image(40, encoder("bottleneck", [4, 8, 8], [1, 1, 2], 3), LINEAR)},
                       "F16", True, 2),
    "audio_bf16": ({"embed_dim": 16,
                    "audio": audio(MEL_B, encoder("basic", [6, 8, 12], [1, 1, 1], 1),
                                   {"type": "mlp", "hidden": 10})}, "BF16", False, 3),
    "image_f32": ({"embed_dim": 8,
                   "image": image(36, encoder("basic", [4, 8], [1, 2], 3), LINEAR)}, "F32", False, 4),
}
# 129 = n_fft / 2 + 1 of MEL_A, the shortest clip it allows; 2500: shorter than a segment;
# 4000: exactly one MEL_A segment; 9100: several segments, the last one overlapping.
WAVES = [129, 2500, 4000, 9100]
MEL_WAVES = [2500, 9100]
IMAGES = ["nn_alpha.png", "nn_photo.jpg"]
CLIP_SAMPLES = 9600


# ------------------------------------------------------------------ the seed service's own code

def seed_namespace():
    """The seed service's model functions, taken from its source without running the service
    (which loads a model and builds an index when imported)."""
    with open(SEED) as f:
        tree = ast.parse(f.read(), SEED)
    wanted = {"load_safetensors", "_bn", "resnet", "head", "embed_wave", "embed_image"}
    body = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in wanted]
    assigns = [n for n in tree.body if isinstance(n, ast.Assign) and
               any(isinstance(t, ast.Name) and t.id in ("A", "MEL") for t in n.targets)]
    found = {n.name for n in body}
    assert found == wanted and len(assigns) == 2, "seed service changed: %s" % (wanted - found)
    ns = {"json": json, "struct": __import__("struct"), "np": np, "torch": torch, "F": F,
          "torchaudio": __import__("torchaudio"), "Image": Image, "math": __import__("math")}
    exec(compile(ast.Module(body=body, type_ignores=[]), SEED, "exec"), ns)
    ns["_assigns"] = compile(ast.Module(body=assigns, type_ignores=[]), SEED, "exec")
    return ns


def seed_load(path):
    """Loads a model file the way the seed service does; returns its namespace ready to embed
    (a fresh one each time: the functions read the model from their module's globals)."""
    ns = seed_namespace()
    ns["P"], ns["CFG"] = ns["load_safetensors"](path)
    if "audio" in ns["CFG"]:
        exec(ns["_assigns"], ns)
    return ns


# ------------------------------------------------------------------ XXH64, the fingerprint

MASK = (1 << 64) - 1
P1, P2, P3, P4, P5 = (11400714785074694791, 14029467366897019727, 1609587929392839161,
                      9650029242287828579, 2870177450012600261)


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & MASK


def _round(acc, lane):
    return (_rotl((acc + lane * P2) & MASK, 31) * P1) & MASK


def xxh64(data, seed=0):
    """XXH64 (the xxHash 64-bit algorithm), independently of src/nn's C version."""
    n, i = len(data), 0
    if n >= 32:
        v = [(seed + P1 + P2) & MASK, (seed + P2) & MASK, seed, (seed - P1) & MASK]
        while i + 32 <= n:
            for k in range(4):
                v[k] = _round(v[k], int.from_bytes(data[i + 8 * k:i + 8 * k + 8], "little"))
            i += 32
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & MASK
        for lane in v:
            h = (((h ^ _round(0, lane)) * P1) + P4) & MASK
    else:
        h = (seed + P5) & MASK
    h = (h + n) & MASK
    while i + 8 <= n:
        h ^= _round(0, int.from_bytes(data[i:i + 8], "little"))
        h = (_rotl(h, 27) * P1 + P4) & MASK
        i += 8
    if i + 4 <= n:
        h ^= (int.from_bytes(data[i:i + 4], "little") * P1) & MASK
        h = (_rotl(h, 23) * P2 + P3) & MASK
        i += 4
    while i < n:
        h ^= (data[i] * P5) & MASK
        h = (_rotl(h, 11) * P1) & MASK
        i += 1
    h ^= h >> 33
    h = (h * P2) & MASK
    h ^= h >> 29
    h = (h * P3) & MASK
    return h ^ (h >> 32)


# ------------------------------------------------------------------ inputs

def make_wave(count, seed, rate=8000.0):
    """A chirp with a moving envelope plus noise: every mel band gets energy."""
    rng = np.random.RandomState(seed)
    t = np.arange(count, dtype=np.float64) / rate
    duration = max(count / rate, 1e-3)
    phase = 2 * np.pi * (60.0 * t + (3600.0 - 60.0) * t * t / (2 * duration))
    envelope = 0.3 + 0.25 * np.sin(2 * np.pi * 2.3 * t + 0.7)
    x = envelope * np.sin(phase) + 0.05 * rng.standard_normal(count)
    x[count // 4:count // 4 + count // 8] *= 0.02
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def make_images():
    rng = np.random.RandomState(7)
    # 50 x 37 RGBA: gradients, noise, and an alpha that goes from clear to opaque.
    y, x = np.mgrid[0:37, 0:50]
    rgba = np.zeros((37, 50, 4), np.float64)
    rgba[..., 0] = 255 * x / 49
    rgba[..., 1] = 255 * y / 36
    rgba[..., 2] = 128 + 100 * np.sin(x / 3.0) * np.cos(y / 4.0)
    rgba[..., :3] += rng.uniform(-30, 30, (37, 50, 3))
    rgba[..., 3] = 255 * np.clip((x + y) / 60.0, 0, 1)
    rgba[5:12, 30:44, 3] = 0
    Image.fromarray(np.clip(rgba, 0, 255).round().astype(np.uint8), "RGBA").save(
        os.path.join(OUT, IMAGES[0]))
    # 45 x 61 (portrait) photo-like RGB JPEG.
    y, x = np.mgrid[0:61, 0:45]
    rgb = np.zeros((61, 45, 3), np.float64)
    rgb[..., 0] = 120 + 80 * np.sin(x / 5.0 + y / 9.0)
    rgb[..., 1] = 200 * ((x // 6 + y // 6) % 2) + 20
    rgb[..., 2] = 255 * y / 60
    rgb += rng.uniform(-20, 20, rgb.shape)
    Image.fromarray(np.clip(rgb, 0, 255).round().astype(np.uint8), "RGB").save(
        os.path.join(OUT, IMAGES[1]), quality=90)


# ------------------------------------------------------------------ fixtures

def save(name, array):
    np.save(os.path.join(OUT, name), np.ascontiguousarray(array, dtype="<f4"))


def close(a, b, what):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape and np.abs(a - b).max() < 1e-5, "%s: avclip differs from the seed " \
        "service by %g" % (what, np.abs(a - b).max())


def main():
    os.makedirs(OUT, exist_ok=True)
    assert "%016x" % xxh64(b"") == "ef46db3751d8e999"
    assert "%016x" % xxh64(b"abc") == "44bc2cf5ad770999"
    assert "%016x" % xxh64(b"Nobody inspects the spammish repetition") == "fbcea83c8a378bf1"

    waves = {n: make_wave(n, seed=n) for n in WAVES}
    for n, w in waves.items():
        save("nn_wave_%d.npy" % n, w)
    make_images()
    pcm = np.round(make_wave(CLIP_SAMPLES, seed=5) * 32767).astype("<i2")
    with wavefile.open(os.path.join(OUT, "nn_clip.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm.tobytes())
    clip = pcm.astype(np.float32) / np.float32(32768.0)

    fingerprints = []
    for name, (config, dtype, batches_tracked, seed) in MODELS.items():
        path = os.path.join(OUT, "nn_%s.safetensors" % name)
        model = avclip.randomize(avclip.AvClip(copy.deepcopy(config)), seed)
        export.export_model(model, path, dtype, batches_tracked)
        with open(path, "rb") as f:
            fingerprints.append("nn_%s.safetensors %016x" % (name, xxh64(f.read())))

        seed_model = seed_load(path)
        assert seed_model["CFG"] == config
        ours = export.load_model(path)  # the same rounded weights, in the module
        with torch.no_grad():
            if "audio" in config:
                expected = [seed_model["embed_wave"](waves[n]).numpy() for n in WAVES]
                for n, e in zip(WAVES, expected):
                    close(ours.audio.embed_clip(waves[n]).numpy(), e, "%s wave %d" % (name, n))
                save("nn_%s_audio.npy" % name, np.stack(expected))
                for n in MEL_WAVES:
                    last = ours.audio.segments(torch.from_numpy(waves[n]))[-1]
                    mel = ours.audio.log_mel(last)
                    save("nn_%s_mel_%d.npy" % (name, n), mel.numpy())
                    save("nn_%s_mel_%d_unit.npy" % (name, n),
                         ours.audio.embed_mel(mel[None, None])[0].numpy())
                if name == "basic_f32":
                    save("nn_%s_clip.npy" % name, seed_model["embed_wave"](clip).numpy())
            if "image" in config:
                expected = [seed_model["embed_image"](os.path.join(OUT, f)).numpy() for f in IMAGES]
                for f, e in zip(IMAGES, expected):
                    close(ours.image.embed_pil(Image.open(os.path.join(OUT, f))).numpy(), e,
                          "%s %s" % (name, f))
                save("nn_%s_image.npy" % name, np.stack(expected))
                pixels = ours.image.preprocess(Image.open(os.path.join(OUT, IMAGES[0])))
                save("nn_%s_pixels.npy" % name, pixels[0].numpy())

    with open(os.path.join(OUT, "nn_fingerprints.txt"), "w") as f:
        f.write("\n".join(fingerprints) + "\n")
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print("wrote %s: %d files, %d bytes in all" % (os.path.normpath(OUT), len(os.listdir(OUT)),
                                                   total), file=sys.stderr)


if __name__ == "__main__":
    main()
