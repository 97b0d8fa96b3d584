#!/usr/bin/python3
"""bench_torch: bench/bench_nn.c's measurements, done by PyTorch at one thread.

    /usr/bin/python3 bench/bench_torch.py /tmp/audio.safetensors [--runs 10] [--seconds 5]
    /usr/bin/python3 bench/bench_torch.py /tmp/image.safetensors

The same model file read into tools/avclip.py's module (tensor by tensor, straight into the
parameters, so that no second copy of the file inflates the memory figure) or, with
--loader seed, read and run by the original service's own code (its load_safetensors, which
reads the whole file, and its functional resnet/head/embed_wave), the same inputs
(a deterministic clip of noise and tones, wave to embedding including the log-mel; random
preprocessed pixels, pixels to embedding), torch.set_num_threads(1), inference mode. Prints
the median and fastest of --runs runs after one warm-up, FLOPs counted as bench_nn counts
them, GFLOP/s, and the process's peak resident memory. One process per tower.
"""
import argparse
import json
import os
import resource
import struct
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import avclip  # noqa: E402

torch.set_num_threads(1)


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def load_lean(path):
    """An AvClip from an Ear model file, each tensor read and copied into its parameter."""
    with open(path, "rb") as f:
        length = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(length))
        config = json.loads(header.pop("__metadata__")["ear.config"])
        model = avclip.AvClip(config).eval()
        state = model.state_dict(keep_vars=True)
        start = 8 + length
        for name, info in header.items():
            begin, end = info["data_offsets"]
            f.seek(start + begin)
            raw = bytearray(f.read(end - begin))  # writable: torch.from_numpy wants that
            if info["dtype"] == "F32":
                array = np.frombuffer(raw, "<f4")
            elif info["dtype"] == "F16":
                array = np.frombuffer(raw, "<f2").astype(np.float32)
            elif info["dtype"] == "BF16":
                array = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
            else:
                continue
            with torch.no_grad():
                state[name].copy_(torch.from_numpy(array).reshape(info["shape"]))
    return model, config


def load_seed(path):
    """The seed service's model functions and weights (tools/make_nn_fixtures.py takes them
    from its source without starting the service)."""
    import make_nn_fixtures
    return make_nn_fixtures.seed_load(path)


def conv_out(size, kernel, stride, padding):
    return (size + 2 * padding - kernel) // stride + 1


def tower_flops(tower, embed_dim, height, width):
    """2 FLOPs per multiply-add of every convolution and linear layer (bench_nn's count)."""
    e, head = tower["encoder"], tower["head"]
    h, w = conv_out(height, 7, 2, 3), conv_out(width, 7, 2, 3)
    channels = e["widths"][0]
    flops = 2.0 * e["in_channels"] * channels * 49 * h * w
    h, w = conv_out(h, 3, 2, 1), conv_out(w, 3, 2, 1)
    expansion = 4 if e["block"] == "bottleneck" else 1
    for stage, (width_, count) in enumerate(zip(e["widths"], e["layers"])):
        out = width_ * expansion
        for b in range(count):
            stride = 2 if stage > 0 and b == 0 else 1
            oh, ow = conv_out(h, 3, stride, 1), conv_out(w, 3, stride, 1)
            if expansion == 1:
                flops += 2.0 * (channels * width_ * 9 + width_ * width_ * 9) * oh * ow
            else:
                flops += 2.0 * channels * width_ * h * w
                flops += 2.0 * (width_ * width_ * 9 + width_ * out) * oh * ow
            if stride != 1 or channels != out:
                flops += 2.0 * channels * out * oh * ow
            channels, h, w = out, oh, ow
    if head["type"] == "linear":
        return flops + 2.0 * channels * embed_dim
    return flops + 2.0 * channels * head["hidden"] + 2.0 * head["hidden"] * embed_dim


def time_runs(name, fn, runs, flops):
    with torch.inference_mode():
        fn()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    median = (times[runs // 2] if runs % 2 else (times[runs // 2 - 1] + times[runs // 2]) / 2)
    print("%s: median %.2f ms, fastest %.2f ms over %d runs; %.3f GFLOP per pass, %.1f GFLOP/s "
          "(median)" % (name, median, times[0], runs, flops / 1e9, flops / (median * 1e6)))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--loader", choices=["module", "seed"], default="module")
    args = p.parse_args()
    imported = peak_rss_mib()
    start = time.perf_counter()
    if args.loader == "module":
        model, config = load_lean(args.model)
        audio, image = model.audio, model.image
    else:
        seed = load_seed(args.model)
        config = seed["CFG"]
        audio = (lambda wave: seed["embed_wave"](wave.numpy())) if "audio" in config else None
        if "image" in config:
            def image(pixels):
                i, params = config["image"], seed["P"]
                features = seed["resnet"](pixels, params, "image.encoder.", i["encoder"])
                z = seed["head"](features, params, "image.proj.", i["head"])
                return torch.nn.functional.normalize(z, dim=1)[0]
        else:
            image = None
    print("model %s: loaded in %.1f ms by the %s loader; torch %s, %d thread; peak RSS after "
          "import %.1f MiB" % (args.model, (time.perf_counter() - start) * 1e3, args.loader,
                               torch.__version__, torch.get_num_threads(), imported))
    if audio is not None:
        a = config["audio"]
        count = int(args.seconds * a["sample_rate"])
        t = np.arange(count) / a["sample_rate"]
        # bench_nn's clip: two tones and uniform noise (the generator differs; the work does not)
        rng = np.random.RandomState(1)
        wave = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 3100 * t)
                + 0.1 * rng.uniform(-1, 1, count)).astype(np.float32)
        wave = torch.from_numpy(wave)
        segment = int(round(a["segment_seconds"] * a["sample_rate"]))
        segments = [None] * (1 if count <= segment else (count + segment - 1) // segment)
        frames = 1 + min(count, segment) // a["hop_length"]
        flops = len(segments) * tower_flops(a, config["embed_dim"], a["n_mels"], frames)
        name = "audio %.2g s (%d segment%s of %dx%d)" % (
            args.seconds, len(segments), "" if len(segments) == 1 else "s", a["n_mels"], frames)
        embed = audio.embed_clip if args.loader == "module" else audio
        time_runs(name, lambda: embed(wave), args.runs, flops)
    if image is not None:
        i = config["image"]
        pixels = torch.randn(1, 3, i["size"], i["size"], generator=torch.Generator().manual_seed(7))
        flops = tower_flops(i, config["embed_dim"], i["size"], i["size"])
        time_runs("image %dx%d" % (i["size"], i["size"]), lambda: image(pixels), args.runs, flops)
    print("peak RSS %.1f MiB" % peak_rss_mib())


if __name__ == "__main__":
    main()
