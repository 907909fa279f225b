"""The report's results in paper 001's order, each beside the paper's numbers where the paper gives them.

Every function reads what it shows through ``Metrics`` (so the files it used are known) and says in
a ``Note`` when its numbers cannot stand beside the paper's as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cxrsynth.labels import LABELS
from cxrsynth.paper import READER_STUDY_NOTE, READER_STUDY_RESULTS, TABLE1_FID, TABLE2_AUROC, TABLE2_AVERAGE
from cxrsynth.report.blocks import Data, Figure, Note, Section, Table, Text
from cxrsynth.report.figures import classifier_curves, gan_curves, phase_strip
from cxrsynth.report.headline import rarer_in_generated
from cxrsynth.report.sources import Metrics

DASH = "–"


@dataclass(frozen=True)
class Context:
    """What decides whether a number compares with the paper's."""

    demo: bool
    gan_resolution: int
    classifier_size: int
    extractors: tuple[str, ...]
    arch: str = "pggan"  # gan.arch: pggan | dcgan | ddpm | ldm

    @property
    def diffusion(self) -> bool:
        """Whether the run's generator is the diffusion model (no discriminator, no latent optimised)."""
        return self.arch in ("ddpm", "ldm")

    def data_note(self) -> Note | None:
        if self.demo:
            return Note("Embedded demo: rendered 64 px phantoms with real NIH metadata rows, not NIH films. These "
                        "numbers show that the stage works; they are not comparable with the paper's.")
        return None


