"""What a report section is made of; ``render`` turns these into HTML and Markdown."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass(frozen=True)
class Text:
    """A plain paragraph."""

    text: str


@dataclass(frozen=True)
class Note:
    """Why a number here cannot (or can only partly) be compared with the paper's: shown beside it."""

    text: str


@dataclass(frozen=True)
class Table:
    """A table: ``frame``'s index is the first column; ``caption`` says what and from where."""

    frame: pd.DataFrame
    caption: str


@dataclass(frozen=True)
class Figure:
    """A PNG from ``metrics/`` (``name``) or made by the report (``data``), with a caption."""

    name: str
    caption: str
    data: bytes | None = None


@dataclass(frozen=True)
class Data:
    """The numbers behind a figure, folded away in HTML (``name``: the file in ``metrics/``); a
    table, or ``text`` as the stage wrote it."""

    name: str
    frame: pd.DataFrame
    text: str | None = None


Block = Text | Note | Table | Figure | Data


@dataclass
class Section:
    """One result: its title, the paper's place for it, and its blocks in order."""

    id: str
    title: str
    paper: str
    blocks: list[Block] = field(default_factory=list)
