"""Crystal systems of measured patterns: templates against reflection_list, lattices drawn within each crystal system,
random crystals built by workers and cached, real structure sources, the two networks, prediction, the benchmark."""
import re

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from conftest import requires_mirror
from matdl_nb.data import CRYSTAL_SYSTEMS, StructureParseError, crystal_system, load_dataset
from matdl_nb.xrd import SPACE_GROUP_CLASSES, XRDError, XRDNet, reflection_list, two_theta_grid
from matdl_nb.xrd_classifier import (LogSpacing, ParkCNN, RatioCNN, ReflectionTemplates, predict_pattern,
                                     random_crystal_templates, ratio_fingerprint, render_templates, standard_cell, strain_lattices,
                                     swap_elements, symmetry_learner, symmetry_scores, training_templates)
from matdl_nb.xrd_measured import Diffractometer

GRID = (10.0, 80.0, 0.04)
STRUCTURES = {
    "NaCl": Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    "wurtzite ZnO": Structure.from_spacegroup("P6_3mc", Lattice.hexagonal(3.25, 5.21), ["Zn", "O"], [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.382]]),
    "monoclinic": Structure.from_spacegroup("P2_1/c", Lattice.monoclinic(5.1, 6.3, 7.7, 104), ["Zn", "S"], [[0.1, 0.2, 0.3], [0.3, 0.1, 0.4]]),
    "triclinic": Structure(Lattice.from_parameters(4.1, 5.3, 6.2, 81, 97, 103), ["Ba", "Ti", "O", "O"],
                           [[0.1, 0.2, 0.3], [0.6, 0.5, 0.4], [0.3, 0.9, 0.1], [0.8, 0.1, 0.7]]),
}


def _compare(templates, lattice, structures):
    "Largest position (degrees) and intensity (strongest = 1) differences against reflection_list of the same lattices."
    two_theta, intensity, _ = templates.reflections(lattice)
    worst = [0.0, 0.0]
    for i, structure in enumerate(structures):
        cell, _ = standard_cell(structure)
        strained = Structure(Lattice.from_parameters(*lattice[i].double().tolist()), cell.species, cell.frac_coords)
        reference = reflection_list(strained)
        table = {tuple(h): (t, y) for h, t, y in zip(reference["hkl"], reference["two_theta"], reference["intensity"])}
        kept = torch.where(intensity[i] > 0)[0].tolist()
        keys = [tuple(int(v) for v in templates.arrays["hkl"][i, j]) for j in kept]
        top = max(table[k][1] for k in keys)
        for j, k in zip(kept, keys):
            worst[0] = max(worst[0], abs(table[k][0] - float(two_theta[i, j])))
            worst[1] = max(worst[1], abs(table[k][1] / top - float(intensity[i, j])))
    return worst


def test_templates_agree_with_reflection_list_on_any_lattice():
    structures = list(STRUCTURES.values())
    templates = ReflectionTemplates.from_structures(structures, progress=False)
    assert templates.system.tolist() == [CRYSTAL_SYSTEMS.index(s) for s in ("cubic", "hexagonal", "monoclinic", "triclinic")]
    assert max(_compare(templates, templates.arrays["lattice"], structures)) < 1e-4
    torch.manual_seed(0)
    assert max(_compare(templates, strain_lattices(templates.arrays["lattice"], templates.system), structures)) < 1e-4


