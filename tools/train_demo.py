#!/usr/bin/python3
"""Trains the demo model (demo/model.safetensors) on the demo dataset (tools/demo_data.sh).

    /usr/bin/python3 tools/train_demo.py [--data .cache/ear-demo/data] [--seed 1] \
        [--steps 2000] [-o demo/model.safetensors]

A small AvClip (tools/avclip.py) trained with CLIP's contrastive loss and learned temperature
between each stamp's sound and its picture. The sounds a user sends are not the clean files:
they come through a phone's or a laptop's microphone, in a room, with noise, band-limited,
at any level, cut anywhere and coded as Opus by the browser. So every training sound is drawn
from a bank of augmented variants made once, offline, and cached (CACHE/bank-*.npz):

  speed ±6 %, level, a synthetic room (exponentially decaying noise, RT60 0.1-0.9 s), band
  limits (high-pass 80-400 Hz, low-pass 3-8 kHz), noise (white / pink / brown, hum) at
  0-30 dB SNR, the sound placed anywhere in a 4 s window of that noise (or a 4 s crop of a
  longer sound), soft clipping, and a round trip through ffmpeg's libopus at 48 kHz
  (12-64 kbit/s, never 32, which tools/demo_recall.sh uses); some variants stay clean.

Each step then crops a random length (1-4 s) around the sound, changes the level, and masks
a few mel bands and frames (SpecAugment); the pictures get random crops, flips, colour and
greyscale changes. Everything is seeded (--seed, and the bank's own seed): the same command
gives the same file. torch.set_num_threads(2): it is sized to train in about 15 minutes on
two cores. The held-out check at the end uses noise and rooms from other seeds.
"""
import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio.functional as AF

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import avclip  # noqa: E402
import export  # noqa: E402

RATE = 16000
WINDOW = 4.0          # seconds of each bank variant
BANK_VERSION = 1      # bump when the bank's recipe changes (the cache key includes it)
TEST_BITRATE = 32     # kbit/s that only tools/demo_recall.sh uses

CONFIG = {
    "embed_dim": 128,
    "audio": {
        "sample_rate": RATE, "n_fft": 512, "win_length": 400, "hop_length": 160,
        "n_mels": 64, "f_min": 0.0, "f_max": 8000.0,
        "log_offset": 1e-6, "mean": -7.0, "std": 4.5,
        "segment_seconds": 5.0,
        "encoder": {"type": "resnet", "block": "basic", "layers": [2, 2, 2, 2],
                    "widths": [16, 32, 64, 128], "in_channels": 1},
        "head": {"type": "linear"},
    },
    "image": {
        "size": 128, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
        "encoder": {"type": "resnet", "block": "basic", "layers": [1, 1, 1, 1],
                    "widths": [16, 32, 64, 128], "in_channels": 3},
        "head": {"type": "mlp", "hidden": 256},
    },
}


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def decode(path):
    """Any sound -> mono float32 at RATE, with ffmpeg (as Ear's decoder: channels averaged)."""
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-ac", "1",
                          "-ar", str(RATE), "-f", "f32le", "-"],
                         check=True, stdout=subprocess.PIPE).stdout
    return np.frombuffer(raw, dtype="<f4").copy()


def load_dataset(data):
    """[(id, label, wave, image path)] in labels.tsv's order."""
    items = []
    with open(os.path.join(data, "labels.tsv"), encoding="utf-8") as f:
        for line in f:
            ident, label = line.rstrip("\n").split("\t", 1)
            items.append((ident, label, decode(os.path.join(data, "audio", ident + ".ogg")),
                          os.path.join(data, "frames", ident + ".jpg")))
    return items


# --- The bank of augmented sounds -------------------------------------------------------------

def colored_noise(rng, n, color):
    """White, pink (1/f) or brown (1/f²) noise of unit RMS."""
    white = rng.standard_normal(n)
    if color == "white":
        x = white
    else:
        spectrum = np.fft.rfft(white)
        f = np.maximum(np.fft.rfftfreq(n, 1 / RATE), 20.0)
        spectrum /= f ** (0.5 if color == "pink" else 1.0)
        x = np.fft.irfft(spectrum, n)
    return x / (np.sqrt(np.mean(x ** 2)) + 1e-12)


