"""Training: losses, augmentation, Lightning modules and data modules."""
