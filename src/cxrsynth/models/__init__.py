"""Networks: the DenseNet-121 classifier (and, later, the generators)."""
