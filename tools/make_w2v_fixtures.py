#!/usr/bin/python3
"""Golden fixtures for Ear's second model family: the original's AudioVisualCLIP
(torchaudio's Wav2Vec2Model for sound, torchvision's ResNet trunk for images, a Linear head
and L2 normalisation each), saved as the original saves it: torch.save(state_dict).

Run with Debian's Python (torch 1.13, torchaudio, torchvision, PIL, soundfile) and ffmpeg:

    /usr/bin/python3 tools/make_w2v_fixtures.py            # small fixtures -> tests/fixtures/w2v/
    /usr/bin/python3 tools/make_w2v_fixtures.py --full DIR # wav2vec2_base + resnet50 (tests)

The models are built from the exact classes of ../shared/spec/original.md with random weights
(every LayerNorm/GroupNorm/BatchNorm affine and BatchNorm running statistics randomised too),
small enough to commit:
  w2v_gn.pt   group_norm extractor, no conv bias, post-LN layers (base's kind), pos conv
              weight-norm as weight_g/weight_v, even kernel; image: BasicBlock [2,1,1,1]
  w2v_ln.pt   layer_norm extractor, conv bias, pre-LN layers (large-lv60k's kind), pos conv
              weight-norm as parametrizations.weight.original0/1 (newer torch's spelling),
              odd kernel; image: Bottleneck [1,2,1,1]
  w2v_tiny.pt an audio-only model (no image tower), 1 head, 1 layer; and damaged copies of
              it: refuse_missing.pt, refuse_misshapen.pt, refuse_unknown.pt, refuse_extra.pt
  w2v_gn_bf16.safetensors      w2v_gn.pt through tools/convert.py --original --dtype bf16
  w2v_tiny_override.safetensors w2v_tiny.pt with --heads 2 --layer-norm-first yes
The first two have embed_dim 128 and 2 heads (torchaudio's convention of 64 per head, which Ear
assumes: heads are not visible in a state_dict).

Every expected embedding is computed as the original computes it: sounds through the
`ffmpeg -i f -ar 16000 -ac 1 out.wav` command (16-bit PCM), read as float32, cut to 10 s,
extract_features, last layer averaged over frames, audio_proj, L2; images PIL
convert("RGB") then ResNet50_Weights.IMAGENET1K_V2.transforms(), image_encoder, image_proj, L2.

Files: <model>.pt, media files (SOUNDS, IMAGES), <model>_<media>.npy (float32 [embed]),
pil_pixels.txt (FNV-1a 64 of each image's preprocessed float32 pixels), <media>.s16.npy (the ffmpeg CLI's 16 kHz mono wave as float32, its first 10 s, for the
decoder's test).
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import soundfile as sf
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchaudio
import torchvision
from PIL import Image, ImageDraw

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(ROOT, "tests", "fixtures", "w2v")
MAX_SECONDS = 10

torch.set_num_threads(1)
TRANSFORM = torchvision.models.ResNet50_Weights.IMAGENET1K_V2.transforms()


# ---------------------------------------------------------------- the original's classes

class AudioEncoder(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.sample_rate = 16000
        self.model = model

    def forward(self, wav):
        with torch.no_grad():
            feats = self.model.extract_features(wav)[0]
        return feats[-1].mean(dim=1)


class ProjectionHead(nn.Module):
    def __init__(self, in_dim, embed_dim):
        super().__init__()
        self.proj = nn.Linear(in_dim, embed_dim)

    def forward(self, x):
        return F.normalize(self.proj(x), dim=-1)


class AudioVisualCLIP(nn.Module):
    def __init__(self, resnet, image_features, w2v, audio_features, embed_dim):
        super().__init__()
        self.image_encoder = nn.Sequential(*(list(resnet.children())[:-1]), nn.Flatten(1))
        self.audio_encoder = AudioEncoder(w2v)
        self.image_proj = ProjectionHead(image_features, embed_dim)
        self.audio_proj = ProjectionHead(audio_features, embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(1 / 0.07).log())

    def encode_image(self, images):
        with torch.no_grad():
            return self.image_proj(self.image_encoder(images))

    def encode_audio(self, wav):
        with torch.no_grad():
            return self.audio_proj(self.audio_encoder(wav))


def small_resnet(block, layers, widths):
    """torchvision's ResNet with its own blocks and _make_layer, narrower stages (the class
    fixes 64..512; a committed resnet18 would be 45 MB)."""
    from torchvision.models.resnet import ResNet
    r = ResNet(block, [1, 1, 1, 1])
    r.inplanes = widths[0]
    r.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
    r.bn1 = nn.BatchNorm2d(widths[0])
    r.layer1 = r._make_layer(block, widths[0], layers[0])
    r.layer2 = r._make_layer(block, widths[1], layers[1], stride=2)
    r.layer3 = r._make_layer(block, widths[2], layers[2], stride=2)
    r.layer4 = r._make_layer(block, widths[3], layers[3], stride=2)
    r.fc = nn.Linear(widths[3] * block.expansion, 10)
    return r, widths[3] * block.expansion


def randomise(model, gen):
    """Non-trivial norms: affine away from 1/0, BatchNorm statistics away from 0/1."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm2d)):
                m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))
                m.num_batches_tracked.fill_(7)
            if isinstance(m, nn.Linear) and m.bias is not None:
                m.bias.copy_(0.05 * torch.randn(m.bias.shape, generator=gen))


