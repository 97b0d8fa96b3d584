#!/usr/bin/python3
"""The case tests/tools/convert.sh converts: a user's model and checkpoint, made at test time.

    /usr/bin/python3 tools/make_convert_case.py make DIR
    /usr/bin/python3 tools/make_convert_case.py compare GOT.npy EXPECTED.npy

make writes into DIR:
  checkpoint.pt     what a user's training script saves: {"epoch", "model_state_dict",
                    "optimizer", "config"}; the model is torchvision's resnet18 (weights=None,
                    seed 0, its `fc` kept) under `vision.` with a Linear-ReLU-Linear head under
                    `vision_proj.`, a one-channel resnet18 (the spec's audio stem, `fc` replaced
                    by Identity) under `sound_net.` with a Linear head under `sound_proj.`, and
                    a `temperature` scalar
  missing.pt        the audio half of that state_dict, without sound_net.layer3.1.bn2.running_var
  no_state.pt       a checkpoint holding no state_dict: {"epoch", "optimizer"}
  namespace.pt      a state_dict beside an argparse.Namespace (a class: refused unless
                    --allow-pickle)
  sound.wav         6 s, 16 kHz, 16-bit mono (two segments, the second overlapping the first)
  image.png         256 x 224 RGB (the resize is exact: only the centre crop moves pixels)
  torch_audio.npy   the same torch modules' embedding of sound.wav (avclip.py's log-mel and
                    segments), float32 [embed_dim]
  torch_image.npy   ... of image.png (avclip.py's preprocessing), float32 [embed_dim]
BatchNorm statistics and affine terms are randomised (fresh ones are the identity, which would
hide a mistake in their use). compare prints "cosine C max_difference D" of two .npy vectors.
"""
import argparse
import os
import sys
import wave as wavefile

import numpy as np
import torch
import torch.nn as nn
import torchvision
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import avclip  # noqa: E402

EMBED_DIM = 256
RATE = 16000
MISSING = "sound_net.layer3.1.bn2.running_var"
AUDIO = {"sample_rate": RATE, "n_fft": 512, "win_length": 400, "hop_length": 160, "n_mels": 64,
         "f_min": 0.0, "f_max": 8000.0, "log_offset": 1e-6, "mean": -4.0, "std": 4.0,
         "segment_seconds": 5.0}
IMAGE = {"size": 224, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


class UserModel(nn.Module):
    """A model as a user would write it, with its own names."""

    def __init__(self):
        super().__init__()
        self.sound_net = torchvision.models.resnet18(weights=None)
        self.sound_net.conv1 = nn.Conv2d(1, 64, 7, stride=2, padding=3, bias=False)
        self.sound_net.fc = nn.Identity()
        self.sound_proj = nn.Linear(512, EMBED_DIM)
        self.vision = torchvision.models.resnet18(weights=None)
        self.vision_proj = nn.Sequential(nn.Linear(512, 384), nn.ReLU(inplace=True),
                                         nn.Linear(384, EMBED_DIM))
        self.temperature = nn.Parameter(torch.tensor(2.5))


def randomise_batchnorm(model, generator):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(0.2 * torch.randn(c, generator=generator))
                m.running_var.copy_(0.3 + 1.7 * torch.rand(c, generator=generator))
                m.weight.copy_(0.5 + torch.rand(c, generator=generator))
                m.bias.copy_(0.2 * torch.randn(c, generator=generator))
                m.num_batches_tracked.fill_(1234)


def make_sound():
    count = 6 * RATE
    rng = np.random.RandomState(3)
    t = np.arange(count) / RATE
    x = (0.3 * np.sin(2 * np.pi * (80 * t + 300 * t * t)) + 0.2 * np.sin(2 * np.pi * 1800 * t)
         * (0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t)) + 0.05 * rng.standard_normal(count))
    return np.round(np.clip(x, -1, 1) * 32767).astype("<i2")


