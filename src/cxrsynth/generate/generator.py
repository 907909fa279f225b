"""Labelled synthetic films on demand from a generator bundle, in two lines::

    from cxrsynth.generate import Generator
    films = Generator.load("data/generator").generate(labels=["Effusion", "Cardiomegaly"], n=64)

``n`` films are split as evenly as possible over the labels (the first labels get one more when
``n`` does not divide). Each synthetic patient is one class-optimised latent (Algorithm 1, with
the archive's retries: ``synthesis.archive_builder.generate_patients``) and ``follow_ups`` films sampled
around it; every film is labelled by the bundle's labeller at the archive's cut-offs. A patient
whose optimisation did not converge gives no film: the result says how many converged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cxrsynth.config.archive import ArchiveParams
from cxrsynth.errors import CxrsynthError, InputError
from cxrsynth.generate.bundle import Bundle, read_bundle
from cxrsynth.labels import LABELS, UnknownLabelError, canonical_label
from cxrsynth.runtime import resolve_device
from cxrsynth.sampling import load_generator
from cxrsynth.synthesis.archive_writer import archive_table, write_archive
from cxrsynth.synthesis.archive_builder import generate_patients
from cxrsynth.synthesis.scorers import Scorer, load_scorer


class NothingConvergedError(CxrsynthError):
    """Class optimisation failed for every requested patient: there is no film to return."""


def parse_labels(labels: str | list[str] | tuple[str, ...]) -> list[str]:
    """Canonical label names from a list or a comma-separated string, in the order given.

    Raises UnknownLabelError listing the valid names, InputError for none or a repeated one."""
    names = [s.strip() for s in labels.split(",")] if isinstance(labels, str) else [str(s).strip() for s in labels]
    names = [s for s in names if s]
    if not names:
        raise InputError(f"labels: none given; valid labels: {', '.join(LABELS)}")
    out = []
    for name in names:
        canonical = canonical_label(name)
        if canonical is None:
            raise UnknownLabelError(f"labels: unknown label {name!r}; valid labels: {', '.join(LABELS)}")
        if canonical in out:
            raise InputError(f"labels: {canonical} is named twice")
        out.append(canonical)
    return out


def split_evenly(n: int, parts: int) -> np.ndarray:
    """``n`` as ``parts`` counts differing by at most one, the larger ones first."""
    return np.asarray([n // parts + (k < n % parts) for k in range(parts)], dtype=np.int64)


def plan_films(labels: list[str], n: int, follow_ups: int) -> tuple[np.ndarray, np.ndarray]:
    """(class index, films) per synthetic patient: ``n`` films split evenly over ``labels``, each
    label's films in patients of ``follow_ups`` (its last patient may have fewer)."""
    if n < len(labels):
        raise InputError(f"n: {n} films cannot cover {len(labels)} labels (at least one film per label)")
    if follow_ups < 1:
        raise InputError(f"follow_ups: {follow_ups} (at least 1 film per patient)")
    classes, counts = [], []
    for name, films in zip(labels, split_evenly(n, len(labels))):
        sizes = [follow_ups] * int(films // follow_ups) + ([int(films % follow_ups)] if films % follow_ups else [])
        classes += [LABELS.index(name)] * len(sizes)
        counts += sizes
    return np.asarray(classes, dtype=np.int64), np.asarray(counts, dtype=np.int64)


@dataclass
class GeneratedFilms:
    """The films of one ``Generator.generate`` call that converged, and what happened per label.

    ``per_label[name]``: films ``requested``, films ``converged`` (written), and ``agreement``, the
    share of the converged films whose labeller labels include their requested label (None when
    none converged)."""

    images: np.ndarray  # (k, r, r) uint8, table order
    table: pd.DataFrame  # NIH's Data_Entry columns + Target Label, Target Score; synthetic patient IDs
    per_label: dict[str, dict]
    seed: int
    follow_ups: int
    bundle: Bundle

    @property
    def requested(self) -> int:
        return sum(v["requested"] for v in self.per_label.values())

    @property
    def converged(self) -> int:
        return len(self.table)

    @property
    def agreement(self) -> float:
        """Share of all converged films whose labels include their requested label."""
        return float(np.mean([target in labels.split("|") for target, labels
                              in zip(self.table["Target Label"], self.table["Finding Labels"])]))

    def summary_lines(self) -> list[str]:
        """One line per label (requested, converged, labeller agreement), then the total."""
        lines = []
        for name, row in self.per_label.items():
            agree = "n/a" if row["agreement"] is None else f"{row['agreement']:.0%}"
            lines.append(f"{name}: {row['converged']} of {row['requested']} films converged, labeller agrees on {agree}")
        lines.append(f"total: {self.converged} of {self.requested} films converged, labeller agrees on "
                     f"{self.agreement:.0%}")
        return lines

    def save(self, out_dir: str | Path, shard_images: int = 10_000) -> Path:
        """Write the films in NIH's layout (``images_NNN.tar`` + ``Data_Entry_synthetic.csv``,
        ``synthesis.archive_writer.write_archive``) with a ``README.md`` card (``synthesis.card``), atomically: ``out_dir`` is
        replaced whole or left as it was. Returns ``out_dir``."""
        from cxrsynth.generate.films_card import films_facts
        from cxrsynth.io import atomic_dir
        from cxrsynth.synthesis.card import write_card

        out_dir = Path(out_dir)
        with atomic_dir(out_dir) as tmp:
            shards = write_archive(tmp, self.images, self.table, shard_images)
            write_card(tmp, films_facts(self, shards))
        return out_dir


class Generator:
    """A trained generator bundle (``generate.bundle``): the EMA generator, the labeller at the
    archive's cut-offs, the scorer class optimisation raises and the archive's settings."""

    def __init__(self, bundle: Bundle, generator: torch.nn.Module, resolution: int, scorer: Scorer,
                 labeller: Scorer):
        self.bundle, self.generator, self.resolution = bundle, generator, resolution
        self.scorer, self.labeller = scorer, labeller

    @classmethod
    def load(cls, folder: str | Path, device: str | torch.device = "auto") -> Generator:
        """Load the bundle at ``folder`` on ``device`` ("auto": CUDA when available, else the CPU)."""
        bundle = read_bundle(folder)
        device = resolve_device(device) if isinstance(device, str) else device
        generator, config = load_generator(bundle.part("generator"), device)
        youden = load_scorer(bundle.part("labeller"), device, "densenet")
        labeller = replace(youden, thresholds=bundle.thresholds)
        scorer = youden if bundle.manifest["scorer"]["name"] == "densenet" else \
            load_scorer(bundle.part("scorer"), device, "discriminator")
        return cls(bundle, generator, config.resolutions[-1], scorer, labeller)

    @property
    def labels(self) -> tuple[str, ...]:
        """The label names ``generate`` accepts."""
        return LABELS

    @property
    def params(self) -> ArchiveParams:
        """The class-optimisation settings saved in the bundle."""
        return self.bundle.params

    def generate(self, labels: str | list[str], n: int = 64, seed: int | None = None,
                 follow_ups: int = 1) -> GeneratedFilms:
        """``n`` labelled films, split as evenly as possible over ``labels`` (names from ``self.labels``,
        "No Finding" included; a list or a comma-separated string), in synthetic patients of
        ``follow_ups`` films sampled around one class-optimised latent. ``seed`` (default: the
        bundle's ``archive.seed``) fixes every random draw: the same call gives the same films.

        Only films whose optimisation converged are returned (see ``GeneratedFilms.per_label``).
        Raises UnknownLabelError listing the valid names, InputError for a bad ``n``/``follow_ups``,
        NothingConvergedError when no film converged."""
        names = parse_labels(labels)
        patient_class, counts = plan_films(names, n, follow_ups)
        params = self.params
        seed = params.seed if seed is None else int(seed)
        device = next(self.generator.parameters()).device
        noise = torch.Generator(device=device).manual_seed(seed + 1)
        result, made = generate_patients(self.generator, self.resolution, self.scorer, self.labeller, patient_class,
                                         counts, params, seed, noise)
        if not len(made.counts):
            raise NothingConvergedError(
                f"generate: 0 of {n} films converged (class optimisation failed for all {len(counts)} patients "
                f"after {params.max_attempts} attempts and {params.retries} retries each); nothing written")
        table = archive_table(made.patient_class, made.counts, made.labels, made.scores, self.resolution,
                              np.zeros(0, dtype=np.int64))
        per_label = {}
        for name in names:
            c = LABELS.index(name)
            mine = made.target == c
            per_label[name] = {"requested": int(counts[patient_class == c].sum()), "converged": int(mine.sum()),
                               "agreement": round(float(made.labels[mine, c].mean()), 4) if mine.any() else None}
        return GeneratedFilms(made.images, table, per_label, seed, follow_ups, self.bundle)
