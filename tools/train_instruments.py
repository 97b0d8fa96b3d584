#!/usr/bin/python3
"""Trains the instrument demo's model (demo/instruments.safetensors) on the instrument dataset
(tools/demo_instruments.sh), without ever seeing what the dataset's .held-out lists.

    OMP_NUM_THREADS=1 /usr/bin/python3 tools/train_instruments.py \
        [--data .cache/ear-demo/instruments] [--seed 1] [--steps 3600] [-o demo/instruments.safetensors]

The pairs are instrument-level, as in the original: any sound of an instrument goes with any of
its pictures. Each step takes every instrument once on the picture side (one of its training
pictures, augmented) and SOUNDS_PER instruments' sounds on the sound side; the loss is CLIP's
symmetric one made multi-positive: sound -> picture is a softmax over the step's pictures (one
per instrument, so exactly one positive), picture -> sound averages the log-probability of each
of the instrument's sounds among all the step's sounds; and, because /query ranks sounds and
pictures together (the best 100 of both, walked into two columns), a third term puts every
sound and picture of the step in one softmax, each item's positives being the other items of its
instrument of either kind (supervised contrastive), so that an instrument's pictures outrank
other instruments' sounds and both columns fill.

Sounds are made to resemble a microphone with tools/train_demo.py's recipe (a cached bank of
variants: speed, a synthetic room with late echoes, band limits, coloured noise and hum from
30 dB SNR down to 0 dB (white), -5 dB (pink) or -15 dB (brown), level, soft clipping, Opus round
trips at 12-64 kbit/s but never 32), then random crops of 1-3.5 s, fresh noise for half of them
(--step-noise), level, a random timbre (EQ and mel shift, --timbre) and SpecAugment per step;
pictures get random resized crops, flips, colour and greyscale.
Seeded: the same command gives the same file. One thread (OMP_NUM_THREADS=1 and
torch.set_num_threads(1)): the machine it was made on is shared.
"""
import argparse
import hashlib
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import avclip  # noqa: E402
import export  # noqa: E402
import train_demo as td  # noqa: E402

RATE = td.RATE
BANK_VERSION = 3          # 2: rooms with late echoes; 3: and noise louder than the sound
SOUNDS_PER = 3            # sounds per instrument per step

CONFIG = {
    "embed_dim": 128,
    "audio": dict(td.CONFIG["audio"]),
    "image": dict(td.CONFIG["image"]),
}


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def load_dataset(data, skip_fonts=()):
    """-> instruments, [(instrument index, path)] training sounds, same for pictures, and the
    held-out lists (for the log). Sounds whose file name starts with '<font>-' for a font in
    skip_fonts are left out too."""
    with open(os.path.join(data, ".held-out")) as f:
        held = set(line.strip() for line in f if line.strip())
    instruments = sorted(os.listdir(os.path.join(data, "frames")))
    sounds, pictures = [], []
    for k, name in enumerate(instruments):
        for kind, out in (("audio", sounds), ("frames", pictures)):
            for file in sorted(os.listdir(os.path.join(data, kind, name))):
                rel = "%s/%s/%s" % (kind, name, file)
                if rel in held or (kind == "audio" and file.split("-")[0] in skip_fonts):
                    continue
                out.append((k, os.path.join(data, rel)))
    return instruments, sounds, pictures, held


def read_sound(path):
    """A dataset sound -> mono float32 at RATE. The rendered WAVs are read here (a process per
    file costs minutes on a busy machine), anything else through ffmpeg as Ear decodes."""
    if not path.endswith(".wav"):
        return td.decode(path)
    import wave
    import torchaudio.functional as AF
    with wave.open(path) as w:
        assert w.getsampwidth() == 2, path
        rate, channels = w.getframerate(), w.getnchannels()
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
    x = x.reshape(-1, channels).mean(1)
    if rate != RATE:
        x = AF.resample(torch.from_numpy(x), rate, RATE).numpy()
    return x.astype(np.float32)


