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
import json
from pathlib import Path

import numpy as np

from cxrsynth.cli import stage_main
from cxrsynth.config.base import load_section
from cxrsynth.config.privacy import PrivacyParams
from cxrsynth.io import write_json
from cxrsynth.privacy.audit import CRITERIA, distribution
from cxrsynth.privacy.figure import privacy_figure
from cxrsynth.privacy.report import closest_pairs, own_patient_control, summary
from cxrsynth.privacy.setup import audit_setup
from cxrsynth.runtime import resolve_device, use_all_cores
from cxrsynth.synthesis.archive import PRIVACY_RECORD, read_archive


def run(args: argparse.Namespace) -> None:
    params = load_section(PrivacyParams, args.params)
    use_all_cores()
    setup = audit_setup(args.store, args.split, args.classifier, args.verifier, params, resolve_device(params.device))
    auditor, table, thresholds = setup.auditor, setup.table, setup.thresholds
    # read at the audit's side with Pillow's box filter, which resize_uint8 (the filter's) matches
    archive_table, archive_images = read_archive(args.archive, setup.verifier["resolution"])
    test = np.flatnonzero((table["split"] == "test").to_numpy())
    train = np.flatnonzero((table["split"] == "train").to_numpy())
    ids = table["patient_id"].to_numpy()
    populations = {
        "archive": (auditor.nearest(archive_images, desc="archive"), archive_table["patient_id"].to_numpy()),
        "real test (new patients)": (auditor.nearest_of_reference(test, "patient", desc="test"), ids[test]),
        "real training (vs rest)": (auditor.nearest_of_reference(train, "self", desc="training"), ids[train]),
    }
    keys = dict(zip(populations, ("archive", "real_test", "real_training"), strict=True))
    reports = {keys[name]: summary(nearest, thresholds.flags(nearest), who) for name, (nearest, who) in populations.items()}
    reports["real_training"]["with_a_follow_up"] = own_patient_control(auditor, table, train, thresholds)
    reports["real_test_own_patient_included"] = own_patient_control(auditor, table, test, thresholds,
                                                                    desc="test, own patient included")

    record_path = args.archive / PRIVACY_RECORD
    record = json.loads(record_path.read_text()) if record_path.is_file() else None
    archive = reports["archive"]
    metrics = {
        "reference": {"images": len(table), "patients": int(table["patient_id"].nunique()),
                      "what": "every stored image: the GAN trains on the whole store"},
        "verifier": {**{k: setup.verifier.get(k) for k in ("test_auc", "test_pairs", "resolution")},
                     "used": setup.verifier_used, "not_used_because": thresholds.verifier_not_used_because,
                     "min_test_auc": params.min_verifier_auc},
        "thresholds": thresholds.as_dict(),
        "calibration": {"split": "val", "images": len(setup.calibration),
                        "distributions": {c: distribution(getattr(setup.calibration, c)) if c in thresholds.criteria
                                          else {} for c in CRITERIA}},
        "filter": record or {"applied": False},
        "archive_flagged_before_filter": record["images_flagged_before"] if record else archive["flagged_images"],
        "archive_flagged_after_filter": archive["flagged_images"],
        **reports,
    }
    write_json(args.metrics, metrics)

    by = "verifier" if setup.verifier_used else "pixel"
    pairs = closest_pairs(auditor, archive_images, populations["archive"][0], params.pairs_figure, by)
    verifier = (f"verifier test AUC {setup.verifier['test_auc']}; " if setup.verifier_used
                else f"verifier not used: {thresholds.verifier_not_used_because};\n")
    privacy_figure({name: nearest for name, (nearest, _) in populations.items()}, thresholds, pairs, args.figure,
                   "Privacy audit (on the embedded demo: phantoms, not clinical data): archive flagged "
                   f"{archive['flagged_images']} of {len(archive_table)}; {verifier}bottom: the {len(pairs)} archive images "
                   f"{'the verifier finds closest to' if setup.verifier_used else 'nearest in pixels to'} a training film")
    control = reports["real_test_own_patient_included"]
    if not setup.verifier_used:
        print(f"privacy: {thresholds.verifier_not_used_because}: images flagged by pixel and feature nearest "
              "neighbours only")
    print(f"privacy: archive {archive['flagged_images']} of {len(archive_table)} images flagged "
          f"({metrics['archive_flagged_before_filter']} before the filter); new patients (test) flagged "
          f"{reports['real_test']['flagged_fraction']:.2%} (rate per criterion {params.false_match_rate:.0%}); "
          + (f"test films with their own patient's other films left in: {control['flagged_fraction']:.1%} flagged"
             if control["flagged_fraction"] is not None else "no test patient has a second film (no own-patient control)"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument("--classifier", type=Path, required=True)
    parser.add_argument("--verifier", type=Path, required=True)
    parser.add_argument("--archive", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--figure", type=Path, required=True)
    stage_main(run, parser)
