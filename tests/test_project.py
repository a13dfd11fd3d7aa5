"""The project's own promises: the README comes from index.ipynb, CI runs the README's test command, Quarto config is valid."""
from pathlib import Path

from matdl_nb.docs import check_quarto_config, readme_is_current

ROOT = Path(__file__).resolve().parents[1]


def test_readme_is_generated_from_index():
    assert readme_is_current(), "README.md is out of date: run `matdl-docs readme`"


def test_readme_shows_every_benchmark_result():
    "The topic table is a stored output of index.ipynb: every committed benchmark's numbers appear in the README."
    from matdl_nb.docs import benchmark_results, format_result
    readme = (ROOT / "README.md").read_text()
    assert "| topic | notebook | measure | paper | ours |" in readme, "run `matdl-docs execute nbs/index.ipynb`"
    for name, values in benchmark_results().items():
        if name.endswith("_gpu"): continue
        assert f"| {format_result(values[next(iter(values))])} |" in readme, name


def test_ci_runs_the_readme_test_command():
    readme, ci = (ROOT / "README.md").read_text(), (ROOT / ".ci" / "run").read_text()
    assert "nbdev-test && pytest" in readme
    assert "nbdev-test" in ci and "pytest" in ci


def test_ci_runs_the_readme_tour():
    readme, ci = (ROOT / "README.md").read_text(), (ROOT / ".ci" / "run").read_text()
    assert 'pip install -c constraints-cpu.txt -e ".[dev]" && matdl tour --quick' in readme
    assert "env -u MATDL_MIRROR" in ci and "matdl tour --quick" in ci  # without the mirror, as a new user


def test_quarto_config_is_valid():
    assert check_quarto_config() == []


def test_files_are_written_whole_through_one_helper():
    "Every temporary-file-and-rename write goes through `core.atomic_write` (one place to get it right)."
    import re
    offenders = [f"{path.name}:{i}" for path in sorted((ROOT / "matdl_nb").glob("*.py")) if path.name != "core.py"
                 for i, line in enumerate(path.read_text().splitlines(), 1)
                 if re.search(r"\bos\.replace\(|\bos\.rename\(|\bmkstemp\(|NamedTemporaryFile\(", line)]
    assert offenders == [], f"write through matdl_nb.core.atomic_write instead: {offenders}"


def test_ci_fails_at_once_without_the_mirror():
    "Under CI a missing data mirror is a one-line failure, before the environment is built (not a quiet skip)."
    import os
    import subprocess
    env = {**os.environ, "CI": "true", "MATDL_CI_MIRROR": "/nonexistent/mirror"}
    done = subprocess.run([str(ROOT / ".ci" / "run")], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 1 and "data mirror /nonexistent/mirror is missing" in done.stdout, done.stdout + done.stderr
    assert "pytest -q || rc=$?" in (ROOT / ".ci" / "run").read_text() and "-eq 5" not in (ROOT / ".ci" / "run").read_text()


def test_mirror_tests_skip_for_users_and_fail_under_ci(tmp_path):
    import os
    import subprocess
    import sys
    test = "tests/test_data.py::test_perovskite_structures_are_five_atom_cells"
    def run(ci):
        env = {**os.environ, "MATDL_MIRROR": str(tmp_path / "no_mirror"), "CI": ci}
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", test], cwd=ROOT,
                              capture_output=True, text=True, timeout=300, env=env)
    user, ci = run(""), run("true")
    assert user.returncode == 0 and "needs the data mirror" in user.stdout, user.stdout[-1500:]  # skipped, reason shown
    assert ci.returncode == 1 and "under CI a missing mirror is a failure" in ci.stdout, ci.stdout[-1500:]
