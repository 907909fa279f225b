"""params.yaml → validated, typed configuration, one pydantic model per stage section.

Params are read with ruamel.yaml (YAML 1.2), which keeps ``1e-05`` a float after
``dvc exp run -S`` rewrites the file; PyYAML (YAML 1.1) would read it as a string.
Every stage validates its section first and fails with one line naming the bad key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from ruamel.yaml import YAML


class ParamsError(ValueError):
    """A missing, unknown or ill-typed parameter; the message names the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- data
class DemoParams(_Section):
    """The embedded demo: real NIH metadata rows and rendered chest phantoms."""

    n_images: int = Field(5000, ge=8, description="images to render (whole patients, from the bundled rows)")
    size: int = Field(64, ge=16, le=2048, description="phantom side in pixels")
    seed: int = 0
    rgba_fraction: float = Field(0.05, ge=0.0, le=1.0, description="share of PNGs saved as RGBA, as in NIH")
    bbox_fraction: float = Field(0.25, ge=0.0, le=1.0, description="share of images whose boxes go to BBox_List")
    workers: int = Field(0, ge=0, description="render processes; 0 = all cores")


class NIHParams(_Section):
    """Download of the real archive from NIH (or a mirror at ``base_url``)."""

    base_url: str = "https://nihcc.box.com/shared/static"
    archives: Literal["all"] | list[int] = "all"
    metadata_url: str | None = Field(None, description="folder URL serving the four metadata files")
    metadata_dir: str | None = Field(None, description="local folder holding the metadata files")
    retries: int = Field(6, ge=0)
    backoff_s: float = Field(2.0, ge=0.0)
    timeout_s: float = Field(60.0, gt=0.0)
    chunk_kib: int = Field(1024, ge=1)

    @field_validator("archives")
    @classmethod
    def _archive_numbers(cls, value):
        if isinstance(value, list):
            bad = [n for n in value if not 1 <= n <= 12]
            if bad or not value:
                raise ValueError("archive numbers must be 1..12")
        return value


class LocalParams(_Section):
    """An NIH copy already on disk."""

    images_dir: str | None = None
    metadata_csv: str | None = None
    bbox_csv: str | None = None
    lists_dir: str | None = Field(None, description="folder with train_val_list.txt and test_list.txt")
    link: Literal["hardlink", "symlink", "copy"] = "hardlink"


class DataParams(_Section):
    source: Literal["demo", "nih", "local"] = "demo"
    demo: DemoParams = DemoParams()
    nih: NIHParams = NIHParams()
    local: LocalParams = LocalParams()

    @model_validator(mode="after")
    def _local_paths(self):
        if self.source == "local":
            for key in ("images_dir", "metadata_csv"):
                if getattr(self.local, key) is None:
                    raise ValueError(f"local.{key} is required when source is 'local'")
        return self


# --------------------------------------------------------------------------- prepare
class PrepareParams(_Section):
    size: int = Field(64, description="largest side stored; a power of two")
    min_size: int = Field(4, description="smallest pyramid level; a power of two")
    workers: int = Field(0, ge=0, description="decode processes; 0 = all cores")
    max_reject_fraction: float = Field(0.01, ge=0.0, le=1.0)
    chunk: int = Field(64, ge=1, description="images per worker task")

    @field_validator("size", "min_size")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value < 4 or value & (value - 1):
            raise ValueError("must be a power of two >= 4")
        return value

    @model_validator(mode="after")
    def _order(self):
        if self.min_size > self.size:
            raise ValueError(f"min_size ({self.min_size}) exceeds size ({self.size})")
        return self


# --------------------------------------------------------------------------- split
class SplitParams(_Section):
    method: Literal["iterative", "official"] = "iterative"
    weighting: Literal["images", "patients"] = Field(
        "images", description="images: weigh patients by image counts; patients: the paper's averaged labels"
    )
    fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)
    seed: int = 0

    @field_validator("fractions")
    @classmethod
    def _sum_to_one(cls, value):
        if any(f <= 0 for f in value) or abs(sum(value) - 1.0) > 1e-6:
            raise ValueError("train/val/test fractions must be positive and sum to 1")
        return value


# --------------------------------------------------------------------------- classifier
class ClassifierParams(_Section):
    """DenseNet-121 multi-label classifier (paper 001, section 3.3)."""

    seed: int = 0
    pretrained: Literal["auto", "imagenet", "none"] = Field(
        "auto", description="auto: ImageNet weights if found locally, else random init with a warning"
    )
    weights_path: str | None = Field(None, description="ImageNet densenet121 state dict; default: torch hub cache")
    input_size: int = Field(64, description="stored pyramid level fed to the network")
    batch_size: int = Field(64, ge=1)
    max_epochs: int = Field(8, ge=1)
    lr: float = Field(1e-3, gt=0)
    plateau_patience: int = Field(1, ge=0, description="epochs without val macro AUROC gain before lr / 10")
    early_stopping_patience: int = Field(3, ge=1)
    max_rotation_deg: float = Field(10.0, ge=0)
    flip_p: float = Field(0.5, ge=0, le=1)
    brightness: float = Field(0.1, ge=0, lt=1)
    contrast: float = Field(0.1, ge=0, lt=1)
    num_workers: int = Field(0, ge=0)
    accelerator: str = "auto"
    devices: int | str = 1
    precision: str = "32-true"
    threads: int = Field(0, ge=0, description="CPU threads for torch; 0 = all cores")

    @field_validator("input_size")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value < 16 or value & (value - 1):
            raise ValueError("must be a power of two >= 16")
        return value


