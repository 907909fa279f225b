"""The baseline generators of papers 002-004, trained on the same store and judged on one table.

Paper 002 (Kořistka): fully connected GAN, conditional GAN, WGAN with weight clipping, WGAN-GP,
DCGAN and a VAE. Paper 003: one DCGAN per class. Paper 004: DCGAN configurations (AdaS or Adam,
ELU or ReLU/LeakyReLU, with or without TTUR). Each system is a model file in ``cxrsynth.models``
and a params entry (``baselines.systems``); all train through ``training.gan_fit`` (checkpoints,
resume, DVCLive curves) with ``module.BaselineModule``.
"""
