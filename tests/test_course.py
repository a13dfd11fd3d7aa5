"""`matdl doctor`: every check passes on this install and reports each broken case on purpose."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from matdl_nb import course


def test_every_check_runs_on_this_install():
    report = course.doctor()
    assert list(report.columns) == ["check", "status", "found", "fix"]
    assert set(report.status) <= {course.OK, course.WARNING, course.PROBLEM}
    assert report.loc[report.check == "Python", "status"].item() == course.OK
    assert (report.status != course.PROBLEM).all(), report[report.status == course.PROBLEM].to_dict("records")


def test_wrong_python_and_packages_are_problems_with_a_fix():
    row = course.check_python((3, 8, 10))[0]
    assert row["status"] == course.PROBLEM and "3.8.10" in row["found"] and ">=3.10" in row["found"]
    rows = course.check_packages(["numpy>=999", "surely-not-installed-pkg>=1"])
    assert [r["status"] for r in rows] == [course.PROBLEM] * 2
    assert 'pip install "numpy>=999"' == rows[0]["fix"] and rows[1]["found"] == "not installed"


def test_constraints_pins_are_checked_on_a_cpu_machine(tmp_path, monkeypatch):
    monkeypatch.setattr(course, "_has_gpu", lambda: False)
    pins = tmp_path / "constraints-cpu.txt"
    pins.write_text("# CPU wheels\nnumpy==0.0.1\n")
    rows = course.check_packages(["numpy>=1.0"], constraints=pins)
    assert rows[0]["status"] == course.WARNING and "pins ==0.0.1" in rows[0]["found"] and "-c" in rows[0]["fix"]


def test_one_torch_thread_is_a_warning(monkeypatch):
    import torch
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    monkeypatch.setattr(course.os, "cpu_count", lambda: 8)
    row = course.check_torch()[0]
    assert row["status"] == course.WARNING and "OMP_NUM_THREADS" in row["fix"]


def _extensions(tmp_path, ngl="3.1.5", manager="5.0.16"):
    for name, version in (("nglview-js-widgets", ngl), ("@jupyter-widgets/jupyterlab-manager", manager)):
        (tmp_path / name).mkdir(parents=True)
        (tmp_path / name / "package.json").write_text(json.dumps({"name": name, "version": version}))
    return [tmp_path]


GOOD = {"ipywidgets": "8.1.9", "jupyterlab_widgets": "3.0.17", "nglview": "4.0", "nglview_frontend": "3.1.5"}


def test_widget_extensions_that_do_not_match_are_problems(tmp_path):
    paths = _extensions(tmp_path)
    assert [r["status"] for r in course.check_lab_extensions(paths, GOOD)] == [course.OK, course.OK]
    ngl = course.check_lab_extensions(paths, {**GOOD, "nglview": "4.0.1", "nglview_frontend": "4.0.1"})[1]
    assert ngl["status"] == course.PROBLEM and "asks for extension 4.0.1, 3.1.5 is installed" in ngl["found"]
    widgets = course.check_lab_extensions(paths, {**GOOD, "ipywidgets": "7.8.1"})[0]
    assert widgets["status"] == course.PROBLEM and "jupyterlab_widgets==1.*" in widgets["fix"]
    missing = course.check_lab_extensions([tmp_path / "nothing"], GOOD)
    assert [r["status"] for r in missing] == [course.PROBLEM, course.PROBLEM]


def test_the_real_nglview_asks_for_the_extension_it_ships():
    assert course._nglview_frontend() == "3.1.5"  # nglview 4.0, pinned in pyproject.toml


def test_a_cache_that_cannot_be_written_is_a_problem(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    row = course.check_cache(blocker / "cache")[0]
    assert row["status"] == course.PROBLEM and "MATDL_HOME" in row["fix"]
    ok = course.check_cache(tmp_path / "fresh")[0]
    assert ok["status"] in (course.OK, course.WARNING) and "writable" in ok["found"]


def test_data_not_ready_offline_names_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.delenv("MATDL_MIRROR", raising=False)
    rows = course.check_data(["21_gnn", "30_xrd"], mirror=None, root=tmp_path)
    assert [r["status"] for r in rows] == [course.WARNING, course.OK]  # a download; aflow_prototypes ships in pymatgen
    assert "matdl data fetch castelli_perovskites" in rows[0]["fix"] and "MATDL_MIRROR" in rows[0]["fix"]
    assert course.dataset_missing("avogadro_crystals") == [] or course.dataset_missing("avogadro_crystals") == ["/usr/share/avogadro2/crystals"]


def test_topic_data_follows_the_notebooks_data_cards():
    for nb in sorted((ROOT / "nbs").glob("[1-8]*.ipynb")):
        cards = [("".join(c["source"])) for c in json.loads(nb.read_text())["cells"]
                 if c["cell_type"] == "code" and "data_card([" in "".join(c["source"])]
        if not cards: continue
        names = re.findall(r'"([a-z0-9_]+)"', re.search(r"data_card\(\[([^\]]*)\]", cards[0]).group(1))
        assert tuple(names) == course.TOPIC_DATA[nb.stem], nb.stem


def test_chromium_missing_is_only_a_warning(monkeypatch):
    monkeypatch.setattr(course.shutil, "which", lambda name: None)
    assert course.check_chromium()[0]["status"] == course.WARNING


def test_a_broken_check_is_reported_not_raised():
    def broken(): raise RuntimeError("boom")
    report = course.doctor([course.check_python, broken])
    assert report.status.tolist() == [course.OK, course.PROBLEM] and "boom" in report.found.iloc[1]


def test_command_line_exit_codes(monkeypatch, tmp_path):
    done = subprocess.run([sys.executable, "-c", "import sys; from matdl_nb.cli import main; sys.exit(main())", "doctor"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| Python" in done.stdout and "data for 21_gnn" in done.stdout
    from matdl_nb.cli import main
    monkeypatch.setattr(course, "CHECKS", (lambda: course.check_python((3, 8, 0)),))
    assert main(["doctor"]) == 1


# ---- course editions (matdl course build / check) ----

def _cells(name, folder=None):
    path = (folder / f"{name}.ipynb") if folder else ROOT / "nbs" / f"{name}.ipynb"
    return json.loads(path.read_text())["cells"]


def _src(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


@pytest.fixture(scope="module")
def editions(tmp_path_factory):
    out = tmp_path_factory.mktemp("course")
    table = course.build_course(out)
    return out, table


@pytest.mark.parametrize("name", course.COURSE_NOTEBOOKS)
def test_every_topic_notebook_has_three_checked_exercises(name):
    from matdl_nb.exercises import EXERCISES
    mine = [e for e in EXERCISES.values() if e.notebook == name]
    assert len(mine) >= 3 and len({e.kind for e in mine}) >= 2, "at least three exercises of at least two kinds"
    sources = [_src(c) for c in _cells(name)]
    for e in mine:
        checks = [i for i, s in enumerate(sources) if s.startswith(f'check_exercise("{e.id}"')]
        assert len(checks) == 1, f"exercise {e.id}: one check cell"
        answer = sources[checks[0] - 1]
        assert course.SOLUTION_BEGIN in answer and course.SOLUTION_END in answer, f"{e.id}: the answer cell above holds a solution"
        assert re.match(r"[\w, ]+ = None", answer), f"{e.id}: the answer cell starts from a placeholder"
        assert sources[checks[0] - 2].startswith(f"**Exercise {e.id}**"), f"{e.id}: the task is in the markdown above"


def test_the_editions_cut_the_solutions_and_keep_everything_else(editions):
    out, table = editions
    assert (table.exercises >= 3).all() and (table.solutions_left_in_student == 0).all()
    for name in course.COURSE_NOTEBOOKS:
        source, teacher, student = _cells(name), _cells(name, out / "instructor"), _cells(name, out / "student")
        # the instructor edition is the source, cell for cell: CI's nbdev-test run of the source is its run
        assert [_src(c) for c in teacher] == [_src(c) for c in source]
        assert [c.get("outputs") for c in teacher] == [c.get("outputs") for c in source]
        marked = [c for c in teacher if "nbgrader" in c["metadata"]]
        assert sum(c["metadata"]["nbgrader"]["grade"] for c in marked) == table.exercises[name]
        assert [c["id"] for c in student[1:3]] == ["colab-badge", "colab-install"]
        body = student[:1] + student[3:]
        assert len(body) == len(source)
        for s, c in zip(source, body):
            if course.SOLUTION_BEGIN in _src(s):
                kept = _src(s).split(course.SOLUTION_BEGIN)[0]
                assert _src(c) == kept + course.STUB and c["outputs"] == []
            elif c["cell_type"] == "code" and "nbgrader" not in c["metadata"]:
                assert _src(c) == _src(s) and c["outputs"] == s["outputs"]


def test_nbgrader_accepts_the_course_folder(tmp_path):
    pytest.importorskip("nbgrader")
    course.build_course(tmp_path, ["40_micrographs"])
    done = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", "matdl", "--force"], cwd=tmp_path / "nbgrader",
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    released = [_src(c) for c in _cells("40_micrographs", tmp_path / "nbgrader" / "release" / "matdl")]
    assert not any(course.SOLUTION_BEGIN in s for s in released)
    assert sum(s.startswith("check_exercise(") for s in released) == 3


def test_grading_the_student_edition_gives_no_marks_and_only_not_done(tmp_path):
    course.build_course(tmp_path, ["40_micrographs"])
    before = os.environ.get("IN_TEST")
    run = course.run_edition(tmp_path / "student" / "40_micrographs.ipynb")
    assert os.environ.get("IN_TEST") == before, "quick mode is switched on for the run only"
    assert (run["score"], run["max_score"]) == (0, 3)
    assert [e["error"] for e in run["errors"]] == ["NotDone"] * 3, run["errors"]
    teacher = course.run_edition(tmp_path / "instructor" / "40_micrographs.ipynb")
    assert (teacher["score"], teacher["errors"]) == (3, [])


def test_matdl_course_commands(tmp_path):
    from matdl_nb.cli import main
    assert main(["course", "build", "--out", str(tmp_path), "--notebooks", "40_micrographs",
                 "--colab-url", "https://github.com/me/course/blob/main/student"]) == 0
    badge = _src(_cells("40_micrographs", tmp_path / "student")[1])
    assert "colab.research.google.com/github/me/course/blob/main/student/40_micrographs.ipynb" in badge
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(json.dumps(dict(exercise=f"40.{i}", status="passed")) for i in (1, 2, 3)))
    assert main(["course", "check", "--out", str(tmp_path), "--notebooks", "40_micrographs", "--log", str(log), "--workers", "1"]) == 0
    log.write_text(json.dumps(dict(exercise="40.1", status="passed")))
    assert main(["course", "check", "--out", str(tmp_path), "--notebooks", "40_micrographs", "--log", str(log), "--workers", "1"]) == 1
