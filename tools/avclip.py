"""The Ear model (../shared/spec/model-format.md) as a PyTorch module, for training and export.

Run with Debian's /usr/bin/python3 (torch, torchaudio, torchvision, numpy, PIL).

    model = AvClip(config)                    # config: the spec's JSON object, as a dict
    audio = model.audio.embed_clip(wave)      # 1-D float tensor -> unit vector [embed_dim]
    image = model.image.embed_pil(pil_image)  # PIL image -> unit vector [embed_dim]
    logits = model(waves, pixels)             # training: [B, S] segments x [B, 3, s, s] images

`model.state_dict()` names are exactly the model file's tensor names (`audio.encoder.conv1.weight`,
`audio.proj.weight`, `image.proj.0.weight`, `logit_scale`, ...), so tools/export.py writes it as
it is and a torchvision ResNet's state_dict (without `fc`) loads into an encoder unchanged.
"""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchaudio
from torchvision.models.resnet import BasicBlock, Bottleneck

BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNetEncoder(nn.Module):
    """torchvision's ResNet with free widths and stage count, without `fc`: the spec's
    "Encoder resnet". The stem has widths[0] channels (torchvision's 64 when widths[0] is 64)."""

    def __init__(self, config):
        super().__init__()
        block = BLOCKS[config["block"]]
        widths, layers = config["widths"], config["layers"]
        assert len(widths) == len(layers) >= 1
        channels = widths[0]
        self.conv1 = nn.Conv2d(config["in_channels"], channels, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.stage_count = len(widths)
        for i, (width, count) in enumerate(zip(widths, layers)):
            stride = 1 if i == 0 else 2
            blocks = []
            for b in range(count):
                s = stride if b == 0 else 1
                out = width * block.expansion
                downsample = None
                if s != 1 or channels != out:
                    downsample = nn.Sequential(nn.Conv2d(channels, out, 1, stride=s, bias=False),
                                               nn.BatchNorm2d(out))
                blocks.append(block(channels, width, s, downsample))
                channels = out
            setattr(self, "layer%d" % (i + 1), nn.Sequential(*blocks))
        self.features = channels
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.stage_count):
            x = getattr(self, "layer%d" % (i + 1))(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


def make_head(config, features, embed_dim):
    if config["type"] == "linear":
        return nn.Linear(features, embed_dim)
    if config["type"] == "mlp":
        hidden = config["hidden"]
        return nn.Sequential(nn.Linear(features, hidden), nn.ReLU(inplace=True),
                             nn.Linear(hidden, embed_dim))
    raise ValueError("head type must be linear or mlp, not %r" % config["type"])


def _unsaved_buffers(module):
    """Keeps a module's buffers out of state_dict(): the mel filterbank and window are computed
    from the configuration, and the model file holds weights only."""
    for m in module.modules():
        for name in list(m._buffers):
            value = m._buffers.pop(name)
            m.register_buffer(name, value, persistent=False)


class AudioTower(nn.Module):
    """Wave -> normalised log-mel -> encoder -> head -> L2 (spec "Audio tower")."""

    def __init__(self, config, embed_dim):
        super().__init__()
        self.config = config
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=config["sample_rate"], n_fft=config["n_fft"],
            win_length=config["win_length"], hop_length=config["hop_length"],
            f_min=config["f_min"], f_max=config["f_max"], n_mels=config["n_mels"], power=2.0,
            center=True, pad_mode="reflect", norm=None, mel_scale="htk")
        _unsaved_buffers(self.mel)
        self.encoder = ResNetEncoder(config["encoder"])
        self.proj = make_head(config["head"], self.encoder.features, embed_dim)

    @property
    def segment_samples(self):
        # Python's round() (half to even), as the seed service computes it.
        return int(round(self.config["segment_seconds"] * self.config["sample_rate"]))

    def log_mel(self, wave):
        """[..., N] float wave -> [..., n_mels, 1 + N // hop] normalised log-mel."""
        c = self.config
        return (torch.log(self.mel(wave) + c["log_offset"]) - c["mean"]) / c["std"]

    def embed_mel(self, mel):
        """[B, 1, n_mels, frames] -> [B, embed_dim] unit vectors."""
        return F.normalize(self.proj(self.encoder(mel)), dim=1)

    def forward(self, waves):
        """[B, N] segments -> [B, embed_dim] unit vectors."""
        return self.embed_mel(self.log_mel(waves)[:, None])

    def segments(self, wave):
        """Spec step 2: a clip no longer than a segment is one segment as it is; a longer one
        gives ceil(N / S) segments of S samples, the last one being the last S samples."""
        n, s = wave.shape[-1], self.segment_samples
        if n <= s:
            return [wave]
        return [wave[i * s:(i + 1) * s] if (i + 1) * s <= n else wave[n - s:]
                for i in range((n + s - 1) // s)]

    def embed_clip(self, wave):
        """1-D wave -> the clip's embedding: mean of the segments' unit vectors, renormalised."""
        if not torch.is_tensor(wave):
            wave = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
        units = [self(s[None])[0] for s in self.segments(wave)]
        return F.normalize(torch.stack(units).mean(0), dim=0)


class ImageTower(nn.Module):
    """RGB image -> resize, crop, normalise -> encoder -> head -> L2 (spec "Image tower")."""

    def __init__(self, config, embed_dim):
        super().__init__()
        self.config = config
        self.encoder = ResNetEncoder(config["encoder"])
        self.proj = make_head(config["head"], self.encoder.features, embed_dim)

    def preprocess(self, pil_image):
        """A PIL image -> [1, 3, size, size], exactly as the seed service's embed_image."""
        from PIL import Image
        img = pil_image
        if img.mode in ("RGBA", "LA", "P"):
            img = img.convert("RGBA")
            white = Image.new("RGBA", img.size, (255, 255, 255, 255))
            img = Image.alpha_composite(white, img)
        rgb = np.asarray(img.convert("RGB"))
        x = torch.from_numpy(rgb.copy()).permute(2, 0, 1).float()[None] / 255.0
        h, w = x.shape[2:]
        s = self.config["size"]
        nh, nw = (s, int(s * w / h)) if h <= w else (int(s * h / w), s)
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
        top, left = int(round((nh - s) / 2.0)), int(round((nw - s) / 2.0))
        x = x[:, :, top:top + s, left:left + s]
        mean = torch.tensor(self.config["mean"]).view(1, 3, 1, 1)
        std = torch.tensor(self.config["std"]).view(1, 3, 1, 1)
        return (x - mean) / std

    def forward(self, pixels):
        """[B, 3, size, size] normalised pixels -> [B, embed_dim] unit vectors."""
        return F.normalize(self.proj(self.encoder(pixels)), dim=1)

    def embed_pil(self, pil_image):
        return self(self.preprocess(pil_image))[0]


class AvClip(nn.Module):
    """Both towers and CLIP's learned temperature. Either tower may be absent."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        embed_dim = config["embed_dim"]
        self.audio = AudioTower(config["audio"], embed_dim) if "audio" in config else None
        self.image = ImageTower(config["image"], embed_dim) if "image" in config else None
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def forward(self, waves, pixels):
        """Training: [B, S] sound segments and [B, 3, size, size] images -> [B, B] logits
        (row i: sound i against every image)."""
        scale = self.logit_scale.exp().clamp(max=100.0)
        return scale * self.audio(waves) @ self.image(pixels).t()

    @staticmethod
    def contrastive_loss(logits):
        target = torch.arange(logits.shape[0], device=logits.device)
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2


def randomize(model, seed):
    """Random weights with non-trivial BatchNorm statistics and affine terms (a freshly built
    model has mean 0, var 1, weight 1, bias 0, which would hide a mistake in their use)."""
    generator = torch.Generator().manual_seed(seed)

    def uniform(shape, low, high):
        return low + (high - low) * torch.rand(shape, generator=generator)

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.weight.shape[0] * m.weight[0, 0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=generator)
                               * math.sqrt(2.0 / fan_out))
            elif isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(0.2 * torch.randn(c, generator=generator))
                m.running_var.copy_(uniform(c, 0.3, 2.0))
                m.weight.copy_(uniform(c, 0.5, 1.5))
                m.bias.copy_(0.2 * torch.randn(c, generator=generator))
                m.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=generator)))
            elif isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.in_features)
                m.weight.copy_(uniform(m.weight.shape, -bound, bound))
                m.bias.copy_(uniform(m.bias.shape, -bound, bound))
        model.logit_scale.fill_(float(uniform((), 2.0, 4.0)))
    return model.eval()