def make_bank(items, variants, seed, path):
    """train_demo's bank ([items, variants, 4 s] int16, [items, variants, 2] spans), cached, with
    one clean variant per sound instead of two and the Opus round trips of many sounds in one
    ffmpeg stream per bitrate (a process per sound costs minutes on a busy machine)."""
    if os.path.exists(path):
        with np.load(path) as z:
            return z["sounds"], z["spans"]
    log("bank: making %d variants of %d sounds (cached in %s)" % (variants, len(items), path))
    w = int(td.WINDOW * RATE)
    sounds = np.zeros((len(items), variants, w), np.int16)
    spans = np.zeros((len(items), variants, 2), np.int32)
    windows, coded = {}, {}
    for i, item in enumerate(items):
        rng = np.random.default_rng([seed, i])
        for v in range(variants):
            x, onset, offset = td.variant(rng, item[2], clean=v < 1, late_echoes=True,
                                           low_snr=True)
            windows[i, v] = x
            spans[i, v] = onset, offset
        kbps = int(rng.choice([12, 16, 24, 40, 64]))
        for v in range(1, variants):
            if rng.random() < 0.75:
                coded.setdefault(kbps, []).append((i, v))
        if i % 100 == 99:
            log("  %d/%d sounds" % (i + 1, len(items)))
    for kbps, keys in sorted(coded.items()):
        for start in range(0, len(keys), 256):
            chunk = keys[start:start + 256]
            joined = td.opus_round_trip(np.concatenate([windows[k] for k in chunk]), kbps)
            for j, k in enumerate(chunk):
                windows[k] = joined[j * w:(j + 1) * w]
    for (i, v), x in windows.items():
        sounds[i, v] = np.clip(np.round(x * 32767), -32767, 32767)
    tmp = path + ".tmp.npz"
    np.savez(tmp, sounds=sounds, spans=spans)
    os.replace(tmp, path)
    return sounds, spans


def timbre(g, mel, strength=1.0):
    """Another instrument maker's or microphone's colour, per example, on the normalised log-mel
    [B, 1, mels, frames]: a tilt of up to +-10 dB across the band, three bumps or dips of up to
    6 dB, and a shift of up to 1.5 mel bands (a few semitones), the same for every frame;
    strength scales all three (1: as the committed model was trained).
    One normalised unit is std (4.5) nepers, about 19.5 dB."""
    b, _, n_mels, _ = mel.shape
    unit = 4.5 * 20 / math.log(10) / 2          # dB per normalised unit (power: 10 log10)
    bands = torch.arange(n_mels, dtype=torch.float32)[None, :]
    tilt = torch.empty(b, 1).uniform_(-10 * strength, 10 * strength, generator=g) \
        * (bands / (n_mels - 1) - 0.5) * 2
    curve = tilt
    for _ in range(3):
        centre = torch.rand(b, 1, generator=g) * n_mels
        width = torch.empty(b, 1).uniform_(2, 8, generator=g)
        gain = torch.empty(b, 1).uniform_(-6 * strength, 6 * strength, generator=g)
        curve = curve + gain * torch.exp(-0.5 * ((bands - centre) / width) ** 2)
    shift = torch.empty(b).uniform_(-1.5 * strength, 1.5 * strength, generator=g)
    source = (bands - shift[:, None]).clamp(0, n_mels - 1)     # [B, mels]
    low = source.floor().long()
    high = (low + 1).clamp(max=n_mels - 1)
    frac = (source - low)[:, None, :, None]
    index = lambda i: i[:, None, :, None].expand(b, 1, n_mels, mel.shape[3])  # noqa: E731
    shifted = mel.gather(2, index(low)) * (1 - frac) + mel.gather(2, index(high)) * frac
    return shifted + (curve / unit)[:, None, :, None]


