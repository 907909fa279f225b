"""The embedded demo source: real NIH metadata rows, rendered chest phantoms.

The rows come verbatim from the real v2020 table (a bundled sample of whole patients,
enriched so that every finding has positives; see ``tools/make_demo_sample.py``). The
images are phantoms rendered for each row's sex, age, view and labels; a patient's films
share one anatomy (drawn from the patient's seed), so follow-ups show the same person. The demo writes
the NIH layout, the PNGs packed into ``images_NNN.tar.gz`` archives as NIH ships them (read
by ``prepare`` without extraction, see ``manifest``), a share of them RGBA as in the real archive, a
``BBox_List_2017.csv`` of the rendered findings' boxes in NIH's 1024-pixel convention and
spelling, and official-style ``train_val_list.txt`` / ``test_list.txt`` (a patient-level
stand-in: NIH's own lists do not cover the sampled patients consistently).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import itertools
import multiprocessing as mp
import os
import tarfile
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from cxrsynth.config.data import DemoParams
from cxrsynth.data.phantom import render_phantom
from cxrsynth.data.sources import BBOX_NAME
from cxrsynth.data.sources.manifest import archive_source, md5_of, write_manifest
from cxrsynth.errors import ParamsError
from cxrsynth.labels import parse_label_string

SAMPLE_RESOURCE = "nih_demo_sample.csv.gz"
NIH_BBOX_SPELLING = {"Infiltration": "Infiltrate"}
BBOX_FINDINGS = ("Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia", "Pneumothorax")


def bundled_sample_text() -> str:
    """The bundled metadata rows (header + verbatim NIH v2020 lines)."""
    data = resources.files("cxrsynth.resources").joinpath(SAMPLE_RESOURCE).read_bytes()
    return gzip.decompress(data).decode()


def select_rows(n_images: int) -> tuple[str, list[str]]:
    """Take whole patients, in the bundle's order, until ``n_images`` rows are reached.

    The bundle lists the patients that enrich rare findings first, so any size keeps them.
    """
    header, *lines = bundled_sample_text().rstrip("\n").split("\n")
    if n_images > len(lines):
        raise ParamsError(f"data.demo.n_images: {n_images} exceeds the {len(lines)} bundled rows")
    chosen, last_patient = [], None
    for line in lines:
        patient = line.split(",")[3]
        if len(chosen) >= n_images and patient != last_patient:
            break
        chosen.append(line)
        last_patient = patient
    return header, chosen


def image_seed(name: str, seed: int) -> int:
    """A stable per-image seed from the file name and the demo seed."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "little")


def patient_seed(patient_id: str, seed: int) -> int:
    """A stable per-patient seed (the anatomy every film of the patient shares)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:patient:{int(patient_id)}".encode()).digest()[:8], "little")


def _render_one(args) -> tuple[str, bytes, dict]:
    line, size, seed, rgba = args
    fields = next(csv.reader([line]))
    name, labels, patient, age, sex, view = fields[0], fields[1], fields[3], fields[4], fields[5], fields[6]
    try:
        years = float(age)
    except ValueError:
        years = None
    phantom = render_phantom(size, set(parse_label_string(labels)), sex, years, view, image_seed(name, seed),
                             patient_seed=patient_seed(patient, seed))
    image = Image.fromarray(phantom.pixels, mode="L")
    if rgba:
        image = image.convert("RGBA")  # R = G = B, alpha 255, like NIH's RGBA files
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return name, buffer.getvalue(), phantom.boxes


def _write_archive(path: Path, films) -> list[str]:
    """Pack (name, PNG bytes) pairs into ``images/`` of a tar.gz, byte-for-byte reproducibly
    (fixed times and owners, no name or time in the gzip header); returns the names."""
    names = []
    # level 1: PNG data does not compress; the gzip layer is there because NIH's archives have it
    with open(path, "wb") as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh, compresslevel=1, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in films:
            info = tarfile.TarInfo(f"images/{name}")
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
            names.append(name)
    return names


def _keep_boxes(rendered, boxes: dict):
    """Pass (name, PNG) pairs on, keeping each film's finding boxes for the box list."""
    for name, data, found in rendered:
        boxes[name] = found
        yield name, data


def write_demo(raw_dir: Path, params: DemoParams) -> dict:
    """Render the demo into ``raw_dir`` (NIH layout, films in archives) and return a summary dict."""
    header, lines = select_rows(params.n_images)
    raw_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(params.seed)
    rgba = rng.random(len(lines)) < params.rgba_fraction
    with_boxes = rng.random(len(lines)) < params.bbox_fraction
    tasks = [(line, params.size, params.seed, bool(flag)) for line, flag in zip(lines, rgba, strict=False)]
    workers = params.workers or os.cpu_count() or 1
    boxes: dict[str, dict] = {}
    sources = []
    with mp.get_context("spawn").Pool(workers) as pool:
        rendered = tqdm(pool.imap(_render_one, tasks, chunksize=32), total=len(tasks), desc="render phantoms", unit="img")
        films = _keep_boxes(rendered, boxes)
        for number in range(1, -(-len(tasks) // params.archive_images) + 1):
            path = raw_dir / f"images_{number:03d}.tar.gz"
            names = _write_archive(path, itertools.islice(films, params.archive_images))
            sources.append(archive_source(path, names, md5=md5_of(path), relative_to=raw_dir))
    write_manifest(raw_dir, sources)
    (raw_dir / "Data_Entry_2017_v2020.csv").write_text(header + "\n" + "\n".join(lines) + "\n")
    _write_bbox_list(raw_dir / BBOX_NAME, lines, with_boxes, boxes, params.size)
    _write_official_lists(raw_dir, lines, params.seed)
    return {"images": len(lines), "archives": len(sources), "rgba": int(rgba.sum()), "size": params.size}


def _write_bbox_list(path: Path, lines: list[str], chosen: np.ndarray, boxes: dict, size: int) -> None:
    scale = 1024.0 / size
    out = ["Image Index,Finding Label,Bbox [x,y,w,h],,,"]
    for line, keep in zip(lines, chosen, strict=False):
        name = line.split(",", 1)[0]
        if not keep:
            continue
        for finding in BBOX_FINDINGS:
            if finding in boxes[name]:
                x, y, w, h = (v * scale for v in boxes[name][finding])
                out.append(f"{name},{NIH_BBOX_SPELLING.get(finding, finding)},{x:.6f},{y:.6f},{w:.6f},{h:.6f},,,")
    path.write_text("\n".join(out) + "\n")


def _write_official_lists(raw_dir: Path, lines: list[str], seed: int) -> None:
    """A stand-in for NIH's official lists: about 20% of patients as test, no final newline."""
    names = [line.split(",", 1)[0] for line in lines]
    patients = sorted({n[:8] for n in names})
    rng = np.random.default_rng(seed + 1)
    test_patients = set(rng.choice(patients, size=max(1, round(0.2 * len(patients))), replace=False))
    test = [n for n in names if n[:8] in test_patients]
    train_val = [n for n in names if n[:8] not in test_patients]
    (raw_dir / "train_val_list.txt").write_text("\n".join(train_val))
    (raw_dir / "test_list.txt").write_text("\n".join(test))
