"""Privacy audit: does the archive give away a training patient? A siamese patient verifier,
nearest neighbours in pixel and classifier-feature space, and the filter that replaces flagged
synthetic patients."""
