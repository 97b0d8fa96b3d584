#!/usr/bin/python3
"""bench_w2v's PyTorch side: the original's model in PyTorch 1.13 at one thread.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/bench_w2v_torch.py FULL.pt

FULL.pt is tools/make_w2v_fixtures.py --full's model (wav2vec2_base + resnet50, the original's
classes). Times encode_audio on the same 10 s and 3 s waves bench_w2v makes (already 16 kHz)
and encode_image on one 640x480 image through the original's transforms, medians of --runs
(default 5) after one warm-up, and prints peak RSS. Numbers, not a test.
"""
import argparse
import math
import os
import resource
import sys
import time

import numpy as np
import torch
import torchaudio
import torchvision
from PIL import Image

torch.set_num_threads(1)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import make_w2v_fixtures as fx  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    start = time.perf_counter()
    model = fx.AudioVisualCLIP(torchvision.models.resnet50(), 2048,
                               torchaudio.models.wav2vec2_base(), 768, 512)
    model.load_state_dict(torch.load(args.model, map_location="cpu"))
    model.eval()
    load = time.perf_counter() - start
    n = 160000
    t = np.arange(n) / 16000
    noise = np.zeros(n)
    state = 12345
    for i in range(n):  # bench_w2v.c's generator, value for value
        state = (state * 1103515245 + 12345) & 0xffffffff
        noise[i] = (state >> 16) / 32768.0 - 1
    wave = (0.3 * np.sin(2 * math.pi * (220 + 30 * t) * t) + 0.1 * np.sin(2 * math.pi * 1750 * t)
            + 0.02 * noise).astype(np.float32)
    i = np.arange(640 * 480 * 3)
    img = Image.fromarray(((i * 7 + i // 1920 * 3) & 255).astype(np.uint8).reshape(480, 640, 3))
    print("bench_w2v_torch: %s, torch %s, %d thread, load %.3f s" % (
        args.model, torch.__version__, torch.get_num_threads(), load))
    cases = [("10 s clip", lambda: model.encode_audio(torch.from_numpy(wave).unsqueeze(0))),
             ("3 s clip", lambda: model.encode_audio(torch.from_numpy(wave[:48000]).unsqueeze(0))),
             ("image", lambda: model.encode_image(fx.TRANSFORM(img).unsqueeze(0)))]
    with torch.no_grad():
        for name, run in cases:
            times, cpus = [], []
            for r in range(args.runs + 1):
                a, b = time.perf_counter(), time.process_time()
                run()
                if r:
                    times.append(time.perf_counter() - a)
                    cpus.append(time.process_time() - b)
            times.sort()
            cpus.sort()
            print("  %-10s median %.4f s (CPU %.4f s), fastest %.4f s" % (
                name, times[len(times) // 2], cpus[len(cpus) // 2], times[0]))
    print("  peak RSS %.1f MB" % (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


if __name__ == "__main__":
    main()
