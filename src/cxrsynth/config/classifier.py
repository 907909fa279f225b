"""The ``classifier`` section: DenseNet-121 or ResNet-18 training (also used by d_classifier and Table 2)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from cxrsynth.config.base import Section


class ClassifierParams(Section):
    """DenseNet-121 (paper 001, section 3.3) or ResNet-18 (paper 002) multi-label classifier."""

    section: ClassVar[str] = "classifier"

    arch: Literal["densenet121", "resnet18"] = Field(
        "densenet121", description="torchvision network with one grey input channel; ImageNet file from weights/<arch>/")
    seed: int = 0
    pretrained: Literal["auto", "imagenet", "none"] = Field(
        "auto", description="auto: ImageNet weights if found locally, else random init with a warning"
    )
    weights_path: str | None = Field(None, description="ImageNet state dict of arch; default: weights/<arch>/")
    input_size: int = Field(64, description="stored pyramid level fed to the network")
    batch_size: int = Field(64, ge=1, description="global: images per step over all devices")
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
    num_nodes: int = Field(1, ge=1)
    strategy: str = Field("auto", description="Lightning strategy; ddp for several devices")
    precision: str = "32-true"
    threads: int = Field(0, ge=0, description="CPU threads for torch; 0 = all cores")
    memory_limit_gib: float = Field(2.0, ge=0, description="a stored level larger than this stays memory-mapped")

    @field_validator("input_size")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value < 16 or value & (value - 1):
            raise ValueError("must be a power of two >= 16")
        return value

    @model_validator(mode="after")
    def _global_batch(self):
        """The batch size is global (as the GAN's): it must split evenly over the processes when their
        number is given."""
        if isinstance(self.devices, int) and self.devices > 0 and self.batch_size % (self.devices * self.num_nodes):
            raise ValueError(f"batch_size: {self.batch_size} does not split evenly over "
                             f"{self.devices * self.num_nodes} processes (devices x num_nodes); it is global")
        return self

    def single_process(self) -> ClassifierParams:
        """This recipe on one device, for a classifier trained inside a stage that is not launched
        under DDP (a DDP launch would start the whole stage again in every process)."""
        return self.model_copy(update={"devices": 1, "num_nodes": 1, "strategy": "auto"})
