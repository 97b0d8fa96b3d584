#!/usr/bin/python3
"""Random-weight Ear models of the spec's example sizes, for benchmarks (not committed).

    /usr/bin/python3 tools/make_random_model.py --tower audio -o /tmp/audio.safetensors
    /usr/bin/python3 tools/make_random_model.py --tower image -o /tmp/image.safetensors

audio: the spec's example audio tower, a ResNet-18 (basic blocks [2, 2, 2, 2], widths
[64, 128, 256, 512]) on 64-mel log-mels of 5 s segments at 16 kHz, linear head to 512.
image: the spec's example image tower, a ResNet-50 (bottleneck [3, 4, 6, 3]) on 224x224,
mlp head 2048 -> 1024 -> 512. both: the two towers in one file.
"""
import argparse
import copy
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import avclip  # noqa: E402
import export  # noqa: E402

SPEC_EXAMPLE = {
    "embed_dim": 512,
    "audio": {
        "sample_rate": 16000, "n_fft": 512, "win_length": 400, "hop_length": 160,
        "n_mels": 64, "f_min": 0.0, "f_max": 8000.0,
        "log_offset": 1e-6, "mean": -4.0, "std": 4.0,
        "segment_seconds": 5.0,
        "encoder": {"type": "resnet", "block": "basic", "layers": [2, 2, 2, 2],
                    "widths": [64, 128, 256, 512], "in_channels": 1},
        "head": {"type": "linear"},
    },
    "image": {
        "size": 224, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
        "encoder": {"type": "resnet", "block": "bottleneck", "layers": [3, 4, 6, 3],
                    "widths": [64, 128, 256, 512], "in_channels": 3},
        "head": {"type": "mlp", "hidden": 1024},
    },
}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tower", choices=["audio", "image", "both"], default="both")
    p.add_argument("--dtype", choices=["f32", "f16", "bf16"], default="f32")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("-o", "--output", required=True)
    args = p.parse_args()
    config = copy.deepcopy(SPEC_EXAMPLE)
    if args.tower != "both":
        del config["image" if args.tower == "audio" else "audio"]
    model = avclip.randomize(avclip.AvClip(config), args.seed)
    export.export_model(model, args.output, args.dtype)
    print("wrote %s (%d bytes)" % (args.output, os.path.getsize(args.output)), file=sys.stderr)


if __name__ == "__main__":
    main()
