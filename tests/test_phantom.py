"""Phantoms: each finding changes the pixels where a radiologist would look, and only there."""

from __future__ import annotations

import numpy as np
import pytest

from cxrsynth.data.phantom import (
    FINDING_SIGNATURES,
    film_anatomy,
    render_phantom,
    sample_patient,
    signature_table_markdown,
)
from cxrsynth.labels import FINDINGS

PATIENTS = [("M", 55, "PA", 1), ("F", 30, "PA", 2), ("M", 70, "AP", 3), ("F", 9, "AP", 4), ("F", 62, "PA", 5)]
SIZE = 64


def region_mask(box, size=SIZE, margin=2):
    x, y, w, h = box
    mask = np.zeros((size, size), dtype=bool)
    mask[max(0, int(y) - margin) : int(np.ceil(y + h)) + margin, max(0, int(x) - margin) : int(np.ceil(x + w)) + margin] = True
    return mask


@pytest.mark.parametrize("finding", FINDINGS)
def test_finding_changes_pixels_in_its_region(finding):
    for sex, age, view, seed in PATIENTS:
        base = render_phantom(SIZE, set(), sex, age, view, seed)
        with_finding = render_phantom(SIZE, {finding}, sex, age, view, seed)
        diff = np.abs(with_finding.pixels.astype(float) - base.pixels.astype(float))
        inside = region_mask(with_finding.boxes[finding])
        assert diff[inside].sum() >= 0.85 * diff.sum(), f"{finding}: change outside its region"
        assert diff[inside].mean() >= 4.0, f"{finding}: change too faint ({diff[inside].mean():.1f} grey levels)"
        assert inside.mean() < (1.0 if finding == "Emphysema" else 0.5)


def test_emphysema_darkens_the_lungs_and_lowers_the_diaphragm():
    for sex, age, view, seed in PATIENTS:
        base = render_phantom(SIZE, set(), sex, age, view, seed).pixels.astype(float)
        emph = render_phantom(SIZE, {"Emphysema"}, sex, age, view, seed).pixels.astype(float)
        mid_lungs = (slice(20, 34), np.r_[10:22, 42:54])
        assert emph[mid_lungs].mean() < base[mid_lungs].mean() - 5
        bases = (slice(44, 54), np.r_[16:28, 36:48])  # lung bases below a normal dome, inside a child's lungs too
        assert emph[bases].mean() < base[bases].mean() - 5


def test_findings_leave_other_pixels_alone():
    a = render_phantom(SIZE, {"Nodule"}, "M", 50, "PA", 9)
    b = render_phantom(SIZE, {"Nodule", "Hernia"}, "M", 50, "PA", 9)
    assert a.boxes["Nodule"] == b.boxes["Nodule"]
    outside = ~region_mask(b.boxes["Hernia"], margin=3)
    diff = np.abs(a.pixels[outside].astype(int) - b.pixels[outside].astype(int))
    assert diff.max() <= 1  # anti-aliased edges may round one level differently


def test_rendering_is_deterministic():
    a = render_phantom(SIZE, {"Effusion", "Mass"}, "F", 40, "AP", 123)
    b = render_phantom(SIZE, {"Effusion", "Mass"}, "F", 40, "AP", 123)
    assert np.array_equal(a.pixels, b.pixels) and a.boxes == b.boxes
    assert not np.array_equal(a.pixels, render_phantom(SIZE, {"Effusion", "Mass"}, "F", 40, "AP", 124).pixels)


def test_anatomy_follows_view_and_sex():
    """AP films magnify the heart; female films carry breast shadows over the lower zones."""
    def heart_width(view):
        widths = []
        for seed in range(12):
            r = render_phantom(SIZE, {"Cardiomegaly"}, "M", 50, view, seed)
            widths.append(r.boxes["Cardiomegaly"][2])
        return np.mean(widths)

    assert heart_width("AP") > 1.05 * heart_width("PA")
    lower = slice(int(SIZE * 0.6), int(SIZE * 0.75))
    male = np.mean([render_phantom(SIZE, set(), "M", 40, "PA", s).pixels[lower].mean() for s in range(10)])
    female = np.mean([render_phantom(SIZE, set(), "F", 40, "PA", s).pixels[lower].mean() for s in range(10)])
    assert female > male


def test_any_size_renders_the_same_scene():
    small = render_phantom(32, {"Cardiomegaly"}, "M", 50, "PA", 7).pixels.astype(float)
    large = render_phantom(128, {"Cardiomegaly"}, "M", 50, "PA", 7).pixels.astype(float)
    shrunk = large.reshape(32, 4, 32, 4).mean(axis=(1, 3))
    assert np.corrcoef(shrunk.ravel(), small.ravel())[0, 1] > 0.95


def test_signature_table_documents_every_finding():
    table = signature_table_markdown()
    assert all(f"| {f} |" in table for f in FINDINGS) and len(FINDING_SIGNATURES) == 14



def test_films_of_one_patient_share_the_patient_and_vary_the_film():
    """One anatomy per patient (habitus, heart, diaphragm, bones, lung markings); each film draws its own
    positioning and exposure. (That the identity is learnable from pixels is tested by the verifier in
    tests/test_privacy.py.)"""
    patient = sample_patient(np.random.default_rng(3), "F")
    assert patient == sample_patient(np.random.default_rng(3), "F")
    a = film_anatomy(patient, np.random.default_rng(1), 50, "PA")
    b = film_anatomy(patient, np.random.default_rng(2), 51, "PA")
    for fixed in ("scale", "heart_w", "heart_h", "dome_curve", "rib_density", "breast", "texture_seed", "clavicle_tilt"):
        assert getattr(a, fixed) == getattr(b, fixed), fixed
    for varying in ("shift", "angle", "gain", "gamma", "noise", "dome"):
        assert getattr(a, varying) != getattr(b, varying), varying
    other = sample_patient(np.random.default_rng(4), "F")
    assert other.texture_seed != patient.texture_seed and other.heart_w != patient.heart_w
    one = render_phantom(SIZE, set(), "F", 50, "PA", seed=1, patient_seed=3).pixels
    assert not np.array_equal(one, render_phantom(SIZE, set(), "F", 50, "PA", seed=2, patient_seed=3).pixels)
