"""The inputs that come from outside the pipeline: where each lives, where it is fetched from, and
the checksums that say a copy is the published one.

Each checksum names its kind and where its value was read. Only values read from a source are
recorded here: a publisher's digest, a digest a third party checks in its own scripts (named),
or torch hub's convention that the hex digits after the last ``-`` of a file name are the start
of the file's SHA-256 (``torch.hub.HASH_REGEX``; torchvision loads its ImageNet weights with
``check_hash=True``, so for those files the convention is enforced by the publisher's loader).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cxrsynth.errors import ParamsError

#: torch hub's pattern for the SHA-256 prefix in a weights file name (``torch.hub.HASH_REGEX``).
HUB_HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")

#: Kinds of checksum: a full SHA-256 or SHA-1, or the leading hex digits of the SHA-256.
KINDS = ("sha256", "sha1", "sha256-prefix")


@dataclass(frozen=True)
class Checksum:
    """One checksum of a file: ``kind`` (one of KINDS), the hex ``value``, and ``source``, where the
    value was read."""

    kind: str
    value: str
    source: str

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"checksum kind {self.kind!r} is not one of {KINDS}")

    def matches(self, digests: dict[str, str]) -> bool:
        """Whether ``digests`` (``{"sha256": hex, "sha1": hex}``) agree with this checksum."""
        if self.kind == "sha256-prefix":
            return digests["sha256"].startswith(self.value)
        return digests[self.kind] == self.value

    def __str__(self) -> str:
        return f"{self.kind} {self.value}"


def hub_checksum(file_name: str, source: str) -> Checksum:
    """The SHA-256 prefix torch hub's convention reads from ``file_name`` (``resnet18-f37072fd.pth``
    gives ``f37072fd``)."""
    match = HUB_HASH_REGEX.search(file_name)
    if match is None or not match.group(1):
        raise ValueError(f"{file_name}: no torch hub hash prefix in the name")
    return Checksum("sha256-prefix", match.group(1), source)


@dataclass(frozen=True)
class Packed:
    """The input is one ``member`` of a zip archive (a wheel) fetched from the input's URL, stored
    decompressed when ``decompress`` is ``"bz2"``; ``checksums`` are the archive's."""

    member: str
    checksums: tuple[Checksum, ...]
    decompress: str | None = None


@dataclass(frozen=True)
class Input:
    """One input file: its ``name``, its ``path`` in the repository (POSIX, relative), the ``url`` it
    is fetched from (None: made here, only tracked), the ``checksums`` of the file at ``path``,
    and ``packed`` when the URL serves an archive holding it."""

    name: str
    path: str
    url: str | None
    checksums: tuple[Checksum, ...] = ()
    packed: Packed | None = None
    note: str = ""

    def __post_init__(self):
        if PurePosixPath(self.path).is_absolute() or ".." in PurePosixPath(self.path).parts:
            raise ValueError(f"{self.name}: path {self.path!r} must be relative to the repository root")

    def dest(self, root: Path) -> Path:
        """Where the file lives under the repository ``root``."""
        return Path(root) / self.path


_TORCHVISION = "file name (torch hub convention), checked by torchvision's loader (check_hash=True)"
_MEDNET_WHEEL = ("https://files.pythonhosted.org/packages/a3/70/51b093820521d046760fedaf736793c9405568f61a9bb"
                 "4181523ab3072a5/mednet-2.1.0-py3-none-any.whl")

MANIFEST: tuple[Input, ...] = (
    Input("densenet121", "weights/densenet121/densenet121-a639ec97.pth",
          "https://download.pytorch.org/models/densenet121-a639ec97.pth",
          (hub_checksum("densenet121-a639ec97.pth", _TORCHVISION),),
          note="torchvision's DenseNet121_Weights.IMAGENET1K_V1"),
    Input("resnet18", "weights/resnet18/resnet18-f37072fd.pth",
          "https://download.pytorch.org/models/resnet18-f37072fd.pth",
          (hub_checksum("resnet18-f37072fd.pth", _TORCHVISION),),
          note="torchvision's ResNet18_Weights.IMAGENET1K_V1"),
    # pytorch-fid loads this file without check_hash, so nothing confirms that "6726825d" in its
    # name is a SHA-256 prefix; the full SHA-1 below is the one MLCommons' reference scripts check.
    Input("inception", "weights/inception/pt_inception-2015-12-05-6726825d.pth",
          "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
          (Checksum("sha1", "bd836944fd6db519dfd8d924aa457f5b3c8357ff",
                    "MLCommons training, stable_diffusion/scripts/checkpoints/download_inception.sh (sha1sum -c)"),),
          note="pytorch-fid's FID Inception weights (release fid_weights)"),
    # The wheel's SHA-256 is PyPI's published digest. The labels' SHA-256 was computed from that
    # wheel's default.json.bz2, decompressed (what params read: labels/chexnext/default.json).
    Input("chexnext", "labels/chexnext/default.json", _MEDNET_WHEEL,
          (Checksum("sha256", "2460019efed73f339ef426885bcb99c4f97fcb64efb33944dc946cce16891470",
                    "computed from the PyPI-verified mednet 2.1.0 wheel's default.json.bz2, decompressed"),),
          Packed("mednet/config/classify/data/nih_cxr14/default.json.bz2",
                 (Checksum("sha256", "dfd6d690b28c583a4039358dfca7ee2b359b8347a799b4639d7fb3c6c8cb0724",
                           "PyPI's published digest of mednet-2.1.0-py3-none-any.whl"),),
                 decompress="bz2"),
          note="CheXNeXt relabelled NIH lists, from the mednet 2.1.0 wheel on PyPI"),
    Input("answers", "reader_answers/answers.sqlite", None,
          note="the reader study's answers (python -m cxrsynth.reader_study serve); track it after the study"),
)


def select(names: list[str] | tuple[str, ...], entries: tuple[Input, ...] = MANIFEST) -> list[Input]:
    """The entries named (all when ``names`` is empty); an unknown name is a one-line error."""
    known = {entry.name: entry for entry in entries}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ParamsError(f"unknown input {unknown[0]!r}; known: {', '.join(known)}")
    return [known[name] for name in names] if names else list(entries)


def entry_for(path: Path, root: Path, entries: tuple[Input, ...] = MANIFEST) -> Input | None:
    """The entry whose destination under ``root`` is ``path``, else None."""
    path = Path(path).resolve()
    return next((e for e in entries if e.dest(root).resolve() == path), None)
