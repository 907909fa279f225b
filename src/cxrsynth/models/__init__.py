"""Networks: every generator (``gan``: the PGGAN and DCGAN with their config; the baselines'
``fc_gan``, ``cgan``, ``conv_gan``, ``vae``), the classifiers and the re-purposed discriminator."""
