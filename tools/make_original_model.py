#!/usr/bin/python3
"""A random-weight model in the original service's format: torch.save of the state_dict of
its AudioVisualCLIP (torchvision's resnet50 trunk + Linear(2048, 512), torchaudio's
wav2vec2_base + Linear(768, 512), logit_scale), the full size the original ran (455 MiB).

    /usr/bin/python3 tools/make_original_model.py OUT.pt [--seed N]

Used by tests/tools/peer_query.sh, where the original reproduced (shared/peers/seed-python)
and Ear serve the same model, dataset and indexed_db.pt. The module tree is the one
service.py builds, so that its load_state_dict accepts the file.
"""
import argparse

import torch
import torch.nn as nn
import torchaudio
import torchvision


class AudioEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = torchaudio.models.wav2vec2_base()


class ProjectionHead(nn.Module):
    def __init__(self, in_dim, embed_dim):
        super().__init__()
        self.proj = nn.Linear(in_dim, embed_dim)


class AudioVisualCLIP(nn.Module):
    def __init__(self, embed_dim=512):
        super().__init__()
        resnet = torchvision.models.resnet50()
        self.image_encoder = nn.Sequential(*(list(resnet.children())[:-1]), nn.Flatten(1))
        self.audio_encoder = AudioEncoder()
        self.image_proj = ProjectionHead(2048, embed_dim)
        self.audio_proj = ProjectionHead(768, embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(1 / 0.07).log())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("output")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    model = AudioVisualCLIP()
    # Random BatchNorm statistics, so that the frozen-BN folding is exercised too.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    torch.save(model.state_dict(), args.output)


if __name__ == "__main__":
    main()
