"""Stage ``real_features``: one pass of the real images through the FID feature extractors.

Writes per-group feature moments (halves, sexes, labels, all) for each extractor, the
classifier's probabilities, and every image's feature vectors (``vectors_<extractor>.npy``,
``vectors.csv``: the baselines' precision/recall and memorisation). A new generator does not
rerun this stage: ``fid`` and ``prevalence`` then extract only generated images.
"""

import argparse
import time
from pathlib import Path

from cxrsynth.cli import stage_main
from cxrsynth.config.base import load_validated
from cxrsynth.config.fid import FIDParams
from cxrsynth.config.gan import GANParams
from cxrsynth.data.store import ImageStore
from cxrsynth.io import atomic_dir
from cxrsynth.metrics.extractors import build_extractors
from cxrsynth.metrics.fid_sets import (
    REAL_GROUPS,
    check_feature_spread,
    real_membership,
    real_table,
    save_real_features,
    stream_real,
)
from cxrsynth.models.saved_classifier import load_classifier
from cxrsynth.runtime import resolve_device, use_all_cores


def run(args: argparse.Namespace) -> None:
    fid, gan = load_validated(FIDParams, args.params / "fid.json"), load_validated(GANParams, args.params / "gan.json")
    use_all_cores()
    device = resolve_device(fid.device)
    store = ImageStore(args.store)
    resolution = gan.final_resolution
    if resolution not in store.sizes:
        raise ValueError(f"gan.resolution: {resolution} px is not a stored level {store.sizes} (prepare.size)")
    table = real_table(store, args.split)
    classifier, _, config = load_classifier(args.classifier, device)
    extractors = build_extractors(fid.extractor, classifier, config["input_size"], fid.inception_weights, device,
                                  args.weights)
    start = time.perf_counter()
    vectors = {}
    moments, probs, group_means = stream_real(store.images(resolution), table["row"].to_numpy(), real_membership(table),
                                              extractors, fid.batch_size, vectors)
    inception_weights = next((e.weights for e in extractors if e.name == "inception"), "none")
    check_feature_spread(moments, inception_weights)
    info = {"resolution": resolution, "images": len(table), "extractors": [e.name for e in extractors],
            "inception_weights": inception_weights,
            "groups": {g: int(n) for g, n in zip(REAL_GROUPS, next(iter(moments.values())).count)}}
    with atomic_dir(args.out) as out:
        save_real_features(out, table, moments, probs, group_means, info, vectors)
    print(f"real_features: {len(table)} images at {resolution}px through {info['extractors']}, "
          f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("data/params"), help="validated params sections")
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument("--classifier", type=Path, required=True)
    parser.add_argument("--weights", type=Path, default=None, help="folder holding the FID Inception file")
    parser.add_argument("--out", type=Path, required=True)
    stage_main(run, parser)
