"""The reader study: design, web app (over real HTTP), simulated readers and analysis."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import requests
from PIL import Image
from scipy import stats

from cxrsynth.errors import InputError
from cxrsynth.reader_study.analysis import (
    answers_table,
    complete_readers,
    report,
    summarise,
)
from cxrsynth.reader_study.answers import AnswersDB, read_answers
from cxrsynth.reader_study.app import create_app
from cxrsynth.reader_study.design import DESIGN_FILE, Design
from cxrsynth.reader_study.simulated import answer_study, run_readers, running_server


def truth_of(folder) -> dict[str, str]:
    """image ID -> 'real' | 'generated', read from a study's design database (as the analysis joins it)."""
    db = sqlite3.connect(f"file:{folder / DESIGN_FILE}?mode=ro", uri=True)
    try:
        return dict(db.execute("SELECT id, truth FROM images"))
    finally:
        db.close()


def brightness(images: np.ndarray) -> np.ndarray:
    """A scorer for the tests' films: 'real' ones are bright."""
    return images.reshape(len(images), -1).mean(axis=1)


@pytest.fixture
def served(study, tmp_path):
    """(base URL, answers DB) of the app serving ``study``."""
    answers = tmp_path / "answers.sqlite"
    db = AnswersDB(answers, Design(study).study_id)
    with running_server(create_app(study, answers)) as url:
        yield url, db


def reader_routes(url: str, token: str, design: Design) -> list[str]:
    """Every GET route a reader's browser reaches."""
    routes = [f"/r/{token}", f"/r/{token}/finish", f"/r/{token}/thanks", f"/api/r/{token}"]
    for screen in design.screens:
        routes += [f"/r/{token}/screen/{screen.index}", f"/api/r/{token}/screen/{screen.index}"]
        routes += [f"/r/{token}/image/{i}" for i in screen.image_ids]
    return [url + r for r in routes]


def test_design_writes_identical_kinds_of_film(study):
    design = Design(study)
    truth = truth_of(study)
    assert len(design.screens) == 5 and [s.kind for s in design.screens] == ["grid"] * 2 + ["pair"] * 3
    for screen in design.screens[2:]:
        assert sorted(truth[i] for i in screen.image_ids) == ["generated", "real"]
    files = sorted((study / "images").iterdir())
    assert [f.stem for f in files] == sorted(truth) and all(re.fullmatch(r"[0-9a-f]{32}", f.stem) for f in files)
    for f in files:
        image = Image.open(f)
        assert (image.format, image.mode, image.size) == ("PNG", "L", (64, 64))
        assert image.info == {}, f"{f.name} carries metadata {image.info}"
    # the truth sits in one table, never in a file name, a screen row or the study row
    with sqlite3.connect(study / DESIGN_FILE) as db:
        other = db.execute("SELECT * FROM screens").fetchall() + db.execute("SELECT * FROM study").fetchall()
    assert not any("real" in str(v) or "generated" in str(v) for row in other for v in row)


def test_no_truth_in_anything_a_reader_receives(study, tmp_path):
    """The app serving the study and the app serving the same study with every film's truth flipped
    send byte-identical pages, JSON and images (the token aside)."""
    flipped = tmp_path / "flipped"
    shutil.copytree(study, flipped)
    with sqlite3.connect(flipped / DESIGN_FILE) as db:
        db.execute("UPDATE images SET truth = CASE truth WHEN 'real' THEN 'generated' ELSE 'real' END")
    assert truth_of(flipped) != truth_of(study)
    seen = []
    for folder in (study, flipped):
        answers = tmp_path / f"{folder.name}.sqlite"
        token = AnswersDB(answers, Design(folder).study_id).add_reader()
        with running_server(create_app(folder, answers)) as url:
            grade_page = requests.get(f"{url}/r/{token}", timeout=10).content
            requests.post(f"{url}/api/r/{token}/grade", json={"grade": "registrar"}, timeout=10).raise_for_status()
            requests.put(f"{url}/api/r/{token}/screen/0/answer", json={"position": 1, "real": True}, timeout=10)
            bodies = [grade_page.replace(token.encode(), b"TOKEN")]
            for route in reader_routes(url, token, Design(folder)):
                response = requests.get(route, timeout=10)
                assert response.status_code == 200, route
                assert "truth" not in response.text and "generated" not in response.text.lower()
                bodies.append(response.content.replace(token.encode(), b"TOKEN").replace(url.encode(), b"URL"))
            seen.append(bodies)
    assert seen[0] == seen[1]


