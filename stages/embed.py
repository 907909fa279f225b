"""Stage ``embed``: the embedding baseline of Table 2 (encoder G^-1, real images regenerated as G(E(x)))."""

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from cxrsynth.cli import stage_main
from cxrsynth.config.base import load_validated
from cxrsynth.config.classifier import ClassifierParams
from cxrsynth.config.embed import EmbedParams
from cxrsynth.data.patient_split import PatientSplit, choose_patients
from cxrsynth.data.store import ImageStore
from cxrsynth.io import atomic_dir, write_json
from cxrsynth.labels import LABELS
from cxrsynth.models.d_classifier import discriminator_head
from cxrsynth.plots import contact_sheet
from cxrsynth.resize import resize_uint8_as_classifier
from cxrsynth.runtime import resolve_device, use_all_cores
from cxrsynth.sampling import gan_only, load_discriminator_state, load_generator
from cxrsynth.skipped import write_skipped
from cxrsynth.synthesis.embedding import embed_images, latent_error, train_encoder


def run(args: argparse.Namespace) -> None:
    if reason := gan_only("embed", args.gan):  # Table 2 then has no embedding baseline row
        write_skipped("embed", reason, folders=[args.out], metrics=[args.metrics], figures=[args.figure])
        return
    params = load_validated(EmbedParams, args.params / "embed.json")
    keep_size = load_validated(ClassifierParams, args.params / "classifier.json").input_size  # Table 2's input
    use_all_cores()
    device = resolve_device(params.device)
    torch.manual_seed(params.seed)
    generator, gan = load_generator(args.gan, device)
    resolution = gan.resolutions[-1]
    d_state = load_discriminator_state(args.gan) if params.init == "discriminator" else None
    encoder = discriminator_head(gan, gan.z_dim, d_state).to(device)
    start = time.perf_counter()
    losses = train_encoder(encoder, generator, resolution, params.train_images, params.batch_size, params.lr,
                           params.seed)
    check = latent_error(encoder, generator, resolution, min(512, params.train_images), params.seed + 1)

    store = ImageStore(args.store)
    training = PatientSplit.read(args.split).store_rows(store.table, ("train", "val"))  # never the test patients
    table = choose_patients(training, params.n_images, params.seed).sort_values("row")
    real = store.read(resolution, table["row"].to_numpy())
    embedded = embed_images(encoder, generator, resolution, real)
    error = np.abs(real.astype(np.float32) - embedded.astype(np.float32)).mean() / 255.0

    with atomic_dir(args.out) as out:
        torch.save({k: v.detach().cpu() for k, v in encoder.state_dict().items()}, out / "encoder.pt")
        np.save(out / "images.npy", resize_uint8_as_classifier(embedded, keep_size))
        table[["image", "patient_id", *LABELS]].to_csv(out / "table.csv", index=False)
    metrics = {
        "images": len(table),
        "patients": int(table["patient_id"].nunique()),
        "encoder_init": params.init,
        "encoder_train_images": params.train_images,
        "final_train_loss": round(float(np.mean(losses[-20:])), 4),
        "heldout": {k: round(v, 4) for k, v in check.items()},
        "heldout_latent_mse_predicting_zero": 1.0,  # the reference: E(x) = 0 scores the variance of z
        "pixel_mae": round(float(error), 4),
    }
    write_json(args.metrics, metrics)
    show = slice(0, 10)
    contact_sheet([("real", real[show]), ("G(E(real))", embedded[show])], args.figure, scale=max(1, 96 // resolution))
    print(f"embed: {len(table)} images, held-out latent MSE {check['latent_mse']:.3f}, pixel MAE {error:.3f}")
    return {"encoder_and_embedding_seconds": round(time.perf_counter() - start, 1)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("data/params"), help="validated params sections")
    parser.add_argument("--gan", type=Path, required=True)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--figure", type=Path, required=True, help="real vs embedded PNG")
    stage_main(run, parser)
