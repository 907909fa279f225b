"""What every params section shares: reading params.yaml, validating one section, one-line errors.

Params are read with ruamel.yaml (YAML 1.2), which keeps ``1e-05`` a float after
``dvc exp run -S`` rewrites the file; PyYAML (YAML 1.1) would read it as a string.
Each section's model lives in its own module (``cxrsynth.config.gan`` ...), so a stage
depends only on the sections it reads and this base.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from ruamel.yaml import YAML

from cxrsynth.errors import MissingInputError, ParamsError


class Section(BaseModel):
    """A params section: unknown keys are refused, values are frozen once validated.

    Subclasses that stand for a top-level section of params.yaml set ``section``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    section: ClassVar[str] = ""


T = TypeVar("T", bound=Section)


def read_params(path: str | os.PathLike = "params.yaml") -> dict[str, Any]:
    """Read a params file with YAML 1.2 semantics (``1e-05`` stays a float)."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: params file not found")
    try:
        data = YAML(typ="safe", pure=True).load(path.read_text())
    except Exception as err:  # ruamel raises several unrelated types
        raise ParamsError(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from err
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping of stage sections at the top level")
    return data


def _format_error(section: str, err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in (section, *first["loc"]) if p not in ("function-after",))
    got = first.get("input")
    shown = "" if isinstance(got, dict) else f" (got {got!r})"
    msg = first["msg"].removeprefix("Value error, ")
    return f"{source}: {key}: {msg}{shown}"


def parse_section(params: dict[str, Any], model: type[T], source: str = "params.yaml") -> T:
    """Validate ``params[model.section]`` into ``model``.

    Raises ParamsError with a one-line message naming the offending key."""
    raw = params.get(model.section)
    if raw is None:
        raise ParamsError(f"{source}: missing section '{model.section}'")
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: section '{model.section}' must be a mapping")
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise ParamsError(_format_error(model.section, err, source)) from None


def load_section(model: type[T], path: str | os.PathLike = "params.yaml") -> T:
    """Read ``path`` and return its validated section ``model.section``."""
    return parse_section(read_params(path), model, source=str(path))


def load_validated(model: type[T], path: str | os.PathLike, made_by: str = "run the params stage") -> T:
    """The section ``model`` that a params stage validated and wrote to ``path`` (JSON).

    Raises MissingInputError naming the file and ``made_by`` (what makes it) when it is absent, and
    ParamsError with a one-line message naming the file and key when its content does not validate."""
    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"{path}: not found ({made_by})")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ParamsError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a JSON object of params")
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise ParamsError(_format_error(model.section or path.stem, err, str(path))) from None


def write_validated(folder: str | os.PathLike, files: dict[str, Any]) -> None:
    """Write each validated section (a model, or any JSON value) to ``folder/<name>.json`` and remove
    the ``*.json`` files there that ``files`` no longer names (a section renamed, a system removed), so
    no reader of the folder meets a leftover."""
    from cxrsynth.io import write_json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in sorted(set(folder.glob("*.json")) - {folder / f"{name}.json" for name in files}):
        stale.unlink()
    for name, value in files.items():
        write_json(folder / f"{name}.json", value.model_dump(mode="json") if isinstance(value, BaseModel) else value)
