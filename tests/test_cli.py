"""The installed `matdl` console script, run as a user runs it: in a real subprocess."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

SCRIPT = shutil.which("matdl") or str(Path(sys.executable).parent / "matdl")


def matdl(*words, cwd=None):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run([SCRIPT, *map(str, words)], capture_output=True, text=True, timeout=300, cwd=cwd, env=env)


def test_the_script_is_installed():
    assert Path(SCRIPT).is_file(), "reinstall the package (pip install -e .) to get the matdl console script"


@pytest.mark.parametrize("words", [(), ("data",), ("data", "list"), ("data", "show"), ("data", "fetch"), ("xrd",),
                                   ("xrd", "simulate")])
def test_every_subcommand_has_help(words):
    done = matdl(*words, "--help")
    assert done.returncode == 0 and done.stdout.startswith("usage: matdl"), done.stderr


def test_data_list_show_and_fetch():
    listing = matdl("data", "list", "--kind", "embedded")
    assert listing.returncode == 0 and "mp_transport" in listing.stdout and "oqmd" not in listing.stdout
    card = matdl("data", "show", "exp_formation_enthalpy")
    assert card.returncode == 0 and "licence" in card.stdout and "| column | meaning |" in card.stdout
    fetched = matdl("data", "fetch", "aflow_prototypes")
    assert fetched.returncode == 0 and fetched.stdout.startswith("aflow_prototypes: 288 rows"), fetched.stdout


def test_bad_arguments_and_inputs_give_one_line_and_an_exit_code(tmp_path):
    unknown = matdl("data", "show", "mp_transprot")
    assert unknown.returncode == 2 and "Did you mean 'mp_transport'" in unknown.stderr and "Traceback" not in unknown.stderr
    assert matdl("data", "fetch", "mp_transport", "--option", "split=test").returncode == 2
    assert matdl("data", "frobnicate").returncode == 2
    broken = tmp_path / "broken.cif"
    broken.write_text("data_broken\n_cell_length_a 5.6\n")
    done = matdl("xrd", "simulate", broken)
    assert done.returncode == 1 and "broken.cif" in done.stderr and "Traceback" not in done.stderr
    missing = matdl("xrd", "simulate", tmp_path / "missing.cif")
    assert missing.returncode == 1 and missing.stderr.strip() == f"matdl: error: {tmp_path / 'missing.cif'}: no such file"
    assert matdl("xrd", "simulate", tmp_path).returncode == 1  # a folder
    assert matdl("xrd", "simulate", tmp_path / "notes.txt").returncode == 2  # format unknown from the name
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
