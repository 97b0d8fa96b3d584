#!/usr/bin/python3
"""Golden fixtures for Ear's log-mel spectrogram (src/audio/mel.c), from torchaudio.

Run once with Debian's Python (it has torch and torchaudio), from the repository root:

    /usr/bin/python3 tools/make_mel_fixtures.py

and commit what it writes under tests/fixtures/audio/. The expected values are exactly the
model's audio step 3 (spec/model-format.md): torchaudio.transforms.MelSpectrogram(..., power=2,
center=True, pad_mode="reflect", norm=None, mel_scale="htk") -> log(mel + log_offset) ->
(x - mean) / std, computed in float32 as the original service does.

Files (tests/audio/test_mel.c and tests/cli/mel.sh hold the same case table):
  mel_wave_<n>.npy            input waves, float32 [n], in [-1, 1], deterministic
  mel_<case>.npy              expected normalised log-mel, float32 [n_mels, frames]
  mel_<config>.json           the non-default configurations, as the spec's `audio` object
  mel_cli.wav                 16-bit 16 kHz mono WAV for the `ear mel` command-line test
  mel_cli_<config>.npy        its expected log-mel (decoded samples are int16 / 32768)
"""
import json
import os
import sys
import wave as wavefile

import numpy as np
import torch
import torchaudio

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "audio")

DEFAULT = {"sample_rate": 16000, "n_fft": 512, "win_length": 400, "hop_length": 160,
           "n_mels": 64, "f_min": 0.0, "f_max": 8000.0,
           "log_offset": 1e-6, "mean": -4.0, "std": 4.0}
# Another rate, a window filling n_fft, twice the mels, a low f_max.
WIDE = {"sample_rate": 22050, "n_fft": 1024, "win_length": 1024, "hop_length": 320,
        "n_mels": 128, "f_min": 20.0, "f_max": 7600.0,
        "log_offset": 1e-5, "mean": -5.0, "std": 3.5}
# Odd n_fft and odd sample rate (torch: sample_rate // 2, n_fft // 2 padding), an
# off-centre window (n_fft - win_length odd), other normalisation.
ODD = {"sample_rate": 11025, "n_fft": 401, "win_length": 300, "hop_length": 128,
       "n_mels": 40, "f_min": 50.0, "f_max": 5000.0,
       "log_offset": 1e-4, "mean": -3.0, "std": 5.0}
# What the CLI's --config test uses: a different mel shape at the default rate.
CLI = {"sample_rate": 16000, "n_fft": 400, "win_length": 400, "hop_length": 100,
       "n_mels": 40, "f_min": 60.0, "f_max": 7000.0,
       "log_offset": 1e-6, "mean": -4.5, "std": 4.5}

# (case, wave length in samples, configuration). A wave is shared by every case of its length:
# the samples do not know their rate.
CASES = [
    ("default_257", 257, DEFAULT),      # the shortest clip reflect padding allows (n_fft/2 + 1)
    ("default_1600", 1600, DEFAULT),    # 0.1 s
    ("default_16000", 16000, DEFAULT),  # 1 s
    ("default_85920", 85920, DEFAULT),  # 5.37 s: not a whole number of hops
    ("wide_16000", 16000, WIDE),
    ("odd_1600", 1600, ODD),
]


def make_wave(count, seed):
    """A rising chirp with an amplitude envelope, plus white noise: every band gets energy."""
    rng = np.random.RandomState(seed)
    t = np.arange(count, dtype=np.float64) / 16000.0
    duration = max(count / 16000.0, 1e-3)
    f0, f1 = 80.0, 7200.0
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * duration))
    envelope = 0.35 + 0.3 * np.sin(2 * np.pi * 1.7 * t + 0.4)
    x = envelope * np.sin(phase) + 0.04 * rng.standard_normal(count)
    # A loud click and a quiet stretch, so the edges of the range are exercised too.
    x[count // 3] = 0.98
    quiet = slice(count // 2, count // 2 + count // 10)
    x[quiet] *= 0.01
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def log_mel(wave, c):
    transform = torchaudio.transforms.MelSpectrogram(
        sample_rate=c["sample_rate"], n_fft=c["n_fft"], win_length=c["win_length"],
        hop_length=c["hop_length"], f_min=c["f_min"], f_max=c["f_max"], n_mels=c["n_mels"],
        power=2.0, center=True, pad_mode="reflect", norm=None, mel_scale="htk")
    with torch.no_grad():
        mel = transform(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)))
        out = (torch.log(mel + c["log_offset"]) - c["mean"]) / c["std"]
    out = out.numpy().astype(np.float32)
    frames = 1 + (len(wave) + 2 * (c["n_fft"] // 2) - c["n_fft"]) // c["hop_length"]
    assert out.shape == (c["n_mels"], frames), (out.shape, frames)
    return out


def save(name, array):
    path = os.path.join(OUT, name)
    np.save(path, np.ascontiguousarray(array, dtype="<f4"))
    return os.path.getsize(path)


def main():
    os.makedirs(OUT, exist_ok=True)
    total = 0
    waves = {}
    for case, count, config in CASES:
        if count not in waves:
            waves[count] = make_wave(count, seed=count)
            total += save("mel_wave_%d.npy" % count, waves[count])
        total += save("mel_%s.npy" % case, log_mel(waves[count], config))
    for name, config in (("wide", WIDE), ("odd", ODD), ("cli", CLI)):
        path = os.path.join(OUT, "mel_%s.json" % name)
        with open(path, "w") as f:
            json.dump(config, f, indent=1)
            f.write("\n")
        total += os.path.getsize(path)

    # The CLI test's WAV: 0.5 s, written as int16, so the decoder's float samples are k / 32768.
    pcm = np.round(make_wave(8000, seed=8000) * 32767).astype("<i2")
    path = os.path.join(OUT, "mel_cli.wav")
    with wavefile.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())
    total += os.path.getsize(path)
    decoded = pcm.astype(np.float32) / np.float32(32768.0)
    total += save("mel_cli_default.npy", log_mel(decoded, DEFAULT))
    total += save("mel_cli_cli.npy", log_mel(decoded, CLI))
    print("wrote %s: %d bytes in all" % (os.path.normpath(OUT), total), file=sys.stderr)


if __name__ == "__main__":
    main()
