"""Train, select and evaluate the classifier, and save it (``models.saved_classifier`` reads it back).

Under DDP (``classifier.devices`` x ``num_nodes`` processes) every process trains on its shard of
each global batch; afterwards global rank 0 alone reloads the best checkpoint and evaluates on
the full val and test splits, and the other processes get ``None`` (they write nothing). The
checkpoint folder needs no sharing: Lightning's ``ModelCheckpoint`` takes rank 0's folder on every
process and only rank 0 writes there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import (
    EarlyStopping,
    LearningRateMonitor,
    ModelCheckpoint,
)

from cxrsynth.config.classifier import ClassifierParams
from cxrsynth.labels import LABELS
from cxrsynth.metrics.auroc import evaluate, roc_table, youden_thresholds
from cxrsynth.models.classifier import GREY_MEAN, GREY_STD
from cxrsynth.runtime import use_all_cores
from cxrsynth.training.checkpoints import load_checkpoint
from cxrsynth.training.classifier_module import ChestClassifier
from cxrsynth.training.datamodule import SplitDataModule, StoreDataModule
from cxrsynth.training.losses import class_weights

MONITOR = "val/auroc_macro"


@dataclass
class ClassifierResult:
    """A trained classifier with its thresholds and evaluation."""

    module: ChestClassifier
    thresholds: dict[str, float]
    val: dict
    test: dict
    roc: object  # pandas DataFrame of the test ROC curves
    epochs: int
    best_epoch: int
    processes: int = 1  # training processes (DDP world size)


def fit_classifier(store_dir: Path, split_csv: Path, params: ClassifierParams, work_dir: Path,
                   live_dir: Path | None = None, model: torch.nn.Module | None = None,
                   input_size: int | None = None, weights_dir: Path | None = None) -> ClassifierResult | None:
    """Train on the store's train split, keep the best val macro AUROC, set Youden thresholds on val,
    test on test. ``model`` replaces the DenseNet; ``input_size`` the stored level it reads;
    ``weights_dir`` is where the ImageNet file is looked for when ``params.weights_path`` is unset.
    None on every DDP process but global rank 0."""
    data = StoreDataModule(store_dir, split_csv, input_size or params.input_size, params.batch_size,
                           params.num_workers, params.memory_limit_gib)
    return fit_on(data, params, work_dir, live_dir, model, weights_dir)


def fit_on(data: SplitDataModule, params: ClassifierParams, work_dir: Path, live_dir: Path | None = None,
           model: torch.nn.Module | None = None, weights_dir: Path | None = None) -> ClassifierResult | None:
    """The training recipe of ``fit_classifier`` on any train/val/test data module (None on every DDP
    process but global rank 0)."""
    L.seed_everything(params.seed, workers=True, verbose=False)
    use_all_cores(params.threads)
    data.setup()
    w_pos, w_neg = class_weights(data.train_labels())
    augment = dict(max_rotation_deg=params.max_rotation_deg, flip_p=params.flip_p,
                   brightness=params.brightness, contrast=params.contrast)
    module = ChestClassifier(w_pos.tolist(), w_neg.tolist(), params.lr, params.plateau_patience,
                             params.pretrained, params.weights_path, augment, model=model,
                             weights_dir=None if weights_dir is None else str(weights_dir), arch=params.arch)
    checkpoint = ModelCheckpoint(dirpath=work_dir, filename="best", monitor=MONITOR, mode="max", save_top_k=1)
    stopping = EarlyStopping(monitor=MONITOR, mode="max", patience=params.early_stopping_patience)
    callbacks = [checkpoint, stopping]
    logger = False
    if live_dir is not None:
        from dvclive.lightning import DVCLiveLogger

        logger = DVCLiveLogger(dir=str(live_dir), dvcyaml=False, save_dvc_exp=False, report=None)
        # the learning rate per epoch (ReduceLROnPlateau cuts it), as plots/metrics/lr-Adam.tsv
        callbacks.append(LearningRateMonitor(logging_interval="epoch"))
    trainer = L.Trainer(
        max_epochs=params.max_epochs,
        accelerator=params.accelerator,
        devices=params.devices,
        num_nodes=params.num_nodes,
        strategy=params.strategy,
        precision=params.precision,
        deterministic=True,
        callbacks=callbacks,
        logger=logger,
        default_root_dir=work_dir,
        enable_model_summary=False,
        log_every_n_steps=10,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, datamodule=data)
    if not trainer.is_global_zero:  # no collective op follows: the others may leave now
        return None
    saved = load_checkpoint(checkpoint.best_model_path)
    module.load_state_dict(saved["state_dict"])
    best, best_epoch = module, int(saved["epoch"])

    val_images, val_targets = data.datasets["val"].all_images(), data.datasets["val"].labels.numpy()
    test_images, test_targets = data.datasets["test"].all_images(), data.datasets["test"].labels.numpy()
    best.to(trainer.strategy.root_device)  # Lightning hands the module back on the CPU
    val_probs = best.predict_probs(val_images).numpy()
    test_probs = best.predict_probs(test_images).numpy()
    best.cpu()
    return ClassifierResult(
        module=best,
        thresholds=youden_thresholds(val_probs, val_targets, LABELS),
        val=evaluate(val_probs, val_targets, LABELS),
        test=evaluate(test_probs, test_targets, LABELS),
        roc=roc_table(test_probs, test_targets, LABELS),
        epochs=trainer.current_epoch,
        best_epoch=best_epoch,
        processes=trainer.world_size,
    )


def save_classifier(out_dir: Path, result: ClassifierResult, params: ClassifierParams,
                    input_size: int | None = None, gan_config: dict | None = None) -> None:
    """Write ``model.pt`` (a plain state dict, loadable with weights_only=True), thresholds and config.

    With ``gan_config`` the model is a re-purposed discriminator of that GAN."""
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in result.module.model.state_dict().items()}
    torch.save(state, out_dir / "model.pt")
    (out_dir / "thresholds.json").write_text(json.dumps(result.thresholds, indent=2) + "\n")
    config = {
        "architecture": params.arch if gan_config is None else "discriminator",
        "in_channels": 1,
        "labels": list(LABELS),
        "input_size": input_size or params.input_size,
        "normalisation": {"mean": GREY_MEAN, "std": GREY_STD, "input": "uint8 / 255"},
        "best_epoch": result.best_epoch,
        "weights": result.module.weights if gan_config is None else "none",
        "params": params.model_dump(),
    } | ({"gan": gan_config} if gan_config is not None else {})
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