def small_w2v(mode, conv_bias, layer_norm_first, pos_kernel, pos_groups):
    return torchaudio.models.wav2vec2_model(
        extractor_mode=mode,
        extractor_conv_layer_config=[(16, 10, 5)] + [(16, 3, 2)] * 4 + [(16, 2, 2)] * 2,
        extractor_conv_bias=conv_bias,
        encoder_embed_dim=128,
        encoder_projection_dropout=0.0,
        encoder_pos_conv_kernel=pos_kernel,
        encoder_pos_conv_groups=pos_groups,
        encoder_num_layers=2,
        encoder_num_heads=2,
        encoder_attention_dropout=0.0,
        encoder_ff_interm_features=256,
        encoder_ff_interm_dropout=0.0,
        encoder_dropout=0.0,
        encoder_layer_norm_first=layer_norm_first,
        encoder_layer_drop=0.0,
        aux_num_out=None)


SMALL = {
    "w2v_gn": dict(mode="group_norm", conv_bias=False, layer_norm_first=False, pos_kernel=16,
                   pos_groups=16, block="basic", layers=[2, 1, 1, 1], widths=[8, 16, 16, 32],
                   spelling="weight_g", seed=1),
    "w2v_ln": dict(mode="layer_norm", conv_bias=True, layer_norm_first=True, pos_kernel=15,
                   pos_groups=8, block="bottleneck", layers=[1, 2, 1, 1], widths=[8, 8, 16, 16],
                   spelling="parametrizations", seed=2),
}


def build_small(c):
    torch.manual_seed(c["seed"])
    gen = torch.Generator().manual_seed(c["seed"] + 100)
    from torchvision.models.resnet import BasicBlock, Bottleneck
    block = BasicBlock if c["block"] == "basic" else Bottleneck
    resnet, image_features = small_resnet(block, c["layers"], c["widths"])
    w2v = small_w2v(c["mode"], c["conv_bias"], c["layer_norm_first"], c["pos_kernel"],
                    c["pos_groups"])
    model = AudioVisualCLIP(resnet, image_features, w2v, 128, 48)
    randomise(model, gen)
    return model.eval()


def build_tiny():
    """An audio-only model (no image_encoder.*): extractor 8 wide, width 64 (1 head), 1 layer."""
    torch.manual_seed(4)
    gen = torch.Generator().manual_seed(104)
    w2v = torchaudio.models.wav2vec2_model(
        extractor_mode="group_norm",
        extractor_conv_layer_config=[(8, 10, 5)] + [(8, 3, 2)] * 4 + [(8, 2, 2)] * 2,
        extractor_conv_bias=False, encoder_embed_dim=64, encoder_projection_dropout=0.0,
        encoder_pos_conv_kernel=8, encoder_pos_conv_groups=4, encoder_num_layers=1,
        encoder_num_heads=1, encoder_attention_dropout=0.0, encoder_ff_interm_features=96,
        encoder_ff_interm_dropout=0.0, encoder_dropout=0.0, encoder_layer_norm_first=False,
        encoder_layer_drop=0.0, aux_num_out=None)

    class AudioOnly(nn.Module):
        def __init__(self):
            super().__init__()
            self.audio_encoder = AudioEncoder(w2v)
            self.audio_proj = ProjectionHead(64, 16)

        def encode_audio(self, wav):
            with torch.no_grad():
                return self.audio_proj(self.audio_encoder(wav))

    model = AudioOnly()
    randomise(model, gen)
    return model.eval()


