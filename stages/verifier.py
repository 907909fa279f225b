"""Stage ``verifier``: a siamese patient verifier, trained on pairs of the real training split.

Same-patient and different-patient pairs of films, at the generator's resolution; tested on
pairs of the test split, whose patients it never saw (``privacy.verifier``). The privacy audit
and the archive's privacy filter use it to ask whether a synthetic film shows a training patient.

Data with no same-patient pairs (one film per patient, as many public sets) cannot train or test
one: the stage then writes only ``verifier.json``, saying so and why, and the audit flags by the
nearest-neighbour tests alone.
"""

import argparse
import time
from pathlib import Path

import torch

from cxrsynth.cli import stage_main
from cxrsynth.config.base import load_validated
from cxrsynth.config.gan import GANParams
from cxrsynth.config.privacy import PrivacyParams
from cxrsynth.data.store import ImageStore
from cxrsynth.errors import InputError
from cxrsynth.io import atomic_dir
from cxrsynth.privacy.films import reference_table, split_images
from cxrsynth.privacy.verifier import fit_verifier, missing_pairs, save_untrained, save_verifier
from cxrsynth.runtime import resolve_device


def run(args: argparse.Namespace) -> dict:
    params = load_validated(PrivacyParams, args.params / "privacy.json")
    resolution = params.resolution or load_validated(GANParams, args.params / "gan.json").final_resolution
    store = ImageStore(args.store)
    if resolution not in store.sizes:
        key = "privacy.resolution" if params.resolution else "gan.resolution"
        raise InputError(f"{key}: {resolution} px is not a stored level {store.sizes} (prepare.size)")
    table = reference_table(store, args.split)
    patients = {name: table.loc[table["split"] == name, "patient_id"].to_numpy() for name in ("train", "test")}
    reason = missing_pairs(patients["train"], patients["test"])
    if reason is not None:
        with atomic_dir(args.out) as out:
            save_untrained(out, reason, params, resolution, patients["train"], patients["test"])
        print(f"verifier: not trained: {reason}; the privacy audit and filter flag by pixel and feature nearest "
              "neighbours only")
        return {}
    train, test = (split_images(store, table, resolution, name) for name in ("train", "test"))
    start = time.perf_counter()
    fit = fit_verifier(torch.from_numpy(train[0]).unsqueeze(1), train[1], torch.from_numpy(test[0]).unsqueeze(1),
                       test[1], params, resolve_device(params.device).type)
    seconds = time.perf_counter() - start
    with atomic_dir(args.out) as out:
        save_verifier(out, fit, params, resolution)
    print(f"verifier: test-pair AUC {fit.test_auc:.4f} on {fit.test_pairs['same_patient']} same-patient and "
          f"{fit.test_pairs['different_patients']} different-patient pairs of unseen patients")
    return {"training_seconds": round(seconds, 1), "steps_per_s": round(params.steps / seconds, 2)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("data/params"), help="validated params sections")
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    stage_main(run, parser)
