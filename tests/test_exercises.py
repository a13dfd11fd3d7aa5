"""The exercises' self-checks: a right answer passes, each common mistake gets its own explanation, a placeholder is 'not done'."""
import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import torch

from matdl_nb.exercises import EXERCISES, KINDS, NotDone, WrongAnswer, check_exercise


def right(id, answer, **context):
    assert isinstance(check_exercise(id, answer, **context), str)


def wrong(id, answer, says, **context):
    with pytest.raises(WrongAnswer, match=says): check_exercise(id, answer, **context)


def test_placeholders_are_not_done_with_the_hint(tmp_path, monkeypatch):
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("MATDL_COURSE_LOG", str(log))
    for answer in (None, (None, None), (0.5, None), ...):
        with pytest.raises(NotDone, match="Exercise 10.2 .predict, then run. is not done yet. Hint: write your guess"):
            check_exercise("10.2", answer)
    wrong("10.2", (0.5, 4), "number of oxygen atoms")
    right("10.2", (0.5, 4 / 7))
    assert [json.loads(line)["status"] for line in log.read_text().splitlines()] == ["not done"] * 4 + ["wrong", "passed"]
    with pytest.raises(KeyError, match="no exercise '1.1'"): check_exercise("1.1", 1)


def test_registry_covers_every_kind():
    assert {e.kind for e in EXERCISES.values()} == set(KINDS) and len(EXERCISES) >= 30


