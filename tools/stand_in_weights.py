"""Write randomly initialised stand-ins for the pretrained weights files, to rehearse their paths.

ImageNet DenseNet-121 and pytorch-fid's Inception cannot be downloaded here. The rehearsal
profile (params/profile/rehearsal.yaml) asks for them as params/profile/nih.yaml does, so this
writes files with the real names and layouts (torchvision's DenseNet-121, pytorch-fid's FID
Inception) but random weights. The stages load them through the real code and record their
SHA-256; nothing they produce means anything. Never use these for a real run.

    python tools/stand_in_weights.py [--track] [ROOT]   # writes ROOT/weights/densenet121/ and ROOT/weights/inception/

``--track`` then ``dvc add``s them (``python -m cxrsynth.inputs track --unverified``): their
``.dvc`` pointers, which say they are unverified, can be committed so that ``dvc exp run --temp``
copies get them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn
from torchvision.models import densenet121

from cxrsynth.inputs.track import track
from cxrsynth.models.classifier import IMAGENET_FILE
from cxrsynth.models.inception import FID_WEIGHTS_FILE, fid_inception_v3


def write_stand_ins(root: Path, seed: int = 0) -> list[Path]:
    """Save random-weight DenseNet-121 and FID Inception state dicts under ``root/weights/``.

    Inception's convolutions are He-initialised: with torchvision's default initialisation its
    pool3 features vary by about 1e-6 and the fid stage rightly refuses them as untrained.
    """
    torch.manual_seed(seed)
    inception = fid_inception_v3(None)
    for module in inception.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    written = []
    for folder, name, net in (("densenet121", IMAGENET_FILE, densenet121(weights=None)),
                              ("inception", FID_WEIGHTS_FILE, inception)):
        path = root / "weights" / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(net.state_dict(), path)
        written.append(path)
    return written


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", nargs="?", type=Path, default=Path("."))
    parser.add_argument("--track", action="store_true",
                        help="dvc add what was written (ROOT must be a DVC repository), marked unverified")
    args = parser.parse_args()
    for path in write_stand_ins(args.root):
        print(f"wrote {path} (random weights: a stand-in, not ImageNet)")
        if args.track:
            tracked = track(path, args.root, unverified=True)
            print(f"tracked {path}: {tracked.verdict}; git add {' '.join(map(str, tracked.to_commit))}")
