"""Stages that do not apply to the run's generator: skipped cleanly, and saying so.

A GAN-specific stage (the re-purposed discriminator, the embedding baseline, the portable GAN
bundle) has nothing to do when ``gan.arch`` is a diffusion model. DVC still expects its outputs,
so it writes each of them as a marker: a folder holding ``skipped.json``, a metrics JSON
``{"skipped": true, "reason": ...}`` and a PNG that says why in words. Later stages and the report
ask ``skip_reason`` before reading them.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw

from cxrsynth.io import atomic_dir, write_json

MARKER = "skipped.json"


def skip_record(stage: str, reason: str) -> dict:
    """What a skipped stage writes: the stage, that it was skipped, and why."""
    return {"stage": stage, "skipped": True, "reason": reason}


def write_skipped(stage: str, reason: str, folders=(), metrics=(), figures=()) -> dict:
    """Write every output of a skipped ``stage`` as a marker (module docstring) and print one line."""
    record = skip_record(stage, reason)
    for folder in folders:
        with atomic_dir(Path(folder)) as out:
            write_json(out / MARKER, record)
    for path in metrics:
        write_json(Path(path), record)
    for path in figures:
        placeholder_png(Path(path), f"{stage}: not run\n{reason}")
    print(f"{stage}: skipped ({reason})")
    return record


def skip_reason(path: str | Path) -> str | None:
    """Why the output at ``path`` (a folder or a metrics JSON) is a skipped stage's marker, or None."""
    path = Path(path)
    marker = path / MARKER if path.is_dir() else path
    if not marker.is_file() or marker.suffix != ".json":
        return None
    try:
        record = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    return record.get("reason") if isinstance(record, dict) and record.get("skipped") is True else None


def placeholder_png(path: Path, text: str, width: int = 480) -> None:
    """A small white PNG carrying ``text``: the figure a skipped stage leaves in place of its own."""
    lines = [line for part in text.splitlines() for line in _wrap(part, 70)]
    image = Image.new("L", (width, 16 + 14 * len(lines)), 255)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((8, 8 + 14 * i), line, fill=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def _wrap(text: str, width: int) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + ([line] if line else [])
