"""The dataset card (``README.md``) inside every synthetic archive.

The card is a Hugging Face-style dataset card: YAML front matter (pretty_name, license,
task_categories, tags, size_categories, the shards as the default config), then Markdown: that
the films are synthetic and not for clinical use, how they were made (generator and params
digests, code revision), the source data and its terms, the label mix beside the source's, how
View Position was set, the privacy filter's record, how to load the folder and how to cite.

It is rendered from ``CardFacts`` alone (no date, no clock), so the same facts give the same
bytes. Only ``images``, ``patients``, ``resolution``, ``shards``, ``labels`` and
``generator_digest`` are required; a section whose facts are absent is left out. The archive
stage writes it inside the archive's ``atomic_dir``, so it is always true of the films beside it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cxrsynth.code_closure import import_closure
from cxrsynth.config.base import Section
from cxrsynth.config.gan import DIFFUSION_ARCHS
from cxrsynth.data.shards import ARCHIVE_CSV
from cxrsynth.errors import MissingInputError
from cxrsynth.io import write_text
from cxrsynth.labels import LABELS
from cxrsynth.sampling import generator_arch

CARD_NAME = "README.md"
#: What the code revision is of by default: code only. Params are recorded by value (``params_digest``), and a
#: commit of dvc.lock, metrics/ or params must not change an archive's bytes.
REVISION_PATHS = ("src", "stages")
NIH_SITE = "https://nihcc.app.box.com/v/ChestXray-NIHCC"
NIH_TERMS = ("The usage of the data set is unrestricted. But you should provide the link to our original "
             "download site, acknowledge the NIH Clinical Center and provide a citation to our CVPR 2017 paper.")
SEGAL_2021 = ("Bradley Segal, David M. Rubin, Grace Rubin, Adam Pantanowitz. Evaluating the clinical realism of "
              "synthetic chest x-rays generated using progressively growing GANs. Preprint, 12 March 2021.")
WANG_2017 = ("X. Wang, Y. Peng, L. Lu, Z. Lu, M. Bagheri, R. M. Summers. ChestX-Ray8: Hospital-Scale Chest X-Ray "
             "Database and Benchmarks on Weakly-Supervised Classification and Localization of Common Thorax "
             "Diseases. 2017 IEEE Conference on Computer Vision and Pattern Recognition (CVPR), pp. 3462-3471. "
             "DOI: 10.1109/CVPR.2017.369.")
CRITERIA = {"verifier": "the patient verifier", "pixel": "pixel nearest neighbours",
            "feature": "classifier-feature nearest neighbours"}
MADE_BY_ARCHIVE = ("the `archive` stage of the cxrsynth pipeline: class-optimised latents (Segal et al. 2021, "
                   "Algorithm 1), each a synthetic patient whose follow-up films are sampled around it")
MADE_BY_DIFFUSION = ("the `archive` stage of the cxrsynth pipeline with a class-conditional diffusion generator "
                     "(MONAI): each synthetic patient drawn conditioned on a source film's labels and kept when the "
                     "labeller sees its target class, its follow-up films drawn from nearby noise; patients the "
                     "privacy audit flags are drawn again (privacy-enhancing sampling, Packhäuser et al. 2023)")


@dataclass(frozen=True)
class CardFacts:
    """What a card says. Required: the films; optional (None or empty: section or line left out):
    where they came from, the view record (``synthesis.view.assign_views``), the privacy filter's
    record (``{"applied": False}`` when off) or, where no filter could run, ``privacy_note``."""

    images: int
    patients: int
    resolution: int
    shards: tuple[str, ...]
    labels: Mapping[str, int]  # films carrying each label (LABELS order)
    generator_digest: str  # ``generator_digest(model_dir)``
    made_by: str = MADE_BY_ARCHIVE
    source: str | None = None  # data.source: "nih", "demo" or "local"
    source_films: int | None = None
    source_patients: int | None = None
    source_pct: Mapping[str, float] | None = None  # per label, % of the source's films carrying it (true labels)
    params_digest: str | None = None  # ``params_digest(*sections)``
    params_sections: tuple[str, ...] = ()
    revision: str | None = None  # ``code_revision()``
    view: Mapping | None = None
    privacy: Mapping | None = None
    privacy_note: str | None = None
    notes: tuple[str, ...] = ()  # more lines under "How it was made"


def sha256_files(paths: list[Path]) -> str:
    """``sha256:<hex>`` of the files' bytes, one after the other; a missing file: one-line error."""
    digest = hashlib.sha256()
    for path in paths:
        if not path.is_file():
            raise MissingInputError(f"{path}: not found (needed for the archive card's digest)")
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def generator_digest(model_dir: str | os.PathLike) -> str:
    """The GAN's digest: sha256 of its ``config.json`` then ``generator.pt``."""
    return sha256_files([Path(model_dir) / "config.json", Path(model_dir) / "generator.pt"])


