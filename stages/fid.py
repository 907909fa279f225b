"""Stage ``fid``: Table 1 (Fréchet distances between real splits, and real vs generated) and Figure 5."""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from cxrsynth.cli import stage_main
from cxrsynth.config.base import load_section
from cxrsynth.config.fid import FIDParams
from cxrsynth.io import atomic_path, write_json
from cxrsynth.metrics.extractors import build_extractors
from cxrsynth.metrics.fid_sets import (
    class_matrix,
    embed_2d,
    left_out_labels,
    load_real_moments,
    pixel_change,
    stream_generated,
    table1,
)
from cxrsynth.metrics.frechet import MIN_IMAGES
from cxrsynth.models.saved_classifier import load_classifier
from cxrsynth.plots import class_distances
from cxrsynth.runtime import resolve_device, use_all_cores
from cxrsynth.sampling import latents, load_generator


def run(args: argparse.Namespace) -> None:
    params = load_section(FIDParams, args.params)
    use_all_cores()
    device = resolve_device(params.device)
    if not (args.real / "info.json").exists():
        raise FileNotFoundError(f"{args.real / 'info.json'}: not found (run the real_features stage)")
    info = json.loads((args.real / "info.json").read_text())
    real = load_real_moments(args.real)
    generator, gan = load_generator(args.gan, device)
    if gan.resolutions[-1] != info["resolution"]:
        raise ValueError(f"{args.real}: real features are at {info['resolution']} px but the generator makes "
                         f"{gan.resolutions[-1]} px images (rerun real_features)")
    classifier, _, config = load_classifier(args.classifier, device)
    extractors = [e for e in build_extractors(params.extractor, classifier, config["input_size"],
                                              params.inception_weights, device, args.weights) if e.name in real]
    if not extractors:
        raise ValueError(f"{args.real}: no real moments for fid.extractor={params.extractor!r}")
    start = time.perf_counter()
    z = latents(params.n_generated, gan.z_dim, params.seed, params.truncation, device)
    generated = stream_generated(generator, gan.resolutions[-1], z, extractors, params.batch_size)

    left_out = left_out_labels(real[extractors[0].name])  # the same images behind every extractor
    tables, matrices, maps = {}, {}, {}
    for e in extractors:
        tables[e.name] = {k: round(v, 4) for k, v in table1(real[e.name], generated[e.name]).items()}
        matrices[e.name] = class_matrix(real[e.name])
        maps[e.name] = embed_2d(matrices[e.name], params.seed)

    rows = [{"extractor": name, "split": split, "fid": value} for name, t in tables.items() for split, value in t.items()]
    with atomic_path(args.table) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
    with atomic_path(args.matrix) as tmp:
        long = [m.round(4).reset_index(names="a").melt(id_vars="a", var_name="b", value_name="fid").assign(extractor=n)
                for n, m in matrices.items()]
        pd.concat(long)[["extractor", "a", "b", "fid"]].to_csv(tmp, index=False)
    with atomic_path(args.mds) as tmp:
        pd.concat([m.assign(extractor=n) for n, m in maps.items()]).to_csv(tmp, index=False)
    class_distances(matrices, maps, args.figure)
    change = {k: v for k, v in pixel_change(np.load(args.real / "group_means.npy")).items()
              if k in next(iter(tables.values()))}  # the findings Table 1 has a row for
    rho = {n: round(float(spearmanr([t[k] for k in change], list(change.values())).statistic), 4)
           if len(change) > 2 else None for n, t in tables.items()}
    metrics = {
        "extractors": [e.name for e in extractors],
        "skipped": sorted({"inception", "classifier"} - {e.name for e in extractors}
                          if params.extractor == "auto" else set()),
        "inception_weights": next((e.weights for e in extractors if e.name == "inception"), "none"),
        "resolution": info["resolution"],
        "n_real": info["images"],
        "n_generated": params.n_generated,
        "min_images_per_label": MIN_IMAGES,
        "labels_left_out": left_out,  # label: real images, fewer than min_images_per_label (not in Table 1, Fig 5, MDS)
        "table1": tables,
        "stratified_is_smallest": {n: bool(t["stratified"] == min(t.values())) for n, t in tables.items()},
        "pixel_change": {k: round(v, 5) for k, v in change.items()},
        "finding_fid_vs_pixel_change_spearman": rho,
    }
    write_json(args.metrics, metrics)
    summary = ", ".join(f"{n}: stratified {t['stratified']:.3g}, synthetic {t['synthetic']:.3g}" for n, t in tables.items())
    if left_out:
        summary += (f"; left out of Table 1 and Figure 5 (fewer than {MIN_IMAGES} images): "
                    + ", ".join(f"{k} ({n})" for k, n in left_out.items()))
    print(f"fid: {summary}; {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
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