# --------------------------------------------------------------------------- gan
class GANParams(_Section):
    """Progressive growing GAN (paper 001, section 3.2) or the DCGAN baseline (paper 003)."""

    arch: Literal["pggan", "dcgan"] = "pggan"
    dcgan_images: int = Field(6000, ge=32, description="images the DCGAN baseline trains on (64x64, batch 32)")
    seed: int = 0
    resolution: int = Field(32, description="final side; the schedule lists one entry per resolution 4..this")
    z_dim: int = Field(512, ge=1)
    channels: list[int] = Field(default_factory=lambda: [512, 512, 512, 512, 256, 128, 64, 32, 16][:4])
    fade_images: list[int] = Field(default_factory=lambda: [0, 800_000, 800_000, 800_000])
    stable_images: list[int] = Field(default_factory=lambda: [800_000] * 4)
    batch_sizes: list[int] = Field(default_factory=lambda: [16] * 4)
    lr: float = Field(1e-3, gt=0)
    betas: tuple[float, float] = (0.0, 0.99)
    gp_lambda: float = Field(10.0, ge=0)
    drift: float = Field(0.001, ge=0)
    ema_decay: float = Field(0.999, ge=0, lt=1)
    group_size: int = Field(4, ge=1)
    checkpoint_every: int = Field(10_000, ge=1, description="images between complete checkpoints")
    log_every: int = Field(20, ge=1, description="steps between loss reads (the only host syncs)")
    n_samples: int = Field(64, ge=4)
    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = Field(1, ge=1)
    strategy: str = "auto"
    precision: str = "32-true"
    deterministic: bool = True
    threads: int = Field(0, ge=0, description="CPU threads for torch; 0 = all cores")

    @property
    def final_resolution(self) -> int:
        """Side of the generated images (the DCGAN baseline is always 64x64)."""
        return 64 if self.arch == "dcgan" else self.resolution

    @model_validator(mode="after")
    def _per_resolution(self):
        if self.arch == "dcgan":  # always 64x64 (paper 003); the PGGAN lists are not used
            return self
        if self.resolution < 4 or self.resolution & (self.resolution - 1):
            raise ValueError("resolution: must be a power of two >= 4")
        n = self.resolution.bit_length() - 2  # 4 → 1, 8 → 2, ...
        for key in ("channels", "fade_images", "stable_images", "batch_sizes"):
            if len(getattr(self, key)) != n:
                raise ValueError(f"{key}: needs {n} entries (one per resolution 4..{self.resolution})")
        if any(b % min(self.group_size, b) for b in self.batch_sizes):
            raise ValueError("batch_sizes: each must be a multiple of group_size (minibatch stddev)")
        return self



# --------------------------------------------------------------------------- fid
class FIDParams(_Section):
    """FID split validation (paper 001, section 4.1: Table 1 and Figure 5)."""

    extractor: Literal["inception", "classifier", "both"] = Field(
        "both", description="inception needs its weights locally; both skips it with a warning when absent"
    )
    inception_weights: str | None = Field(None, description="pt_inception-2015-12-05-6726825d.pth; default: hub cache")
    n_generated: int = Field(2000, ge=2, description="generated images (the paper: 100,000)")
    truncation: float | None = Field(None, gt=0, description="None: plain N(0, 1) latents, as the paper")
    batch_size: int = Field(256, ge=1)
    seed: int = 0
    device: str = Field("auto", description="auto | cpu | cuda")


# --------------------------------------------------------------------------- prevalence
class PrevalenceParams(_Section):
    """Label prevalence of real and generated images with bootstrap intervals (section 4.2, Figure 6)."""

    n_generated: int = Field(2000, ge=1, description="generated images labelled (the paper: 130,000)")
    n_bootstrap: int = Field(10_000, ge=100, description="bootstrap resamples (the paper: 10,000)")
    real_subset: Literal["all", "test"] = Field(
        "test", description="real images labelled: all (the paper) or the test split the classifier never saw"
    )
    level: float = Field(0.95, gt=0, lt=1)
    truncation: float | None = Field(None, gt=0)
    batch_size: int = Field(256, ge=1)
    seed: int = 0
    device: str = "auto"