def params_digest(*sections: Section) -> str:
    """sha256 of the sections' canonical JSON (``{section: values}``, sorted keys, no spaces)."""
    values = {s.section: s.model_dump(mode="json") for s in sections}
    return "sha256:" + hashlib.sha256(json.dumps(values, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def stage_code(script: str | os.PathLike, root: str | os.PathLike = ".") -> tuple[str, ...]:
    """``script`` and every project module it imports (``code_closure.import_closure``), relative to ``root``:
    what ``code_revision`` follows for an archive, so that a commit of another stage's code (which DVC does
    not rerun the archive for) leaves the archive's card, and so its bytes, alone. Empty when the code lies
    outside ``root`` (an installed, not editable, package)."""
    root = Path(root).resolve()
    try:
        return tuple(sorted(str(p.relative_to(root)) for p in {Path(script).resolve(), *import_closure([script])}))
    except ValueError:
        return ()


def code_revision(cwd: str | os.PathLike = ".", paths: tuple[str, ...] = REVISION_PATHS) -> str:
    """The last commit touching ``paths`` (``git log -1 --format=%H -- paths``), marked ``(modified)``
    when ``git status --porcelain`` shows changes there; "unknown (...)" outside a git checkout."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)

    if not paths:
        return "unknown (the code is outside the checkout)"
    try:
        log = git("log", "-1", "--format=%H", "--", *paths)
    except OSError:
        return "unknown (git not available)"
    if log.returncode != 0 or not log.stdout.strip():
        return "unknown (not a git checkout)"
    dirty = git("status", "--porcelain", "--", *paths).stdout.strip()
    return log.stdout.strip() + (" (modified)" if dirty else "")


def size_category(n: int) -> str:
    """Hugging Face's ``size_categories`` value for ``n`` items."""
    for bound, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                        (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < bound:
            return name
    return "10M<n<100M"


def _shard_pattern(shards: tuple[str, ...]) -> str:
    """``images_{001..012}.tar`` (WebDataset's brace form), or the one shard's name (the glob when none)."""
    if not shards:
        return "images_*.tar"
    if len(shards) == 1:
        return shards[0]
    first, last = (name.removeprefix("images_").removesuffix(".tar") for name in (shards[0], shards[-1]))
    return f"images_{{{first}..{last}}}.tar"


def _licence_note(source: str | None) -> str:
    data = {"nih": "trained on NIH ChestX-ray14, whose terms ask for a link to NIH's download site, an "
                   "acknowledgement of the NIH Clinical Center and a citation of Wang et al. 2017",
            "demo": "trained on rendered phantoms labelled with NIH ChestX-ray14 metadata rows (NIH's terms: "
                    "link NIH's download site, acknowledge the NIH Clinical Center, cite Wang et al. 2017)",
            "local": "trained on a local dataset, whose owner's terms apply to these films"}.get(
        source, "trained on data whose terms apply to these films")
    return f"Synthetic chest films from a generator {data}; the code that made them is MIT-licensed. Not for clinical use."


def _front_matter(facts: CardFacts, name: str) -> list[str]:
    quoted = json.dumps  # a JSON string is a valid YAML double-quoted scalar
    return ["---", f"pretty_name: {quoted(name)}", "license: other", "license_name: cxrsynth-synthetic-films",
            f"license_details: {quoted(_licence_note(facts.source))}",
            "task_categories:", "- image-classification", "tags:", "- medical", "- chest-x-ray", "- synthetic",
            "size_categories:", f"- {size_category(facts.images)}",
            "configs:", "- config_name: default", "  data_files:", "  - split: train", '    path: "images_*.tar"',
            "---"]


def _warnings(facts: CardFacts) -> list[str]:
    lines = ["> **Synthetic, not for clinical use.** Every film here was drawn by a generative model and "
             "labelled by a classifier. None is a patient's radiograph and no radiologist read them: do not use "
             "them to diagnose, treat or triage anyone, or as evidence about real patients.", ""]
    if facts.source == "demo":
        lines += ["> **Demo data.** The generator was trained on procedurally rendered chest phantoms, not "
                  "radiographs: these films and every number in this card are not clinical.", ""]
    if not facts.images:
        lines += ["> **Empty archive.** No film was delivered: every synthetic patient was rejected (its class not "
                  "reached or not confirmed by the labeller, or too close to a training patient). The archive "
                  "metrics say how many were tried per class.", ""]
    return lines


def _what(facts: CardFacts) -> list[str]:
    n = len(facts.shards)
    shards = "(none)" if not n else f"`{facts.shards[0]}`" + (f" to `{facts.shards[-1]}`" if n > 1 else "")
    rows = [f"| {shards} | the films, {n} tar file{'s' if n != 1 else ''}: per film `images/<Image Index>` (PNG) "
            "and its record `images/<stem>.json` (row and multi-hot labels), WebDataset samples `png` + `json` |",
            f"| `{ARCHIVE_CSV}` | NIH's 11 columns, then `Target Label` and `Target Score`: the labels' source of truth |"]
    if facts.privacy and facts.privacy.get("applied"):
        rows.append("| `privacy_filter.json` | the privacy filter's record |")
    rows.append(f"| `{CARD_NAME}` | this card |")
    return ["## What it is", "",
            f"{facts.images:,} synthetic frontal chest films of {facts.resolution} x {facts.resolution} pixels "
            f"(8-bit greyscale PNG) from {facts.patients:,} synthetic patients, in NIH ChestX-ray14's layout, so "
            "what reads NIH reads them.", "",
            "| file | holds |", "|---|---|", *rows, "",
            "`Finding Labels` are the labeller DenseNet's thresholded predictions (NIH's labels joined with `|`, "
            "`No Finding` when it predicts no finding); `Target Label` is the class the film's latent was "
            "optimised for and `Target Score` the scorer's probability of it. Patient IDs start at 90000000 and "
            "cannot meet a real NIH ID. `Patient Age` and `Patient Gender` are blank: the generator is not "
            "conditioned on them.", ""]


def _made(facts: CardFacts) -> list[str]:
    lines = ["## How it was made", "", f"- Made by {facts.made_by}.",
             f"- Generator: `{facts.generator_digest}` (sha256 of the GAN's `config.json` then `generator.pt`)."]
    if facts.params_digest:
        sections = " and ".join(f"`{s}`" for s in facts.params_sections) or "the"
        lines.append(f"- Params: `{facts.params_digest}` (sha256 of the {sections} params sections read, "
                     "canonical JSON).")
    if facts.revision:
        lines.append(f"- Code revision: `{facts.revision}` (the last commit touching the code that made the films: "
                     "the archive stage's script and the cxrsynth modules it imports; `(modified)`: uncommitted "
                     "changes there).")
    lines += [f"- {note}" for note in facts.notes]
    return [*lines, ""]


def _source(facts: CardFacts) -> list[str]:
    counts = (f" ({facts.source_films:,} films of {facts.source_patients:,} patients)"
              if facts.source_films is not None and facts.source_patients is not None else "")
    nih = (f"acknowledge the NIH Clinical Center, link NIH's download site <{NIH_SITE}> and cite Wang et al. 2017 "
           f"(below). NIH's terms: \"{NIH_TERMS}\"")
    text = {"nih": f"The generator and the labeller were trained on NIH ChestX-ray14{counts}, released by the NIH "
                   f"Clinical Center. When you use or share these films, {nih}",
            "demo": f"The embedded demo{counts}: rows of NIH ChestX-ray14's metadata table (labels, patients, views) "
                    "with procedurally rendered chest phantoms as their images; no patient's film was used. The "
                    f"metadata rows are NIH's: {nih}",
            "local": f"A local dataset in NIH's layout (`data.source: local`){counts}. Its terms are its owner's "
                     "and carry over to these films."}.get(facts.source)
    return [] if text is None else ["## Source data and its terms", "", text, ""]


def _label_mix(facts: CardFacts) -> list[str]:
    share = {name: 100 * facts.labels.get(name, 0) / max(facts.images, 1) for name in LABELS}
    if facts.source_pct is None:
        rows = [f"| {name} | {facts.labels.get(name, 0):,} | {share[name]:.1f} |" for name in LABELS]
        return ["## Label mix", "", "| label | films | % |", "|---|---|---|", *rows, ""]
    rows = [f"| {name} | {facts.labels.get(name, 0):,} | {share[name]:.1f} | {facts.source_pct[name]:.1f} |"
            for name in LABELS]
    return ["## Label mix", "", "Archive: the labeller's labels; source: the real films' own labels"
            + (f" (all {facts.source_films:,})." if facts.source_films is not None else "."), "",
            "| label | archive films | archive % | source % |", "|---|---|---|---|", *rows, ""]


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _view(view: Mapping) -> list[str]:
    counts = view.get("archive_views", {})
    if view["method"] == "predicted":
        test, train = view["test"], view["train_films"]
        auroc = "n/a" if test["auroc"] is None else f"{test['auroc']:.3f}"
        text = (f"Predicted, not known: an unconditional generator does not say whether it drew a PA or an AP "
                f"film. A {view['model']}, fitted on the real train split's {train['PA']:,} PA and {train['AP']:,} "
                f"AP films, gives each film PA or AP. On the real test split ({test['films']:,} films) it is right "
                f"{_pct(test['accuracy'])} of the time (AUROC {auroc}; PA share {_pct(test['pa_share_true'])} "
                f"true, {_pct(test['pa_share_predicted'])} predicted). Here {counts.get('PA', 0):,} films are PA "
                f"({_pct(view['archive_pa_share'])}) and {counts.get('AP', 0):,} AP.")
    elif view["method"] == "single view":
        text = f"Every film is {next(iter(counts), '')}: {view['reason']}."
    else:
        text = f"Blank: {view['reason']}."
    return ["## View Position", "", text, ""]


def _and(items: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return " and ".join([", ".join(items[:-1]), items[-1]] if len(items) > 1 else items)


def _privacy(facts: CardFacts) -> list[str]:
    record = facts.privacy
    audit = ("The pipeline's `privacy` stage audits the written archive again (`metrics/privacy.json` and "
             "`metrics/privacy.png` in the repository that made it).")
    if record is None:
        return [] if facts.privacy_note is None else ["## Privacy", "", facts.privacy_note, ""]
    if not record.get("applied"):
        return ["## Privacy", "", "Not privacy-filtered (`archive.privacy_filter: false`): no film was compared "
                "with the training patients. " + audit, ""]
    thresholds = record.get("thresholds", {})
    by = ", ".join(f"{k} {v:,}" for k, v in record.get("flagged_by_before", {}).items())
    reason = thresholds.get("verifier_not_used_because")
    verifier = (f"The patient verifier was not used ({reason}): films were compared by pixel and feature nearest "
                "neighbours only." if reason else
                f"Films were compared by {_and([CRITERIA.get(c, c) for c in thresholds.get('criteria', [])])}.")
    return ["## Privacy", "",
            "The archive stage's privacy filter compared every film with the real training patients and made "
            "again any synthetic patient with a film too close to one. " + verifier + " Before the filter "
            f"{record['patients_flagged_before']:,} patients ({record['images_flagged_before']:,} films) were "
            f"flagged" + (f" (by {by})" if by else "") + f"; {record['replaced_patients']:,} patients "
            f"({record['replaced_images']:,} films) were replaced in {record['rounds']} rounds and "
            f"{record['dropped_patients']:,} dropped ({record['dropped_images']:,} films). The full record is "
            "`privacy_filter.json` beside this card. " + audit, ""]


def _xrv_views(facts: CardFacts) -> tuple[str, str]:
    """torchxrayvision's ``views`` argument that reads every film, and what its default reads."""
    counts = (facts.view or {}).get("archive_views")
    if counts is None:
        return ', views=["*"]', 'its default `views=["PA"]` reads only the films whose View Position is PA'
    pa = counts.get("PA", 0)
    if pa == facts.images:
        return "", 'every film is PA, which its default `views=["PA"]` reads'
    default = f'its default `views=["PA"]` reads {f"the {pa:,} PA films only" if pa else "none of them"}'
    return (', views=["PA", "AP"]' if counts and set(counts) <= {"PA", "AP"} else ', views=["*"]'), default


def _load(facts: CardFacts) -> list[str]:
    views, default = _xrv_views(facts)
    return ["## How to load", "", "PyTorch, without extracting (the `cxrsynth` package):", "", "```python",
            "from cxrsynth.data.archive_dataset import ArchiveDataset", "",
            'films = ArchiveDataset(".")   # this folder; samples are dicts: img, lab, patientid, view ...',
            "```", "", "torchxrayvision, after extracting NIH's `images/` folder:", "", "```bash",
            'for shard in images_*.tar; do tar -xf "$shard"; done', "```", "", "```python",
            "import torchxrayvision as xrv", "",
            f'films = xrv.datasets.NIH_Dataset(imgpath="images", csvpath="{ARCHIVE_CSV}"{views}, '
            "unique_patients=False)", "```", "",
            f"That reads all {facts.images:,} films ({default}; `unique_patients=False` because its default keeps "
            "one film per synthetic patient).", "",
            "WebDataset, streaming the shards as they are:", "", "```python", "import webdataset as wds", "",
            f'films = wds.WebDataset("{_shard_pattern(facts.shards)}", shardshuffle=False).decode("l8")',
            '# each sample: "png" (H, W) uint8, "json" its row with "labels" (multi-hot, "pathologies" order)',
            "```", ""]


def _cite(facts: CardFacts) -> list[str]:
    lines = ["## How to cite", "", "The method:", "", f"> {SEGAL_2021}", ""]
    if facts.source in ("nih", "demo"):
        lines += ["The source data (NIH ChestX-ray14, NIH Clinical Center):", "", f"> {WANG_2017}", ""]
    revision = f" at revision `{facts.revision}`" if facts.revision else ""
    return [*lines, f"The code that made these films: the cxrsynth repository{revision}.", ""]


def archive_facts(table, shards: list[str], resolution: int, labels: Mapping[str, Mapping], source_table,
                  gan_dir: str | os.PathLike, source: str, sections: tuple[Section, ...], view: Mapping,
                  privacy: Mapping, script: str | os.PathLike) -> CardFacts:
    """The archive stage's facts: its table and shards, ``synthesis.archive_builder.label_counts``' record, the
    source store's table, the GAN folder, ``data.source``, the params sections it read, the view
    record, the privacy filter's record and the stage's script (whose code the revision follows)."""
    return CardFacts(images=len(table), patients=int(table["Patient ID"].nunique()), resolution=resolution,
                     shards=tuple(shards), labels={n: v["archive"] for n, v in labels.items()},
                     generator_digest=generator_digest(gan_dir), source=source, source_films=len(source_table),
                     source_patients=int(source_table["patient_id"].nunique()),
                     source_pct={n: v["source_pct"] for n, v in labels.items()}, params_digest=params_digest(*sections),
                     params_sections=tuple(s.section for s in sections),
                     revision=code_revision(paths=stage_code(script)), view=view, privacy=privacy,
                     made_by=MADE_BY_DIFFUSION if generator_arch(gan_dir) in DIFFUSION_ARCHS else MADE_BY_ARCHIVE)


def render_card(facts: CardFacts) -> str:
    """The card's Markdown with YAML front matter; the same facts give the same text."""
    name = "cxrsynth synthetic chest x-rays" + (" (demo)" if facts.source == "demo" else "")
    parts = [*_front_matter(facts, name), "", f"# {name}", "", *_warnings(facts), *_what(facts), *_made(facts),
             *_source(facts), *_label_mix(facts), *(_view(facts.view) if facts.view else []), *_privacy(facts),
             *_load(facts), *_cite(facts)]
    return "\n".join(parts).rstrip("\n") + "\n"


def write_card(folder: str | os.PathLike, facts: CardFacts) -> Path:
    """Write ``render_card(facts)`` to ``folder/README.md`` (atomically); returns its path."""
    path = Path(folder) / CARD_NAME
    write_text(path, render_card(facts))
    return path
