#!/usr/bin/python3
"""Golden fixtures for Ear's image front end (src/image/), from PIL and PyTorch.

Run once with Debian's Python (it has torch, PIL and numpy), from anywhere:

    /usr/bin/python3 tools/make_image_fixtures.py

and commit what it writes under tests/fixtures/image/. The expected values are what the
compact family's Python service (shared/peers/compact-python/service.py, embed_image) computes:

  decode      Image.open; RGBA, LA and P composited over white with Image.alpha_composite;
              convert('RGB')
  preprocess  x / 255 -> F.interpolate(bilinear, align_corners=False, antialias=True) so the
              shorter side is `size` -> centre crop at round((h - size) / 2), round((w - size) / 2)
              -> (x - MEAN) / STD

Files (tests/image/test_image.c reads golden.tsv and holds MEAN and STD too):
  golden.tsv          one case a line: image file, crop size, row step of the stored tensor
  <image>             the input: PNG or JPEG
  <stem>.ppm          the expected RGB decode (binary PPM: "P6 W H 255" then W*H*3 bytes)
  <stem>_<size>.npy   the expected tensor, float32 [3, rows, size], rows 0, step, 2*step...
                      of the size x size crop (step 1: the whole crop; the 224 case keeps
                      every 16th row to keep the fixture small)

Deviation: a 16-bit gray PNG opens in PIL as a 32-bit "I" image that convert('RGB') clamps
to 0..255, so almost every pixel turns white. Ear keeps the high byte instead, as PIL does
for every other 16-bit PNG; gray16's expected decode is written from that rule, not PIL.
"""
import io
import os
import struct
import zlib

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "image")
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]


# ------------------------------------------------------------------ inputs

def png_bytes(width, height, color_type, bit_depth, samples, extra_chunks=(), interlaced=False):
    """A PNG written by hand, for the layouts PIL cannot save (16-bit colour, tRNS colour keys,
    2-bit gray, Adam7). samples: uint array [height, width, channels]; bit_depth < 8 packs."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    def scanlines(block):
        rows = []
        for row in block:
            if bit_depth == 16:
                data = row.astype(">u2").tobytes()
            elif bit_depth == 8:
                data = row.astype(np.uint8).tobytes()
            else:
                flat = row.reshape(-1).astype(np.uint8)
                per_byte = 8 // bit_depth
                flat = np.concatenate([flat, np.zeros((-len(flat)) % per_byte, np.uint8)])
                packed = np.zeros(len(flat) // per_byte, np.uint8)
                for k in range(per_byte):
                    packed |= flat[k::per_byte] << (8 - bit_depth * (k + 1))
                data = packed.tobytes()
            rows.append(b"\x00" + data)
        return b"".join(rows)

    if interlaced:
        # Adam7: (row start, column start, row step, column step) of each pass.
        passes = [(0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4),
                  (2, 0, 4, 2), (0, 1, 2, 2), (1, 0, 2, 1)]
        raw = b"".join(scanlines(samples[r::dr, c::dc]) for r, c, dr, dc in passes
                       if samples[r::dr, c::dc].size)
    else:
        raw = scanlines(samples)
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 1 if interlaced else 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) +
            b"".join(chunk(kind, data) for kind, data in extra_chunks) +
            chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def pil_bytes(image, fmt, **options):
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def smooth_field(rng, height, width, channels, noise):
    """Gradients and a few blobs, plus some noise: images a resize can tell apart, that
    still compress well."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    field = np.zeros((height, width, channels))
    for c in range(channels):
        a, b, p = rng.uniform(0.02, 0.3, 3)
        field[..., c] = 127 + 100 * np.sin(a * x + p * 7) * np.cos(b * y + c)
    field += rng.normal(0, noise, field.shape)
    return np.clip(np.rint(field), 0, 255).astype(np.uint8)


