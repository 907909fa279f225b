"""Procedural frontal chest radiograph phantoms for the embedded demo.

A phantom is built as a map of projected density (air dark, soft tissue grey, bone
bright) on a normalised grid, x in [-1, 1] from the image's left (the patient's right,
as radiographs are viewed) and y in [-1, 1] from the top. Anatomy varies with sex, age
and view (AP films magnify the heart, sit higher on inspiration and project the
scapulae over the lungs). Each of the 14 findings has one signature drawn where a
radiologist looks for it; ``FINDING_SIGNATURES`` documents them and ``render_phantom``
returns each finding's region, used for ``BBox_List_2017.csv`` and by the tests.

Everything is vectorised numpy on the pixel grid, so any size renders the same scene.
Randomness comes from two seeds. The patient's seed fixes what stays the same across their
films (``Patient``: habitus, heart, diaphragm, bones, the pattern of lung markings), so
follow-ups show one person, as a re-identification study needs. The film's seed draws
positioning, inspiration, exposure, noise, marker and findings; each finding draws from
its own child stream, so adding a finding changes only that finding's pixels.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from cxrsynth.labels import FINDINGS

#: Finding → (where a radiologist looks, what the phantom draws there).
FINDING_SIGNATURES: dict[str, tuple[str, str]] = {
    "Atelectasis": ("lower zone of one lung", "a plate-like dense band and the hemidiaphragm pulled up (volume loss)"),
    "Cardiomegaly": ("cardiac silhouette", "heart widened about 40% (cardiothoracic ratio above 0.5)"),
    "Consolidation": ("upper lobe of one lung", "dense, sharply bounded lobar opacity down to the fissure"),
    "Edema": ("both perihilar regions", "symmetric bat-wing haze around both hila"),
    "Effusion": ("costophrenic angle", "fluid filling the lung base with a meniscus rising laterally"),
    "Emphysema": ("whole thorax", "hyperinflated, darker lungs, flattened low diaphragm, narrow heart"),
    "Fibrosis": ("lower and peripheral lungs, both sides", "coarse reticular net of fine bright lines"),
    "Hernia": ("retrocardiac midline", "round soft-tissue mass behind the heart with a gas bubble"),
    "Infiltration": ("mid zone of one or both lungs", "several small ill-defined patchy opacities"),
    "Mass": ("lung field", "large (over 3 cm) lobulated bright opacity"),
    "Nodule": ("lung field", "small, well-defined bright disc"),
    "Pleural_Thickening": ("lateral chest wall of one lung", "smooth bright band along the lung's lateral edge, apex to mid zone"),
    "Pneumonia": ("lower-mid zone of one lung", "fuzzy rounded cloud of moderate density"),
    "Pneumothorax": ("apex and lateral edge of one lung (upper half)", "black rim without lung markings outside a thin pleural line"),
}
assert set(FINDING_SIGNATURES) == set(FINDINGS)

_BONE = 0.16
_AIR = 0.40
_TISSUE = 0.50
_PATIENT_STREAM = 1  # keeps the patient's random stream apart from a film's of the same seed


@dataclass(frozen=True)
class Patient:
    """What stays the same across one patient's films: body habitus, heart, diaphragm, bones and
    the pattern of lung markings (``texture_seed``). A film adds positioning, inspiration,
    exposure, markers and findings (``film_anatomy``)."""

    sex: str
    build: float  # thorax width factor of the adult
    lung_top: float
    dome: float  # diaphragm dome height at a PA film's inspiration
    dome_curve: float
    heart_w: float  # relative to the thorax
    heart_h: float
    heart_x: float
    air: float
    rib_density: float
    rib_gap: float  # relative to the thorax
    breast: float
    clavicle_tilt: float
    texture_seed: int


@dataclass(frozen=True)
class Anatomy:
    """Geometry of one phantom film in normalised anatomical coordinates."""

    scale: float  # thorax width factor
    lung_top: float
    dome: tuple[float, float]  # diaphragm dome height for (right lung, left lung) = (image left, image right)
    dome_curve: float
    heart_w: float
    heart_h: float
    heart_x: float
    heart_y: float
    air: float  # lung darkness
    rib_density: float
    rib_gap: float
    view: str
    sex: str
    breast: float
    aortic_knob: float
    shift: tuple[float, float]
    angle: float  # radians
    gain: float
    gamma: float
    noise: float
    marker_right: bool
    clavicle_tilt: float
    texture_seed: int

    def lung_box(self, side: int) -> tuple[float, float, float, float]:
        """Bounding box (x0, y0, x1, y1) of one lung; side -1 = image left (patient's right)."""
        xc, lw = self.lung_centre(side), self.lung_halfwidth
        bottom = self.dome[side > 0] + self.dome_curve * 1.44
        return xc - lw, self.lung_top, xc + lw, bottom

    def lung_centre(self, side: int) -> float:
        return side * 0.365 * self.scale

    @property
    def lung_halfwidth(self) -> float:
        return 0.275 * self.scale


def sample_patient(rng: np.random.Generator, sex: str | None) -> Patient:
    """Draw one patient's fixed anatomy (``sex`` M/F, else drawn)."""
    sex = sex if sex in ("M", "F") else ("M" if rng.random() < 0.5 else "F")
    return Patient(
        sex=sex,
        build=rng.normal(0.97 if sex == "M" else 0.92, 0.025),
        lung_top=-0.74 + rng.normal(0, 0.018),
        dome=0.44 + rng.normal(0, 0.022),
        dome_curve=0.2 + rng.normal(0, 0.015),
        heart_w=rng.normal(0.27, 0.012),
        heart_h=rng.normal(0.19, 0.01),
        heart_x=0.09 + rng.normal(0, 0.012),
        air=_AIR * rng.uniform(0.9, 1.05),
        rib_density=_BONE * rng.uniform(0.8, 1.1),
        rib_gap=rng.uniform(0.14, 0.16),
        breast=0.0 if sex == "M" else rng.uniform(0.05, 0.11),
        clavicle_tilt=rng.normal(0, 0.03),
        texture_seed=int(rng.integers(2**63)),
    )


def film_anatomy(patient: Patient, rng: np.random.Generator, age: float | None, view: str | None) -> Anatomy:
    """One film of ``patient`` at ``age`` (years) and ``view`` (PA/AP): the patient's anatomy, aged,
    as the view projects it, with this film's positioning, inspiration and exposure."""
    view = view if view in ("PA", "AP") else "PA"
    age = 45.0 if age is None or not math.isfinite(age) else float(age)
    child = age < 16
    scale = patient.build * (0.88 if child else 1.0)
    ap = view == "AP"
    dome = patient.dome + rng.normal(0, 0.012) - (0.09 if ap else 0.0)  # AP films: shallower inspiration
    return Anatomy(
        scale=scale,
        lung_top=patient.lung_top + rng.normal(0, 0.008) + (0.04 if ap else 0.0),
        dome=(dome - 0.04, dome),  # the right hemidiaphragm sits higher
        dome_curve=patient.dome_curve,
        heart_w=patient.heart_w * scale * (1.12 if ap else 1.0) * (1.08 if child else 1.0),
        heart_h=patient.heart_h * scale,
        heart_x=patient.heart_x * scale,
        heart_y=dome - 0.13,
        air=patient.air,
        rib_density=patient.rib_density * (0.65 if age > 65 else 1.0),
        rib_gap=patient.rib_gap * scale,
        view=view,
        sex=patient.sex,
        breast=0.0 if child else patient.breast,
        aortic_knob=0.045 + (0.015 if age > 60 else 0.0),
        shift=(rng.normal(0, 0.025), rng.normal(0, 0.025)),
        angle=math.radians(rng.normal(0, 1.5)),
        gain=rng.uniform(0.9, 1.1) * (0.92 if ap else 1.0),
        gamma=rng.uniform(0.85, 1.15),
        noise=rng.uniform(0.006, 0.014),
        marker_right=bool(rng.random() < 0.5),
        clavicle_tilt=patient.clavicle_tilt,
        texture_seed=patient.texture_seed,
    )


# --------------------------------------------------------------------------- shapes
class _Canvas:
    """The pixel grid in anatomical coordinates, with soft-edged shape helpers."""

    def __init__(self, size: int, anatomy: Anatomy):
        self.size = size
        centres = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1
        y, x = np.meshgrid(centres, centres, indexing="ij")
        c, s = math.cos(anatomy.angle), math.sin(anatomy.angle)
        x, y = x - anatomy.shift[0], y - anatomy.shift[1]
        self.x, self.y = c * x + s * y, -s * x + c * y
        self.edge = np.float32(1.6 / size)  # anti-aliasing width: about one pixel
        self.anatomy = anatomy

    def soft(self, signed_distance: np.ndarray) -> np.ndarray:
        """Inside (positive distance) → 1, outside → 0, over about one pixel."""
        return 0.5 * (1.0 + np.tanh(signed_distance / self.edge))

    def ellipse(self, cx, cy, a, b, angle=0.0) -> np.ndarray:
        c, s = math.cos(angle), math.sin(angle)
        dx, dy = self.x - cx, self.y - cy
        u, v = (c * dx + s * dy) / a, (-s * dx + c * dy) / b
        return self.soft((1.0 - np.sqrt(u * u + v * v)) * min(a, b))

    def blob(self, cx, cy, sx, sy) -> np.ndarray:
        """A Gaussian cloud (no hard edge)."""
        return np.exp(-0.5 * (((self.x - cx) / sx) ** 2 + ((self.y - cy) / sy) ** 2))

    def band(self, x0, y0, x1, y1, half_thickness) -> np.ndarray:
        """A straight bar between two points."""
        dx, dy = x1 - x0, y1 - y0
        length = math.hypot(dx, dy)
        t = np.clip(((self.x - x0) * dx + (self.y - y0) * dy) / (length * length), 0, 1)
        dist = np.hypot(self.x - (x0 + t * dx), self.y - (y0 + t * dy))
        return self.soft(half_thickness - dist)

    def lung(self, side: int, dome: float | None = None) -> np.ndarray:
        """One lung field: rounded apex, lateral wall, and a domed base whose lateral end is the
        costophrenic angle."""
        a = self.anatomy
        xc, lw = a.lung_centre(side), a.lung_halfwidth
        dome = a.dome[side > 0] if dome is None else dome
        u = (self.x - xc) / lw
        lateral = side * u
        top = a.lung_top + 0.28 * (u + 0.35 * side) ** 2
        bottom = dome + a.dome_curve * ((lateral + 0.2) ** 2 - 0.04)
        dist = np.minimum(np.minimum((1 - np.abs(u)) * lw, self.y - top), bottom - self.y)
        return self.soft(dist)

    def smooth_noise(self, rng: np.random.Generator, cells: int) -> np.ndarray:
        """Bilinearly upsampled noise of ``cells`` x ``cells`` cells, values in about [-1, 1]."""
        coarse = rng.standard_normal((cells + 1, cells + 1)).astype(np.float32)
        gx = np.clip((self.x + 1) / 2 * cells, 0, cells - 1e-4)
        gy = np.clip((self.y + 1) / 2 * cells, 0, cells - 1e-4)
        ix, iy = gx.astype(int), gy.astype(int)
        fx, fy = gx - ix, gy - iy
        top = coarse[iy, ix] * (1 - fx) + coarse[iy, ix + 1] * fx
        bottom = coarse[iy + 1, ix] * (1 - fx) + coarse[iy + 1, ix + 1] * fx
        return top * (1 - fy) + bottom * fy


# --------------------------------------------------------------------------- findings
def _side(rng: np.random.Generator) -> int:
    return -1 if rng.random() < 0.5 else 1


def _modify_anatomy(a: Anatomy, findings: set[str], rngs: dict[str, np.random.Generator]) -> tuple[Anatomy, dict]:
    """Findings that change the anatomy itself rather than adding an opacity."""
    state: dict = {}
    if "Emphysema" in findings:
        r = rngs["Emphysema"]
        a = dataclasses.replace(
            a,
            dome=(a.dome[0] + 0.11, a.dome[1] + 0.11),
            dome_curve=a.dome_curve * 0.3,
            air=a.air * r.uniform(1.3, 1.38),
            heart_w=a.heart_w * 0.8,
            heart_y=a.heart_y + 0.08,
            lung_top=a.lung_top - 0.04,
            rib_gap=a.rib_gap * 1.1,
        )
    if "Cardiomegaly" in findings:
        r = rngs["Cardiomegaly"]
        a = dataclasses.replace(a, heart_w=a.heart_w * r.uniform(1.32, 1.42), heart_h=a.heart_h * 1.12,
                                heart_x=a.heart_x + 0.03)
    if "Atelectasis" in findings:
        r = rngs["Atelectasis"]
        side = _side(r)
        dome = list(a.dome)
        dome[side > 0] -= r.uniform(0.08, 0.11)
        a = dataclasses.replace(a, dome=tuple(dome))
        state["atelectasis_side"] = side
    if "Pneumothorax" in findings:
        r = rngs["Pneumothorax"]
        state["pneumothorax"] = (_side(r), r.uniform(0.13, 0.18))
    return a, state


def _overlay_findings(cv: _Canvas, findings: set[str], rngs, state) -> tuple[np.ndarray, dict]:
    """Opacities added on top of the anatomy; returns the density layer and regions."""
    a = cv.anatomy
    layer = np.zeros_like(cv.x)
    regions: dict[str, tuple[float, float, float, float]] = {}

    def lung_point(r, side, y_lo, y_hi, margin=0.35):
        xc, lw = a.lung_centre(side), a.lung_halfwidth
        return xc + r.uniform(-1 + margin, 1 - margin) * lw, r.uniform(y_lo, y_hi)

    if "Nodule" in findings:
        r = rngs["Nodule"]
        side = _side(r)
        cx, cy = lung_point(r, side, -0.45, 0.15)
        rad = 0.055
        layer += 0.5 * cv.ellipse(cx, cy, rad, rad)
        regions["Nodule"] = (cx - rad, cy - rad, cx + rad, cy + rad)
    if "Mass" in findings:
        r = rngs["Mass"]
        side = _side(r)
        cx, cy = lung_point(r, side, -0.4, 0.1, margin=0.45)
        rad = r.uniform(0.1, 0.13)
        lobes = cv.ellipse(cx, cy, rad, rad * 0.9, r.uniform(0, math.pi))
        lobes = np.maximum(lobes, cv.ellipse(cx + rad * 0.45, cy - rad * 0.35, rad * 0.6, rad * 0.6))
        layer += 0.30 * lobes
        regions["Mass"] = (cx - rad, cy - rad * 1.0, cx + rad * 1.05, cy + rad)
    if "Effusion" in findings:
        r = rngs["Effusion"]
        sides = (-1, 1) if r.random() < 0.4 else (_side(r),)
        for side in sides:
            xc, lw = a.lung_centre(side), a.lung_halfwidth
            dome = a.dome[side > 0]
            depth = r.uniform(0.24, 0.3)
            lateral = side * (cv.x - xc) / lw
            level = dome + a.dome_curve * 1.2 - depth * (0.55 + 0.45 * np.clip(lateral, -1, 1))
            fluid = cv.soft(cv.y - level) * cv.lung(side)
            layer += a.air * 0.95 * fluid
            x0, y0, x1, y1 = a.lung_box(side)
            regions.setdefault("Effusion", (9, 9, -9, -9))
            e = regions["Effusion"]
            regions["Effusion"] = (min(e[0], x0), min(e[1], dome + a.dome_curve * 1.2 - depth - 0.02), max(e[2], x1), max(e[3], y1))
    if "Atelectasis" in findings:
        r = rngs["Atelectasis"]
        side = state["atelectasis_side"]
        xc, lw = a.lung_centre(side), a.lung_halfwidth
        yb = a.dome[side > 0] - 0.06
        y0 = yb - r.uniform(0.1, 0.16)
        layer += 0.26 * cv.band(xc - 0.7 * lw, y0 + 0.05, xc + 0.7 * lw, y0 - 0.03, 0.025) * cv.lung(side)
        x0, _, x1, y1 = a.lung_box(side)
        regions["Atelectasis"] = (x0, y0 - 0.08, x1, y1 + 0.12)
    if "Consolidation" in findings:
        r = rngs["Consolidation"]
        side = _side(r)
        fissure = r.uniform(-0.2, -0.1)
        lobe = cv.lung(side) * cv.soft(fissure - cv.y)
        layer += a.air * 0.85 * lobe
        x0, y0, x1, _ = a.lung_box(side)
        regions["Consolidation"] = (x0, y0 - 0.02, x1, fissure + 0.03)
    if "Pneumonia" in findings:
        r = rngs["Pneumonia"]
        side = _side(r)
        cx, cy = lung_point(r, side, 0.05, 0.18, margin=0.45)
        sx, sy = r.uniform(0.11, 0.13), r.uniform(0.1, 0.12)
        layer += 0.36 * cv.blob(cx, cy, sx, sy) * cv.lung(side)
        regions["Pneumonia"] = (cx - 2.2 * sx, cy - 2.2 * sy, cx + 2.2 * sx, cy + 2.2 * sy)
    if "Infiltration" in findings:
        r = rngs["Infiltration"]
        sides = (-1, 1) if r.random() < 0.5 else (_side(r),)
        box = [9.0, -0.42, -9.0, 0.3]
        for side in sides:
            for _ in range(r.integers(5, 8)):
                cx, cy = lung_point(r, side, -0.3, 0.18, margin=0.25)
                s = r.uniform(0.035, 0.05)
                layer += 0.22 * cv.blob(cx, cy, s, s)
            x0, _, x1, _ = a.lung_box(side)
            box[0], box[2] = min(box[0], x0), max(box[2], x1)
        regions["Infiltration"] = tuple(box)
    if "Edema" in findings:
        lungs = cv.lung(-1) + cv.lung(1)
        for side in (-1, 1):
            hx = side * 0.2 * a.scale
            layer += 0.22 * cv.blob(hx, -0.05, 0.15, 0.22) * lungs
        regions["Edema"] = (-0.62 * a.scale, -0.55, 0.62 * a.scale, 0.45)
    if "Fibrosis" in findings:
        r = rngs["Fibrosis"]
        net = np.abs(cv.smooth_noise(r, max(8, cv.size // 3)))
        lines = cv.soft(0.25 - net) * 0.8
        lungs = cv.lung(-1) + cv.lung(1)
        lower = cv.soft(cv.y + 0.15)
        layer += 0.24 * lines * lungs * lower
        regions["Fibrosis"] = (-0.7 * a.scale, -0.2, 0.7 * a.scale, max(a.dome) + a.dome_curve * 1.5)
    if "Hernia" in findings:
        r = rngs["Hernia"]
        cx, cy, rad = 0.02 + r.normal(0, 0.02), a.heart_y + 0.08, r.uniform(0.085, 0.1)
        sac = cv.ellipse(cx, cy, rad, rad * 0.85)
        gas = sac * cv.soft(cy - 0.15 * rad - cv.y)
        layer += 0.12 * sac - 0.40 * gas
        regions["Hernia"] = (cx - rad, cy - rad, cx + rad, cy + rad)
    if "Pleural_Thickening" in findings:
        r = rngs["Pleural_Thickening"]
        side = _side(r)
        xc, lw = a.lung_centre(side), a.lung_halfwidth
        inner = cv.lung(side)
        lateral = side * (cv.x - xc) / (lw - 0.075)
        rim = inner * cv.soft(lateral - 1.0) * cv.soft(0.2 - cv.y)
        layer += 0.42 * rim
        x0, y0, x1, _ = a.lung_box(side)
        lat = x0 if side < 0 else x1
        regions["Pleural_Thickening"] = (min(lat, lat - side * 0.15), y0 - 0.02, max(lat, lat - side * 0.15), 0.24)
    if "Pneumothorax" in findings:
        side, width = state["pneumothorax"]
        x0, y0, x1, _ = a.lung_box(side)
        regions["Pneumothorax"] = (x0 - 0.02, y0 - 0.05, x1 + 0.02, 0.25)
    return layer, regions


def _pneumothorax_mask(cv: _Canvas, side: int, width: float) -> tuple[np.ndarray, np.ndarray]:
    """Pleural space (no lung markings) and the visceral pleural line at its inner edge."""
    a = cv.anatomy
    xc, lw = a.lung_centre(side), a.lung_halfwidth
    lateral = side * (cv.x - xc) / lw
    depth_from_wall = (1 - lateral) * lw
    apical = cv.y - (a.lung_top + 0.28 * ((cv.x - xc) / lw + 0.35 * side) ** 2)
    gap = np.minimum(depth_from_wall, apical + 0.02)
    lung = cv.lung(side)
    upper = cv.soft(0.2 - cv.y)
    space = lung * cv.soft(width - gap) * upper
    line = lung * cv.soft(0.012 - np.abs(gap - width)) * upper
    return space, line


# --------------------------------------------------------------------------- render
@dataclass(frozen=True)
class Phantom:
    """One rendered film: uint8 pixels and each finding's box in pixel coordinates."""

    pixels: np.ndarray
    boxes: dict[str, tuple[float, float, float, float]]  # (x, y, w, h) in pixels


def render_phantom(
    size: int,
    findings: set[str] | frozenset[str] | list[str],
    sex: str | None = None,
    age: float | None = None,
    view: str | None = None,
    seed: int = 0,
    patient_seed: int | None = None,
) -> Phantom:
    """Render one frontal chest film of ``size`` x ``size`` pixels with the given findings.

    ``patient_seed`` draws the patient (``Patient``: the same for all their films); ``seed`` draws
    this film's positioning, exposure, noise and findings. Without ``patient_seed`` the film is of
    a patient of its own."""
    findings = {f for f in findings if f in FINDING_SIGNATURES}
    root = np.random.SeedSequence(seed)
    film_seq, noise_seq, finding_seq = root.spawn(3)
    rngs = {f: np.random.default_rng(s) for f, s in zip(FINDINGS, finding_seq.spawn(len(FINDINGS)), strict=False)}
    patient_seq = np.random.SeedSequence([seed if patient_seed is None else patient_seed, _PATIENT_STREAM])
    patient = sample_patient(np.random.default_rng(patient_seq), sex)
    film = film_anatomy(patient, np.random.default_rng(film_seq), age, view)
    anatomy, state = _modify_anatomy(film, findings, rngs)
    cv = _Canvas(size, anatomy)
    a = anatomy

    body = cv.soft((1.0 - (np.abs(cv.x / (0.93 * a.scale + 0.04)) ** 3 + np.abs((cv.y - 0.12) / 1.05) ** 3)) * 0.25)
    neck = cv.soft(0.15 * a.scale - np.abs(cv.x)) * cv.soft(-0.6 - cv.y)
    tissue = np.maximum(body, neck)
    density = _TISSUE * tissue
    density += 0.10 * cv.soft(0.065 - np.abs(cv.x)) * tissue  # spine and mediastinum

    heart = cv.ellipse(a.heart_x, a.heart_y, a.heart_w, a.heart_h, -0.35)
    heart = np.maximum(heart, cv.ellipse(0.1 * a.scale, -0.32, a.aortic_knob, a.aortic_knob))
    texture_rng = np.random.default_rng(a.texture_seed)  # the patient's own lung markings
    texture = 0.16 * cv.smooth_noise(texture_rng, 12) + 0.06 * cv.smooth_noise(texture_rng, 24)
    hilar = 0.12 * (cv.blob(-0.2 * a.scale, -0.08, 0.1, 0.16) + cv.blob(0.2 * a.scale, -0.08, 0.1, 0.16))
    markings = np.clip(texture + hilar, -0.3, 0.5)
    air = np.zeros_like(cv.x)
    for side in (-1, 1):
        lung = cv.lung(side)
        lung_air = a.air * lung * (1.0 - markings)
        if "Pneumothorax" in findings and state["pneumothorax"][0] == side:
            space, line = _pneumothorax_mask(cv, side, state["pneumothorax"][1])
            lung_air = lung_air * (1 - space) + a.air * 1.25 * space - 0.22 * line
        air += lung_air
    density -= air * (1.0 - 0.85 * heart)
    density += 0.04 * heart
    density -= 0.2 * cv.ellipse(0.36 * a.scale, a.dome[1] + 0.15, 0.09, 0.05)  # gastric bubble

    bone = np.zeros_like(cv.x)
    ax = np.abs(cv.x)
    arch = 1.0 - ((ax - 0.5 * a.scale) / (0.45 * a.scale)) ** 2
    for k in range(9):
        yk = a.lung_top + 0.09 + k * a.rib_gap
        centre = yk - 0.16 * arch + 0.1 * (ax - 0.1)
        bone += cv.soft(0.018 - np.abs(cv.y - centre)) * cv.soft(0.7 * a.scale - ax) * cv.soft(ax - 0.07)
    bone *= a.rib_density
    clav_y = -0.72 if a.view == "PA" else -0.8
    for side in (-1, 1):
        lateral_y = clav_y - (0.08 if a.view == "PA" else 0.02) + side * a.clavicle_tilt
        bone += 0.24 * cv.band(side * 0.08, clav_y + 0.05, side * 0.62 * a.scale, lateral_y, 0.028)
        if a.view == "AP":
            bone += 0.09 * cv.ellipse(side * 0.72 * a.scale, -0.4, 0.14, 0.28, side * 0.2)
        if a.breast > 0:
            density += a.breast * cv.ellipse(side * 0.46 * a.scale, 0.33, 0.3, 0.2)
    density += bone * tissue

    layer, regions = _overlay_findings(cv, findings, rngs, state)
    density += layer * tissue
    if "Cardiomegaly" in findings:
        regions["Cardiomegaly"] = (a.heart_x - a.heart_w * 1.15, a.heart_y - a.heart_h * 1.3,
                                   a.heart_x + a.heart_w * 1.15, a.heart_y + a.heart_h * 1.3)
    if "Emphysema" in findings:
        regions["Emphysema"] = (-0.85 * a.scale, a.lung_top - 0.06, 0.85 * a.scale, max(a.dome) + 0.3)

    marker_x = 0.78 if a.marker_right else -0.86
    density += 0.7 * cv.band(marker_x, -0.86, marker_x + 0.06, -0.86, 0.025)

    noise = np.random.default_rng(noise_seq).standard_normal(density.shape).astype(np.float32)
    image = np.clip(0.03 + density * a.gain * 1.35, 0.0, 1.0) ** a.gamma + a.noise * noise
    pixels = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    return Phantom(pixels, {f: _to_pixels(box, a, size) for f, box in regions.items()})


def _to_pixels(box, a: Anatomy, size: int) -> tuple[float, float, float, float]:
    """Map an anatomical box to an (x, y, w, h) pixel box in the rotated, shifted image."""
    x0, y0, x1, y1 = box
    c, s = math.cos(a.angle), math.sin(a.angle)
    xs, ys = [], []
    for xa, ya in ((x0, y0), (x1, y0), (x0, y1), (x1, y1)):
        xs.append(c * xa - s * ya + a.shift[0])
        ys.append(s * xa + c * ya + a.shift[1])
    to_px = lambda v: (np.clip(v, -1, 1) + 1) / 2 * size  # noqa: E731
    px0, px1 = to_px(min(xs)), to_px(max(xs))
    py0, py1 = to_px(min(ys)), to_px(max(ys))
    return float(px0), float(py0), float(px1 - px0), float(py1 - py0)


def signature_table_markdown() -> str:
    """The finding signatures as a Markdown table (the docs embed it)."""
    rows = ["| Finding | Where | What the phantom draws |", "|---|---|---|"]
    rows += [f"| {f} | {where} | {what} |" for f, (where, what) in FINDING_SIGNATURES.items()]
    return "\n".join(rows)