def step_noise(g, waves, probability):
    """Noise added afresh at each step to that share of the [B, samples] crops: white, pink or
    brown, as loud as the bank's worst (white from 0 dB SNR, pink from -5, brown from -15, to
    20 dB). The bank's noise is baked into its few variants; a quiet instrument behind a
    rumbling room is the microphone condition training otherwise sees least."""
    b, n = waves.shape
    chosen = torch.rand(b, generator=g) < probability
    if not chosen.any():
        return waves
    frequency = torch.fft.rfftfreq(n, 1 / RATE).clamp(min=20.0)
    out = waves.clone()
    for row in chosen.nonzero().flatten().tolist():
        colour = int(torch.randint(0, 3, (1,), generator=g))
        floor = (0.0, -5.0, -15.0)[colour]
        snr = float(torch.empty(()).uniform_(floor, 20.0, generator=g))
        noise = torch.randn(n, generator=g)
        if colour:
            noise = torch.fft.irfft(torch.fft.rfft(noise) / frequency ** (0.5 * colour), n)
        noise = noise / (noise.pow(2).mean().sqrt() + 1e-12)
        signal = waves[row].pow(2).mean().sqrt() + 1e-9
        x = waves[row] + noise * signal / 10 ** (snr / 20)
        out[row] = x / max(1.0, float(x.abs().max()))
    return out