def write_refusals(out):
    """Damaged copies of the tiny model, each refused with a message naming the tensor."""
    sd = build_tiny().state_dict()
    missing = type(sd)((k, v) for k, v in sd.items()
                       if k != "audio_encoder.model.encoder.transformer.layers.0.feed_forward."
                               "output_dense.weight")
    torch.save(missing, os.path.join(out, "refuse_missing.pt"))
    bad = type(sd)(sd)
    bad["audio_encoder.model.encoder.transformer.layers.0.attention.k_proj.weight"] = \
        torch.zeros(64, 32)
    torch.save(bad, os.path.join(out, "refuse_misshapen.pt"))
    unknown = type(sd)([("encoder.weight", torch.zeros(4, 4)), ("head.bias", torch.zeros(4))])
    torch.save(unknown, os.path.join(out, "refuse_unknown.pt"))
    extra = type(sd)(sd)
    extra["audio_encoder.model.encoder.transformer.extra.weight"] = torch.zeros(3)
    torch.save(extra, os.path.join(out, "refuse_extra.pt"))


def build_full():
    torch.manual_seed(3)
    gen = torch.Generator().manual_seed(103)
    model = AudioVisualCLIP(torchvision.models.resnet50(), 2048,
                            torchaudio.models.wav2vec2_base(), 768, 512)
    randomise(model, gen)
    return model.eval()


def state_dict(model, spelling):
    """The state_dict as torch.save writes it; the newer weight-norm spelling on request."""
    sd = model.state_dict()
    if spelling == "parametrizations":
        renamed = type(sd)()
        for k, v in sd.items():
            k = k.replace("pos_conv_embed.conv.weight_g",
                          "pos_conv_embed.conv.parametrizations.weight.original0")
            k = k.replace("pos_conv_embed.conv.weight_v",
                          "pos_conv_embed.conv.parametrizations.weight.original1")
            renamed[k] = v
        sd = renamed
    return sd


# ---------------------------------------------------------------- media

SOUNDS = {
    # name: ffmpeg output arguments for a synthetic source of the given length and channels
    "s_0.3s.wav": (0.3, 1, ["-ar", "16000", "-c:a", "pcm_s16le"]),
    "s_3s.flac": (3.0, 1, ["-ar", "22050", "-c:a", "flac"]),
    "s_10s.mp3": (10.0, 1, ["-ar", "44100", "-c:a", "libmp3lame", "-b:a", "48k"]),
    "s_25s.ogg": (25.0, 1, ["-ar", "48000", "-c:a", "libopus", "-b:a", "24k"]),
    "stereo_48k.webm": (4.0, 2, ["-ar", "48000", "-c:a", "libopus", "-b:a", "48k"]),
    "stereo_44k.wav": (1.5, 2, ["-ar", "44100", "-c:a", "pcm_s16le"]),
}
IMAGES = ["photo.jpg", "alpha.png", "palette.png", "grey.jpg"]


def make_sound(path, seconds, channels, args):
    left = "0.4*sin(2*PI*(220+40*t)*t)*(0.6+0.4*sin(2*PI*0.7*t))+0.1*sin(2*PI*1930*t)"
    right = "0.3*sin(2*PI*330*t)+0.15*sin(2*PI*2710*t)*sin(2*PI*1.3*t)"
    expr = left if channels == 1 else left + "|" + right
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"aevalsrc={expr}:s=48000:d={seconds}"] + ["-ac", str(channels)] + args +
                   [path], check=True)


