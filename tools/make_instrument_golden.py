#!/usr/bin/python3
"""Golden embeddings of the committed instrument model (demo/instruments.safetensors) from
PyTorch, for tests/demo/instruments_model.sh, which checks that the C engine (`ear embed`) gives
the same (cosine >= 0.9999).

    /usr/bin/python3 tools/make_instrument_golden.py [--model demo/instruments.safetensors]
    python3 tools/make_instrument_golden.py --smoke [--data .cache/ear-demo/instruments]

Writes into tests/fixtures/demo/:
  instruments_tone.wav     1.5 s, 16 kHz 16-bit mono: a plucked, decaying harmonic tone (one segment)
  instruments_long.wav     6.5 s of the same kind at other pitches (two segments, the second
                           overlapping the first as the spec says)
  instruments_audio.npy    float32 [2, embed_dim]: the two sounds' clip embeddings
  instruments_image.npy    float32 [2, embed_dim]: tests/fixtures/nn/nn_alpha.png, nn_photo.jpg
The sounds are made here from a fixed formula, so the same command writes the same files.

--smoke (no PyTorch) writes the small dataset of tests/demo/instruments_model.sh's /query check
instead, from the instrument dataset (tools/demo_instruments.sh), into
tests/fixtures/demo/instruments/:
  data/audio/<instrument>/timgm-14.ogg, timgm-16.ogg  the held-out soundfont's phrases 14, 16,
                                                       Opus at 24 kbit/s, at most 4 s
  data/frames/<instrument>/<picture>.jpg               the instrument's first picture that
                                                       training saw, 160 px
  queries/<instrument>-timgm-15.webm                   phrase 15 through a room, noise and Opus
                                                       (tools/instrument_recall.py's conditions)
for SMOKE_INSTRUMENTS, chosen before the model was trained: one of each family.
"""
import argparse
import os
import shutil
import subprocess
import sys
import wave

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "tests/fixtures/demo")
IMAGES = ["tests/fixtures/nn/nn_alpha.png", "tests/fixtures/nn/nn_photo.jpg"]
RATE = 16000
SMOKE_INSTRUMENTS = ["piano", "violin", "guitar", "trumpet", "flute", "drum_kit"]


def smoke(data):
    import instrument_recall
    out = os.path.join(OUT, "instruments")
    shutil.rmtree(out, ignore_errors=True)
    with open(os.path.join(data, ".held-out")) as f:
        held = set(line.strip() for line in f)
    for n, name in enumerate(SMOKE_INSTRUMENTS):
        audio = os.path.join(out, "data", "audio", name)
        frames = os.path.join(out, "data", "frames", name)
        os.makedirs(audio)
        os.makedirs(frames)
        os.makedirs(os.path.join(out, "queries"), exist_ok=True)
        for clip in ("timgm-14", "timgm-16"):
            subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i",
                            os.path.join(data, "audio", name, clip + ".wav"), "-t", "4", "-ac", "1",
                            "-c:a", "libopus", "-b:a", "24k", os.path.join(audio, clip + ".ogg")],
                           check=True)
        picture = next(f for f in sorted(os.listdir(os.path.join(data, "frames", name)))
                       if "frames/%s/%s" % (name, f) not in held)
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i",
                        os.path.join(data, "frames", name, picture), "-vf",
                        "scale=160:160:force_original_aspect_ratio=decrease", "-q:v", "4",
                        os.path.join(frames, picture)], check=True)
        instrument_recall.microphone(
            os.path.join(data, "audio", name, "timgm-15.wav"),
            os.path.join(out, "queries", "%s-timgm-15.webm" % name),
            instrument_recall.CONDITIONS[n % len(instrument_recall.CONDITIONS)], 5001 + n)
    print("wrote %s" % out, file=sys.stderr)


def plucked(seconds, pitches):
    """Notes of equal length, each a decaying sum of harmonics, as 16-bit samples."""
    n = int(seconds * RATE)
    t = np.arange(n // len(pitches)) / RATE
    notes = []
    for f0 in pitches:
        note = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 8)) * np.exp(-3.0 * t)
        notes.append(note)
    x = np.concatenate(notes)
    x = np.concatenate([x, np.zeros(n - len(x))])
    return np.round(x / np.max(np.abs(x)) * 0.7 * 32767).astype("<i2")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=os.path.join(REPO, "demo/instruments.safetensors"))
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--data", default=os.path.join(REPO, ".cache/ear-demo/instruments"))
    args = p.parse_args()
    if args.smoke:
        smoke(args.data)
        return
    import torch
    from PIL import Image
    import export
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    model = export.load_model(args.model)
    model.eval()
    rows = []
    for name, seconds, pitches in (("instruments_tone.wav", 1.5, [220.0]),
                                   ("instruments_long.wav", 6.5, [196.0, 294.0, 392.0, 523.0])):
        pcm = plucked(seconds, pitches)
        with wave.open(os.path.join(OUT, name), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes(pcm.tobytes())
        with torch.no_grad():
            wave_ = torch.from_numpy(pcm.astype(np.float32) / np.float32(32768.0))
            rows.append(model.audio.embed_clip(wave_).numpy())
    np.save(os.path.join(OUT, "instruments_audio.npy"), np.stack(rows).astype("<f4"))
    with torch.no_grad():
        images = [model.image.embed_pil(Image.open(os.path.join(REPO, f))).numpy() for f in IMAGES]
    np.save(os.path.join(OUT, "instruments_image.npy"), np.stack(images).astype("<f4"))
    print("wrote %s" % OUT, file=sys.stderr)


if __name__ == "__main__":
    main()