def multi_positive(logits, positive):
    """Mean over rows of -mean log softmax over each row's positives (rows without one skipped)."""
    logp = logits.log_softmax(dim=1)
    count = positive.sum(1)
    keep = count > 0
    return -((logp * positive).sum(1)[keep] / count[keep]).mean()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p.add_argument("--data", default=os.path.join(repo, ".cache/ear-demo/instruments"))
    p.add_argument("--cache", default=None, help="where the bank goes (default: DATA/..)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--bank-seed", type=int, default=1)
    p.add_argument("--variants", type=int, default=5)
    p.add_argument("--image-variants", type=int, default=24)
    p.add_argument("--steps", type=int, default=3600)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--timbre", type=float, default=1,
                   help="random EQ and mel shifts per step, this strong (0: none)")
    p.add_argument("--step-noise", type=float, default=0.5,
                   help="share of each step's sounds given fresh noise (0: none)")
    p.add_argument("--skip-fonts", default="",
                   help="comma-separated soundfonts (file-name prefixes) not to train on")
    p.add_argument("-o", "--output", default=os.path.join(repo, "demo/instruments.safetensors"))
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    started = time.time()
    instruments, sound_files, picture_files, held = load_dataset(
        args.data, [f for f in args.skip_fonts.split(",") if f])
    n = len(instruments)
    items = [(os.path.basename(path), instruments[k], read_sound(path), None)
             for k, path in sound_files]
    sound_label = np.array([k for k, _ in sound_files])
    log("data: %d instruments, %d training sounds, %d training pictures (%d held out) (%.0f s)"
        % (n, len(items), len(picture_files), len(held), time.time() - started))

    cache = args.cache or os.path.dirname(os.path.abspath(args.data))
    key = hashlib.sha256()
    key.update(("instruments %d %d %d" % (BANK_VERSION, args.bank_seed, args.variants)).encode())
    for (_, path), (_, _, wave, _) in zip(sound_files, items):
        key.update(path.encode() + wave.tobytes())
    sounds, spans = make_bank(items, args.variants, args.bank_seed,
                              os.path.join(cache, "bank-%s.npz" % key.hexdigest()[:16]))
    log("bank ready: %s (%.0f s)" % (sounds.shape, time.time() - started))
    by_instrument = [np.flatnonzero(sound_label == k) for k in range(n)]

    # A check as training goes: every 8th training sound, a variant from other seeds, against
    # the instruments' training pictures (not the held-out soundfont: it plays no part here).
    check_rows = list(range(0, len(items), 8))
    clips = []
    for i in check_rows:
        rng = np.random.default_rng([args.bank_seed + 7919, i])
        x, onset, offset = td.variant(rng, items[i][2], clean=False)
        clips.append(torch.from_numpy(x[max(0, onset - 4000):offset + 4000].astype(np.float32)))

    model = avclip.AvClip(CONFIG)
    size = CONFIG["image"]["size"]
    mean = torch.tensor(CONFIG["image"]["mean"]).view(3, 1, 1)
    std = torch.tensor(CONFIG["image"]["std"]).view(3, 1, 1)
    picture_label = np.array([k for k, _ in picture_files])
    pics = [(None, None, None, path) for _, path in picture_files]
    exact = torch.stack([td.exact_image(model, path) for _, path in picture_files])
    g = torch.Generator().manual_seed(args.seed)
    crops = td.image_bank(g, td.load_images(pics, size), args.image_variants, size)
    pictures_of = [np.flatnonzero(picture_label == k) for k in range(n)]
    log("pictures ready (%.0f s)" % (time.time() - started))

    decay, no_decay = [], []
    for _, param in model.named_parameters():
        (no_decay if param.ndim <= 1 else decay).append(param)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    warmup = max(1, args.steps // 20)

    def lr_at(step):
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, args.steps - warmup)))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)

    def check():
        model.eval()
        with torch.no_grad():
            frames = model.image(exact)
            a = torch.stack([model.audio.embed_clip(c) for c in clips])
            best = (a @ frames.t()).argmax(1).numpy()
        model.train()
        return float(np.mean(picture_label[best] == sound_label[check_rows]))

    model.train()
    losses = []
    for step in range(args.steps):
        rows = np.concatenate([by_instrument[k][torch.randperm(len(by_instrument[k]),
                                                               generator=g)[:SOUNDS_PER].numpy()]
                               for k in range(n)])
        labels = torch.from_numpy(sound_label[rows])
        picks = [(int(i), int(torch.randint(0, args.variants, (1,), generator=g))) for i in rows]
        length = int(float(torch.empty(()).uniform_(1.0, 3.5, generator=g)) * RATE)
        waves = td.crop_batch(g, sounds, spans, picks, length)
        if args.step_noise:
            waves = step_noise(g, waves, args.step_noise)
        mel = model.audio.log_mel(waves)[:, None]
        if args.timbre:
            mel = timbre(g, mel, args.timbre)
        mel = td.spec_augment(g, mel)
        audio = model.audio.embed_mel(mel)
        chosen = torch.tensor([int(pictures_of[k][int(torch.randint(0, len(pictures_of[k]), (1,),
                                                                       generator=g))])
                               for k in range(n)])
        which = torch.randint(0, args.image_variants, (n,), generator=g)
        pixels = td.colour_batch(g, crops[chosen, which].float() / 255, mean, std)
        keep = torch.rand(n, generator=g) < 0.2     # some see the index's exact frame
        pixels = torch.where(keep[:, None, None, None], exact[chosen], pixels)
        image = model.image(pixels)
        scale = model.logit_scale.exp().clamp(max=100.0)
        logits = scale * audio @ image.t()                         # [sounds, instruments]
        positive = (labels[:, None] == torch.arange(n)[None, :]).float()
        # Both kinds in one ranking, as /query walks it: every item against every other.
        both = torch.cat([audio, image])
        every = torch.cat([labels, torch.arange(n)])
        eye = torch.eye(len(every), dtype=torch.bool)
        all_logits = (scale * both @ both.t()).masked_fill(eye, -1e4)
        same = (every[:, None] == every[None, :]).float().masked_fill(eye, 0)
        loss = (F.cross_entropy(logits, labels) + multi_positive(logits.t(), positive.t())) / 2 \
            + multi_positive(all_logits, same)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(float(loss))
        if step % 50 == 49 or step == args.steps - 1:
            log("step %d/%d: loss %.3f, temperature %.4f, %.0f s" % (
                step + 1, args.steps, np.mean(losses[-50:]), 1 / model.logit_scale.exp().item(),
                time.time() - started))
        if step % 250 == 249 or step == args.steps - 1:
            log("  check (training soundfonts, other seeds): sound -> picture R@1 %.3f" % check())

    model.eval()
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    export.export_model(model, args.output, "F32", num_batches_tracked=False)
    log("wrote %s (%d bytes) in %.0f s (seed %d, %d steps of %d sounds and %d pictures)" % (
        args.output, os.path.getsize(args.output), time.time() - started, args.seed,
        args.steps, n * SOUNDS_PER, n))


if __name__ == "__main__":
    main()