def test_strain_changes_only_what_the_system_leaves_free():
    torch.manual_seed(1)
    n = 700
    system = torch.arange(n) % 7
    lattice = torch.tensor([5.0, 5.0, 5.0, 90.0, 90.0, 90.0]).repeat(n, 1)
    lattice[system == CRYSTAL_SYSTEMS.index("hexagonal"), 5] = 120.0
    out = strain_lattices(lattice, system, 0.1, 4.0)
    a, b, c, alpha, beta, gamma = out.T
    for name in ("tetragonal", "trigonal", "hexagonal", "cubic"): assert torch.equal(a[system == CRYSTAL_SYSTEMS.index(name)], b[system == CRYSTAL_SYSTEMS.index(name)])
    cubic = system == CRYSTAL_SYSTEMS.index("cubic")
    assert torch.equal(a[cubic], c[cubic]) and not torch.equal(a, lattice[:, 0])
    above = system >= CRYSTAL_SYSTEMS.index("orthorhombic")
    assert torch.equal(out[above, 3:], lattice[above, 3:]), "angles are fixed from orthorhombic up"
    mono = system == CRYSTAL_SYSTEMS.index("monoclinic")
    assert torch.equal(alpha[mono], lattice[mono, 3]) and not torch.equal(beta[mono], lattice[mono, 4])
    assert ((out[:, :3] / lattice[:, :3] - 1).abs() <= 0.1 + 1e-6).all()


def test_strained_prototypes_keep_their_space_group():
    prototypes = load_dataset("aflow_prototypes").iloc[::5]
    templates = ReflectionTemplates.from_structures(list(prototypes.structure), progress=False)
    torch.manual_seed(2)
    drawn = strain_lattices(templates.arrays["lattice"], templates.system)
    for i, structure in enumerate(prototypes.structure):
        cell, group = standard_cell(structure)
        strained = Structure(Lattice.from_parameters(*drawn[i].double().tolist()), cell.species, cell.frac_coords)
        assert SpacegroupAnalyzer(strained, symprec=0.01).get_space_group_number() == group, prototypes.aflow_label.iloc[i]


def test_swap_elements_keeps_distinct_elements():
    templates = ReflectionTemplates.from_structures([STRUCTURES["triclinic"], STRUCTURES["NaCl"]], progress=False)
    rows = templates.arrays["scattering"]
    assert torch.equal(swap_elements(rows, 0.0), rows)
    torch.manual_seed(3)
    swapped = swap_elements(rows, 1.0)
    z = swapped[:, :, 0]
    assert ((z > 0).sum(1) == (rows[:, :, 0] > 0).sum(1)).all() and len(set(z[0, :3].tolist())) == 3
    two_theta, _, _ = templates.reflections(scattering=swapped)
    torch.testing.assert_close(two_theta, templates.reflections()[0]), "new atoms move no peak"


def test_random_crystals_balanced_built_by_workers_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("MATDL_HOME", str(tmp_path))
    templates, stats = random_crystal_templates(28, seed=4, workers=2, chunk_size=14, progress=False)
    assert len(templates) == 28 and np.bincount(templates.system.numpy(), minlength=7).tolist() == [4] * 7
    assert stats["attempts"] >= 28 and set(templates.source) == {"random"}
    groups = set(templates.arrays["space_group"].tolist())
    assert groups <= set(range(1, 231)) and groups - set(SPACE_GROUP_CLASSES), "space groups beyond the XRD notebook's 36"
    files = sorted((tmp_path / "xrd" / "templates").iterdir())
    assert len(files) == 2 and all(f.suffix == ".npz" for f in files), "two whole chunks, no temporary file left"
    again, _ = random_crystal_templates(14, seed=4, workers=2, chunk_size=14, progress=False)
    assert torch.equal(again.arrays["hkl"], templates.arrays["hkl"][:14])


def test_bad_structures_are_named(tmp_path):
    (tmp_path / "broken.cif").write_text("data_x\n_cell_length_a 3\n")
    with pytest.raises(StructureParseError, match="broken.cif"):  # data.read_structure, the toolkit's one structure reader
        ReflectionTemplates.from_structures([tmp_path / "broken.cif"], progress=False)
    disordered = STRUCTURES["NaCl"].copy(); disordered.replace_species({"Na": {"Na": 0.5, "K": 0.5}})
    with pytest.raises(XRDError, match="partially occupied"): ReflectionTemplates.from_structures([disordered], progress=False)