def room(rng, wave, late_echoes=False):
    """A synthetic room: the direct sound plus exponentially decaying noise (RT60 0.1-0.9 s),
    a few discrete early reflections, mixed at a random wet level. late_echoes: half the time
    also one to three distinct echoes 50-300 ms later (a far wall, a hall's slap-back), which
    the tail alone never makes."""
    rt60 = rng.uniform(0.1, 0.9)
    n = int(max(rt60, 0.32 if late_echoes else 0) * RATE)
    t = np.arange(n) / RATE
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    tail[: int(0.002 * RATE)] = 0
    for _ in range(rng.integers(2, 6)):
        tail[int(rng.uniform(0.003, 0.03) * RATE)] += rng.uniform(-0.5, 0.5)
    tail /= np.sqrt(np.sum(tail ** 2)) + 1e-12
    ir = np.zeros(n)
    ir[0] = 1.0
    ir += tail * rng.uniform(0.2, 1.2)
    if late_echoes and rng.random() < 0.5:
        for _ in range(rng.integers(1, 4)):
            ir[int(rng.uniform(0.05, 0.3) * RATE)] += rng.uniform(0.1, 0.6)
    size = 1 << int(math.ceil(math.log2(len(wave) + n)))
    out = np.fft.irfft(np.fft.rfft(wave, size) * np.fft.rfft(ir, size), size)[: len(wave)]
    return out


def band_limit(rng, wave):
    x = torch.from_numpy(wave.astype(np.float32))
    x = AF.highpass_biquad(x, RATE, float(rng.uniform(80, 400)))
    x = AF.lowpass_biquad(x, RATE, float(rng.uniform(3000, 7900)))
    return x.numpy().astype(np.float64)


def variant(rng, wave, clean, late_echoes=False, low_snr=False):
    """One augmented 4 s window of `wave` -> (samples, onset, offset) in samples (late_echoes:
    see room; low_snr: noise down to -15 dB below the sound, not 0)."""
    w = int(WINDOW * RATE)
    x = wave.astype(np.float64)
    if not clean:
        speed = rng.uniform(0.94, 1.06)
        src = np.arange(0, len(x) - 1, speed)
        x = np.interp(src, np.arange(len(x)), x)
        if rng.random() < 0.8:
            x = room(rng, np.concatenate([x, np.zeros(int(0.3 * RATE))]), late_echoes)
    x = x / (np.max(np.abs(x)) + 1e-9)
    if len(x) >= w:
        start = int(rng.integers(0, len(x) - w + 1))
        x, onset, offset = x[start:start + w], 0, w
    else:
        onset = int(rng.integers(0, w - len(x) + 1))
        offset = onset + len(x)
        x = np.concatenate([np.zeros(onset), x, np.zeros(w - offset)])
    if clean:
        return x * rng.uniform(0.3, 0.9), onset, offset
    if rng.random() < 0.8:
        x = band_limit(rng, x)
    signal_rms = np.sqrt(np.mean(x[onset:offset] ** 2)) + 1e-9
    if low_snr:
        # Noise louder than the sound, as far as it masks little of it: rumble (brown noise,
        # nearly all under 100 Hz) down to -15 dB, pink to -5 dB, white to 0 dB.
        colour = rng.choice(["white", "pink", "brown"])
        snr = rng.uniform({"white": 0, "pink": -5, "brown": -15}[colour], 30)
        noise = colored_noise(rng, w, colour)
    else:
        snr = rng.uniform(0, 30)
        noise = colored_noise(rng, w, rng.choice(["white", "pink", "brown"]))
    if rng.random() < 0.3:   # mains hum and its harmonics
        f0 = rng.choice([50.0, 60.0])
        t = np.arange(w) / RATE
        noise += sum(rng.uniform(0.2, 1) * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6))
                     for k in (1, 2, 3))
    noise *= signal_rms / (10 ** (snr / 20)) / (np.sqrt(np.mean(noise ** 2)) + 1e-12)
    x = x + noise
    x *= rng.uniform(0.05, 1.0) / (np.max(np.abs(x)) + 1e-9)
    if rng.random() < 0.15:  # an overdriven microphone
        drive = rng.uniform(1.5, 4)
        x = np.tanh(drive * x) / np.tanh(drive)
    return x, onset, offset


