"""The ``data`` section: where the raw images come from (demo, NIH download, local copy)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from cxrsynth.config.base import Section


class DemoParams(Section):
    """The embedded demo: real NIH metadata rows and rendered chest phantoms."""

    n_images: int = Field(5000, ge=8, description="images to render (whole patients, from the bundled rows)")
    size: int = Field(64, ge=16, le=2048, description="phantom side in pixels")
    seed: int = 0
    archive_images: int = Field(1000, ge=1, description="films per images_NNN.tar.gz (NIH packs 10,000)")
    rgba_fraction: float = Field(0.05, ge=0.0, le=1.0, description="share of PNGs saved as RGBA, as in NIH")
    bbox_fraction: float = Field(0.25, ge=0.0, le=1.0, description="share of images whose boxes go to BBox_List")
    workers: int = Field(0, ge=0, description="render processes; 0 = all cores")


class NIHParams(Section):
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


class LocalParams(Section):
    """An NIH copy already on disk (PNG folder or images_*.tar.gz archives), read where it lies."""

    images_dir: str | None = None
    metadata_csv: str | None = None
    bbox_csv: str | None = None
    lists_dir: str | None = Field(None, description="folder with train_val_list.txt and test_list.txt")


class DataParams(Section):
    """Where the raw images come from."""

    section: ClassVar[str] = "data"

    source: Literal["demo", "nih", "local"] = "demo"
    demo: DemoParams = DemoParams()
    nih: NIHParams = NIHParams()
    local: LocalParams = LocalParams()
    labels: Literal["nih", "chexnext"] = Field(
        "nih", description="nih: the NLP labels | chexnext: Rajpurkar et al.'s relabelled subset (the paper's)")
    chexnext_file: str | None = Field(
        None, description="mednet's NIH CXR14 JSON (train/validation lists); only its images are used")

    @model_validator(mode="after")
    def _chexnext_file(self):
        if self.labels == "chexnext" and not self.chexnext_file:
            raise ValueError("chexnext_file is required when labels is 'chexnext'")
        return self

    @model_validator(mode="after")
    def _local_paths(self):
        if self.source == "local":
            for key in ("images_dir", "metadata_csv"):
                if getattr(self.local, key) is None:
                    raise ValueError(f"local.{key} is required when source is 'local'")
        return self