def test_composition_checks():
    predict = lambda model, x: x.sum(1) * model
    x_train, x_test = np.ones((4, 2)), np.full((3, 2), 2.0)
    y_train, y_test = np.array([2.0, 2.0, 2.0, 3.0]), np.array([1.0, 6.0, 4.0])
    ctx = dict(predict=predict, model=1.0, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    right("10.1", np.abs(4.0 - y_test).mean(), **ctx)
    wrong("10.1", np.abs(2.0 - y_train).mean(), "computed on the training rows", **ctx)
    wrong("10.1", abs((4.0 - y_test).mean()), "signed errors", **ctx)
    table = pd.DataFrame({"mae": [1.0]}, index=["ElemNet"])
    table.loc["median of train", "mae"] = np.abs(y_test - np.median(y_train)).mean()
    right("10.3", table, y_train=y_train, y_test=y_test)
    table.loc["median of train", "mae"] = np.abs(y_test - np.median(y_test)).mean()
    wrong("10.3", table, "median of the test targets", y_train=y_train, y_test=y_test)
    wrong("10.3", table.drop("median of train"), "no row 'median of train'", y_train=y_train, y_test=y_test)


def test_graph_checks():
    from matdl_nb.gnn import mean_pool
    right("21.1", (6, 12)); wrong("21.1", (6, 6), "stored twice")
    right("21.2", mean_pool)
    wrong("21.2", lambda x, i, n: x.mean(0, keepdim=True).expand(len(n), -1), "mean of the whole batch")
    alloys = pd.DataFrame({"lattice": ["fcc", "bcc", "hcp", "fcc"], "energy_per_atom": [-1.0, 0.0, -0.5, -2.0]})
    right("21.3", "fcc", alloys=alloys); wrong("21.3", "bcc", "highest mean", alloys=alloys)
    wrong("21.3", "hcp", "fcc has the lowest", alloys=alloys); wrong("21.3", "bct", "not a lattice", alloys=alloys)


def test_xrd_checks():
    right("30.1", (10, 10.0)); wrong("30.1", (10, 0.1), "upside down")
    context = dict(true=[0, 0, 1, 1], predicted=[0, 0, 1, 0], systems=["cubic", "hexagonal"])
    right("30.2", "hexagonal", **context); wrong("30.2", "cubic", "the easiest", **context)
    bragg = lambda d, wavelength=1.5406: 2 * np.degrees(np.arcsin(wavelength / (2 * d)))
    right("30.3", bragg)
    wrong("30.3", lambda d: bragg(d) / 2, "that is θ"); wrong("30.3", lambda d: np.radians(bragg(d)), "radians")
    two_theta = lambda d, lam: 2 * np.degrees(np.arcsin(lam / (2 * np.array(d))))
    split = two_theta([1.5, 1.0], 1.54439) - two_theta([1.5, 1.0], 1.5406)
    right("31.1", ("grows", split)); wrong("31.1", ("grows", split / 2), "splittings in θ")
    from matdl_nb.xrd_measured import remove_background
    angles = np.arange(20, 80, 0.02)
    counts = 300 + 200 * np.exp(-((angles - 25) / 6) ** 2) + 5000 * np.exp(-0.5 * ((angles - 44.2) / 0.07) ** 2)
    corrected, _ = remove_background(angles, counts)
    right("31.2", corrected / corrected.max(), two_theta=angles, intensity=counts)
    wrong("31.2", counts / counts.max(), "background is still in", two_theta=angles, intensity=counts)
    wrong("31.2", remove_background(angles, counts / counts.max())[0], "normalised the raw counts first", two_theta=angles, intensity=counts)
    right("31.3", 44.2, two_theta=angles, intensity=counts); wrong("31.3", 30.0, "peaks at 44.2", two_theta=angles, intensity=counts)
    right("32.1", ("cubic", "tetragonal")); wrong("32.1", ("cubic", "cubic"), "tetragonal has 68")
    from matdl_nb.xrd_classifier import crystal_family
    right("32.2", crystal_family); wrong("32.2", lambda s: s, "belong to the hexagonal family")
    scores = pd.DataFrame({"crystal_system": [0.5, 0.3, 0.4, 0.2]},
                          index=pd.MultiIndex.from_product([["random crystals", "held-out real structures"], ["a", "b"]]))
    right("32.3", "held-out real structures", scores=scores); wrong("32.3", "random crystals", "scores 30%", scores=scores)


def test_microscopy_checks():
    from matdl_nb.micrographs import column_intensities, simulate_micrographs
    levels = column_intensities("WSe2")
    right("40.1", ("W", levels["chalcogen pair"] / levels["metal"]))
    wrong("40.1", ("W", levels["metal"] / levels["chalcogen pair"]), "upside down")
    _, masks = simulate_micrographs(50, "two_phase", size=64, seed=0)
    fractions = (masks == 1).reshape(50, -1).mean(1)
    right("40.2", fractions); wrong("40.2", 1 - fractions, "fraction of the matrix"); wrong("40.2", fractions.mean(), "one fraction per image")
    right("40.3", lambda a, p: a / p); wrong("40.3", lambda a, p: a * p, "divide")
    right("41.1", lambda t, p, k: ((t == k) & (p == k)).sum() / ((t == k) | (p == k)).sum())
    wrong("41.1", lambda t, p, k: ((t == k) & (p == k)).sum() / ((t == k).sum() + (p == k).sum()), "overlap twice")
    wrong("41.1", lambda t, p, k: 2 * ((t == k) & (p == k)).sum() / ((t == k).sum() + (p == k).sum()), "Dice")
    right("41.2", ((104, 136), (104, 136))); wrong("41.2", ((104, 136), (100, 130)), "before padding")
    doses = pd.DataFrame({"F1 dopant": [0.5, 0.9, 1.0]}, index=[25.0, 100.0, 500.0])
    right("41.3", 25.0, dose_table=doses); wrong("41.3", 100.0, "dose 25 has the lower", dose_table=doses)


def test_text_uncertainty_and_scale_checks():
    right("50.1", ("TiO2", ["TiO2"] * 3)); wrong("50.1", ("TiO2", ["O2Ti", "Ti1O2", "TiO2"]), "these are the inputs")
    right("50.2", lambda u, v: u @ v / np.linalg.norm(u) / np.linalg.norm(v)); wrong("50.2", lambda u, v: u @ v, "plain dot product")
    from matdl_nb.text import mat2vec_element_vectors
    table = mat2vec_element_vectors()
    unit = table.div(np.linalg.norm(table, axis=1), axis=0)
    nearest = list((unit @ unit.loc["Fe"]).drop("Fe").nlargest(3).index)
    right("50.3", nearest); wrong("50.3", ["Fe"] + nearest[:2], "leave Fe itself out")
    from matdl_nb.uncertainty import combine_gaussians, interval_coverage
    y = np.random.default_rng(0).normal(0, 1, 10_000)
    right("60.1", (0.68, interval_coverage(y, 0 * y, 0 * y + 1, level=0.6827)))
    wrong("60.1", (0.68, interval_coverage(y, 0 * y, 0 * y + 2, level=0.6827)), "twice the true spread")
    right("60.2", combine_gaussians); wrong("60.2", lambda m, s: (m.mean(0), s.mean(0)), "only the members' own")
    wrong("60.2", lambda m, s: (m.mean(0), m.std(0)), "only the disagreement")
    cases = {"confident": np.array([[[0.98, 0.01, 0.01]]] * 4), "agreeing but unsure": np.full((4, 1, 3), 1 / 3),
             "disagreeing": np.array([[[1, 0, 0]], [[0, 1, 0]], [[0, 0, 1]], [[1, 0, 0]]], dtype=float)}
    right("60.3", "agreeing but unsure", cases=cases)
    wrong("60.3", "disagreeing", "passes disagree", cases=cases); wrong("60.3", "confident", "it is sure", cases=cases)
    right("70.1", (167, 167)); wrong("70.1", (166, 166), "drops two rows")

    def key(s, wrap=True):
        digest = hashlib.sha256()
        for part in (s.lattice.matrix, np.array(s.atomic_numbers), np.mod(s.frac_coords, 1.0) if wrap else s.frac_coords):
            digest.update(np.round(part, 6).tobytes())
        return digest.hexdigest()
    right("70.2", key); wrong("70.2", lambda s: key(s, wrap=False), "gets a new key")
    wrong("70.2", lambda s: hashlib.sha256(np.round(np.mod(s.frac_coords, 1), 6).tobytes()).hexdigest(), "NaCl and KCl")
    net = torch.nn.Linear(10, 5)
    right("70.3", 55 * 2 / 1e6, model=net); wrong("70.3", 55 * 4 / 1e6, "float32", model=net); wrong("70.3", 110, "that is bytes", model=net)