# --------------------------------------------------------------------------- archive
class ArchiveParams(_Section):
    """Class-optimised synthetic archive (Algorithm 1, sections 3.4 and 4.3)."""

    size: int = Field(1500, ge=1, description="images in the archive (full scale: as many as NIH)")
    scorer: Literal["discriminator", "densenet"] = Field(
        "discriminator", description="classifier whose class score is raised: the re-purposed D or the DenseNet"
    )
    compare_per_class: int = Field(8, ge=0, description="latents per class optimised with the other scorer, "
                                   "to report both scorers' success rates (0: off)")
    truncation: float = Field(0.7, gt=0, description="initial z from a normal truncated at this value")
    optimiser: Literal["adam", "sgd"] = "adam"
    step_size: float = Field(0.05, gt=0, description="learning rate of the latent updates")
    max_steps: int = Field(60, ge=1, description="steps before an attempt gives up and restarts from a fresh z")
    max_attempts: int = Field(4, ge=1, description="fresh latents tried per optimisation before it counts as failed")
    batch_size: int = Field(64, ge=1, description="latents optimised together")
    parallel_restarts: bool = Field(False, description="once the queue is empty, idle slots run slow jobs' "
                                    "remaining attempts at the same time (fewer steps; pays on a GPU, not a CPU)")
    severity_mean: float = Field(1.0, description="T_c = Youden logit + |N(mean, std)|")
    severity_std: float = Field(1.0, ge=0)
    local_std: float = Field(0.2, ge=0, description="local sampling: follow-ups at z* + N(0, std^2)")
    follow_ups: tuple[int, int] = Field((3, 6), description="images per synthetic patient, drawn uniformly")
    label_thresholds: Literal["youden", "prevalence"] = Field(
        "youden", description="labeller cut-offs: the classifier's Youden thresholds, or per-class cut-offs "
        "at which it labels the real validation images as often as the source holds each label")
    shard_images: int = Field(10_000, ge=1, description="PNGs per images_NNN.tar shard")
    seed: int = 0
    device: str = "auto"

    @field_validator("follow_ups")
    @classmethod
    def _range(cls, value):
        if not 1 <= value[0] <= value[1]:
            raise ValueError("follow_ups must be [min, max] with 1 <= min <= max")
        return value


# --------------------------------------------------------------------------- embedding baseline
class EmbedParams(_Section):
    """Encoder G^-1 (the discriminator's body with a z head) for the 'Embedded' column of Table 2."""

    init: Literal["random", "discriminator"] = Field(
        "random", description="encoder start: fresh weights, or the trained discriminator's (the paper's wording)")
    train_images: int = Field(30_000, ge=64, description="generator samples the encoder trains on")
    n_images: int | None = Field(None, ge=2, description="real train/val images to embed, whole patients "
                                 "drawn at random; None: all of them")
    batch_size: int = Field(64, ge=2)
    lr: float = Field(1e-3, gt=0)
    seed: int = 0
    device: str = "auto"


# --------------------------------------------------------------------------- synthetic AUROC
class SynthParams(_Section):
    """Classifiers trained on synthetic data and tested on the real test split (section 4.5, Table 2)."""

    val_fraction: float = Field(0.125, gt=0, lt=1, description="synthetic patients held out for validation")
    max_epochs: int | None = Field(None, ge=1, description="None: classifier.max_epochs")
    seed: int = 0

SECTIONS: dict[str, type[_Section]] = {
    "data": DataParams,
    "prepare": PrepareParams,
    "split": SplitParams,
    "classifier": ClassifierParams,
    "gan": GANParams,
    "fid": FIDParams,
    "prevalence": PrevalenceParams,
    "archive": ArchiveParams,
    "embed": EmbedParams,
    "synth": SynthParams,
}

T = TypeVar("T", bound=_Section)


def read_params(path: str | os.PathLike = "params.yaml") -> dict[str, Any]:
    """Read a params file with YAML 1.2 semantics (``1e-05`` stays a float)."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: params file not found")
    try:
        data = YAML(typ="safe", pure=True).load(path.read_text())
    except Exception as err:  # ruamel raises several unrelated types
        raise ParamsError(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from err
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping of stage sections at the top level")
    return data


def _format_error(section: str, err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in (section, *first["loc"]) if p not in ("function-after",))
    got = first.get("input")
    shown = "" if isinstance(got, dict) else f" (got {got!r})"
    msg = first["msg"].removeprefix("Value error, ")
    return f"{source}: {key}: {msg}{shown}"


def parse_section(params: dict[str, Any], section: str, model: type[T] | None = None, source: str = "params.yaml") -> T:
    """Validate one section of a params dict into its typed model.

    Raises ParamsError with a one-line message naming the offending key.
    """
    model = model or SECTIONS[section]
    raw = params.get(section)
    if raw is None:
        raise ParamsError(f"{source}: missing section '{section}'")
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: section '{section}' must be a mapping")
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise ParamsError(_format_error(section, err, source)) from None


def load_section(section: str, path: str | os.PathLike = "params.yaml") -> Any:
    """Read ``path`` and return its validated ``section``."""
    return parse_section(read_params(path), section, source=str(path))
