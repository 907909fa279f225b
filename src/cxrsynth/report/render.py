"""The report as one self-contained HTML page (figures embedded, nothing fetched) and as Markdown."""

from __future__ import annotations

import base64
import html
import re

import pandas as pd

from cxrsynth.report.blocks import Data, Figure, Note, Section, Table, Text
from cxrsynth.report.sources import Metrics

TITLE = "cxrsynth: reproduction of Segal et al. 2021"

_CSS = """
body { font: 15px/1.5 system-ui, sans-serif; color: #1d1f23; margin: 0; background: #f6f7f9; }
main { max-width: 1040px; margin: 0 auto; padding: 24px 28px 60px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 20px; margin: 36px 0 2px; border-top: 1px solid #e3e5e8;
  padding-top: 20px; } .paper { color: #6b7079; margin: 0 0 10px; font-size: 14px; }
nav { font-size: 14px; columns: 2; margin: 12px 0 0; } nav a { color: #2f5fb3; text-decoration: none; }
table { border-collapse: collapse; margin: 8px 0 4px; font-size: 13px; }
th, td { border-bottom: 1px solid #e3e5e8; padding: 3px 10px; text-align: right; vertical-align: top; }
th:first-child, td:first-child { text-align: left; } thead th { border-bottom: 2px solid #c9ccd1; }
caption { caption-side: bottom; color: #6b7079; font-size: 12px; text-align: left; padding-top: 2px; }
.note { background: #fff6db; border-left: 4px solid #e0a800; padding: 6px 12px; margin: 8px 0; font-size: 14px; }
.note b { color: #8a6100; } .note ul { margin: 4px 0; padding-left: 20px; } figure { margin: 12px 0; } figure img { max-width: min(100%, 820px); border: 1px solid #e3e5e8; }
figcaption { color: #6b7079; font-size: 13px; } details { margin: 6px 0; font-size: 13px; }
summary { cursor: pointer; color: #2f5fb3; } pre { background: #f3f4f6; padding: 8px; overflow-x: auto; }
code { background: #f3f4f6; padding: 0 3px; border-radius: 3px; }
.prov td, .prov th { text-align: left; } .warn { color: #8a4b00; }
"""