def opus_round_trip(wave, kbps):
    """16 kHz float -> 48 kHz Opus at kbps (as a browser sends it) -> 16 kHz float, same length."""
    encode = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-f", "f32le", "-ar", str(RATE), "-ac", "1",
         "-i", "-", "-ar", "48000", "-c:a", "libopus", "-b:a", "%dk" % kbps, "-f", "ogg", "-"],
        input=wave.astype("<f4").tobytes(), check=True, stdout=subprocess.PIPE).stdout
    decoded = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", "-", "-ac", "1", "-ar", str(RATE),
         "-f", "f32le", "-"], input=encode, check=True, stdout=subprocess.PIPE).stdout
    out = np.frombuffer(decoded, dtype="<f4")
    if len(out) < len(wave):
        out = np.concatenate([out, np.zeros(len(wave) - len(out), np.float32)])
    return out[: len(wave)]


def bank_item(job):
    """One item's variants: ([variants, 4 s] int16, [variants, 2] onsets/offsets)."""
    seed, i, wave, variants = job
    rng = np.random.default_rng([seed, i])
    w = int(WINDOW * RATE)
    windows, spans = [], np.zeros((variants, 2), np.int32)
    for v in range(variants):
        x, onset, offset = variant(rng, wave, clean=v < 2)
        windows.append(x)
        spans[v] = onset, offset
    # Opus for all but the clean ones and a quarter of the rest, in one stream per item at one
    # bitrate (the codec's state across the boundaries is what a longer recording has anyway).
    coded = [v for v in range(2, variants) if rng.random() < 0.75]
    kbps = int(rng.choice([12, 16, 24, 40, 64]))
    if coded:
        joined = opus_round_trip(np.concatenate([windows[v] for v in coded]), kbps)
        for j, v in enumerate(coded):
            windows[v] = joined[j * w:(j + 1) * w]
    sounds = np.stack([np.clip(np.round(x * 32767), -32767, 32767) for x in windows])
    return sounds.astype(np.int16), spans


def make_bank(items, variants, seed, path, workers):
    """[items, variants, 4 s] int16 sounds and [items, variants, 2] onsets/offsets, cached.
    Each item has its own random stream, so the bank is the same for any number of workers."""
    if os.path.exists(path):
        with np.load(path) as z:
            return z["sounds"], z["spans"]
    log("bank: making %d variants of %d sounds (cached in %s)" % (variants, len(items), path))
    import multiprocessing
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        done = pool.map(bank_item, [(seed, i, it[2], variants) for i, it in enumerate(items)])
    sounds = np.stack([d[0] for d in done])
    spans = np.stack([d[1] for d in done])
    tmp = path + ".tmp.npz"
    np.savez(tmp, sounds=sounds, spans=spans)
    os.replace(tmp, path)
    return sounds, spans


# --- Pictures --------------------------------------------------------------------------------

def load_images(items, size):
    """Each frame as the model sees it before the crop: [3, H, W] floats, shorter side size*1.25."""
    from PIL import Image
    tensors = []
    for _, _, _, path in items:
        img = Image.open(path).convert("RGB")
        x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float()[None] / 255.0
        h, w = x.shape[2:]
        s = int(size * 1.25)
        nh, nw = (s, int(s * w / h)) if h <= w else (int(s * h / w), s)
        tensors.append(F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False,
                                     antialias=True)[0])
    return tensors


def image_bank(g, pictures, variants, size):
    """[items, variants, 3, size, size] uint8 random resized crops of each picture."""
    return torch.stack([torch.stack([
        (augment_image(g, x, size) * 255).round().to(torch.uint8) for _ in range(variants)])
        for x in pictures])


def augment_image(g, x, size):
    """A random resized crop -> [3, size, size] in [0, 1]."""
    _, h, w = x.shape
    area = h * w * float(torch.empty(()).uniform_(0.45, 1.0, generator=g))
    ratio = math.exp(float(torch.empty(()).uniform_(math.log(3 / 4), math.log(4 / 3), generator=g)))
    ch = min(h, int(round(math.sqrt(area / ratio))))
    cw = min(w, int(round(math.sqrt(area * ratio))))
    top = int(torch.randint(0, h - ch + 1, (1,), generator=g))
    left = int(torch.randint(0, w - cw + 1, (1,), generator=g))
    return F.interpolate(x[None, :, top:top + ch, left:left + cw], size=(size, size),
                         mode="bilinear", align_corners=False, antialias=True)[0].clamp(0, 1)