def _f(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return DASH
    return f"{value:.{digits}f}"


def _pct(value, digits: int = 1) -> str:
    return DASH if value is None else f"{100 * value:.{digits}f}%"


def _notes(*notes: Note | None) -> list[Note]:
    return [n for n in notes if n is not None]


def data_section(m: Metrics, ctx: Context) -> Section:
    prepare = m.json("prepare.json")
    table = pd.DataFrame({"images": prepare["label_counts"]}).rename_axis("label")
    table["share"] = [_pct(v / prepare["images"]) for v in table["images"]]
    return Section("data", "Data", "section 3.1 (NIH ChestX-ray14)", [
        Text(f"{prepare['images']:,} films of {prepare['patients']:,} patients after repair "
             f"({prepare['rejected']} rejected, {prepare['converted_to_grey']} converted to grey), stored at "
             f"{', '.join(map(str, prepare['levels']))} px. The paper: 112,120 films of 30,805 patients, "
             "75% normal, Infiltration the most frequent finding (10%), Hernia the rarest (0.5%)."),
        *_notes(ctx.data_note()),
        Table(table, "Films per label (metrics/prepare.json)"),
        Figure("prepare_samples.png", "Stored films, one row per label"),
    ])


def split_section(m: Metrics, ctx: Context) -> Section:
    split = m.json("split.json")
    sizes = pd.DataFrame({s: split[s] for s in ("train", "val", "test")}).T.rename_axis("split")
    long = m.csv("split_prevalence.csv")
    wide = long.pivot(index="label", columns="split", values="prevalence_pct").reindex(LABELS).round(2)
    return Section("split", "Patient-level iterative-stratified split", "section 3.1", [
        Text(f"Method {split['method']} (patients weighted by {split['weighting']}); patients in two splits: "
             f"{split['patient_overlap']}; largest gap between a split's and the whole set's label prevalence: "
             f"{split['max_prevalence_deviation_pp']:.2f} percentage points. The paper stratifies patients "
             "iteratively into 70/10/20 and reports no deviation."),
        Table(sizes, "Split sizes (metrics/split.json)"),
        Figure("split_prevalence.png", "Label prevalence per split"),
        Data("split_prevalence.csv", wide),
    ])


def classifier_section(m: Metrics, ctx: Context) -> Section:
    ours = m.json("classifier.json")
    d = m.json("d_classifier.json")
    skipped = d.get("skipped", False)  # a diffusion generator has no discriminator to re-purpose
    d_auroc = {} if skipped else d["test_auroc"]
    roc = m.csv("classifier_roc.csv")
    at_10 = roc[roc["fpr"] <= 0.10].groupby("class")["tpr"].max()
    table = pd.DataFrame({
        "AUROC (this run)": [_f(ours["test_auroc"].get(k)) for k in LABELS],
        "paper (DenseNet-121 on real)": [_f(TABLE2_AUROC[k][2]) for k in LABELS],
        "TPR at FPR 10%": [_f(at_10.get(k)) for k in LABELS],
        "re-purposed discriminator": [_f(d_auroc.get(k)) for k in LABELS],
        "test positives": [str(ours["test_positives"].get(k, DASH)) for k in LABELS],
    }, index=pd.Index(LABELS, name="label"))
    table.loc["macro"] = [_f(ours["test_auroc_macro"]), _f(TABLE2_AVERAGE[2]), DASH, _f(d.get("test_auroc_macro")), DASH]
    return Section("classifier", "DenseNet-121 classifier", "section 3.2; Table 2, real column", [
        Text(f"Test macro AUROC {ours['test_auroc_macro']:.3f} (paper: {TABLE2_AVERAGE[2]:.3f}) at "
             f"{ours['input_size']} px after {ours['epochs']} epochs (best {ours['best_epoch']}). "
             + (f"No re-purposed discriminator: {d['reason']}." if skipped else
                f"The trained discriminator, given a new head and fine-tuned the same way, reaches "
                f"{d['test_auroc_macro']:.3f}.")),
        *_notes(ctx.data_note(),
                Note(f"Trained at {ctx.classifier_size} px, the generator's side, not at the paper's full "
                     "resolution.") if ctx.classifier_size < 256 else None,
                Note("Started from random weights: no ImageNet file was in weights/densenet121/ (the paper "
                     "starts from ImageNet).") if ours.get("weights") in (None, "none") else None),
        Table(table, "Test AUROC per label (metrics/classifier.json, d_classifier.json, classifier_roc.csv)"),
        Figure("classifier_roc.png", "Test ROC curve per label"),
        Figure("classifier_curves.png", "Training: loss and validation macro AUROC per epoch (DVCLive)",
               classifier_curves(m)),
    ])


def diffusion_section(m: Metrics, ctx: Context) -> Section:
    gan = m.json("gan.json")
    sampler = gan["sampler"]
    table = pd.DataFrame({"value": {
        "architecture": f"{gan['arch']} (MONAI DiffusionModelUNet" + (" on AutoencoderKL latents)" if gan["arch"] == "ldm"
                                                                       else ", pixel space)"),
        "final side (px)": gan["resolution"], "denoised shape": " x ".join(map(str, gan["latent_shape"])),
        "images shown": f"{gan['images_shown']:,}",
        **{f"final {k} loss": _f(v, 4) for k, v in gan["final_loss"].items() if v},
        **{f"{k} parameters": f"{v:,}" for k, v in gan["parameters"].items()},
        "sampler": f"{sampler['kind']}, {sampler['steps']} steps, guidance {sampler['guidance']:g}",
        "labels dropped in training": _pct(sampler["p_uncond"], 0), "processes": gan["processes"]}}).rename_axis("quantity")
    return Section("gan", "Class-conditional diffusion generator (in place of the PGGAN)", "not in the paper", [
        Text("This run's generator is a class-conditional diffusion model (gan.arch " + gan["arch"] + "): a MONAI "
             "UNet cross-attending to one token per label, trained with the labels dropped at random so that "
             "sampling can use classifier-free guidance. Its films are drawn conditioned on labels; no latent is "
             "optimised, so the paper's Algorithm 1, its discriminator-based stages and the embedded baseline "
             "do not apply to it."),
        *_notes(ctx.data_note()),
        Table(table, "Training (metrics/gan.json)"),
        Figure("gan_samples.png", "Films drawn from the exported (EMA) model, conditioned on training films' labels"),
    ])


def gan_section(m: Metrics, ctx: Context) -> Section:
    if ctx.diffusion:
        return diffusion_section(m, ctx)
    gan = m.json("gan.json")
    table = pd.DataFrame({"value": {
        "architecture": gan["arch"], "final side (px)": gan["resolution"], "images shown": f"{gan['images_shown']:,}",
        "phases": len(gan["phases"]), "final D loss": _f(gan["final_loss_d"]), "final G loss": _f(gan["final_loss_g"]),
        "D loss mean / std over training": f"{_f(gan['d_loss']['mean'])} / {_f(gan['d_loss']['std'])}",
        "processes": gan["processes"]}}).rename_axis("quantity")
    return Section("gan", "Progressive growing GAN", "section 3.3", [
        Text("WGAN-GP progressive growing GAN with an exponential moving average of the generator's weights, "
             "grown one resolution at a time with fade-ins."),
        *_notes(ctx.data_note(),
                Note(f"Grown to {ctx.gan_resolution} px on {gan['images_shown']:,} images shown; the paper grows to "
                     "1024 px with 800,000 images per fade-in and per stabilisation.") if ctx.gan_resolution < 1024
                else None),
        Table(table, "Training (metrics/gan.json)"),
        Figure("gan_samples.png", "Samples of the exported (EMA) generator"),
        Figure("gan_phases.png", "One sample grid per phase (DVCLive)", phase_strip(m, gan["phases"])),
        Figure("gan_curves.png", "Critic and generator losses by images shown, phases marked (DVCLive)",
               gan_curves(m)),
    ])


def fid_section(m: Metrics, ctx: Context) -> Section:
    fid = m.json("fid.json")
    long = m.csv("fid_table1.csv")
    wide = long.pivot(index="split", columns="extractor", values="fid")
    order = [k for k in TABLE1_FID if k in wide.index] + [k for k in wide.index if k not in TABLE1_FID]
    table = wide.reindex(order).map(_f)
    table.columns = [f"{c} features (this run)" for c in table.columns]
    table["paper (Inception)"] = [_f(TABLE1_FID.get(k), 2) for k in order]
    matrix = m.csv("fid_classes.csv").pivot_table(index="a", columns="b", values="fid", aggfunc="first").round(1)
    mds = m.csv("fid_mds.csv").set_index("label").round(2)
    smallest = ", ".join(f"{k}: {'yes' if v else 'no'}" for k, v in fid["stratified_is_smallest"].items())
    return Section("fid", "Fréchet distance split validation", "Table 1 and Figure 5", [
        Text(f"Fréchet distances between halves of the real images split by stratification, by sex and by "
             f"finding (No Finding against each), and between real and {fid['n_generated']:,} generated images. "
             f"The stratified halves are the closest pair, as in the paper: {smallest}."),
        *_notes(ctx.data_note(),
                Note("Distances on the real-trained classifier's features, not Inception's (no Inception weights "
                     "file in weights/inception/): a different scale from the paper's column; compare the order "
                     "of rows, not values.") if "inception" not in ctx.extractors else None,
                Note(f"Images at {fid['resolution']} px; the paper's at full resolution.")
                if fid["resolution"] < 256 else None,
                Note("Left out of Table 1, Figure 5 and the MDS: "
                     + ", ".join(f"{k} ({n} image{'s' if n != 1 else ''})" for k, n in fid["labels_left_out"].items())
                     + f"; a Fréchet distance needs at least {fid['min_images_per_label']} images of a label.")
                if fid.get("labels_left_out") else None),
        Table(table, "Table 1 (metrics/fid_table1.csv, fid.json)"),
        Figure("fid_classes.png", "Figure 5: classes placed by multidimensional scaling of their Fréchet distances"),
        Data("fid_mds.csv", mds),
        Data("fid_classes.csv", matrix),
    ])


def prevalence_section(m: Metrics, ctx: Context) -> Section:
    summary = m.json("prevalence.json")
    long = m.csv("prevalence.csv")
    rows = {}
    for _, r in long.iterrows():
        label = r["bar"].split(" | ")[0]
        rows.setdefault(label, {})[r["set"]] = f"{r['prevalence_pct']:.1f} ({r['lo_pct']:.1f}-{r['hi_pct']:.1f})"
    table = pd.DataFrame(rows).T.rename_axis("label")
    table.columns = [f"{c} % (95% CI)" for c in table.columns]
    below = rarer_in_generated(summary)
    return Section("prevalence", "Label prevalence of generated images", "Figure 6", [
        Text(f"The real-trained classifier labels {summary['n_real']:,} real ({summary['real_subset']} split) and "
             f"{summary['n_generated']:,} generated images; {summary['n_bootstrap']:,} bootstrap resamples give "
             f"the {summary['level']:.0%} intervals. Significantly rarer in generated images: "
             f"{', '.join(below) or 'none'}. The paper found most labels rarer in generated images except "
             "Atelectasis, Cardiomegaly, Infiltration and No Finding (mode dropping); it gives a figure, not numbers."),
        *_notes(ctx.data_note(),
                Note(f"Left out (the classifier labels them unreliably on real test images): "
                     f"{', '.join(summary['labels_excluded'])}.") if summary["labels_excluded"] else None),
        Table(table, "Prevalence (metrics/prevalence.csv)"),
        Figure("prevalence.png", "Figure 6: prevalence, real against generated"),
    ])


def archive_examples_section(m: Metrics, ctx: Context) -> Section:
    archive = m.json("archive.json")
    how = (f"Latents optimised towards each class with the {archive['scorer']} scorer (Algorithm 1), and "
           "follow-up films sampled around each optimised latent (N(0, 0.2) per coordinate).")
    if ctx.diffusion:
        how = ("Each synthetic patient drawn conditioned on a source film's labels carrying its class and kept when the "
               "labeller sees the class (conditional sampling in place of Algorithm 1); its follow-up films drawn "
               "with the same labels from nearby noise. Figure 7 shows each patient's first film.")
    return Section("examples", "Class-optimised images and follow-up series", "Figures 7 and 8", [
        Text(how),
        *_notes(ctx.data_note(), _view_note(archive.get("view"))),
        Figure("real_vs_generated.png", "Real films of the test split (top) beside films of the archive (bottom)"),
        Figure("archive_classes.png", "Figure 7: class-optimised images, one row per class"),
        Figure("archive_follow_ups.png", "Figure 8: follow-up series of synthetic patients"),
    ])


def _view_note(view: dict | None) -> Note | None:
    """How the archive's View Position was set (``synthesis.view``): predicted, with the model's accuracy
    on the real test films, or why not."""
    if not view:
        return None
    if view["test"]:
        return Note(f"View Position is predicted, not known: a PA/AP model on the labeller's features, "
                    f"accuracy {view['test']['accuracy']:.3f} (AUROC {view['test']['auroc']}) on the real test "
                    f"films; {100 * view['archive_pa_share']:.1f}% of the archive's films are called PA.")
    return Note(f"View Position: {view['method']} ({view['reason']}).")


def archive_mix_section(m: Metrics, ctx: Context) -> Section:
    archive = m.json("archive.json")
    labels = archive["labels"]
    table = pd.DataFrame({
        "source %": {k: f"{v['source_pct']:.1f}" for k, v in labels.items()},
        "archive %": {k: f"{v['archive_pct']:.1f}" for k, v in labels.items()},
        "ratio": {k: f"{v['ratio']:.2f}" for k, v in labels.items()},
        "within tolerance": {k: "yes" if v["within_tolerance"] else "NO" for k, v in labels.items()},
    }).rename_axis("label")
    long = m.csv("archive_prevalence.csv")
    filt = archive["privacy_filter"]
    return Section("archive", "The synthetic archive's label mix", "section 4.5 (archive of comparable size)", [
        Text(f"{archive['images']:,} images of {archive['patients']:,} synthetic patients "
             f"({archive['delivered_fraction']:.1%} of the plan delivered); {archive['labels_within_tolerance']} of "
             f"15 labels within tolerance of the source's prevalence. The privacy filter replaced "
             f"{filt['replaced_patients']} flagged patients ({filt['replaced_images']} images). The paper asks for "
             "labels \"in a similar proportion to the source\" and gives no numbers."),
        *_notes(ctx.data_note()),
        Table(table, "Label prevalence, source against archive (metrics/archive.json)"),
        Figure("archive_prevalence.png", "Archive label mix against the source"),
        Data("archive_prevalence.csv", long.pivot(index="label", columns="set", values="prevalence_pct")),
    ])


def synthetic_auroc_section(m: Metrics, ctx: Context) -> Section:
    synth = m.json("synthetic_auroc.json")
    embed = m.json("embed.json")
    skipped = embed.get("skipped", False)
    columns = ("embedded", "class_generated", "real")
    rows = {}
    for label in LABELS:
        ours = synth["per_class"].get(label, {})
        rows[label] = [_f(ours.get(c)) for c in columns] + [_f(v) for v in TABLE2_AUROC[label]]
    rows["macro"] = [_f(synth["macro"].get(c)) for c in columns] + [_f(v) for v in TABLE2_AVERAGE]
    table = pd.DataFrame(rows, index=[*columns, *(f"paper: {c}" for c in columns)]).T.rename_axis("label")
    ratio = synth["macro"]["class_generated"] / synth["macro"]["real"]
    paper_ratio = TABLE2_AVERAGE[1] / TABLE2_AVERAGE[2]
    boot = synth.get("bootstrap")  # the paired bootstrap over the test patients (metrics.auroc_interval)
    iv = boot["ratio_to_real"]["class_generated"] if boot else {"lo": None}
    spread = "" if iv["lo"] is None else (
        f", {boot['level']:.0%} interval {iv['lo']:.1%} to {iv['hi']:.1%} over {boot['resamples']:,} resamples of the "
        f"{boot['patients']:,} test patients, the test set's noise alone")
    return Section("synthetic_auroc", "Classifiers trained on synthetic images, tested on real ones", "Table 2", [
        Text(f"Class-generated training reaches {ratio:.1%} of the real-trained macro AUROC "
             f"({synth['macro']['class_generated']:.3f} against {synth['macro']['real']:.3f}{spread}; the paper: "
             f"{paper_ratio:.1%}). " + (f"No embedded column: {embed['reason']}." if skipped else
             f"The embedded column regenerates {embed['images']:,} real images through an "
             f"encoder trained on {embed['encoder_train_images']:,} generator samples (held-out latent MSE "
             f"{embed['heldout']['latent_mse']:.3f}, against {embed['heldout_latent_mse_predicting_zero']:.3f} for "
             f"predicting zero).")),
        *_notes(ctx.data_note(),
                Note(f"All three classifiers at {synth['input_size']} px for {synth['max_epochs']} epochs from "
                     "random weights; the paper's at full resolution from ImageNet.")
                if synth["input_size"] < 256 else None),
        Table(table, "Table 2: test AUROC (metrics/synthetic_auroc.json)"),
        Figure("synthetic_auroc.png", "Table 2 as bars"),
        *([] if skipped else [Figure("embed_pairs.png", "The embedded baseline: real images and their regenerations")]),
        Data("synthetic_auroc.csv", m.csv("synthetic_auroc.csv").pivot(index="class", columns="training",
                                                                       values="auroc")),
        Data("synthetic_auroc.md", pd.DataFrame(), text=m.text("synthetic_auroc.md")),
    ])


def reader_section(m: Metrics, ctx: Context) -> Section:
    result = m.json("reader_study.json")
    names = {"real_called_real": "real films called real", "generated_called_real": "generated films called real",
             "hype_inf": "HYPE∞", "pair_accuracy": "pairs: real film chosen"}

    def cell(value: dict | None) -> str:
        return DASH if not value else f"{value['rate']:.0%} ({value['ci'][0]:.0%}-{value['ci'][1]:.0%})"

    table = pd.DataFrame({"paper (8 radiologists)": {names[k]: cell(v) for k, v in READER_STUDY_RESULTS.items()}})
    for key, title in (("human", "radiologists (this study)"), ("simulated_readers", "SIMULATED readers")):
        population = result[key]
        if population.get("readers"):
            table[f"{title}, n = {population['readers']}"] = [cell(population["pooled"].get(k)) for k in names]
    design = result["design"]
    return Section("reader", "Radiologist review: real or generated?", "section 4.4", [
        Text(f"{design['grids']} grids of {design['grid_size']} films and {design['pairs']} pairs at "
             f"{design['display_size']} px, {design['real_films']} real and {design['generated_films']} generated "
             f"films, served by the reader-study app. {READER_STUDY_NOTE}"),
        *_notes(Note("No readers: no radiologist has answered, and a diffusion generator has no discriminator to "
                     "stand in as a SIMULATED reader. Serve the study to radiologists (README: \"Run the reader "
                     "study\").") if ctx.diffusion and result["simulated"] else
                Note("SIMULATED: no radiologist has answered; the readers are the trained discriminator "
                     "answering through the app. These numbers say how separable the critic finds the films, "
                     "not how realistic they look to a radiologist.") if result["simulated"] else None,
                ctx.data_note()),
        Table(table, "Rates with 95% intervals (metrics/reader_study.json)"),
        Figure("reader_study.png", "Reader study beside the paper's"),
    ])


def _verifier_sentence(verifier: dict) -> str:
    """What the audit made of the patient verifier, in words (``metrics/privacy.json``'s ``verifier``)."""
    if verifier.get("used", True):
        return (f"A siamese patient verifier tells whether two films show one patient: AUC "
                f"{verifier['test_auc']:.3f} on pairs of test patients it never saw.")
    return (f"The patient verifier was not used: {verifier['not_used_because']}. Its criterion neither flagged "
            "nor cleared any image: the audit and the archive's filter flagged by pixel and classifier-feature "
            "nearest neighbours only, which catch copies and near-copies of a training film but not a new film "
            "of a training patient.")


def privacy_section(m: Metrics, ctx: Context) -> Section:
    privacy = m.json("privacy.json")
    verifier = privacy["verifier"]
    verifier_used = verifier.get("used", True)  # a privacy.json from before the verifier floor: always used
    rows = {}
    for key, name in (("archive", "archive (after the filter)"), ("real_test", "real test films (new patients)"),
                      ("real_training", "real training films (positive control)")):
        p = privacy[key]
        by = p["flagged_fraction_by"]
        rows[name] = {"images": p["images"], "flagged": _pct(p["flagged_fraction"]),
                      "by verifier": _pct(by["verifier"]) if verifier_used else "not used",
                      "by pixels": _pct(by["pixel"]), "by features": _pct(by["feature"])}
    thresholds = privacy["thresholds"]
    return Section("privacy", "Privacy audit", "not in the paper (its introduction's promise, measured)", [
        Text(_verifier_sentence(verifier) + " Every archive image is searched against every training image; "
             f"{privacy['archive_flagged_before_filter']} were flagged before the filter and "
             f"{privacy['archive_flagged_after_filter']} after it. Thresholds: "
             + (f"verifier score {thresholds['verifier_score']:.3f} ({thresholds['false_match_rate']:.0%} false-match "
                "rate on validation films), or " if verifier_used else "")
             + f"a nearest distance shorter than {thresholds['distance_percentile']:g}% of new patients' films have."),
        *_notes(ctx.data_note()),
        Table(pd.DataFrame(rows).T.rename_axis("population"), "Flagged shares (metrics/privacy.json)"),
        Figure("privacy.png", "Nearest-match distributions and the closest synthetic/training pairs"),
    ])


def baselines_section(m: Metrics, ctx: Context) -> Section:
    summary = m.json("baselines.json", required=False)
    if summary is None:
        return Section("baselines", "Baselines of papers 002-004", "papers 002-004", [
            Text("Not run yet: `dvc repro baselines/dvc.yaml`, then `dvc repro -f report` to add them here.")])
    table = pd.DataFrame([{"system": r["system"], "paper": r["paper"], "loss": r["loss"],
                           "FID (classifier)": _f(r.get("fid_classifier"), 1), "label-mix TV": _f(r.get("label_mix_tv")),
                           "GAN-train AUROC": _f(r.get("gan_train_auroc")),
                           "precision": _f(r.get("precision_classifier")), "recall": _f(r.get("recall_classifier")),
                           "density": _f(r.get("density_classifier")), "coverage": _f(r.get("coverage_classifier")),
                           "memorised": _pct(r.get("memorisation_classifier"))}
                          for r in summary["rows"]]).set_index("system")
    claim, saving = summary["d_loss_claim"], summary["batch_norm_memory_saving_pct"]
    blocks = [Text("Every generator judged on the same samples, labeller and test split (docs/baselines.md). "
                   "Read from metrics/baselines.json as the baselines pipeline last wrote it: it is a separate "
                   "pipeline, so `dvc repro -f report` refreshes this section after `dvc repro baselines/dvc.yaml`."),
              Text(f"Paper 004's claim that FID and the mean discriminator loss are strongly inversely correlated "
                   f"({claim['criterion']}) {'held' if claim['held'] else 'did not hold'} over its "
                   f"{claim['configurations']} configurations (r = {claim['pearson_r_fid']['mean']:.2f}). Removing "
                   f"batch norm saved {saving['min']:g}-{saving['max']:g}% of training memory (paper 004: "
                   f"{saving['paper_004'][0]:g}-{saving['paper_004'][1]:g}%)."),
              *_notes(ctx.data_note()), Table(table, "Baselines (metrics/baselines.json)")]
    for name, caption in (("baselines.png", "FID, label mix and GAN-train AUROC per system"),
                          ("baselines_samples.png", "Samples per system")):
        if m.path(name, required=False) is not None:
            blocks.append(Figure(name, caption))
    return Section("baselines", "Baselines of papers 002-004", "papers 002-004", blocks)


SECTIONS = (data_section, split_section, classifier_section, gan_section, fid_section, prevalence_section,
            archive_examples_section, archive_mix_section, synthetic_auroc_section, reader_section, privacy_section,
            baselines_section)


def build(m: Metrics, ctx: Context) -> list[Section]:
    """Every section, in the paper's order."""
    return [make(m, ctx) for make in SECTIONS]
