"""The pretrained models that ship in the package: cards, hashes, answers, the command line, the wheel."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, requires_mirror
from matdl_nb import zoo
from matdl_nb.jobs import JobError, predict_job

SHIPPED = ("formation-energy", "band-gap", "perovskite-energy", "xrd-crystal-system", "stem-wse2", "mat2vec-small")
ENSEMBLES = ("formation-energy", "band-gap", "perovskite-energy")  # a value and a spread


def matdl(*words, env=None):
    return subprocess.run([sys.executable, "-c", "import sys; from matdl_nb.cli import main; sys.exit(main())", *map(str, words)],
                          capture_output=True, text=True, timeout=300, env=env)


def test_the_shipped_models_are_there():
    assert set(SHIPPED) <= set(zoo.names())
    assert list(zoo.models().name) == zoo.names()


@pytest.mark.parametrize("name", SHIPPED)
def test_card_says_what_a_user_needs(name):
    c = zoo.card(name)
    for key in ("task", "predicts", "summary", "split", "model", "limits", "calibration", "uncertainty"): assert c[key], key
    assert c["input"] in zoo.PREDICTORS and name in zoo.BUILDERS
    assert c["data"]["licence"] and c["data"]["citation"] and c["data"]["rows"] > 1000
    assert c["test"]["rows"] >= 100 and c["test"]["value"] > 0 and c["test"]["baseline_value"] > 0 and c["test"]["better"] in ("lower", "higher")
    assert c["training"]["command"] == f"python bench/zoo.py {name}" and c["training"]["minutes"] > 0
    assert all(len(f["sha256"]) == 64 for f in c["files"].values()) and len(c["examples"]) >= 2
    text = zoo.show_card(name)
    assert c["data"]["licence"] in text and "python bench/zoo.py" in text and "limits" in text


@pytest.mark.parametrize("name", SHIPPED)
def test_model_answers_its_cards_examples(name):
    model = zoo.load(name)  # checks the hashes
    answers = zoo.example_answers(model)
    assert zoo.examples_differ(model.card["examples"], answers) <= 1e-4
    if name in ENSEMBLES: assert all(row["uncertainty"] > 0 for row in answers.values())


def test_physics_the_models_should_know():
    fe = zoo.load("formation-energy").predict(["Al2O3", "NaCl", "Au", "Cu"]).set_index("formula").iloc[:, 0]
    assert fe["Al2O3"] < -2.5 and fe["NaCl"] < -1.5  # strongly bound oxides and halides
    assert abs(fe["Au"]) < 0.3 and abs(fe["Cu"]) < 0.3  # an element is its own reference state
    gap = zoo.load("band-gap").predict(["Cu", "Ag", "Si", "LiF", "CaF2"]).set_index("formula").iloc[:, 0]
    assert (gap >= 0).all() and gap["Cu"] < 0.5 and gap["Ag"] < 0.5  # metals
    assert 0.5 < gap["Si"] < 2 and gap["LiF"] > 4 and gap["CaF2"] > 4  # a semiconductor, two wide-gap fluorides


def test_the_other_models_know_their_topics():
    perovskites = zoo.load("perovskite-energy").predict(zoo.example_inputs("structures")).set_index("formula")
    value = perovskites[zoo.load("perovskite-energy").column]
    assert value["SrTiO3"] < value["LaAlO3"] + 1 and (perovskites.uncertainty > 0).all()  # a spread for every answer
    xrd = zoo.load("xrd-crystal-system").predict(zoo.example_inputs("patterns")).set_index("input")
    assert xrd.loc["NaCl rock salt (simulated)", "crystal system"] == "cubic" and xrd.loc["Si diamond (simulated)", "crystal system"] == "cubic"
    assert ((xrd.probability > 0) & (xrd.probability <= 1)).all() and set(xrd.answer) <= {*xrd["crystal system"], "uncertain"}
    stem = zoo.load("stem-wse2")
    images = zoo.example_inputs("images")
    found = stem.predict(images)
    assert (found.metal > 100).all() and (found["chalcogen pair"] > 100).all()  # a 256 x 256 image holds hundreds of columns
    noise = np.random.default_rng(0).normal(size=(256, 256)).astype(np.float32)
    assert stem.predict([noise]).uncertainty.iloc[0] > found.uncertainty.max()  # unlike training: more entropy
    words = zoo.load("mat2vec-small").predict(["Fe", "cathode"]).set_index("word")
    assert words.loc["Fe", "nearest"] in {"Co", "Ni", "Mn", "Cr", "Fe2O3", "Cu"} and "anode" in words.loc["cathode", "next 4"] + words.loc["cathode", "nearest"]


def test_weights_fit_the_budget():
    total = sum(f["bytes"] for n in zoo.names() for f in zoo.card(n)["files"].values())
    assert total <= 50e6, f"{total / 1e6:.1f} MB of weights; the package allows 50"


def test_corrupted_weights_and_unknown_names_give_clear_errors(tmp_path, monkeypatch):
    copy = tmp_path / "pretrained"
    shutil.copytree(zoo.ZOO_DIR, copy)
    with open(copy / "band-gap" / "member-1.pt", "r+b") as f: f.seek(300); f.write(b"\xff\xfe")
    monkeypatch.setattr(zoo, "ZOO_DIR", copy)
    with pytest.raises(zoo.ZooError, match=r"member-1\.pt is corrupted"): zoo.load("band-gap")
    (copy / "formation-energy" / "member-0.pt").unlink()
    with pytest.raises(zoo.ZooError, match=r"member-0\.pt is missing"): zoo.load("formation-energy")
    with pytest.raises(zoo.ZooError, match="the shipped models are: band-gap, formation-energy, mat2vec-small"): zoo.load("formation_energy")
    with pytest.raises(JobError, match="nor a pretrained model"): predict_job(tmp_path / "nowhere", ["NaCl"])


def test_batch_answers_what_it_can_and_names_the_rest(tmp_path):
    (tmp_path / "mine.csv").write_text("formula,note\nLiFePO4,a\nFe2O3,b\n")
    table = predict_job("formation-energy", [str(tmp_path / "mine.csv"), "Xx2O3", "NaCl"], out=tmp_path / "out")
    assert list(table.formula) == ["LiFePO4", "Fe2O3", "NaCl"]
    assert [item for item, _ in table.attrs["failed"]] == ["Xx2O3"]
    assert (tmp_path / "out" / "predictions.csv").read_text().count("\n") == 4


def test_batches_of_structures_patterns_images_and_words_name_their_bad_inputs(tmp_path):
    from pymatgen.io.cif import CifWriter
    CifWriter(zoo.example_inputs("structures")["SrTiO3 (ideal cubic, a = 3.905 A)"]).write_file(tmp_path / "SrTiO3.cif")
    (tmp_path / "broken.cif").write_text("data_nothing\n_cell_length_a 4\n")
    table = predict_job("perovskite-energy", [str(tmp_path / "SrTiO3.cif"), str(tmp_path / "broken.cif")])
    assert list(table.formula) == ["SrTiO3"] and [Path(i).name for i, _ in table.attrs["failed"]] == ["broken.cif"]
    grid, pattern = zoo.example_inputs("patterns")["NaCl rock salt (simulated)"]
    np.savetxt(tmp_path / "NaCl.xy", np.c_[grid, 1000 * pattern + 50])
    (tmp_path / "empty.xy").write_text("")
    table = predict_job("xrd-crystal-system", [str(tmp_path / "NaCl.xy"), str(tmp_path / "empty.xy")])
    assert len(table) == 1 and [Path(i).name for i, _ in table.attrs["failed"]] == ["empty.xy"]
    np.save(tmp_path / "image.npy", next(iter(zoo.example_inputs("images").values())))
    table = predict_job("stem-wse2", [str(tmp_path / "image.npy"), str(tmp_path / "missing.png")])
    assert len(table) == 1 and table.metal.iloc[0] > 100 and len(table.attrs["failed"]) == 1
    table = predict_job("mat2vec-small", ["cathode", "qwertyuiop"])
    assert list(table.word) == ["cathode"] and "qwertyuiop" in table.attrs["failed"][0][1]
    with pytest.raises(zoo.ZooError, match="qwertyuiop"): zoo.load("mat2vec-small").predict(["qwertyuiop"])


def test_command_line_lists_shows_and_predicts(tmp_path):
    listed = matdl("models")
    assert listed.returncode == 0 and all(n in listed.stdout for n in SHIPPED)
    shown = matdl("models", "show", "band-gap")
    assert shown.returncode == 0 and "matbench_expt_gap" in shown.stdout and "SHA-256" in shown.stdout
    done = matdl("predict", "formation-energy", "LiFePO4", "Fe2O3")
    assert done.returncode == 0, done.stderr
    rows = [l for l in done.stdout.splitlines() if l.startswith("| LiFePO4") or l.startswith("| Fe2O3")]
    assert len(rows) == 2 and all("±" in r for r in rows)
    from pymatgen.io.cif import CifWriter
    CifWriter(zoo.example_inputs("structures")["BaZrO3 (ideal cubic, a = 4.19 A)"]).write_file(tmp_path / "BaZrO3.cif")
    done = matdl("predict", "perovskite-energy", tmp_path / "BaZrO3.cif")
    assert done.returncode == 0 and "BaZrO3" in done.stdout and "±" in done.stdout, done.stderr
    done = matdl("predict", "mat2vec-small", "cathode")
    assert done.returncode == 0 and "nearest" in done.stdout, done.stderr
    wrong = matdl("predict", "formation-energi", "Fe2O3")
    assert wrong.returncode == 1 and "formation-energy" in wrong.stderr and "Traceback" not in wrong.stderr
    assert matdl("models", "show", "nope").returncode == 1


@requires_mirror
def test_every_card_is_recomputed_from_its_test_rows():
    for name in zoo.names():
        check = zoo.check_card(name)
        assert check["ok"], check


def test_a_built_wheel_carries_the_weights(tmp_path):
    source = tmp_path / "source"  # a copy: building in the project would leave build/ and egg-info behind
    shutil.copytree(ROOT / "matdl_nb", source / "matdl_nb", ignore=shutil.ignore_patterns("__pycache__"))
    for file in ("pyproject.toml", "setup.py", "README.md"): shutil.copy(ROOT / file, source / file)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                           str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("matdl_nb-*.whl"))
    inside = set(zipfile.ZipFile(wheel).namelist())
    for name in zoo.names():
        for file in ["card.json", "config.json", *zoo.card(name)["files"]]:
            assert f"matdl_nb/pretrained/{name}/{file}" in inside, f"{name}/{file} is not in {wheel.name}"