def test_log_axis_turns_a_bigger_cell_into_a_shift():
    grid = two_theta_grid(*GRID)
    clean = Diffractometer(grid, u=(0, 0), v=(0, 0), w=(0.002, 0.002), ka2=0, texture=0, hump=(0, 0), slope=(0, 0), counts=(1e8, 1e8),
                           partial=0, zero_shift=0, displacement=0, strain=0)
    salt = ReflectionTemplates.from_structures([STRUCTURES["NaCl"]] * 2, progress=False)
    lattice = salt.arrays["lattice"].clone(); lattice[1, :3] *= 1.1
    torch.manual_seed(0)
    on_log = LogSpacing(GRID)(clean(*salt.reflections(lattice)))
    scores = torch.stack([(on_log[0, 0].roll(-k) * on_log[1, 0]).sum() for k in range(0, 200)])
    shift = int(scores.argmax())
    expected = np.log(1.1) / ((np.log(np.sin(np.radians(40))) - np.log(np.sin(np.radians(5)))) / 2048)
    assert abs(shift - expected) <= 1.5, (shift, expected)
    fingerprints = ratio_fingerprint(on_log)
    assert fingerprints.shape == (2, 1, 1024) and float(fingerprints[:, 0, 0].min()) == pytest.approx(1.0)
    assert torch.nn.functional.cosine_similarity(fingerprints[0, 0], fingerprints[1, 0], dim=0) > 0.9


@pytest.mark.parametrize("cls", [RatioCNN, ParkCNN])
def test_networks_check_their_input(cls):
    n = len(two_theta_grid(*GRID))
    net = cls(n, GRID)
    assert net(torch.rand(2, 2, n)).shape == (2, 237)
    with pytest.raises(ValueError, match=r"\[batch, 2, 1751\]"): net(torch.rand(2, 2, n - 1))
    with pytest.raises(ValueError, match="points"): cls(100, GRID)


def test_training_prediction_and_saving(tmp_path, monkeypatch):
    from matdl_nb.train import load_model, save_model
    monkeypatch.setenv("MATDL_HOME", str(tmp_path))
    real = ReflectionTemplates.from_structures(list(load_dataset("aflow_prototypes").structure[:40]), "AFLOW prototype", progress=False)
    data = training_templates(14, real, seed=0, workers=1, progress=False)
    assert len(data["train"]) + len(data["valid"]) + len(data["held_out"]) == 54 and len(data["held_out"]) > 0
    seen = set(data["train"].types) | set(data["valid"].types)
    assert not set(data["held_out"].types) & seen and "" not in set(data["held_out"].types)  # whole structure types held out
    learn = symmetry_learner(data["train"], data["valid"], model="ratio", batch_size=8, samples_per_epoch=16, device="cpu")
    assert len(learn.dls.train) == 2
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3)
    assert np.isfinite(learn.recorder.values[-1]).all()
    scores = symmetry_scores(learn.model, data["held_out"])
    assert list(scores.columns) == ["crystal_system", "crystal_family", "space_group", "space_group_top5"]
    assert (scores.crystal_family >= scores.crystal_system).all(), "a right system is a right family"
    save_model(learn.model, tmp_path / "model")
    model = load_model(tmp_path / "model")
    x = np.arange(20, 70, 0.02); y = 100 + 900 * np.exp(-0.5 * ((x - 38.5) / 0.08) ** 2) + 500 * np.exp(-0.5 * ((x - 44.7) / 0.08) ** 2)
    answer = predict_pattern(model, x, y, top=4)
    assert len(answer["space_group"]) == 4 and answer["space_group"].answer.between(1, 230).all()
    assert answer["crystal_system"].probability.is_monotonic_decreasing and 0.7 < answer["coverage"] < 0.72
    with pytest.raises(ValueError, match="in_channels=2"): predict_pattern(XRDNet(), x, y)
    patterns, labels = render_templates(data["valid"][[0, 1]], Diffractometer(two_theta_grid(*GRID)))
    assert patterns.shape == (2, 2, 1751) and ((labels[:, 1] >= 0) & (labels[:, 1] < 230)).all()


