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