def make_inputs():
    rng = np.random.default_rng(20240611)
    inputs = []  # (file name, bytes, crop sizes and row steps)

    # RGBA, not square, every alpha value from 0 to 255 present.
    rgba = smooth_field(rng, 45, 64, 4, 6)
    rgba[..., 3].flat[:256] = np.arange(256)
    inputs.append(("rgba_64x45.png", pil_bytes(Image.fromarray(rgba, "RGBA"), "PNG"),
                   [(32, 1), (224, 16)]))

    # Palette of 16 colours at 4 bits, tRNS with varying alpha for some entries.
    indices = (smooth_field(rng, 37, 50, 1, 20)[..., 0] // 16).astype(np.uint8)
    palette = rng.integers(0, 256, (16, 3)).astype(np.uint8)
    image = Image.fromarray(indices, "P")
    image.putpalette(palette.reshape(-1).tolist())
    alphas = bytes([0, 255, 128, 30, 255, 200, 1, 254, 90])  # the rest opaque
    inputs.append(("palette_50x37.png", pil_bytes(image, "PNG", bits=4, transparency=alphas),
                   [(32, 1)]))

    gray = smooth_field(rng, 47, 33, 1, 8)[..., 0]
    inputs.append(("gray_33x47.png", pil_bytes(Image.fromarray(gray, "L"), "PNG"), [(40, 1)]))

    gray_alpha = smooth_field(rng, 29, 41, 2, 10)
    inputs.append(("gray_alpha_41x29.png", pil_bytes(Image.fromarray(gray_alpha, "LA"), "PNG"),
                   [(32, 1)]))

    # 16-bit RGB: high bytes matter, low bytes must be ignored.
    rgb16 = smooth_field(rng, 26, 37, 3, 5).astype(np.uint16) * 256 + rng.integers(0, 256, (26, 37, 3))
    inputs.append(("rgb16_37x26.png", png_bytes(37, 26, 2, 16, rgb16), [(32, 1)]))

    rgba16 = smooth_field(rng, 11, 13, 4, 5).astype(np.uint16) * 256 + rng.integers(0, 256, (11, 13, 4))
    inputs.append(("rgba16_13x11.png", png_bytes(13, 11, 6, 16, rgba16), [(8, 1)]))

    gray_alpha16 = smooth_field(rng, 9, 14, 2, 5).astype(np.uint16) * 256 + rng.integers(0, 256, (9, 14, 2))
    inputs.append(("gray_alpha16_14x9.png", png_bytes(14, 9, 4, 16, gray_alpha16), [(8, 1)]))

    gray16 = smooth_field(rng, 12, 10, 1, 5).astype(np.uint16) * 256 + rng.integers(0, 256, (12, 10, 1))
    inputs.append(("gray16_10x12.png", png_bytes(10, 12, 0, 16, gray16), [(8, 1)]))

    # 2-bit gray (PIL scales by 85, as libpng's expansion does).
    gray2 = rng.integers(0, 4, (11, 15, 1))
    inputs.append(("gray2_15x11.png", png_bytes(15, 11, 0, 2, gray2), [(8, 1)]))

    # tRNS colour keys on gray and RGB: PIL ignores them (no compositing for L and RGB).
    gray_key = rng.integers(0, 4, (9, 12, 1)) * 60
    inputs.append(("gray_trns_12x9.png",
                   png_bytes(12, 9, 0, 8, gray_key, [(b"tRNS", struct.pack(">H", 60))]), [(8, 1)]))
    rgb_key = rng.integers(0, 2, (9, 12, 3)) * 200
    inputs.append(("rgb_trns_12x9.png",
                   png_bytes(12, 9, 2, 8, rgb_key, [(b"tRNS", struct.pack(">HHH", 200, 0, 200))]),
                   [(8, 1)]))

    interlaced = smooth_field(rng, 17, 23, 3, 20)
    inputs.append(("interlaced_23x17.png", png_bytes(23, 17, 2, 8, interlaced, interlaced=True),
                   [(16, 1)]))

    # Upscaling in both directions.
    tiny = smooth_field(rng, 13, 20, 3, 30)
    inputs.append(("tiny_20x13.png", pil_bytes(Image.fromarray(tiny, "RGB"), "PNG"), [(32, 1)]))

    # JPEG 4:2:0 (PIL's default subsampling at quality 85), not square, odd sizes.
    photo = smooth_field(rng, 52, 77, 3, 6)
    inputs.append(("photo_77x52.jpg", pil_bytes(Image.fromarray(photo, "RGB"), "JPEG", quality=85),
                   [(32, 1)]))

    gray_photo = smooth_field(rng, 52, 40, 1, 6)[..., 0]
    inputs.append(("gray_40x52.jpg", pil_bytes(Image.fromarray(gray_photo, "L"), "JPEG", quality=90),
                   [(32, 1)]))

    cmyk = smooth_field(rng, 30, 40, 4, 6)
    inputs.append(("cmyk_40x30.jpg", pil_bytes(Image.fromarray(cmyk, "CMYK"), "JPEG", quality=90),
                   [(32, 1)]))

    # Wide: a large downscale across, an odd crop offset, progressive.
    wide = smooth_field(rng, 64, 240, 3, 6)
    inputs.append(("wide_240x64.jpg",
                   pil_bytes(Image.fromarray(wide, "RGB"), "JPEG", quality=80, progressive=True),
                   [(40, 1)]))
    return inputs


# ------------------------------------------------------------------ expected

def expected_rgb(path):
    """embed_image's decode."""
    img = Image.open(path)
    if img.mode == "I":  # 16-bit gray: the documented deviation, high byte kept
        return (np.asarray(img).astype(np.uint32) >> 8).astype(np.uint8)[..., None].repeat(3, 2)
    if img.mode in ("RGBA", "LA", "P"):
        img = img.convert("RGBA")
        bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, img)
    return np.asarray(img.convert("RGB"))