@requires_mirror
def test_benchmark_smoke(run_benchmark):
    assert re.fullmatch(r"RESULT xrd_speedup=[\d.]+ cs_acc_types=[\d.]+ sg_acc_types=[\d.]+ autoxrd_cs_acc=[\d.]+ autoxrd_sg_acc=[\d.]+ "
                        r"autoxrd_cs_acc_half=[\d.]+ park_cs_acc=[\d.]+ real_phase_recall=[\d.]+ real_phase_recall_at_half=[\d.]+ "
                        r"real_phase_precision=([\d.]+|nan) n_train=\d+", run_benchmark("xrd"))


def test_benchmark_takes_phases_from_an_earlier_run(tmp_path):
    "`--phases-from` copies the phase identification's results and lines from an earlier results file, and says so."
    import json
    import sys
    from conftest import ROOT
    sys.path.insert(0, str(ROOT / "bench"))
    import xrd as bench
    lines = ["# bench/xrd.py --out bench/results/xrd", "", "## Phase identification on the 8 measured patterns", "| seed | found |",
             "ensemble at 0.35: phases found 12 / present 12", "ensemble at 0.5: phases found 10 / present 12", "", "## Other"]
    (tmp_path / "old.md").write_text("\n".join(lines)); (tmp_path / "old.json").write_text(json.dumps(dict(phases=dict(recall=1.0))))
    logged = []
    assert bench._phases_from(tmp_path / "old", logged.append) == dict(recall=1.0)
    assert logged[0].startswith("\n(phase identification: the results of") and logged[1:] == lines[2:6]


def test_benchmark_resume_adds_seeds_and_sizes_but_not_other_settings():
    "`--resume` keeps runs made with the same data and recipe and headline size; more seeds or learning-curve sizes may be added."
    import sys
    from conftest import ROOT
    sys.path.insert(0, str(ROOT / "bench"))
    import xrd as bench
    earlier = dict(n_random=1500, n_test=280, perovskites=50, patterns=[32000], epochs=8, seeds=2)  # written before --n-valid
    now = dict(n_random=1500, n_valid=200, n_test=280, perovskites=50, patterns=[32000, 64000, 128000], epochs=8, seeds=3)
    assert bench._extends(earlier, now) and bench._extends(now, now)
    assert not bench._extends(earlier, {**now, "patterns": [64000, 128000]})  # another headline size
    assert not bench._extends(earlier, {**now, "epochs": 4}) and not bench._extends(earlier, {**now, "n_valid": 40})


def test_matdl_train_xrd_measured_defaults_are_the_benchmarks_recipe(tmp_path, monkeypatch):
    "`matdl train xrd --measured` without settings trains the committed benchmark's recipe at a size on its learning curve."
    import json
    from conftest import ROOT
    from matdl_nb import jobs
    bench = json.loads((ROOT / "bench/results/xrd.json").read_text())
    recipe, settings = jobs.XRD_MEASURED_RECIPE, bench["settings"]
    assert (recipe["crystals"], recipe["epochs"]) == (settings["n_random"], settings["epochs"])
    assert recipe["epochs"] * recipe["samples"] in settings["patterns"], "a size the benchmark measured"
    assert recipe["lr"] == float(f"{bench['learning_rates']['ratio']:.0e}"), "RatioCNN's lr_find valley, one figure"
    called = {}
    monkeypatch.setattr(jobs, "train_xrd_measured", lambda out, epochs, crystals, seed, progress, samples: called.update(
        epochs=epochs, crystals=crystals, samples=samples) or {})
    jobs.train_job("xrd", tmp_path / "m", measured=True, progress=False)
    assert called == {k: recipe[k] for k in ("epochs", "crystals", "samples")}
    jobs.train_job("xrd", tmp_path / "n", measured=True, progress=False, epochs=2, samples=64)
    assert (called["epochs"], called["samples"], called["crystals"]) == (2, 64, recipe["crystals"])
    with pytest.raises(jobs.JobError, match="samples .* is for measured=True"):
        jobs.train_job("xrd", tmp_path / "o", progress=False, samples=64)