def _inline(text: str) -> str:
    """Escape ``text`` for HTML, rendering `code` spans."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _table_html(frame: pd.DataFrame, caption: str | None = None, cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in [frame.index.name or "", *frame.columns])
    body = "".join("<tr>" + f"<td>{html.escape(str(i))}</td>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row)
                   + "</tr>" for i, row in zip(frame.index, frame.itertuples(index=False), strict=True))
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f'<table class="{cls}">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _figure_bytes(block: Figure, metrics: Metrics) -> bytes:
    return block.data if block.data is not None else metrics.png(block.name)


def _provenance_rows(prov: dict) -> list[tuple[str, str]]:
    data = prov["data"]
    sizes = prov["sizes"]
    split = ", ".join(f"{k} {v['images']:,} images / {v['patients']} patients" for k, v in data["split"].items())
    rows = [
        ("data", (f"{data['source']}: {data['images']:,} films of {data['patients']:,} patients "
                 f"({data['rejected']} rejected)")),
        ("split", split),
        ("labels", prov["labels"]),
        ("image sizes", (f"stored {', '.join(map(str, sizes['stored']))} px; classifier {sizes['classifier']} px; "
                        f"GAN {sizes['gan']} px; FID {sizes['fid']} px; Table 2 {sizes['synthetic_auroc']} px")),
        ("params", (f"{prov['params']['file']} ({prov['params']['sections']} validated sections, digest "
                   f"{prov['params']['digest']})")),
        ("git revision", prov["revision"]),
        ("devices", "; ".join(f"{device}: {', '.join(stages)}" for device, stages in prov["devices"].items())),
        ("versions", ", ".join(prov["versions"])),
    ]
    rows += [(f"weights: {k}", v) for k, v in prov["weights"].items()]
    return rows


def to_html(prov: dict, sections: list[Section], metrics: Metrics) -> str:
    """One page, every figure embedded as a data URI; nothing is loaded from anywhere."""
    parts = [(f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{TITLE}</title>"
             f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{_CSS}</style></head>"
             f"<body><main><h1>{TITLE}</h1>"
             "<p class='paper'>Every result of this run beside paper 001's (Segal et al., <i>Evaluating the clinical "
             "realism of synthetic chest x-rays generated using progressively growing GANs</i>, 2021), with where "
             "it came from. Notes in yellow say where a number cannot stand beside the paper's.</p><nav>")]
    parts += [f"<a href='#{s.id}'>{html.escape(s.title)}</a><br>" for s in [Section("provenance", "Provenance", ""),
                                                                         *sections]]
    parts.append("</nav><h2 id='provenance'>Provenance</h2><p class='paper'>what this run was</p>")
    if prov["data"]["demo"]:
        parts.append("<div class='note'><b>Embedded demo.</b> Every number below comes from rendered phantoms, "
                     "not from NIH films: it shows the pipeline runs end to end, not clinical results.</div>")
    frame = pd.DataFrame(_provenance_rows(prov), columns=["", "value"]).set_index("")
    parts.append(_table_html(frame, cls="prov"))
    if prov["warnings"]:
        items = "".join(f"<li><b>{html.escape(stage)}</b>: {html.escape(w)}</li>"
                        for stage, ws in prov["warnings"].items() for w in ws)
        parts.append(f"<p class='warn'>Warnings raised by the stages:</p><ul class='warn'>{items}</ul>")
    else:
        parts.append("<p>No stage raised a warning.</p>")
    for section in sections:
        parts.append(f"<h2 id='{section.id}'>{html.escape(section.title)}</h2>"
                     f"<p class='paper'>paper: {html.escape(section.paper)}</p>")
        notes = [b for b in section.blocks if isinstance(b, Note)]
        for block in section.blocks:
            if isinstance(block, Text):
                parts.append(f"<p>{_inline(block.text)}</p>")
            elif isinstance(block, Note) and block is notes[0]:  # a section's notes in one box
                items = "".join(f"<li>{_inline(n.text)}</li>" for n in notes)
                parts.append(f"<div class='note'><b>Not comparable as it stands:</b><ul>{items}</ul></div>")
            elif isinstance(block, Table):
                parts.append(_table_html(block.frame, block.caption))
            elif isinstance(block, Figure):
                encoded = base64.b64encode(_figure_bytes(block, metrics)).decode()
                parts.append(f"<figure><img alt='{html.escape(block.caption)}' src='data:image/png;base64,{encoded}'>"
                             f"<figcaption>{html.escape(block.caption)} ({html.escape(block.name)})</figcaption>"
                             "</figure>")
            elif isinstance(block, Data):
                inner = (f"<pre>{html.escape(block.text)}</pre>" if block.text is not None
                         else _table_html(block.frame.round(4)))
                parts.append(f"<details><summary>{html.escape(block.name)}</summary>{inner}</details>")
    parts.append("</main></body></html>\n")
    return "".join(parts)


def _table_md(frame: pd.DataFrame) -> str:
    cells = [[frame.index.name or "", *map(str, frame.columns)]]
    cells += [[str(i), *map(str, row)] for i, row in zip(frame.index, frame.itertuples(index=False), strict=True)]
    lines = ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
    lines.insert(1, "|" + "---|" * len(cells[0]))
    return "\n".join(lines)


def to_markdown(prov: dict, sections: list[Section], figures_dir: str) -> str:
    """The same report in Markdown; figures linked beside it (the report's own in ``figures_dir``)."""
    out = [f"# {TITLE}", "",
           ("Every result of this run beside paper 001's, with where it came from. Lines marked **Not comparable** "
           "say where a number cannot stand beside the paper's. The HTML page (report.html) holds the same, "
           "self-contained."), "", "## Provenance", ""]
    if prov["data"]["demo"]:
        out += ["> **Embedded demo.** Every number below comes from rendered phantoms, not from NIH films.", ""]
    out += [_table_md(pd.DataFrame(_provenance_rows(prov), columns=["", "value"]).set_index("")), ""]
    if prov["warnings"]:
        out += ["Warnings raised by the stages:", ""]
        out += [f"- **{stage}**: {w}" for stage, ws in prov["warnings"].items() for w in ws] + [""]
    else:
        out += ["No stage raised a warning.", ""]
    for section in sections:
        out += [f"## {section.title}", "", f"*paper: {section.paper}*", ""]
        for block in section.blocks:
            if isinstance(block, Text):
                out += [block.text, ""]
            elif isinstance(block, Note):
                out += [f"> **Not comparable as it stands.** {block.text}", ""]
            elif isinstance(block, Table):
                out += [_table_md(block.frame), "", f"*{block.caption}*", ""]
            elif isinstance(block, Figure):
                link = block.name if block.data is None else f"{figures_dir}/{block.name}"
                out += [f"![{block.caption}]({link})", "", f"*{block.caption}*", ""]
            elif isinstance(block, Data):
                out += [f"Data: [{block.name}]({block.name})", ""]
    return "\n".join(out).rstrip() + "\n"
