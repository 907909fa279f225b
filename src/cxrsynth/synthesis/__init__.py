"""Synthetic archives from a trained generator: class optimisation, local sampling, embedding."""
