"""Lightning module for the multi-label classifier (DenseNet-121 or ResNet-18)."""

from __future__ import annotations

import lightning as L
import torch
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from cxrsynth.labels import LABELS
from cxrsynth.metrics.auroc import macro_auroc
from cxrsynth.models.classifier import build_classifier, imagenet_weights, normalise
from cxrsynth.models.weights import weights_record
from cxrsynth.training.augment import augment_batch
from cxrsynth.training.losses import weighted_bce


class MacroAUROC(Metric):
    """An epoch's scores and targets, gathered over every DDP process; ``compute`` returns
    ``metrics.auroc.macro_auroc`` of them as tensors: (macro AUROC over the classes with positives
    and negatives, how many classes that is), the same number the stage reports for val."""

    full_state_update = False

    def __init__(self):
        super().__init__()
        self.add_state("probs", default=[], dist_reduce_fx="cat")
        self.add_state("targets", default=[], dist_reduce_fx="cat")

    def update(self, probs: torch.Tensor, targets: torch.Tensor) -> None:
        """Add a batch: sigmoid scores (N, C) and 0/1 targets (N, C)."""
        self.probs.append(probs.detach().float())
        self.targets.append(targets.detach().to(torch.int8))

    def compute(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(macro AUROC, classes averaged) over everything added since the last reset."""
        value, classes = macro_auroc(dim_zero_cat(self.probs).cpu().numpy(), dim_zero_cat(self.targets).cpu().numpy())
        return torch.tensor(value, device=self.device), torch.tensor(float(classes), device=self.device)


class ChestClassifier(L.LightningModule):
    """Weighted-BCE DenseNet-121 or ResNet-18; logs ``val/auroc_macro`` (``MacroAUROC``) for LR plateau, early
    stopping and checkpoints, and ``val/auroc_macro_classes``, the classes it averages."""

    def __init__(
        self,
        w_pos: list[float],
        w_neg: list[float],
        lr: float = 1e-3,
        plateau_patience: int = 2,
        pretrained: str = "auto",
        weights_path: str | None = None,
        augment: dict | None = None,
        labels: tuple[str, ...] = LABELS,
        model: torch.nn.Module | None = None,
        weights_dir: str | None = None,
        arch: str = "densenet121",
    ):
        """``model``: any network taking ``normalise``d grey input (e.g. a re-purposed discriminator);
        default an ``arch`` network built from ``pretrained``, ``weights_path`` and ``weights_dir``.
        ``self.weights`` records the ImageNet file loaded (name and SHA-256), or "none"."""
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        self.weights: dict | str = "none"
        if model is None:
            found = imagenet_weights(pretrained, weights_path, weights_dir, arch)
            self.weights = weights_record(found)
            model = build_classifier(len(labels), "none" if found is None else "imagenet", found, arch=arch)
        self.model = model.to(memory_format=torch.channels_last)
        self.register_buffer("w_pos", torch.tensor(w_pos, dtype=torch.float32))
        self.register_buffer("w_neg", torch.tensor(w_neg, dtype=torch.float32))
        self.val_auroc = MacroAUROC()
        self.augment = augment or {}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (N, 15) for a uint8 or [0, 1] float (N, 1, H, W) batch."""
        return self.model(normalise(images).contiguous(memory_format=torch.channels_last))

    def training_step(self, batch, batch_idx):
        images, targets = batch
        x = augment_batch(images.float().div_(255.0), **self.augment)
        loss = weighted_bce(self(x), targets, self.w_pos, self.w_neg)
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx):
        images, targets = batch
        logits = self(images)
        self.log("val/loss", weighted_bce(logits, targets, self.w_pos, self.w_neg), on_epoch=True, sync_dist=True)
        self.val_auroc.update(torch.sigmoid(logits), targets)

    def on_validation_epoch_end(self):
        value, classes = self.val_auroc.compute()  # over every process's shard: the same value on each
        self.val_auroc.reset()
        # already equal on every process; "max" keeps it exact and tells Lightning it is synced
        self.log("val/auroc_macro", value, prog_bar=True, sync_dist=True, reduce_fx="max")
        self.log("val/auroc_macro_classes", classes, sync_dist=True, reduce_fx="max")

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=0.1, patience=self.hparams.plateau_patience
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": "val/auroc_macro"}}

    @torch.no_grad()
    def predict_probs(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Sigmoid scores for a (N, 1, H, W) batch, in chunks, in eval mode."""
        was_training = self.training
        self.eval()
        out = torch.cat([torch.sigmoid(self(images[i : i + batch_size].to(self.device))).cpu()
                         for i in range(0, len(images), batch_size)])
        self.train(was_training)
        return out
