#!/usr/bin/python3
"""Writes an Ear model file (../shared/spec/model-format.md) from a PyTorch AvClip.

    /usr/bin/python3 tools/export.py --config CONFIG.json --checkpoint STATE.pt -o model.safetensors
    /usr/bin/python3 tools/export.py --config CONFIG.json --random 1 -o model.safetensors --dtype f16

--checkpoint is a torch.save'd AvClip state_dict (or a dict holding one under "state_dict");
--random SEED makes random weights with random BatchNorm statistics (tests, benchmarks).
Float tensors are written as F32 (default), F16 or BF16; BatchNorm's num_batches_tracked is
written as I64 unless --no-num-batches-tracked (the engine ignores it either way).

As a module: export_model(model, path, dtype) and load_model(path) -> AvClip.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import avclip  # noqa: E402
import safetensors_io  # noqa: E402

FORMAT, VERSION = "avclip", "1"


def export_model(model, path, dtype="F32", num_batches_tracked=True):
    """Writes model's state_dict and configuration as an Ear model file."""
    tensors = {name: t for name, t in model.state_dict().items()
               if num_batches_tracked or not name.endswith(".num_batches_tracked")}
    metadata = {"ear.format": FORMAT, "ear.version": VERSION,
                "ear.config": json.dumps(model.config, separators=(",", ":"))}
    safetensors_io.save(path, tensors, metadata, dtype.upper())


def load_model(path):
    """Reads an Ear model file back into an AvClip (float32, eval mode)."""
    tensors, metadata = safetensors_io.load(path)
    if metadata.get("ear.format") != FORMAT or metadata.get("ear.version") != VERSION:
        raise ValueError("%s: not an Ear model file of version %s" % (path, VERSION))
    model = avclip.AvClip(json.loads(metadata["ear.config"]))
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    missing = [m for m in missing if not m.endswith(".num_batches_tracked") and m != "logit_scale"]
    if missing or unexpected:
        raise ValueError("%s: missing tensors %s, unexpected tensors %s" % (path, missing, unexpected))
    return model.eval()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="the model configuration (JSON)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="a torch.save'd state_dict of an AvClip")
    source.add_argument("--random", type=int, metavar="SEED", help="random weights")
    p.add_argument("--dtype", default="f32", choices=["f32", "f16", "bf16"])
    p.add_argument("--no-num-batches-tracked", action="store_true")
    p.add_argument("-o", "--output", required=True)
    args = p.parse_args()

    with open(args.config) as f:
        config = json.load(f)
    model = avclip.AvClip(config)
    if args.random is not None:
        avclip.randomize(model, args.random)
    else:
        state = torch.load(args.checkpoint, map_location="cpu")
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        model.load_state_dict(state)
    export_model(model.eval(), args.output, args.dtype, not args.no_num_batches_tracked)
    print("wrote %s (%d bytes)" % (args.output, os.path.getsize(args.output)), file=sys.stderr)


if __name__ == "__main__":
    main()
