"""The generator bundle's model card (``README.md``), rendered from its manifest alone.

Everything the card says comes from ``bundle.json``, so the card is always true of the bundle
it sits in and has the same bytes whenever the manifest does (no dates, no clock).
"""

from __future__ import annotations

from cxrsynth.labels import LABELS


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def render_model_card(manifest: dict) -> str:
    """Markdown: what the bundle is, what it was trained on, its labels with their cut-offs and real
    test AUROC, its class-optimisation settings, how to call it, and that it is not for clinical use."""
    gen, lab, scorer = manifest["generator"], manifest["labeller"], manifest["scorer"]
    settings, source = manifest["class_optimisation"], manifest["source"]
    auroc = lab.get("test_auroc") or {}
    kind = {"calibrated": "calibrated on the real validation split: each label is given as often as those "
                          "films carry it",
            "youden": "the classifier's own Youden thresholds"}[lab["thresholds_kind"]]
    scorer_text = ("the re-purposed GAN discriminator (`scorer/`)" if scorer["name"] == "discriminator"
                   else "the labeller itself, at its Youden thresholds")
    lines = [
        "---",
        "license: other",
        "license_name: mit-code-nih-data-terms",
        "tags: [medical, chest-x-ray, synthetic, gan, image-generation]",
        "pipeline_tag: unconditional-image-generation",
        "---",
        "",
        "# cxrsynth generator bundle",
        "",
        "**Synthetic chest x-rays. Not for clinical use.**",
        "This bundle makes labelled synthetic chest films on demand (Segal et al. 2021's class "
        "optimisation): a latent is pushed by gradient ascent until the scorer sees the requested "
        "finding, follow-up films are sampled around it, and every film is labelled by the labeller.",
        "",
        "## What it is",
        "",
        f"- Generator: {gen['arch'].upper()} EMA weights, {gen['resolution']} x {gen['resolution']} pixels, "
        f"latent size {gen['z_dim']} (`generator/`).",
        f"- Labeller: {lab['architecture']} at {lab['input_size']} px (`labeller/`); cut-offs {kind}.",
        f"- Scorer raised by class optimisation: {scorer_text}.",
        f"- Trained on: {source['description']} (`data.source: {source['data_source']}`).",
        "- The bundle holds no real film. Films made from it are not privacy-filtered: the archive "
        "stage's filter compares against the source films, which are not here.",
        "",
        "## Labels",
        "",
        "| label | cut-off (probability) | labeller AUROC on the source's test split |",
        "|---|---|---|",
        *(f"| {name} | {lab['thresholds'][name]:.4f} | {_number(auroc.get(name))} |" for name in LABELS),
        "",
        "## Class-optimisation settings",
        "",
        "From the `archive` params section the bundle was built with:",
        "",
        "| setting | value |",
        "|---|---|",
        *(f"| {key} | {settings[key]} |" for key in sorted(settings)),
        "",
        "## How to use it",
        "",
        "```python",
        "from cxrsynth.generate import Generator",
        "",
        "films = Generator.load(\"data/generator\").generate(labels=[\"Effusion\", \"Cardiomegaly\"], n=64)",
        "films.save(\"generated/\")  # NIH layout: images_001.tar + Data_Entry_synthetic.csv + README.md",
        "```",
        "",
        "```",
        "cxrsynth generate --model data/generator --labels Effusion,Cardiomegaly --n 64 --out generated/",
        "```",
        "",
        "`n` films are split as evenly as possible over the labels. A film whose optimisation did not "
        "converge is not written; the command says how many converged and how often the labeller gave "
        "each film its requested label.",
        "",
    ]
    return "\n".join(lines)
