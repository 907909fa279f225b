"""The archive's dataset card (synthesis.card): every required fact with the values passed in,
absent sections left out, the same bytes every time; its digests and code revision."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import replace

import pytest
from ruamel.yaml import YAML

from cxrsynth.config.archive import ArchiveParams
from cxrsynth.config.privacy import PrivacyParams
from cxrsynth.errors import MissingInputError
from cxrsynth.labels import LABELS
from cxrsynth.synthesis.card import (
    CardFacts,
    code_revision,
    generator_digest,
    params_digest,
    render_card,
    stage_code,
    write_card,
)

VIEW = {"method": "predicted", "model": "logistic regression on features (8), seed 0",
        "train_films": {"AP": 123, "PA": 211}, "train_films_left_out": 0,
        "test": {"films": 97, "accuracy": 0.9175, "auroc": 0.9612, "pa_share_true": 0.5361, "pa_share_predicted": 0.5567},
        "archive_films": 640, "archive_views": {"AP": 251, "PA": 389}, "archive_pa_share": 0.6078, "reason": None}
PRIVACY = {"applied": True, "images_flagged_before": 17, "patients_flagged_before": 9,
           "flagged_by_before": {"verifier": 0, "pixel": 5, "feature": 4}, "replaced_patients": 8, "replaced_images": 41,
           "replacement_jobs": 8, "rounds": 3, "dropped_patients": 1, "dropped_images": 4,
           "thresholds": {"criteria": ["pixel", "feature"], "verifier_not_used_because": "its test-pair AUC 0.71 < 0.9"}}


def full_facts(**changes) -> CardFacts:
    facts = CardFacts(images=640, patients=151, resolution=32, shards=("images_001.tar", "images_002.tar", "images_003.tar"),
                      labels={name: 7 * i + 3 for i, name in enumerate(LABELS)}, generator_digest="sha256:" + "ab" * 32,
                      source="demo", source_films=5003, source_patients=1187,
                      source_pct={name: 1.25 * (i + 1) for i, name in enumerate(LABELS)},
                      params_digest="sha256:" + "cd" * 32, params_sections=("archive", "privacy"),
                      revision="0123456789abcdef0123456789abcdef01234567 (modified)", view=VIEW, privacy=PRIVACY)
    return replace(facts, **changes)


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return YAML(typ="safe", pure=True).load(card.split("---\n")[1])


def test_card_states_every_required_fact_with_the_values_passed_in():
    facts = full_facts()
    card = render_card(facts)
    meta = front_matter(card)
    assert meta["pretty_name"] == "cxrsynth synthetic chest x-rays (demo)" and meta["license"] == "other"
    assert "NIH" in meta["license_details"] and "Not for clinical use" in meta["license_details"]
    assert meta["task_categories"] == ["image-classification"] and meta["size_categories"] == ["n<1K"]
    assert set(meta["tags"]) == {"medical", "chest-x-ray", "synthetic"}
    assert meta["configs"][0]["data_files"][0]["path"] == "images_*.tar"
    body = card.split("---\n", 2)[2]
    assert "**Synthetic, not for clinical use.**" in body.split("## What it is")[0]
    assert "procedurally rendered chest phantoms" in body and "not clinical" in body
    assert "640 synthetic frontal chest films of 32 x 32 pixels" in body and "151 synthetic patients" in body
    assert "`images_001.tar` to `images_003.tar`" in body and "3 tar files" in body
    for fact in (facts.generator_digest, facts.params_digest, facts.revision, "`archive` and `privacy`"):
        assert fact in body
    assert "5,003 films of 1,187 patients" in body and "Wang et al. 2017" in body and "nihcc.app.box.com" in body
    for i, name in enumerate(LABELS):  # archive count, archive % and source % side by side
        count = 7 * i + 3
        assert f"| {name} | {count:,} | {100 * count / 640:.1f} | {1.25 * (i + 1):.1f} |" in body
    assert "211 PA and 123 AP" in body and "right 91.8%" in body and "AUROC 0.961" in body
    assert "389 films are PA (60.8%) and 251 AP" in body
    assert "9 patients (17 films) were flagged (by verifier 0, pixel 5, feature 4)" in body
    assert "8 patients (41 films) were replaced in 3 rounds and 1 dropped (4 films)" in body
    assert "its test-pair AUC 0.71 < 0.9" in body and "`privacy` stage" in body and "`privacy_filter.json`" in body
    assert 'views=["PA", "AP"], unique_patients=False' in body and "reads the 389 PA films only" in body
    assert "ArchiveDataset" in body and 'wds.WebDataset("images_{001..003}.tar"' in body
    assert "Segal" in body and "Evaluating the clinical realism of synthetic chest x-rays" in body
    assert "ChestX-Ray8" in body


def test_a_card_of_the_required_facts_alone_leaves_the_other_sections_out():
    facts = CardFacts(images=64, patients=16, resolution=32, shards=("images_001.tar",),
                      labels={"No Finding": 0, "Effusion": 40, "Cardiomegaly": 30}, generator_digest="sha256:" + "ef" * 32,
                      made_by="`cxrsynth generate` (labels requested: Effusion, Cardiomegaly)",
                      privacy_note="Not privacy-filtered: made on demand, away from the source's films.",
                      notes=("58 of 64 requested films converged.",))
    card = render_card(facts)
    front_matter(card)
    for absent in ("## Source data", "## View Position", "Params:", "Code revision", "Wang", "(demo)",
                   "privacy_filter.json", "source %", "phantoms"):
        assert absent not in card, absent
    assert "## Privacy\n\nNot privacy-filtered: made on demand, away from the source's films." in card
    assert "- 58 of 64 requested films converged." in card and "`cxrsynth generate`" in card
    assert "| Effusion | 40 | 62.5 |" in card and "| Hernia | 0 | 0.0 |" in card
    assert 'views=["*"]' in card and 'wds.WebDataset("images_001.tar"' in card
    assert "**Synthetic, not for clinical use.**" in card and "Segal" in card


def test_view_fallbacks_and_an_unfiltered_archive_read_as_such():
    single = {**VIEW, "method": "single view", "test": None, "archive_views": {"PA": 640}, "archive_pa_share": 1.0,
              "reason": "the real train split holds 300 PA: no second view to learn"}
    card = render_card(full_facts(view=single, privacy={"applied": False}))
    assert "Every film is PA: the real train split holds 300 PA" in card
    assert "csvpath=\"Data_Entry_synthetic.csv\", unique_patients=False" in card  # the default views read them all
    assert "Not privacy-filtered (`archive.privacy_filter: false`)" in card and "privacy_filter.json" not in card
    blank = {**single, "method": "blank", "archive_views": {}, "archive_pa_share": None, "reason": "no view"}
    card = render_card(full_facts(view=blank, source="nih"))
    assert "Blank: no view." in card and 'views=["*"]' in card and "reads none of them" in card
    assert "(demo)" not in card and "When you use or share these films, acknowledge the NIH Clinical Center" in card
    used = {**PRIVACY, "thresholds": {"criteria": ["verifier", "pixel", "feature"], "verifier_not_used_because": None}}
    assert ("compared by the patient verifier, pixel nearest neighbours and classifier-feature nearest neighbours."
            in render_card(full_facts(privacy=used)))


def test_an_empty_archive_gets_a_card_that_says_so():
    # a rehearsal-size generator can have every draw rejected; the card names no shard rather than crashing
    card = render_card(full_facts(images=0, patients=0, shards=(), labels=dict.fromkeys(LABELS, 0)))
    assert "**Empty archive.** No film was delivered" in card and "**Empty archive.**" not in render_card(full_facts())
    assert "| (none) | the films, 0 tar files:" in card and 'wds.WebDataset("images_*.tar"' in card


def test_card_is_deterministic_and_written_whole(tmp_path):
    facts = full_facts()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = write_card(tmp_path / "a", facts), write_card(tmp_path / "b", full_facts())
    assert first.name == "README.md" and first.read_bytes() == second.read_bytes() == render_card(facts).encode()
    assert render_card(full_facts(revision="fedcba")) != render_card(facts)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["README.md"]  # no temporary left behind


def test_generator_and_params_digests(tmp_path):
    (tmp_path / "config.json").write_text('{"arch": "pggan"}')
    (tmp_path / "generator.pt").write_bytes(b"\x00weights")
    expected = hashlib.sha256(b'{"arch": "pggan"}\x00weights').hexdigest()
    assert generator_digest(tmp_path) == f"sha256:{expected}"
    (tmp_path / "generator.pt").write_bytes(b"\x01weights")
    assert generator_digest(tmp_path) != f"sha256:{expected}"
    (tmp_path / "generator.pt").unlink()
    with pytest.raises(MissingInputError, match="generator.pt"):
        generator_digest(tmp_path)
    base = params_digest(ArchiveParams(), PrivacyParams())
    assert base == params_digest(ArchiveParams(), PrivacyParams()) and base.startswith("sha256:")
    assert params_digest(ArchiveParams(seed=1), PrivacyParams()) != base


def test_code_revision_follows_code_commits_not_lock_commits(tmp_path):
    def git(*args):
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path,
                              capture_output=True, text=True, check=True).stdout.strip()

    assert code_revision(tmp_path).startswith("unknown")
    git("init", "-q")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("x = 1\n")
    git("add", "-A")
    git("commit", "-qm", "code")
    code = git("rev-parse", "HEAD")
    assert code_revision(tmp_path) == code
    (tmp_path / "dvc.lock").write_text("lock\n")
    git("add", "-A")
    git("commit", "-qm", "lock only")
    assert code_revision(tmp_path) == code != git("rev-parse", "HEAD")
    (tmp_path / "src" / "b.py").write_text("y = 1\n")  # another stage's code
    git("add", "-A")
    git("commit", "-qm", "other code")
    assert code_revision(tmp_path, ("src/a.py",)) == code != code_revision(tmp_path)
    (tmp_path / "src" / "a.py").write_text("x = 2\n")
    assert code_revision(tmp_path) == f"{git('rev-parse', 'HEAD')} (modified)"
    assert code_revision(tmp_path, ("src/a.py",)) == f"{code} (modified)"
    assert code_revision(tmp_path, ()).startswith("unknown")


def test_an_archive_follows_its_own_stages_code_only():
    """The revision of the archive stage's card follows the stage's script and what it imports: not Table 2's
    code, which DVC does not rerun the archive for."""
    from conftest import ROOT

    code = stage_code(ROOT / "stages" / "archive.py", ROOT)
    assert {"stages/archive.py", "src/cxrsynth/synthesis/card.py", "src/cxrsynth/synthesis/archive_builder.py"} \
        <= set(code)
    assert "src/cxrsynth/synthesis/synthetic_auroc.py" not in code and "stages/synthetic_auroc.py" not in code
    assert stage_code(ROOT / "stages" / "archive.py", ROOT.parent / "elsewhere") == ()