def make_image():
    rng = np.random.RandomState(5)
    y, x = np.mgrid[0:224, 0:256]
    rgb = np.zeros((224, 256, 3), np.float64)
    rgb[..., 0] = 128 + 100 * np.sin(x / 9.0 + y / 17.0)
    rgb[..., 1] = 255 * y / 223
    rgb[..., 2] = 200 * ((x // 16 + y // 16) % 2) + 20
    rgb += rng.uniform(-25, 25, rgb.shape)
    return Image.fromarray(np.clip(rgb, 0, 255).round().astype(np.uint8), "RGB")


def make(folder):
    torch.manual_seed(0)
    model = UserModel()
    randomise_batchnorm(model, torch.Generator().manual_seed(1))
    model.eval()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    state = model.state_dict()
    torch.save({"epoch": 7, "model_state_dict": state, "optimizer": optimizer.state_dict(),
                "config": {"lr": 0.01, "batch": 64}}, os.path.join(folder, "checkpoint.pt"))
    audio_only = {k: v for k, v in state.items() if k.startswith("sound_") and k != MISSING}
    torch.save({"model_state_dict": audio_only}, os.path.join(folder, "missing.pt"))
    torch.save({"epoch": 7, "optimizer": optimizer.state_dict()},
               os.path.join(folder, "no_state.pt"))
    torch.save({"args": argparse.Namespace(lr=0.01), "state_dict": {"w": torch.zeros(2)}},
               os.path.join(folder, "namespace.pt"))

    pcm = make_sound()
    with wavefile.open(os.path.join(folder, "sound.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    image = make_image()
    image.save(os.path.join(folder, "image.png"))

    # The user's own modules, fed exactly what the spec feeds the encoders.
    model.vision.fc = nn.Identity()  # the spec's encoder ends at the pooled features
    audio_tower = AudioFront(model.sound_net, model.sound_proj)
    image_tower = ImageFront(model.vision, model.vision_proj)
    with torch.no_grad():
        wave = torch.from_numpy(pcm.astype(np.float32) / np.float32(32768.0))
        np.save(os.path.join(folder, "torch_audio.npy"),
                audio_tower.embed_clip(wave).numpy().astype("<f4"))
        np.save(os.path.join(folder, "torch_image.npy"),
                image_tower.embed_pil(Image.open(os.path.join(folder, "image.png")))
                .numpy().astype("<f4"))
    print("wrote the case into %s" % folder)


class AudioFront(avclip.AudioTower):
    """avclip.py's log-mel and segmenting around the user's encoder and head."""

    def __init__(self, encoder, head):
        nn.Module.__init__(self)
        self.config = AUDIO
        reference = avclip.AudioTower(dict(AUDIO, encoder={
            "type": "resnet", "block": "basic", "layers": [1], "widths": [8], "in_channels": 1},
            head={"type": "linear"}), EMBED_DIM)
        self.mel = reference.mel
        self.encoder, self.proj = encoder, head


class ImageFront(avclip.ImageTower):
    """avclip.py's preprocessing around the user's encoder and head."""

    def __init__(self, encoder, head):
        nn.Module.__init__(self)
        self.config = IMAGE
        self.encoder, self.proj = encoder, head


def compare(got_path, expected_path):
    got = np.load(got_path).astype(np.float64).ravel()
    expected = np.load(expected_path).astype(np.float64).ravel()
    if got.shape != expected.shape:
        print("shapes differ: %s and %s" % (got.shape, expected.shape))
        return 1
    cosine = got @ expected / (np.linalg.norm(got) * np.linalg.norm(expected))
    print("cosine %.9f max_difference %.3g" % (cosine, np.abs(got - expected).max()))
    return 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "make":
        make(sys.argv[2])
        return 0
    if len(sys.argv) == 4 and sys.argv[1] == "compare":
        return compare(sys.argv[2], sys.argv[3])
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
