"""The `matdl` command line: the installed console script in a real subprocess where the process matters (the script,
training jobs, files written), and argument and input errors through the same `main()` in this process (faster)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from pymatgen.core import Composition, Lattice, Structure

SCRIPT = shutil.which("matdl") or str(Path(sys.executable).parent / "matdl")


def matdl(*words, cwd=None, env=None):
    env = {**os.environ, "MPLBACKEND": "Agg", **(env or {})}
    return subprocess.run([SCRIPT, *map(str, words)], capture_output=True, text=True, timeout=600, cwd=cwd,
                          env={k: v for k, v in env.items() if v is not None})


class Done:
    "What a run of `main()` in this process left: its exit code and what it printed."
    def __init__(self, code, captured): self.returncode, self.stdout, self.stderr = code, captured.out, captured.err


@pytest.fixture
def in_process(capsys):
    "Run `matdl WORDS...` through `main()` in this process (no interpreter start-up per call)."
    from matdl_nb.cli import main
    def run(*words):
        capsys.readouterr()
        code = main([str(w) for w in words])
        return Done(code, capsys.readouterr())
    return run


def test_the_script_is_installed():
    assert Path(SCRIPT).is_file(), "reinstall the package (pip install -e .) to get the matdl console script"


def test_the_installed_script_prints_help():
    done = matdl("--help")
    assert done.returncode == 0 and done.stdout.startswith("usage: matdl"), done.stderr


@pytest.mark.parametrize("words", [("tour",), ("train",), ("predict",), ("data",), ("data", "list"), ("data", "show"), ("data", "fetch"), ("xrd",),
                                   ("xrd", "simulate"), ("xrd", "classify")])
def test_every_subcommand_has_help(words, capsys):
    "In this process (the script itself is tested above): the help is printed and the exit code is 0."
    from matdl_nb.cli import main
    assert main([*words, "--help"]) == 0 and capsys.readouterr().out.startswith("usage: matdl")


def test_data_list_show_and_fetch(in_process):
    listing = in_process("data", "list", "--kind", "embedded")
    assert listing.returncode == 0 and "mp_transport" in listing.stdout and "oqmd" not in listing.stdout
    card = in_process("data", "show", "exp_formation_enthalpy")
    assert card.returncode == 0 and "licence" in card.stdout and "| column | meaning |" in card.stdout
    fetched = in_process("data", "fetch", "aflow_prototypes")
    assert fetched.returncode == 0 and fetched.stdout.startswith("aflow_prototypes: 288 rows"), fetched.stdout


def test_bad_arguments_and_inputs_give_one_line_and_an_exit_code(tmp_path, in_process):
    unknown = in_process("data", "show", "mp_transprot")
    assert unknown.returncode == 2 and "Did you mean 'mp_transport'" in unknown.stderr and "Traceback" not in unknown.stderr
    assert in_process("data", "fetch", "mp_transport", "--option", "split=test").returncode == 2
    assert in_process("data", "frobnicate").returncode == 2
    broken = tmp_path / "broken.cif"
    broken.write_text("data_broken\n_cell_length_a 5.6\n")
    done = in_process("xrd", "simulate", broken)
    assert done.returncode == 1 and "broken.cif" in done.stderr and "Traceback" not in done.stderr
    missing = in_process("xrd", "simulate", tmp_path / "missing.cif")
    assert missing.returncode == 1 and missing.stderr.strip() == f"matdl: error: {tmp_path / 'missing.cif'}: no such file"
    assert in_process("xrd", "simulate", tmp_path).returncode == 1  # a folder
    assert in_process("xrd", "simulate", tmp_path / "notes.txt").returncode == 2  # format unknown from the name
    assert not list(tmp_path.glob("*.csv")) and not list(tmp_path.glob("*.png"))  # nothing written on failure


def test_xrd_simulate_writes_a_pattern(tmp_path):
    cif = tmp_path / "NaCl.cif"
    Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(filename=str(cif))
    done = matdl("xrd", "simulate", cif, "--range", "10", "80", "--step", "0.05")
    assert done.returncode == 0, done.stderr
    pattern = pd.read_csv(tmp_path / "NaCl.csv")
    assert len(pattern) == 1401 and pattern.intensity.max() == pytest.approx(1.0)
    assert abs(pattern.two_theta[pattern.intensity.idxmax()] - 31.7) < 0.1  # NaCl (200) with Cu K-alpha
    assert (tmp_path / "NaCl.png").stat().st_size > 10_000 and "31.7" in done.stdout
    poscar = tmp_path / "POSCAR"
    Structure.from_file(cif).to(filename=str(poscar), fmt="poscar")
    assert matdl("xrd", "simulate", poscar, "--out", tmp_path / "out" / "nacl").returncode == 0
    assert (tmp_path / "out" / "nacl.csv").is_file()


def test_xrd_classify_reads_a_measured_file(tmp_path):
    model = tmp_path / "xrd-measured"
    done = matdl("train", "xrd", "--measured", "--crystals", "20", "--epochs", "1", "--samples", "256", "--out", model, "--no-progress")
    assert done.returncode == 0, done.stderr
    assert json.loads((model / "config.json").read_text())["extra"]["grid"] == [10.0, 80.0, 0.04]
    scan = tmp_path / "scan.xy"  # a user's file: a header, a descending 20-70 degree scan with a background
    lines = [f"{t:.2f}\t{300 + 2000 * (abs(t - 31.7) < 0.1) + 900 * (abs(t - 45.5) < 0.1):.0f}" for t in [70 - 0.02 * i for i in range(2501)]]
    scan.write_text("2theta\tcounts\n" + "\n".join(lines))
    done = matdl("xrd", "classify", scan, "--model", model)
    assert done.returncode == 0, done.stderr
    assert "crystal system answer" in done.stdout and "71% of the model's grid" in done.stdout
    cut = tmp_path / "cut.xy"; cut.write_text("\n".join(lines[:100]) + "\n45.")
    done = matdl("xrd", "classify", cut, "--model", model)
    assert done.returncode == 1 and "truncated" in done.stderr and "Traceback" not in done.stderr
    done = matdl("xrd", "classify", scan, "--model", tmp_path)
    assert done.returncode == 1 and "not a model folder" in done.stderr


@pytest.fixture(scope="module")
def tour(tmp_path_factory):
    "Two quick topics of the tour as a new user runs them: offline, an empty cache, no data mirror."
    root = tmp_path_factory.mktemp("tour")
    done = matdl("tour", "--quick", "--topics", "gnn", "text", "--out", root / "report", "--no-progress",
                 env={"MATDL_HOME": str(root / "cache"), "MATDL_OFFLINE": "1", "MATDL_MIRROR": None})
    return done, root / "report"


def test_tour_writes_its_report_offline_without_a_mirror(tour):
    done, out = tour
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["gnn.png", "report.html", "report.json", "report.md", "text.png"]
    report = json.loads((out / "report.json").read_text())
    assert report["mode"] == "quick" and [t["topic"] for t in report["topics"]] == ["gnn", "text"]
    assert all(t["beats_baseline"] for t in report["topics"]), report["topics"]
    assert "| gnn " in done.stdout and "| text " in done.stdout and "report.html" in done.stdout  # the summary table
    markdown = (out / "report.md").read_text()
    assert markdown.count("![") == 2 and "## Word embeddings of materials text" in markdown


def test_tour_report_opens_in_a_browser(tour):
    from matdl_nb.browser import BrowserError, chromium_driver, docs_page_problems, find_chromium, serve_folder
    try: find_chromium()
    except BrowserError:
        if os.environ.get("CI"): raise
        pytest.skip("needs chromium and chromedriver")
    done, out = tour
    driver = chromium_driver()
    try:
        with serve_folder(out) as base:
            problems, state = docs_page_problems(driver, f"{base}/report.html")
    finally: driver.quit()
    assert problems == [] and state["images"] == 2


def test_tour_refuses_an_unknown_topic(tmp_path):
    done = matdl("tour", "--topics", "gnn", "nlp", "--out", tmp_path / "r")
    assert done.returncode == 2 and "unknown tour topic 'nlp'" in done.stderr and not (tmp_path / "r").exists()


def test_train_and_predict_on_the_users_csv(tmp_path):
    table = pd.DataFrame({"formula": ["NaCl", "KCl", "LiF", "MgO", "CaO", "Al2O3", "Fe2O3", "TiO2", "ZnO", "CuO"] * 4,
                          "y": [float(i % 7) for i in range(40)]})
    (tmp_path / "mine.csv").write_text(table.to_csv(index=False))
    frame = pd.read_csv(tmp_path / "mine.csv")
    assert len(frame) == 40
    done = matdl("train", "elemnet", "--data", tmp_path / "mine.csv", "--target", "y", "--epochs", "2", "--out", tmp_path / "m",
                 "--no-progress")
    # ten formulas, each four times: one row per formula is too few for a model, and the error says why
    assert done.returncode == 1 and "only 10 usable rows" in done.stderr and not (tmp_path / "m").exists(), done.stderr
    rows = pd.DataFrame({"formula": [f"Fe{a}Ni{b}" for a in range(1, 8) for b in range(1, 6)], "y": [0.1 * i for i in range(35)]})
    rows.to_csv(tmp_path / "alloys.csv", index=False)
    done = matdl("train", "elemnet", "--data", tmp_path / "alloys.csv", "--target", "y", "--epochs", "2", "--out", tmp_path / "m",
                 "--no-progress")
    assert done.returncode == 0, done.stderr
    assert {p.name for p in (tmp_path / "m").iterdir()} == {"config.json", "job.json", "metrics.json", "parity.png", "weights.pt"}
    rows_used = json.loads((tmp_path / "m" / "job.json").read_text())["rows"]
    distinct = {Composition(f).reduced_formula for f in rows.formula}  # polymorphs and multiples (Fe2Ni2) become one row
    assert sum(rows_used.values()) == len(distinct) == 26 and rows_used["test"] > 0, rows_used
    done = matdl("predict", tmp_path / "m", "FeNi", tmp_path / "alloys.csv", "--out", tmp_path / "p")
    assert done.returncode == 0 and "| FeNi " in done.stdout, done.stderr
    assert len(pd.read_csv(tmp_path / "p" / "predictions.csv")) == 36
    assert matdl("predict", tmp_path / "m", "Xx2O").returncode == 1  # an unknown element
    assert matdl("predict", tmp_path, "FeNi").returncode == 1  # not a model folder
    wrong = matdl("train", "elemnet", "--data", tmp_path / "alloys.csv", "--target", "z", "--out", tmp_path / "n")
    assert wrong.returncode == 1 and "no target column 'z'; its columns: formula, y" in wrong.stderr
    assert matdl("train", "elemnet", "--data", tmp_path / "alloys.csv").returncode == 2  # no --target
    assert matdl("train", "xrd", "--target", "y").returncode == 2  # xrd trains on generated data
    assert matdl("train", "elemnet", "--data", tmp_path / "alloys.csv", "--target", "y", "--images", "5").returncode == 2


def python_m(*words, env=None):
    env = {**os.environ, "MPLBACKEND": "Agg", **(env or {})}
    return subprocess.run([sys.executable, "-m", *map(str, words)], capture_output=True, text=True, timeout=600,
                          env={k: v for k, v in env.items() if v is not None})


@pytest.mark.parametrize("module", ["matdl_nb", "matdl_nb.cli"])
def test_python_m_runs_the_command(module):
    done = python_m(module, "--help")
    assert done.returncode == 0 and done.stdout.startswith("usage: matdl"), done.stderr
    assert python_m(module, "data", "frobnicate").returncode == 2


def test_help_imports_neither_torch_nor_pymatgen():
    "`matdl --help` answers at once: the subcommands import the library only when they run."
    code = ("import sys; from matdl_nb.cli import main; assert main(['--help']) == 0; "
            "print(sorted(m for m in ('torch', 'pymatgen', 'fastai', 'pandas') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr


def test_errors_outside_the_old_table_are_one_line(tmp_path):
    "A bad option value, a missing API key and a missing optional package: one line, no traceback, exit 2 or 1."
    bogus = python_m("matdl_nb", "data", "fetch", "oqmd_formation_enthalpy", "--option", "split=bogus")
    assert bogus.returncode == 2 and "split='bogus' is not available" in bogus.stderr and "Traceback" not in bogus.stderr
    assert len(bogus.stderr.strip().splitlines()) == 1, bogus.stderr
    no_key = python_m("matdl_nb", "data", "fetch", "materials_project", env={"MP_API_KEY": None})
    assert no_key.returncode == 1 and "needs an API key" in no_key.stderr and "Traceback" not in no_key.stderr
    stub = tmp_path / "jarvis"  # a package that fails to import, as a missing optional extra does
    stub.mkdir(); (stub / "__init__.py").write_text("raise ImportError('No module named jarvis.db')\n")
    extra = python_m("matdl_nb", "data", "fetch", "jarvis_dft", env={"PYTHONPATH": str(tmp_path), "MATDL_OFFLINE": "0"})
    assert extra.returncode == 1 and "pip install" in extra.stderr and "Traceback" not in extra.stderr, extra.stderr
    assert len(extra.stderr.strip().splitlines()) == 1, extra.stderr
    bug = python_m("matdl_nb", "data", "fetch", "materials_project", env={"MP_API_KEY": None, "MATDL_TRACEBACK": "1"})
    assert bug.returncode == 1 and "Traceback" in bug.stderr  # MATDL_TRACEBACK=1 shows it, for a bug report


def test_a_batch_answers_every_file_it_can_and_names_the_rest(tmp_path, in_process):
    "matdl predict / matdl xrd classify on measured patterns: the readable ones answered, each other one named, exit code 1."
    import numpy as np
    from matdl_nb.train import save_model
    from matdl_nb.xrd import two_theta_grid
    from matdl_nb.xrd_classifier import RatioCNN
    grid = (10.0, 80.0, 0.04)
    model_dir = save_model(RatioCNN(len(two_theta_grid(*grid)), grid), tmp_path / "xrd-model", extra=dict(grid=list(grid), measured=True))
    (model_dir / "job.json").write_text(json.dumps(dict(kind="xrd", measured=True)))
    angles = np.arange(15, 75, 0.02)
    good = tmp_path / "good.xy"
    good.write_text("\n".join(f"{a:.2f} {100 + 5000 * np.exp(-0.5 * ((a - 32.4) / 0.06) ** 2):.0f}" for a in angles))
    short = tmp_path / "short.xy"; short.write_text("1 2\n3 4\n")
    missing = tmp_path / "missing.xy"
    for words in (("predict", model_dir), ("xrd", "classify", "--model", model_dir)):
        done = in_process(*words, good, short, missing)
        assert done.returncode == 1, done.stderr
        assert "good.xy" in done.stdout and "short.xy" not in done.stdout  # the readable file is answered
        failures = [line for line in done.stderr.splitlines() if line.startswith("matdl: cannot use")]
        assert len(failures) == 2 and any("short.xy" in f for f in failures) and any("missing.xy" in f for f in failures)
        assert "2 of 3 inputs could not be used" in done.stderr


def test_a_batch_of_formulas_skips_the_bad_ones(tmp_path, in_process):
    trained = in_process("train", "rf", "--data", "exp_formation_enthalpy", "--target", "dhf_ev_per_atom", "--out", tmp_path / "rf",
                         "--no-progress")
    assert trained.returncode == 0, trained.stderr
    done = in_process("predict", tmp_path / "rf", "NaCl", "Xx2O3", "Fe2O3")
    assert done.returncode == 1 and "NaCl" in done.stdout and "Fe2O3" in done.stdout
    assert "Xx2O3" in done.stderr and "1 of 3 inputs could not be used" in done.stderr
