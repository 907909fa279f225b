"""The generator bundle: one folder that holds all ``cxrsynth generate`` needs, and no real film.

Layout (written by the ``generator`` stage, read by ``Generator.load``)::

    bundle.json        what the parts are: label cut-offs, class-optimisation settings, source
    README.md          the model card (``generate.model_card``)
    generator/         the EMA generator: generator.pt + config.json (no discriminator)
    labeller/          the classifier that labels the films: model.pt + config.json + thresholds.json
    scorer/            only when the archive's scorer is the re-purposed discriminator

The labeller's cut-offs in ``bundle.json`` are the ones the archive stage labels its films with
(``archive.label_thresholds``); its own ``thresholds.json`` (Youden) stays the optimisation's
base threshold, as in the archive stage. The files are copied byte for byte, and ``bundle.json``
and the card hold no date, so two runs on the same inputs write identical bytes.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cxrsynth.config.archive import ArchiveParams
from cxrsynth.errors import InputError, MissingInputError
from cxrsynth.io import atomic_dir, write_text
from cxrsynth.labels import LABELS

BUNDLE_FILE = "bundle.json"
FORMAT = 1
GENERATOR_FILES = ("config.json", "generator.pt")
CLASSIFIER_FILES = ("config.json", "model.pt", "thresholds.json")
#: The ``archive`` params that class optimisation and local sampling read (``synthesis.archive_builder``).
SETTINGS = ("scorer", "severity_mean", "severity_std", "step_size", "optimiser", "batch_size", "max_steps",
            "max_attempts", "retries", "truncation", "parallel_restarts", "local_std", "label_thresholds", "seed")

SOURCES = {
    "demo": "the embedded demo: procedurally rendered chest phantoms carrying real NIH ChestX-ray14 metadata "
            "rows (labels, patients); its films and numbers are not clinical",
    "nih": "NIH ChestX-ray14 (Wang et al. 2017), downloaded from the NIH Clinical Center",
    "local": "a local copy of a chest x-ray archive in NIH's layout (data.local)",
}


@dataclass(frozen=True)
class Bundle:
    """A bundle folder's manifest, checked: paths of its parts and what ``bundle.json`` records."""

    folder: Path
    manifest: dict

    @property
    def params(self) -> ArchiveParams:
        """The archive settings class optimisation runs with (the others at their defaults)."""
        return ArchiveParams(**self.manifest["class_optimisation"])

    @property
    def thresholds(self) -> np.ndarray:
        """The labeller's cut-offs (probability scale), LABELS order."""
        return np.asarray([self.manifest["labeller"]["thresholds"][name] for name in LABELS], dtype=np.float32)

    def part(self, name: str) -> Path:
        """The folder of part ``name`` (generator, labeller, scorer)."""
        return self.folder / self.manifest[name]["folder"]


def source_description(source: str) -> str:
    """One phrase naming what the models were trained on, for ``data.source``."""
    return SOURCES[source]


def _copy(src: Path, dest: Path, names: tuple[str, ...]) -> None:
    dest.mkdir(parents=True)
    for name in names:
        if not (src / name).is_file():
            raise MissingInputError(f"{src / name}: not found (the bundle needs {', '.join(names)})")
        shutil.copyfile(src / name, dest / name)


def _rounded(values: dict[str, float] | None) -> dict[str, float | None] | None:
    if values is None:
        return None
    return {name: None if math.isnan(float(values[name])) else round(float(values[name]), 4) for name in LABELS}


def bundle_manifest(gan_config: dict, labeller_config: dict, params: ArchiveParams, thresholds: np.ndarray,
                    source: str, test_auroc: dict[str, float] | None = None) -> dict:
    """``bundle.json``'s content: the generator's architecture, the labeller's cut-offs ``thresholds``
    (LABELS order) and real test AUROC per label (NaN → null), the scorer, the class-optimisation
    settings (``SETTINGS`` of ``params``) and the training source (``data.source``)."""
    scorer_folder = "scorer" if params.scorer == "discriminator" else "labeller"
    return {
        "format": FORMAT,
        "generator": {"folder": "generator", "arch": gan_config["arch"], "z_dim": gan_config["z_dim"],
                      "resolution": int(gan_config["resolution"])},
        "labeller": {"folder": "labeller", "architecture": labeller_config["architecture"],
                     "input_size": int(labeller_config["input_size"]), "thresholds_kind": params.label_thresholds,
                     "thresholds": {n: round(float(t), 6) for n, t in zip(LABELS, thresholds)},
                     "test_auroc": _rounded(test_auroc)},
        "scorer": {"folder": scorer_folder, "name": params.scorer},
        "class_optimisation": params.model_dump(mode="json", include=set(SETTINGS)),
        "source": {"data_source": source, "description": source_description(source)},
    }


def write_bundle(out: Path, gan: Path, labeller: Path, d_classifier: Path | None, params: ArchiveParams,
                 thresholds: np.ndarray, source: str, test_auroc: dict[str, float] | None = None) -> Bundle:
    """Write the bundle folder ``out`` atomically: the EMA generator of ``gan`` (an exported model
    folder), the classifier folder ``labeller``, the re-purposed discriminator ``d_classifier`` when
    ``params.scorer`` is "discriminator", ``bundle.json`` and the model card. Returns it, read back."""
    from cxrsynth.generate.model_card import render_model_card

    if params.scorer == "discriminator" and d_classifier is None:
        raise InputError("archive.scorer: 'discriminator' needs the d_classifier folder in the bundle")
    gan_config = json.loads((gan / "config.json").read_text()) if (gan / "config.json").is_file() else None
    if gan_config is None:
        raise MissingInputError(f"{gan / 'config.json'}: not found (not an exported generator)")
    labeller_config = json.loads((labeller / "config.json").read_text()) if (labeller / "config.json").is_file() else None
    if labeller_config is None:
        raise MissingInputError(f"{labeller / 'config.json'}: not found (not a saved classifier)")
    manifest = bundle_manifest(gan_config, labeller_config, params, thresholds, source, test_auroc)
    with atomic_dir(out) as tmp:
        _copy(gan, tmp / "generator", GENERATOR_FILES)
        _copy(labeller, tmp / "labeller", CLASSIFIER_FILES)
        if params.scorer == "discriminator":
            _copy(d_classifier, tmp / "scorer", CLASSIFIER_FILES)
        write_text(tmp / BUNDLE_FILE, json.dumps(manifest, indent=2) + "\n")
        write_text(tmp / "README.md", render_model_card(manifest))
    return read_bundle(out)


def read_bundle(folder: str | Path) -> Bundle:
    """The bundle at ``folder``, its manifest checked and every part's files present.

    Raises MissingInputError (no bundle there, or a file missing) or InputError (another format)."""
    folder = Path(folder)
    path = folder / BUNDLE_FILE
    if not path.is_file():
        raise MissingInputError(f"{path}: not found ({folder} is not a generator bundle; the generator stage "
                                "writes one to data/generator)")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err})") from None
    if manifest.get("format") != FORMAT:
        raise InputError(f"{path}: bundle format {manifest.get('format')!r}, this cxrsynth reads format {FORMAT}")
    bundle = Bundle(folder, manifest)
    for part, names in (("generator", GENERATOR_FILES), ("labeller", CLASSIFIER_FILES), ("scorer", CLASSIFIER_FILES)):
        for name in names:
            if not (bundle.part(part) / name).is_file():
                raise MissingInputError(f"{bundle.part(part) / name}: not found (an incomplete generator bundle)")
    return bundle
