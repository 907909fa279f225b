"""Stage ``fid``: Table 1 (Fréchet distances between real splits, and real vs generated) and Figure 5."""

import argparse
import time
from pathlib import Path

import numpy as np

from cxrsynth.cli import stage_main
from cxrsynth.config.base import load_validated
from cxrsynth.config.fid import FIDParams
from cxrsynth.io import atomic_path, write_json
from cxrsynth.metrics.extractors import build_extractors
from cxrsynth.metrics.fid_results import (
    check_resolution,
    fid_metrics,
    fid_results,
    read_real_info,
    with_real_moments,
)
from cxrsynth.metrics.fid_sets import load_real_moments, load_real_vectors, stream_generated
from cxrsynth.metrics.sample_quality import sample_memorisation, sample_prdc
from cxrsynth.models.saved_classifier import load_classifier
from cxrsynth.plots import class_distances
from cxrsynth.runtime import resolve_device, use_all_cores
from cxrsynth.sampling import latents, load_generator


def run(args: argparse.Namespace) -> None:
    params = load_validated(FIDParams, args.params / "fid.json")
    use_all_cores()
    device = resolve_device(params.device)
    info = read_real_info(args.real)
    real = load_real_moments(args.real)
    generator, gan = load_generator(args.gan, device)
    check_resolution(args.real, info, gan.resolutions[-1])
    classifier, _, config = load_classifier(args.classifier, device)
    extractors = with_real_moments(build_extractors(params.extractor, classifier, config["input_size"],
                                                    params.inception_weights, device, args.weights),
                                   real, args.real, params.extractor)
    start = time.perf_counter()
    z = latents(params.n_generated, gan.z_dim, params.seed, params.truncation, device)
    vectors = {}  # the samples' features: precision, recall, density, coverage and memorisation
    generated = stream_generated(generator, gan.resolutions[-1], z, extractors, params.batch_size, vectors)
    results = fid_results(real, generated, params.seed)
    with atomic_path(args.table) as tmp:
        results.table1_frame().to_csv(tmp, index=False)
    with atomic_path(args.matrix) as tmp:
        results.matrix_frame().to_csv(tmp, index=False)
    with atomic_path(args.mds) as tmp:
        results.mds_frame().to_csv(tmp, index=False)
    class_distances(results.matrices, results.maps, args.figure)
    real_vectors = load_real_vectors(args.real)
    write_json(args.metrics, fid_metrics(results, extractors, params.extractor, info, params.n_generated,
                                         np.load(args.real / "group_means.npy"))
               | {"prdc": sample_prdc(vectors, real_vectors), "memorisation": sample_memorisation(vectors, real_vectors)})
    print(f"fid: {results.summary()}; {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("data/params"), help="validated params sections")
    parser.add_argument("--real", type=Path, required=True, help="real_features output folder")
    parser.add_argument("--gan", type=Path, required=True, help="exported generator folder")
    parser.add_argument("--classifier", type=Path, required=True)
    parser.add_argument("--weights", type=Path, default=None, help="folder holding the FID Inception file")
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--table", type=Path, required=True, help="Table 1 as a plot table (CSV)")
    parser.add_argument("--matrix", type=Path, required=True, help="class distance matrix (long CSV)")
    parser.add_argument("--mds", type=Path, required=True, help="2-D MDS coordinates (CSV)")
    parser.add_argument("--figure", type=Path, required=True, help="Figure 5 PNG")
    stage_main(run, parser)