def test_unknown_tokens_get_403_everywhere(served, study):
    url, db = served
    db.add_reader()
    for route in reader_routes(url, "not-a-token", Design(study)):
        assert requests.get(route, timeout=10).status_code == 403, route
    assert requests.post(f"{url}/api/r/nope/grade", json={"grade": "other"}, timeout=10).status_code == 403
    assert requests.put(f"{url}/api/r/nope/screen/0/answer", json={"position": 0, "real": True},
                        timeout=10).status_code == 403
    assert requests.post(f"{url}/api/r/nope/submit", timeout=10).status_code == 403


def test_a_reader_sees_only_their_own_answers(served):
    url, db = served
    first, second = db.add_reader("registrar"), db.add_reader("registrar")
    requests.put(f"{url}/api/r/{first}/screen/0/answer", json={"position": 3, "real": True}, timeout=10).raise_for_status()
    requests.post(f"{url}/api/r/{first}/screen/0/done", timeout=10).raise_for_status()
    theirs = requests.get(f"{url}/api/r/{second}/screen/0", timeout=10).json()
    assert all(image["real"] is None for image in theirs["images"]) and theirs["done"] is False
    assert requests.get(f"{url}/api/r/{second}", timeout=10).json()["done"] == []
    assert 'value="3" checked' not in requests.get(f"{url}/r/{second}/screen/0", timeout=10).text


def test_image_route_refuses_path_tricks(served, study):
    url, db = served
    token = db.add_reader("other")
    known = next(iter(Design(study).image_ids))
    for trick in ("..%2Fdesign.sqlite", "..%2F..%2Fdesign.sqlite", "%2e%2e%2fdesign.sqlite", f"{known}.png",
                  f"{known}%2F..%2F..%2Fdesign.sqlite", "0" * 32, "images", "design.sqlite"):
        response = requests.get(f"{url}/r/{token}/image/{trick}", timeout=10)
        assert response.status_code == 404, trick
        assert b"SQLite format" not in response.content
    for raw in ("/r/{t}/image/../../design.sqlite", "/r/{t}/../design.sqlite", "/design.sqlite",
                "/images/" + known + ".png"):
        # sent as written (requests would not normalise a prepared URL's dots)
        session = requests.Session()
        request = requests.Request("GET", url + raw.format(t=token)).prepare()
        request.url = url + raw.format(t=token)
        response = session.send(request, timeout=10)
        assert response.status_code in (403, 404), raw
        assert b"SQLite format" not in response.content and b"\x89PNG" not in response.content


def test_resume_after_a_closed_tab_and_back_before_submitting(served, study):
    url, db = served
    token = db.add_reader()
    first = requests.Session()
    assert 'name="grade"' in first.get(f"{url}/r/{token}", timeout=10).text  # grade asked first
    first.post(f"{url}/api/r/{token}/grade", json={"grade": "consultant"}, timeout=10).raise_for_status()
    api = f"{url}/api/r/{token}/screen"
    first.put(f"{api}/0/answer", json={"position": 2, "real": True}, timeout=10).raise_for_status()
    first.post(f"{api}/0/done", timeout=10).raise_for_status()
    first.put(f"{api}/1/answer", json={"position": 4, "real": True}, timeout=10).raise_for_status()
    first.close()  # the tab is closed mid-screen

    again = requests.Session()
    landing = again.get(f"{url}/r/{token}", timeout=10, allow_redirects=False)
    assert landing.status_code == 303 and landing.headers["location"] == f"/r/{token}/screen/1"
    page = again.get(url + landing.headers["location"], timeout=10).text
    assert re.findall(r'value="(\d)" checked', page) == ["4"]  # the half-done screen as left
    assert 'value="2" checked' in again.get(f"{url}/r/{token}/screen/0", timeout=10).text  # back shows screen 0
    again.put(f"{api}/0/answer", json={"position": 2, "real": False}, timeout=10).raise_for_status()  # changed
    assert db.calls(db.reader(token), 0)[2] is False
    assert again.post(f"{url}/api/r/{token}/submit", timeout=10).status_code == 409  # not finished
    assert again.post(f"{api}/2/done", timeout=10).status_code == 409  # a pair needs a choice
    for n in range(1, 5):
        if n >= 2:
            again.put(f"{api}/{n}/answer", json={"position": 0, "real": True}, timeout=10).raise_for_status()
        again.post(f"{api}/{n}/done", timeout=10).raise_for_status()
    assert again.post(f"{url}/api/r/{token}/submit", timeout=10).json()["next_url"] == f"/r/{token}/thanks"
    assert "Thank you" in again.get(f"{url}/r/{token}", timeout=10).text
    assert again.put(f"{api}/0/answer", json={"position": 0, "real": True}, timeout=10).status_code == 409
    assert again.post(f"{url}/api/r/{token}/grade", json={"grade": "other"}, timeout=10).status_code == 409
    _, rows = read_answers(db.path)
    assert len(rows) == 2 * 6 + 3 * 2 and all(r[2] == "consultant" for r in rows)