def expected_tensor(rgb, s):
    """embed_image's preprocessing, float32 [3, s, s]."""
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1).float()[None] / 255.0
    h, w = x.shape[2:]
    nh, nw = (s, int(s * w / h)) if h <= w else (int(s * h / w), s)
    x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
    t, l = int(round((nh - s) / 2.0)), int(round((nw - s) / 2.0))
    x = x[:, :, t:t + s, l:l + s]
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    return x[0].numpy()


def check_composite_rule():
    """The integer rule src/image/decode.c copies from PIL, against PIL itself, for every
    (value, alpha) pair: a guard for a PIL whose arithmetic differs from the one copied."""
    value, alpha = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    la = np.stack([value, alpha], -1).astype(np.uint8)
    img = Image.fromarray(la, "LA").convert("RGBA")
    got = np.asarray(Image.alpha_composite(Image.new("RGBA", img.size, (255,) * 4), img))[..., 0]
    coef1 = alpha * 128  # PIL's alpha * 255 * 255 * 128 // outa255, outa255 = 255 * 255 over white
    mixed = value * coef1 + 255 * (255 * 128 - coef1) + (0x80 << 7)
    rule = np.where(alpha == 0, 255, ((((mixed >> 8) + mixed) >> 8) >> 7))
    assert (got == rule).all(), "PIL's alpha_composite differs from the rule in decode.c"


def main():
    os.makedirs(OUT, exist_ok=True)
    check_composite_rule()
    manifest = []
    for name, data, crops in make_inputs():
        path = os.path.join(OUT, name)
        with open(path, "wb") as f:
            f.write(data)
        stem = os.path.splitext(name)[0]
        rgb = expected_rgb(path)
        h, w = rgb.shape[:2]
        with open(os.path.join(OUT, stem + ".ppm"), "wb") as f:
            f.write(b"P6\n%d %d\n255\n" % (w, h) + np.ascontiguousarray(rgb).tobytes())
        for size, step in crops:
            tensor = np.ascontiguousarray(expected_tensor(rgb, size)[:, ::step, :], dtype="<f4")
            np.save(os.path.join(OUT, "%s_%d.npy" % (stem, size)), tensor)
            manifest.append("%s\t%d\t%d" % (name, size, step))
    with open(os.path.join(OUT, "golden.tsv"), "w") as f:
        f.write("# image file, crop size, row step (tools/make_image_fixtures.py)\n")
        f.write("\n".join(manifest) + "\n")


if __name__ == "__main__":
    main()
