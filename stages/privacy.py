"""Stage ``privacy``: does the archive give away a training patient?

Every archive image is searched against every image the GAN trained on, by the patient verifier
and by nearest neighbour in pixel and classifier-feature space (``privacy.audit``); so are the
real test films (new patients: how often the audit flags someone it should not) and two positive
controls: real training films against the rest of the reference, and real test films with their
own patient's other films left in (patients the verifier never trained on). Writes the verifier's
AUC, the thresholds, flagged counts before the archive's privacy filter (as the archive stage
recorded them) and after it (measured here), and the distributions, as ``metrics/privacy.json``;
histograms and the closest pairs as ``privacy.png``.

A verifier that could not be trained (no same-patient pairs) or whose test AUC is below
``privacy.min_verifier_auc`` is not used: the audit then flags by the pixel and feature tests
alone, and ``verifier.used`` / ``verifier.not_used_because`` say so.
"""

import argparse
from pathlib import Path

from cxrsynth.cli import stage_main
from cxrsynth.config.base import load_validated
from cxrsynth.config.privacy import PrivacyParams
from cxrsynth.io import write_json
from cxrsynth.privacy.figure import audit_figure
from cxrsynth.privacy.summaries import audit_populations, privacy_metrics, privacy_summary
from cxrsynth.privacy.audit_inputs import audit_setup
from cxrsynth.runtime import resolve_device, use_all_cores
from cxrsynth.synthesis.archive_writer import read_archive, read_privacy_record


def run(args: argparse.Namespace) -> None:
    params = load_validated(PrivacyParams, args.params / "privacy.json")
    use_all_cores()
    setup = audit_setup(args.store, args.split, args.classifier, args.verifier, params, resolve_device(params.device))
    # read at the verifier's side (Pillow's box filter, resize.pillow_resize), so the audit resizes them no further
    archive_table, archive_images = read_archive(args.archive, setup.verifier["resolution"])
    audit = audit_populations(setup, archive_images, archive_table["patient_id"].to_numpy())
    metrics = privacy_metrics(setup, params, audit.reports, read_privacy_record(args.archive))
    write_json(args.metrics, metrics)
    audit_figure(setup, audit, archive_images, params.pairs_figure, args.figure)
    print("\n".join(privacy_summary(metrics, params.false_match_rate)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("data/params"), help="validated params sections")
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument("--classifier", type=Path, required=True)
    parser.add_argument("--verifier", type=Path, required=True)
    parser.add_argument("--archive", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--figure", type=Path, required=True)
    stage_main(run, parser)