def colour_batch(g, y, mean, std):
    """[B, 3, s, s] in [0, 1] -> random flips, brightness, contrast, greyscale; normalised."""
    b = y.shape[0]
    flip = torch.rand(b, generator=g) < 0.5
    y = torch.where(flip[:, None, None, None], y.flip(3), y)
    brightness = torch.empty(b, 1, 1, 1).uniform_(0.7, 1.3, generator=g)
    contrast = torch.empty(b, 1, 1, 1).uniform_(0.7, 1.3, generator=g)
    centre = y.mean(dim=(1, 2, 3), keepdim=True)
    y = ((y - centre) * contrast + centre) * brightness
    grey = torch.rand(b, generator=g) < 0.15
    y = torch.where(grey[:, None, None, None], y.mean(1, keepdim=True).expand_as(y), y)
    return (y.clamp(0, 1) - mean) / std


def exact_image(model, path):
    from PIL import Image
    return model.image.preprocess(Image.open(path))[0]


# --- Training --------------------------------------------------------------------------------

def crop_batch(g, sounds, spans, picks, length):
    """For each (item, variant) in picks: a crop of `length` samples holding as much of the
    sound as fits, at a random level."""
    w = sounds.shape[2]
    out = torch.empty(len(picks), length)
    for row, (i, v) in enumerate(picks):
        onset, offset = (int(s) for s in spans[i, v])
        lo = max(0, min(onset, offset - length))
        hi = min(w - length, max(onset, offset - length))
        start = lo if hi <= lo else int(torch.randint(lo, hi + 1, (1,), generator=g))
        x = torch.from_numpy(sounds[i, v, start:start + length].astype(np.float32) / 32767)
        out[row] = x * 10 ** (float(torch.empty(()).uniform_(-12, 6, generator=g)) / 20)
    return out.clamp(-1, 1)