def make_images(out):
    rng = np.random.default_rng(5)
    h, w = 217, 301
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([(x * 255 // w), (y * 255 // h), ((x + y) * 3) % 256], -1).astype(np.uint8)
    im = Image.fromarray(rgb, "RGB")
    d = ImageDraw.Draw(im)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        d.ellipse([x0, y0, x0 + 40, y0 + 30], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    im.save(os.path.join(out, "photo.jpg"), quality=90)
    # RGBA: colour under transparent pixels must come through (convert("RGB") drops alpha).
    a = np.zeros((300, 260, 4), np.uint8)
    a[..., 0] = np.arange(260)[None, :] % 256
    a[..., 1] = (np.arange(300)[:, None] * 2) % 256
    a[..., 2] = 90
    a[..., 3] = (np.arange(260)[None, :] * 255 // 259).astype(np.uint8)
    a[100:180, 40:200, 3] = 0
    Image.fromarray(a, "RGBA").save(os.path.join(out, "alpha.png"))
    p = im.resize((240, 180)).convert("P", palette=Image.ADAPTIVE, colors=32)
    p.info["transparency"] = 3
    p.save(os.path.join(out, "palette.png"), transparency=3)
    g = im.resize((200, 333)).convert("L")
    g.save(os.path.join(out, "grey.jpg"), quality=85)


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
    return h


def write_pixel_hashes(out):
    """FNV-1a 64 of the float32 bytes of TRANSFORM(convert("RGB")) per image: Ear's PIL path
    must give these pixels bit for bit."""
    with open(os.path.join(out, "pil_pixels.txt"), "w") as f:
        for n in IMAGES:
            t = TRANSFORM(Image.open(os.path.join(out, n)).convert("RGB")).numpy()
            f.write("%s %016x\n" % (n, fnv1a64(t.astype("<f4").tobytes())))


def wave_16k(path, tmp):
    """The original: ffmpeg CLI to a 16 kHz mono 16-bit WAV, read as float32, cut to 10 s."""
    converted = os.path.join(tmp, "converted.wav")
    subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-ar", "16000", "-ac", "1", "-y",
                    converted], check=True, stdin=subprocess.DEVNULL)
    wav, sr = sf.read(converted, dtype="float32")
    assert sr == 16000
    return wav


def embed_sound(model, wav):
    t = torch.from_numpy(wav[:16000 * MAX_SECONDS].copy()).unsqueeze(0)
    return model.encode_audio(t)[0].numpy().astype(np.float32)


def embed_image(model, path):
    img = Image.open(path).convert("RGB")
    return model.encode_image(TRANSFORM(img).unsqueeze(0))[0].numpy().astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", metavar="DIR",
                    help="write the full-size model (wav2vec2_base + resnet50) and one clip and "
                         "one image with their embeddings into DIR")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.full:
            out = args.full
            os.makedirs(out, exist_ok=True)
            model = build_full()
            torch.save(model.state_dict(), os.path.join(out, "full.pt"))
            make_sound(os.path.join(out, "clip.webm"), 4.0, 2,
                       ["-ar", "48000", "-c:a", "libopus", "-b:a", "48k"])
            make_images(tmp)
            os.replace(os.path.join(tmp, "photo.jpg"), os.path.join(out, "photo.jpg"))
            np.save(os.path.join(out, "full_clip.npy"),
                    embed_sound(model, wave_16k(os.path.join(out, "clip.webm"), tmp)))
            np.save(os.path.join(out, "full_photo.npy"),
                    embed_image(model, os.path.join(out, "photo.jpg")))
            return
        os.makedirs(OUT, exist_ok=True)
        for name, (seconds, channels, a) in SOUNDS.items():
            make_sound(os.path.join(OUT, name), seconds, channels, a)
        make_images(OUT)
        write_pixel_hashes(OUT)
        waves = {n: wave_16k(os.path.join(OUT, n), tmp) for n in SOUNDS}
        for n, w in waves.items():
            np.save(os.path.join(OUT, n + ".s16.npy"),
                    w[:16000 * MAX_SECONDS].astype(np.float32))
        for name, c in SMALL.items():
            model = build_small(c)
            torch.save(state_dict(model, c["spelling"]), os.path.join(OUT, name + ".pt"))
            for n, w in waves.items():
                np.save(os.path.join(OUT, f"{name}_{n}.npy"), embed_sound(model, w))
            for n in IMAGES:
                np.save(os.path.join(OUT, f"{name}_{n}.npy"),
                        embed_image(model, os.path.join(OUT, n)))
            print(name, sum(v.numel() for v in model.state_dict().values()), "values")
        tiny = build_tiny()
        torch.save(tiny.state_dict(), os.path.join(OUT, "w2v_tiny.pt"))
        for n in ("s_3s.flac", "s_0.3s.wav"):
            np.save(os.path.join(OUT, f"w2v_tiny_{n}.npy"), embed_sound(tiny, waves[n]))
        write_refusals(OUT)
        # The safetensors route: tools/convert.py --original, BF16 weights; and the overrides.
        convert = os.path.join(HERE, "convert.py")
        subprocess.run([sys.executable, convert, os.path.join(OUT, "w2v_gn.pt"), "-o",
                        os.path.join(OUT, "w2v_gn_bf16.safetensors"), "--original", "--dtype",
                        "bf16"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([sys.executable, convert, os.path.join(OUT, "w2v_tiny.pt"), "-o",
                        os.path.join(OUT, "w2v_tiny_override.safetensors"), "--original",
                        "--heads", "2", "--layer-norm-first", "yes"], check=True,
                       stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    sys.exit(main())