def test_crystals_like_the_database_carry_their_spglib_group_and_balance_the_systems():
    from matdl_nb.xrd_classifier import wyckoff_crystals, wyckoff_table
    crystals, stats = wyckoff_crystals(14, seed=4)
    assert [SpacegroupAnalyzer(s, symprec=0.1).get_space_group_number() for s, _ in crystals] == [g for _, g in crystals]
    assert np.bincount([CRYSTAL_SYSTEMS.index(crystal_system(g)) for _, g in crystals],
                       minlength=7).tolist() == [2] * 7
    table = wyckoff_table()
    assert table["count"].sum() > 80_000 * 0.8 and (table.n_atoms <= 40).all()


def test_random_crystals_depend_on_the_seed_only_and_the_position_limit_is_a_count():
    from pyxtal.crystal import random_crystal
    from pyxtal.symmetry import Wyckoff_position
    from matdl_nb.xrd_classifier import PositionLimit, _position_limit, real_element_sets, wyckoff_crystal, wyckoff_crystals, wyckoff_table
    def fingerprints(crystals): return [(g, s.composition.reduced_formula, s.lattice.abc, s.frac_coords.tolist()) for s, g in crystals]
    first, again = wyckoff_crystals(7, seed=11), wyckoff_crystals(7, seed=11)
    assert fingerprints(first[0]) == fingerprints(again[0]) and first[1] == again[1]
    originals = random_crystal.check_wp, Wyckoff_position.short_distances
    with pytest.raises(PositionLimit, match="tried 0 atom positions"), _position_limit(0):
        Wyckoff_position.short_distances(None, None, None, None)  # stops before pyxtal's method runs
    assert (random_crystal.check_wp, Wyckoff_position.short_distances) == originals  # restored after the error
    table, sets = wyckoff_table(), real_element_sets()
    tries = [wyckoff_crystal(np.random.default_rng(3), table, sets, "cubic", max_trials=0) for _ in range(2)]
    assert tries == [None, None]  # no position allowed: pyxtal gives up, the same way every time


def test_structure_types_group_isostructural_crystals():
    from matdl_nb.xrd_classifier import structure_type
    kcl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(6.29), ["K", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    cscl = Structure.from_spacegroup("Pm-3m", Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert structure_type(STRUCTURES["NaCl"]) == structure_type(kcl) == "225-ab-AB"
    assert structure_type(cscl) != structure_type(kcl)


def test_park_input_is_standardised_inside_the_measured_range():
    from matdl_nb.xrd_classifier import standardise_patterns
    x = torch.rand(3, 2, 50); x[:, 1] = 0; x[:, 1, 10:40] = 1
    out = standardise_patterns(x)
    inside = out[:, 0, 10:40]
    assert torch.allclose(inside.mean(-1), torch.zeros(3), atol=1e-5) and torch.allclose(inside.std(-1, unbiased=False), torch.ones(3), atol=1e-4)
    assert (out[:, 0, :10] == 0).all() and torch.equal(out[:, 1], x[:, 1])


def test_calibration_softens_and_the_threshold_marks_uncertain_answers():
    model = RatioCNN(len(two_theta_grid(*GRID)), GRID).eval()
    angles = np.arange(15, 75, 0.02)
    counts = 100 + 5000 * np.exp(-0.5 * ((angles - 32.4) / 0.06) ** 2)
    hot = predict_pattern(model, angles, counts, calibration=dict(temperature=(1e6, 1e6), threshold=0.5))
    assert abs(hot["crystal_system"].probability[0] - 1 / 7) < 1e-3 and hot["sure"] is False
    assert predict_pattern(model, angles, counts)["sure"] is True  # no calibration: no threshold