def spec_augment(g, mel):
    """Masks two bands of up to 8 mels and two spans of up to 1/8 of the frames per example."""
    b, _, n_mels, frames = mel.shape
    mask = torch.zeros(b, 1, n_mels, frames, dtype=torch.bool)
    mels, times = torch.arange(n_mels)[None, :], torch.arange(frames)[None, :]
    for _ in range(2):
        m = torch.randint(0, 9, (b, 1), generator=g)
        f0 = (torch.rand(b, 1, generator=g) * (n_mels - m + 1)).long()
        mask |= ((mels >= f0) & (mels < f0 + m))[:, None, :, None]
        t = torch.randint(0, max(1, frames // 8), (b, 1), generator=g)
        t0 = (torch.rand(b, 1, generator=g) * (frames - t + 1)).long()
        mask |= ((times >= t0) & (times < t0 + t))[:, None, None, :]
    return mel.masked_fill(mask, float(mel.mean()))


def recall(model, waves, images):
    """Recall@1 and @5 of each wave (row i belongs to image i) against all images."""
    with torch.no_grad():
        a = torch.stack([model.audio.embed_clip(w) for w in waves])
        rank = (a @ images.t()).argsort(dim=1, descending=True)
    target = torch.arange(len(waves))[:, None]
    return [float((rank[:, :k] == target).any(1).float().mean()) for k in (1, 5)]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p.add_argument("--data", default=os.path.join(repo, ".cache/ear-demo/data"))
    p.add_argument("--cache", default=None, help="where the bank goes (default: DATA/..)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--bank-seed", type=int, default=1)
    p.add_argument("--variants", type=int, default=16)
    p.add_argument("--image-variants", type=int, default=16)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=48)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dtype", default="f32", choices=["f32", "f16"])
    p.add_argument("-o", "--output", default=os.path.join(repo, "demo/model.safetensors"))
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    started = time.time()
    items = load_dataset(args.data)
    n = len(items)
    log("data: %d items from %s (%.0f s)" % (n, args.data, time.time() - started))

    cache = args.cache or os.path.dirname(os.path.abspath(args.data))
    key = hashlib.sha256()
    key.update(("%d %d %d" % (BANK_VERSION, args.bank_seed, args.variants)).encode())
    for ident, _, wave, _ in items:
        key.update(ident.encode() + wave.tobytes())
    sounds, spans = make_bank(items, args.variants, args.bank_seed,
                              os.path.join(cache, "bank-%s.npz" % key.hexdigest()[:16]),
                              args.threads)
    # Held out: variants from other seeds (noise, rooms, levels), Opus at the test bitrate,
    # all in one stream with gaps of silence.
    clips = []
    for i, (_, _, wave, _) in enumerate(items):
        rng = np.random.default_rng([args.bank_seed + 7919, i])
        x, onset, offset = variant(rng, wave, clean=False)
        lo, hi = max(0, onset - int(0.5 * RATE)), min(len(x), offset + int(0.5 * RATE))
        clips.append(x[lo:hi])
    gap = np.zeros(int(0.5 * RATE))
    coded = opus_round_trip(np.concatenate([np.concatenate([c, gap]) for c in clips]),
                            TEST_BITRATE)
    held, at = [], 0
    for c in clips:
        held.append(torch.from_numpy(coded[at:at + len(c)].copy()))
        at += len(c) + len(gap)
    log("bank ready (%.0f s)" % (time.time() - started))

    model = avclip.AvClip(CONFIG)
    size = CONFIG["image"]["size"]
    mean = torch.tensor(CONFIG["image"]["mean"]).view(3, 1, 1)
    std = torch.tensor(CONFIG["image"]["std"]).view(3, 1, 1)
    exact = torch.stack([exact_image(model, it[3]) for it in items])
    g = torch.Generator().manual_seed(args.seed)
    crops = image_bank(g, load_images(items, size), args.image_variants, size)
    log("pictures ready (%.0f s)" % (time.time() - started))

    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (no_decay if param.ndim <= 1 else decay).append(param)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    warmup = max(1, args.steps // 20)

    def lr_at(step):
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, args.steps - warmup)))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)

    order = torch.randperm(n, generator=g).tolist()
    cursor = 0
    model.train()
    losses = []
    for step in range(args.steps):
        if cursor + args.batch > n:
            order, cursor = torch.randperm(n, generator=g).tolist(), 0
        batch = order[cursor:cursor + args.batch]
        cursor += args.batch
        picks = [(i, int(torch.randint(0, args.variants, (1,), generator=g))) for i in batch]
        length = int(float(torch.empty(()).uniform_(1.0, WINDOW, generator=g)) * RATE)
        waves = crop_batch(g, sounds, spans, picks, length)
        mel = spec_augment(g, model.audio.log_mel(waves)[:, None])
        audio = model.audio.embed_mel(mel)
        which = torch.randint(0, args.image_variants, (len(batch),), generator=g)
        pixels = colour_batch(g, crops[batch, which].float() / 255, mean, std)
        keep = torch.rand(len(batch), generator=g) < 0.2   # some see the index's exact frame
        pixels = torch.where(keep[:, None, None, None], exact[batch], pixels)
        image = model.image(pixels)
        logits = model.logit_scale.exp().clamp(max=100.0) * audio @ image.t()
        loss = avclip.AvClip.contrastive_loss(logits)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(float(loss))
        if step % 50 == 49 or step == args.steps - 1:
            log("step %d/%d: loss %.3f, temperature %.4f, %.0f s" % (
                step + 1, args.steps, np.mean(losses[-50:]), 1 / model.logit_scale.exp().item(),
                time.time() - started))
        if step % 500 == 499 or step == args.steps - 1:
            model.eval()
            with torch.no_grad():
                frames = model.image(exact)
            r1, r5 = recall(model, held, frames)
            log("  held out (other seeds, Opus %d kbit/s): Recall@1 %.3f, Recall@5 %.3f"
                % (TEST_BITRATE, r1, r5))
            model.train()

    model.eval()
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    export.export_model(model, args.output, args.dtype.upper(), num_batches_tracked=False)
    log("wrote %s (%d bytes) in %.0f s (seed %d, %d steps of %d)" % (
        args.output, os.path.getsize(args.output), time.time() - started, args.seed,
        args.steps, args.batch))


if __name__ == "__main__":
    main()