def test_twenty_simulated_readers_at_once_lose_nothing(served, study):
    url, db = served
    readers = [(db.add_reader(kind="simulated"), "registrar") for _ in range(20)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        futures = [pool.submit(answer_study, url, token, grade, brightness, 16, 0.0, i)
                   for i, (token, grade) in enumerate(readers)]
        given = [f.result(timeout=120) for f in futures]  # bounded: a deadlock fails here, not hangs CI
    assert given == [2 * 6 + 3 * 2] * 20
    _, rows = read_answers(db.path)
    assert len(rows) == 20 * 18 and len({r[0] for r in rows}) == 20
    table = answers_table(study, rows)
    pairs, grid = table[table["screen_kind"] == "pair"], table[table["screen_kind"] == "grid"]
    assert (pairs["called_real"] == pairs["real"]).all()  # brightness tells the films of a pair apart
    assert grid.groupby("reader")["called_real"].mean().eq(0.5).all()  # the brighter half of the grid films


def test_simulated_readers_through_the_stage_helper_are_seeded(served, study):
    url, db = served
    tokens = [(db.add_reader(kind="simulated"), g) for g in ("consultant", "registrar", "registrar")]
    assert run_readers(url, tokens, brightness, 16, noise=2.0, seed=1, workers=3) == 3 * 18
    table = answers_table(study, read_answers(db.path)[1])
    again_db = AnswersDB(db.path.with_name("again.sqlite"), db.study_id)
    with running_server(create_app(study, again_db.path)) as again_url:
        tokens = [(again_db.add_reader(kind="simulated"), g) for g in ("consultant", "registrar", "registrar")]
        run_readers(again_url, tokens, brightness, 16, noise=2.0, seed=1, workers=1)
    again = answers_table(study, read_answers(again_db.path)[1])
    assert table["called_real"].tolist() == again["called_real"].tolist()  # timing does not matter
    assert not (table["called_real"] == table["real"]).all()  # the noise is felt


def test_answers_database_belongs_to_one_study(tmp_path, study):
    AnswersDB(tmp_path / "a.sqlite", "study-one")
    with pytest.raises(InputError, match="study-one"):
        AnswersDB(tmp_path / "a.sqlite", Design(study).study_id)
    with pytest.raises(InputError, match="grade"):
        AnswersDB(tmp_path / "b.sqlite", "x").add_reader("intern")


def test_add_reader_prints_a_working_link(study, tmp_path):
    answers = tmp_path / "answers.sqlite"
    out = subprocess.run([sys.executable, "-m", "cxrsynth.reader_study", "add-reader", "--study", str(study),
                          "--answers", str(answers), "--grade", "registrar", "--base-url", "https://x.org/"],
                         capture_output=True, text=True, check=True).stdout.strip()
    token = re.fullmatch(r"https://x\.org/r/([\w-]{32,})", out).group(1)
    reader = AnswersDB(answers, Design(study).study_id).reader(token)
    assert reader.grade == "registrar" and reader.kind == "human"
    assert token not in answers.read_bytes().decode("latin-1")  # only its hash is stored
    status = subprocess.run([sys.executable, "-m", "cxrsynth.reader_study", "status", "--study", str(study),
                             "--answers", str(answers)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"1\s+human\s+registrar\s+0/5\s+0\s+no", status) and "0 of 1 readers submitted" in status
    assert token not in status
    bad = subprocess.run([sys.executable, "-m", "cxrsynth.reader_study", "add-reader", "--study",
                          str(tmp_path / "nowhere"), "--answers", str(tmp_path / "new.sqlite")],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "nowhere" in bad.stderr


def table_of(calls: dict[int, list[tuple[bool, bool]]], pairs: dict[int, list[bool]] | None = None) -> pd.DataFrame:
    """Answers per reader: grid (real, called_real) and pair (real film chosen) lists."""
    rows = []
    for reader, answers in calls.items():
        for i, (real, called) in enumerate(answers):
            rows.append((reader, "simulated", "registrar" if reader else "consultant", 0, i, "grid", f"g{reader}{i}",
                         real, called))
        for i, chosen in enumerate((pairs or {}).get(reader, [])):
            rows += [(reader, "simulated", "registrar" if reader else "consultant", 1 + i, 0, "pair", "a", True, chosen),
                     (reader, "simulated", "registrar" if reader else "consultant", 1 + i, 1, "pair", "b", False,
                      not chosen)]
    return pd.DataFrame(rows, columns=["reader", "kind", "grade", "screen", "position", "screen_kind", "image_id",
                                       "real", "called_real"])


def test_statistics_are_the_papers():
    grid = {0: [(True, True)] * 7 + [(True, False)] * 3 + [(False, True)] * 6 + [(False, False)] * 4,
            1: [(True, True)] * 8 + [(True, False)] * 2 + [(False, True)] * 5 + [(False, False)] * 5}
    pairs = {0: [True, True, False, True], 1: [True, False, True, True]}
    result = summarise(table_of(grid, pairs), n_bootstrap=2000)
    real = result["real_called_real"]
    assert real["rate"] == 0.75 and real["n"] == 20 and real["readers"] == 2
    answers = np.array([1] * 15 + [0] * 5, dtype=float)
    assert real["p_answers"] == pytest.approx(stats.ttest_1samp(answers, 0.5, alternative="greater").pvalue, rel=1e-3)
    assert real["p_readers"] == pytest.approx(stats.ttest_1samp([0.7, 0.8], 0.5, alternative="greater").pvalue, rel=1e-3)
    ci = stats.binomtest(15, 20).proportion_ci(method="wilson")
    assert real["ci"] == [round(ci.low, 4), round(ci.high, 4)]
    assert result["generated_called_real"]["rate"] == 0.55
    assert result["hype_inf"]["rate"] == pytest.approx((5 + 11) / 40)  # reals called generated + generated called real
    low, high = result["hype_inf"]["ci"]
    assert low <= 0.4 <= high
    assert result["pair_accuracy"]["rate"] == 0.75 and result["pair_accuracy"]["n"] == 8
    # a reader who calls every real film real: no spread, p is 0 (not NaN)
    assert summarise(table_of({0: [(True, True)] * 5}))["real_called_real"]["p_answers"] == 0.0


def test_report_by_grade_and_reader_and_incomplete_readers_left_out():
    table = table_of({0: [(True, True), (False, False)], 1: [(True, False), (False, True)]}, {0: [True], 1: [False]})
    full = report(table, n_bootstrap=200)
    assert full["readers"] == 2 and full["readers_by_grade"] == {"consultant": 1, "registrar": 1}
    assert full["by_grade"]["consultant"]["hype_inf"]["rate"] == 0.0
    assert full["per_reader"]["1"]["hype_inf"]["rate"] == 1.0
    partial = table[~((table["reader"] == 1) & (table["screen"] == 1))]  # reader 1 never did the pair
    assert complete_readers(partial, screens=2)["reader"].unique().tolist() == [0]


def test_app_refuses_bad_answers(served):
    url, db = served
    token = db.add_reader()
    api = f"{url}/api/r/{token}/screen"
    assert requests.put(f"{api}/0/answer", json={"position": 0, "real": True}, timeout=10).status_code == 409  # no grade
    requests.post(f"{url}/api/r/{token}/grade", json={"grade": "other"}, timeout=10).raise_for_status()
    assert requests.put(f"{api}/0/answer", json={"position": 6, "real": True}, timeout=10).status_code == 422
    assert requests.put(f"{api}/9/answer", json={"position": 0, "real": True}, timeout=10).status_code == 404
    assert requests.post(f"{url}/api/r/{token}/grade", json={"grade": "boss"}, timeout=10).status_code == 422
    # strict JSON types: each body below differs from a good one in one field's type only
    for field, value in (("real", "yes"), ("real", "true"), ("real", 1), ("position", "0"), ("position", 0.0),
                         ("position", True)):
        response = requests.put(f"{api}/0/answer", json={"position": 0, "real": True, field: value}, timeout=10)
        assert response.status_code == 422, (field, value)
        assert [e["loc"] for e in response.json()["detail"]] == [["body", field]], (field, value)
    extra = requests.put(f"{api}/0/answer", json={"position": 0, "real": True, "x": 1}, timeout=10)
    assert extra.status_code == 422 and extra.json()["detail"][0]["type"] == "extra_forbidden"
    assert db.calls(db.reader(token), 0) == {}  # none of them was stored


def test_served_film_is_the_designed_png(served, study):
    url, db = served
    token = db.add_reader("other")
    image_id = Design(study).screens[0].image_ids[0]
    response = requests.get(f"{url}/r/{token}/image/{image_id}", timeout=10)
    assert response.headers["content-type"] == "image/png" and "last-modified" not in response.headers
    assert response.content == (study / "images" / f"{image_id}.png").read_bytes()
    assert Image.open(io.BytesIO(response.content)).size == (64, 64)



def run_stage(cwd, name: str, params: str, *args: str) -> subprocess.CompletedProcess:
    from conftest import ROOT

    (cwd / "params.yaml").write_text(params)  # checked by the params stage first, as dvc repro does
    check = subprocess.run([sys.executable, str(ROOT / "stages" / "params.py"), "--out", "data/params"], cwd=cwd,
                           capture_output=True, text=True, timeout=300, check=False)
    if check.returncode != 0:
        return check
    return subprocess.run([sys.executable, str(ROOT / "stages" / f"{name}.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, check=False)


def test_stage_analyses_human_answers_and_refuses_another_studys(study, tmp_path):
    from conftest import params_text

    human_only = params_text("reader_study.simulated_readers=[]")
    answers = tmp_path / "reader_answers" / "answers.sqlite"
    db = AnswersDB(answers, Design(study).study_id)
    with running_server(create_app(study, answers)) as url:  # two radiologists, as if in browsers
        for i, grade in enumerate(("consultant", "registrar")):
            answer_study(url, db.add_reader(), grade, brightness, 16, noise=1.0, seed=i)
        db.add_reader("registrar")  # a third never submits: left out
    args = ["--study", str(study), "--answers-dir", "reader_answers", "--gan", "nowhere", "--metrics", "m.json",
            "--answers-csv", "a.csv", "--figure", "f.png"]
    result = run_stage(tmp_path, "reader_study", human_only, *args)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["simulated"] is False and metrics["human"]["readers"] == 2
    assert metrics["human"]["readers_by_grade"] == {"consultant": 1, "registrar": 1}
    assert metrics["simulated_readers"] == {"readers": 0}
    assert set(pd.read_csv(tmp_path / "a.csv")["kind"]) == {"human"}

    answers.unlink()
    AnswersDB(answers, "another-study")
    (tmp_path / "m.json").unlink()
    result = run_stage(tmp_path, "reader_study", human_only, *args)
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "another-study" in result.stderr and not (tmp_path / "m.json").exists()


def test_design_stage_fails_in_one_line(tmp_path):
    from conftest import ROOT, params_text

    params = (ROOT / "params.yaml").read_text()
    args = ["--store", "s", "--split", "x", "--archive", "a", "--gan", "g", "--out", "study"]
    result = run_stage(tmp_path, "reader_design", params_text("reader_study.display_size=10"), *args)
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "reader_study.display_size" in result.stderr and not (tmp_path / "study").exists()
    result = run_stage(tmp_path, "reader_design", params, *args)
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "study").exists()


def test_too_few_films_for_the_design_is_an_input_error(tmp_path):
    from cxrsynth.reader_study.design import Films, plan_truth, write_study

    rng = np.random.default_rng(0)
    few = Films(np.zeros((3, 8, 8), np.uint8), ["a", "b", "c"])
    with pytest.raises(InputError, match="needs .* real films but only 3"):
        write_study(tmp_path, plan_truth(2, 6, 0, 1.0, rng), few, few, 32, rng, {})


def test_the_app_refuses_an_answers_database_linked_into_the_dvc_cache(study, tmp_path):
    """A DVC-tracked answers file checked out as a hard link into the cache is never written to."""
    answers = tmp_path / "answers.sqlite"
    AnswersDB(answers, Design(study).study_id)
    os.link(answers, tmp_path / "cache-copy")
    with pytest.raises(InputError, match="dvc unprotect"):
        AnswersDB(answers, Design(study).study_id)


# --- issue 26: a study is its content; a running server keeps its own; final answers stay final ---


def write_other_pixels(folder) -> None:
    """conftest's ``make_study`` study written again to ``folder`` with every film's lowest bit flipped:
    the same settings, screens, IDs, truths and source names, other pixels (as after a GAN retrains)."""
    from cxrsynth.reader_study.design import Films, plan_truth, write_study

    rng = np.random.default_rng(0)
    screens = plan_truth(2, 6, 3, 0.5, rng)
    real = rng.integers(128, 256, size=(60, 16, 16), dtype=np.uint8) ^ 1
    generated = rng.integers(0, 128, size=(60, 16, 16), dtype=np.uint8) ^ 1
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    write_study(folder, screens, Films(real, [f"real_{i}.png" for i in range(60)]),
                Films(generated, [f"gen_{i}.png" for i in range(60)]), 64, rng, {"test": True})


def design_rows(folder) -> list:
    with sqlite3.connect(folder / DESIGN_FILE) as db:
        return db.execute("SELECT * FROM images ORDER BY id").fetchall() + db.execute("SELECT * FROM screens").fetchall()


def test_a_study_rebuilt_with_other_pixels_is_another_study(study, tmp_path):
    """Same settings, screens, IDs and source names, other pixels: another study ID, and the stage
    refuses answers given to the old one in one line."""
    from conftest import params_text

    answers = tmp_path / "reader_answers" / "answers.sqlite"
    old_id = Design(study).study_id
    db = AnswersDB(answers, old_id)
    with running_server(create_app(study, answers)) as url:
        answer_study(url, db.add_reader(), "consultant", brightness, 16, noise=0.0, seed=0)
    rows = design_rows(study)
    write_other_pixels(study)
    assert design_rows(study) == rows  # only the pixels differ ...
    new_id = Design(study).study_id
    assert new_id != old_id  # ... and the ID says so

    args = ["--study", str(study), "--answers-dir", "reader_answers", "--gan", "nowhere", "--metrics", "m.json",
            "--answers-csv", "a.csv", "--figure", "f.png"]
    result = run_stage(tmp_path, "reader_study", params_text("reader_study.simulated_readers=[]"), *args)
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert old_id in result.stderr and new_id in result.stderr and not (tmp_path / "m.json").exists()


def test_a_changed_or_half_built_design_is_refused_in_one_line(study):
    film = next((study / "images").iterdir())
    png = film.read_bytes()
    film.write_bytes(png[:-1] + bytes([png[-1] ^ 1]))
    with pytest.raises(InputError, match="not those study .* was written with"):
        Design(study)
    film.unlink()
    with pytest.raises(FileNotFoundError, match=film.name):
        Design(study)


def test_the_design_stage_depends_on_the_design_keys_only():
    """dvc.yaml gives reader_design the design's keys, not the section nor its validated file, so an
    analysis value (n_bootstrap) does not rebuild, and delete, the study; the stage reads those keys only."""
    import yaml
    from conftest import ROOT

    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["reader_design"]
    assert "reader_study" not in stage["params"] and "data/params/reader_study.json" not in stage["deps"]
    from cxrsynth.config.reader_study import ReaderDesignParams, ReaderStudyParams

    assert stage["params"] == [f"reader_study.{key}" for key in ReaderDesignParams.model_fields]
    analysis = set(ReaderStudyParams.model_fields) - set(ReaderDesignParams.model_fields)
    assert analysis == {"answers", "simulated_readers", "simulated_noise", "level", "n_bootstrap"}
    design = ReaderStudyParams(n_bootstrap=500).design()
    assert type(design) is ReaderDesignParams and not hasattr(design, "n_bootstrap")
    with pytest.raises(ValueError, match="no screens"):
        ReaderDesignParams(grids=0, pairs=0)


def test_a_running_server_keeps_its_study_when_the_folder_is_rebuilt_or_deleted(served, study):
    url, db = served
    token = db.add_reader("other")
    image_id = Design(study).screens[0].image_ids[0]
    served_png = requests.get(f"{url}/r/{token}/image/{image_id}", timeout=10).content
    assert served_png == (study / "images" / f"{image_id}.png").read_bytes()
    write_other_pixels(study)  # dvc repro under the server: same IDs, other films
    assert (study / "images" / f"{image_id}.png").read_bytes() != served_png
    assert requests.get(f"{url}/r/{token}/image/{image_id}", timeout=10).content == served_png
    shutil.rmtree(study)
    assert requests.get(f"{url}/r/{token}/image/{image_id}", timeout=10).content == served_png
    assert requests.get(f"{url}/r/{token}/screen/0", timeout=10).status_code == 200


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_logs_no_token_and_serves_the_study_its_answers_belong_to(study, tmp_path):
    """The server's output never holds a token (not even one sent percent-encoded); ``add-reader`` and
    ``serve`` keep a truth-less copy of the study beside the answers and use it after the design is
    rebuilt."""
    import http.client
    import signal

    answers = tmp_path / "answers" / "answers.sqlite"
    cli = [sys.executable, "-m", "cxrsynth.reader_study"]
    where = ["--study", str(study), "--answers", str(answers)]
    link = subprocess.run([*cli, "add-reader", *where, "--grade", "other"], capture_output=True, text=True,
                          check=True).stdout.strip()
    token = link.rsplit("/", 1)[1]
    old_id, image_id = Design(study).study_id, Design(study).screens[0].image_ids[0]
    png = (study / "images" / f"{image_id}.png").read_bytes()
    write_other_pixels(study)  # dvc repro after the first link went out

    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen([*cli, "serve", *where, "--port", str(port)], stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{url}/r/{token}", timeout=5)
                break
            except requests.ConnectionError:
                assert server.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        served = requests.get(f"{url}/r/{token}/image/{image_id}", timeout=10).content
        requests.get(f"{url}/api/r/{token}", timeout=10).raise_for_status()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", f"/r%2F{token}")  # routed as /r/<token>, logged as sent
        assert connection.getresponse().status == 303  # the landing page: on to the first screen
        connection.close()
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    output = log.read_text()
    assert token not in output and "Uvicorn running" in output

    assert served == png  # the study the link was issued for, not the rebuilt one
    assert f"now study {Design(study).study_id}" in output and old_id in output
    pinned = tmp_path / "answers" / "answers.study"
    assert Design(pinned).study_id == old_id
    assert truth_of(pinned) == {} and truth_of(study) != {}  # the copy holds no truth
    again = subprocess.run([*cli, "add-reader", *where], capture_output=True, text=True, check=True)
    assert again.stdout.startswith("http") and f"belongs to study {old_id}" in again.stderr
    assert AnswersDB(answers, old_id).reader(again.stdout.strip().rsplit("/", 1)[1]) is not None


def test_a_new_answers_database_pins_the_study_of_the_day(study, tmp_path):
    """The README's way to start a new study: move the old database away. Its copy left behind is
    not served to the new database's readers."""
    from cxrsynth.reader_study.app import pinned_study

    answers = tmp_path / "answers.sqlite"
    old_id = Design(pinned_study(study, answers)).study_id
    write_other_pixels(study)
    assert Design(pinned_study(study, answers)).study_id == old_id  # the database's own study
    answers.rename(tmp_path / "old-study.sqlite")
    assert Design(pinned_study(study, answers)).study_id == Design(study).study_id != old_id


def answer_every_screen(url: str, token: str, design: Design) -> None:
    """Grade entered and every screen answered (position 0 called real) and closed; not submitted."""
    requests.post(f"{url}/api/r/{token}/grade", json={"grade": "registrar"}, timeout=10).raise_for_status()
    for screen in design.screens:
        api = f"{url}/api/r/{token}/screen/{screen.index}"
        requests.put(f"{api}/answer", json={"position": 0, "real": True}, timeout=10).raise_for_status()
        requests.post(f"{api}/done", timeout=10).raise_for_status()


def stored_answers(db: AnswersDB) -> list[tuple]:
    with sqlite3.connect(db.path) as con:
        return con.execute("SELECT * FROM answers ORDER BY reader_id, screen, position").fetchall()


def test_no_answer_changes_after_submit_even_from_a_request_already_under_way(served, study, monkeypatch):
    """A PUT that found the reader not yet submitted, then waited while Submit committed, is refused
    (409) and changes nothing; the check is inside the write's transaction."""
    url, db = served
    token = db.add_reader()
    answer_every_screen(url, token, Design(study))
    before = stored_answers(db)

    original, armed = AnswersDB.reader, threading.Event()
    looked_up, submitted = threading.Event(), threading.Event()

    def reader_then_wait(self, token):
        found = original(self, token)
        if armed.is_set():
            armed.clear()
            looked_up.set()
            submitted.wait(10)  # the PUT holds a stale "not submitted" while Submit runs
        return found

    monkeypatch.setattr(AnswersDB, "reader", reader_then_wait)
    armed.set()
    with ThreadPoolExecutor(max_workers=1) as pool:
        put = pool.submit(requests.put, f"{url}/api/r/{token}/screen/0/answer", json={"position": 0, "real": False},
                          timeout=30)
        assert looked_up.wait(10)
        assert requests.post(f"{url}/api/r/{token}/submit", timeout=10).status_code == 200
        submitted.set()
        late = put.result(timeout=30)
    assert late.status_code == 409 and late.json()["detail"] == "answers already submitted"
    assert stored_answers(db) == before


def test_concurrent_writers_change_nothing_after_submit(served, study, monkeypatch):
    """Writers answering as fast as they can on a slow server (20 ms between looking a token up and
    answering) while the reader submits: every answer stored was given before the submission
    (answered_at <= submitted_at), and the refused ones get 409."""
    url, db = served
    token = db.add_reader()
    answer_every_screen(url, token, Design(study))
    original, stop = AnswersDB.reader, threading.Event()

    def slow_reader(self, token):
        found = original(self, token)
        time.sleep(0.02)
        return found

    monkeypatch.setattr(AnswersDB, "reader", slow_reader)

    def keep_answering(position: int) -> list[int]:
        codes = []
        with requests.Session() as http:
            while not stop.is_set():
                codes.append(http.put(f"{url}/api/r/{token}/screen/1/answer",
                                      json={"position": position, "real": len(codes) % 2 == 0}, timeout=30).status_code)
        return codes

    with ThreadPoolExecutor(max_workers=6) as pool:
        writers = [pool.submit(keep_answering, p) for p in range(6)]
        time.sleep(0.3)
        assert requests.post(f"{url}/api/r/{token}/submit", timeout=30).status_code == 200
        time.sleep(0.3)
        stop.set()
        codes = [c for w in writers for c in w.result(timeout=60)]
    assert set(codes) == {200, 409}
    with sqlite3.connect(db.path) as con:
        (submitted_at,) = con.execute("SELECT submitted_at FROM readers").fetchone()
        (last,) = con.execute("SELECT MAX(answered_at) FROM answers").fetchone()
    assert last <= submitted_at


def test_closing_a_screen_never_overwrites_a_tick_that_came_first(served, study, monkeypatch):
    """Next on a grid calls its unticked films generated; a tick stored while Next was under way stays."""
    url, db = served
    token = db.add_reader("consultant")
    api = f"{url}/api/r/{token}/screen/0"
    requests.put(f"{api}/answer", json={"position": 0, "real": True}, timeout=10).raise_for_status()

    original, read, ticked = AnswersDB.calls, threading.Event(), threading.Event()

    def calls_then_wait(self, reader, screen):
        found = original(self, reader, screen)
        read.set()
        ticked.wait(10)  # a slow request: the tick below lands between this read and any write after it
        return found

    monkeypatch.setattr(AnswersDB, "calls", calls_then_wait)
    with ThreadPoolExecutor(max_workers=1) as pool:
        done = pool.submit(requests.post, f"{api}/done", timeout=30)
        while not (read.is_set() or done.done()):
            time.sleep(0.01)
        requests.put(f"{api}/answer", json={"position": 3, "real": True}, timeout=30).raise_for_status()
        ticked.set()
        done.result(timeout=30).raise_for_status()
    monkeypatch.setattr(AnswersDB, "calls", original)
    assert db.calls(db.reader(token), 0) == {p: p in (0, 3) for p in range(6)}


def test_bodies_over_the_limit_get_413_before_the_token_is_checked(served):
    import http.client

    url, db = served
    token = db.add_reader("other")
    port = int(url.rsplit(":", 1)[1])
    for who in ("not-a-token", token):
        # a declared length over the limit is refused before a byte of the body is sent (the app
        # waiting for the body would time out here)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.putrequest("PUT", f"/api/r/{who}/screen/0/answer")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(10 ** 9))
        connection.endheaders()
        assert connection.getresponse().status == 413, who
        connection.close()
        # a chunked body (no length) is refused once it passes the limit
        chunks = (b" " * 1024 for _ in range(64))
        response = requests.put(f"{url}/api/r/{who}/screen/0/answer", data=chunks, timeout=10,
                                headers={"Content-Type": "application/json"})
        assert response.status_code == 413, who
    from cxrsynth.reader_study.app import MAX_BODY_BYTES

    padded = b'{"position": 1, "real": true}' + b" " * (MAX_BODY_BYTES - 40)
    assert requests.put(f"{url}/api/r/{token}/screen/0/answer", data=padded, timeout=10,
                        headers={"Content-Type": "application/json"}).status_code == 200
    assert db.calls(db.reader(token), 0) == {1: True}
