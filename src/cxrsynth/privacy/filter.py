"""The privacy filter: archive patients the audit flags are replaced by newly generated ones.

A synthetic patient is flagged when any of its images is (``audit.Thresholds.flags``). Each
flagged patient is generated again for the same target class and number of follow-ups, from
fresh latents, ``candidates`` new patients at once (``privacy.replacement_candidates``); the
first that converged and whose images the audit passes replaces it, for up to ``rounds`` rounds.
A patient none of whose candidates did is tried again in the next round. More than one candidate
is for a generator whose patients of a rare class rarely converge: the demo's diffusion model's
Nodule draws are confirmed about once in 70, so one candidate a round left a flagged Nodule
patient unreplaced after 5 rounds, and the archive 5 films short. Patients still flagged
or unreplaced after the last round are dropped, and the archive's shortfall limit applies to
what is left; replacing more than ``max_replaced_fraction`` of the patients fails outright.

``audited_filter`` wires it for the archive stage: the check is the audit's (``privacy.audit_inputs``),
the regeneration ``synthesis.archive_builder.generate_patients`` with the archive's generator and scorers
(``regenerator``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from cxrsynth.config.archive import ArchiveParams
from cxrsynth.config.privacy import PrivacyParams
from cxrsynth.errors import CxrsynthError
from cxrsynth.labels import LABELS
from cxrsynth.privacy.audit_inputs import AuditSetup
from cxrsynth.synthesis.archive_builder import ArchiveBuild, Delivered, check_shortfall, generate_patients
from cxrsynth.synthesis.archive_writer import label_strings
from cxrsynth.synthesis.scorers import Scorer

#: images -> (per image: flagged?, per image and criterion: flagged?)
Check = Callable[[np.ndarray], tuple[np.ndarray, dict[str, np.ndarray]]]
#: (target class per patient, images per patient, seed) -> (converged?, the converged patients)
Regenerate = Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, Delivered]]
#: Added to ``archive.seed``: the replacements' follow-up noise, and the seed of their optimisation rounds.
NOISE_SEED, ROUNDS_SEED = 2, 50_000


class PrivacyFilterError(CxrsynthError):
    """The filter would replace more of the archive than allowed; no archive is written."""


@dataclass
class FilterRecord:
    """What the filter found and did."""

    images_flagged_before: int
    patients_flagged_before: int
    flagged_by_before: dict[str, int]
    replaced_patients: int = 0
    replaced_images: int = 0
    replacement_jobs: int = 0
    rounds: int = 0
    dropped_patients: int = 0
    dropped_images: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def filter_archive(build: ArchiveBuild, check: Check, regenerate: Regenerate, rounds: int,
                   max_replaced_fraction: float, seed: int, candidates: int = 1) -> tuple[ArchiveBuild, FilterRecord]:
    """``build`` with every flagged patient replaced (or, failing that, dropped), and the record."""
    table, images = build.table.copy(), build.images.copy()
    z_star, planned = build.z_star.clone(), build.planned
    patients = table["Patient ID"].to_numpy()
    order = pd.unique(patients)
    position = {pid: i for i, pid in enumerate(order)}
    rows_of = {pid: np.flatnonzero(patients == pid) for pid in order}

    flags, by = check(images)
    pending = np.unique(patients[flags])
    record = FilterRecord(int(flags.sum()), len(pending), {k: int(v.sum()) for k, v in by.items()})
    if not len(pending):
        return build, record
    if len(pending) > max_replaced_fraction * len(order):
        raise PrivacyFilterError(
            f"archive: the privacy audit flags {len(pending)} of {len(order)} patients, more than "
            f"privacy.max_replaced_fraction {max_replaced_fraction:.0%}; the GAN reproduces training patients "
            "(train it longer on more patients, or raise the limit); no archive written")
    replaced: set[int] = set()
    for round_ in range(1, rounds + 1):
        if not len(pending):
            break
        record.rounds = round_
        classes = np.asarray([LABELS.index(table.at[rows_of[p][0], "Target Label"]) for p in pending])
        counts = np.asarray([len(rows_of[p]) for p in pending])
        converged, made = regenerate(np.repeat(classes, candidates), np.repeat(counts, candidates), seed + round_)
        record.replacement_jobs += len(pending) * candidates
        new_flags = check(made.images)[0] if len(made.counts) else np.zeros(0, bool)
        offsets = np.r_[0, np.cumsum(made.counts)]
        made_of_job = np.cumsum(converged) - 1  # the k-th converged job is made's k-th patient
        still = []
        for i, pid in enumerate(pending):
            jobs = [j for j in range(i * candidates, (i + 1) * candidates) if converged[j]]
            passed = [made_of_job[j] for j in jobs
                      if not new_flags[offsets[made_of_job[j]]:offsets[made_of_job[j] + 1]].any()]
            if not passed:
                still.append(pid)
                continue
            k = passed[0]
            part = slice(offsets[k], offsets[k + 1])
            rows = rows_of[pid]
            images[rows] = made.images[part]
            table.loc[rows, "Finding Labels"] = label_strings(made.labels[part])
            table.loc[rows, "Target Score"] = np.round(made.scores[part], 4)
            z_star[position[pid]] = made.z_star[k]
            replaced.add(int(pid))
        pending = np.asarray(still, dtype=patients.dtype)
    record.replaced_patients = len(replaced)
    record.replaced_images = int(sum(len(rows_of[p]) for p in replaced))
    if len(pending):  # still flagged after the last round: drop them
        drop = np.isin(patients, pending)
        record.dropped_patients, record.dropped_images = len(pending), int(drop.sum())
        planned = planned.copy()
        for pid in pending:
            c = LABELS.index(table.at[rows_of[pid][0], "Target Label"])
            planned.loc[c, "delivered_images"] -= len(rows_of[pid])
            planned.loc[c, "delivered_patients"] -= 1
        table, images = table[~drop].reset_index(drop=True), images[~drop]
        z_star = z_star[torch.as_tensor(~np.isin(order, pending))]
    return replace(build, table=table, images=images, z_star=z_star, planned=planned), record


def audit_check(setup: AuditSetup) -> Check:
    """The filter's check: each image's nearest training images (``setup.auditor``), flagged by
    ``setup.thresholds``."""
    def check(images):
        flags = setup.thresholds.flags(setup.auditor.nearest(images, desc="privacy audit"))
        return flags["any"], {k: v for k, v in flags.items() if k != "any"}

    return check


def regenerator(generator: torch.nn.Module, resolution: int, scorer: Scorer, labeller: Scorer,
                params: ArchiveParams, device: torch.device | str, make_patients=None) -> Regenerate:
    """The filter's regeneration: ``generate_patients`` as the archive's build makes patients (or the
    build's ``make_patients``: the diffusion generator's draws a flagged patient again, Packhäuser et al.'s
    privacy-enhancing sampling), with its own follow-up noise (seeded ``params.seed + NOISE_SEED``, drawn
    from call to call)."""
    noise = torch.Generator(device=device).manual_seed(params.seed + NOISE_SEED)

    def regenerate(classes, counts, seed):
        if make_patients is not None:
            result, made = make_patients(classes, counts, params, seed, noise)
        else:
            result, made = generate_patients(generator, resolution, scorer, labeller, classes, counts, params,
                                             seed, noise)
        return result.success, made

    return regenerate


def audited_filter(build: ArchiveBuild, setup: AuditSetup, regenerate: Regenerate, params: ArchiveParams,
                   privacy: PrivacyParams) -> tuple[ArchiveBuild, dict]:
    """``filter_archive`` with the audit's check (``audit_check``), ``privacy.filter_rounds`` rounds of
    ``privacy.replacement_candidates`` candidates and ``privacy.max_replaced_fraction``, then the archive's shortfall limit on what is left
    (``ShortfallError``). Returns the filtered build and the record the archive keeps
    (``{"applied": True, ...the FilterRecord..., "thresholds": ...}``)."""
    build, record = filter_archive(build, audit_check(setup), regenerate, privacy.filter_rounds,
                                   privacy.max_replaced_fraction, params.seed + ROUNDS_SEED,
                                   privacy.replacement_candidates)
    check_shortfall(build.planned, params.size, params.max_shortfall)
    return build, {"applied": True, **record.as_dict(), "thresholds": setup.thresholds.as_dict()}
