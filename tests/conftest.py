"""Shared pytest set-up: an empty cache per session, no network, and the data mirror when there is one."""
import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
ROOT = Path(__file__).resolve().parents[1]


def mirror_root() -> Path | None:
    "MATDL_MIRROR if set, else the shared mirror beside the project (as CI lays it out); None if that folder is not there."
    candidate = Path(os.environ["MATDL_MIRROR"]) if os.environ.get("MATDL_MIRROR") else ROOT.parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


def in_ci() -> bool:
    "True under CI (CI=true), where a check that cannot run is a failure, not a skip."
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    "Every test session starts from an empty cache and may never reach the internet."
    saved = {k: os.environ.get(k) for k in ("MATDL_HOME", "MATDL_OFFLINE", "MATDL_MIRROR")}
    os.environ["MATDL_HOME"] = str(tmp_path_factory.mktemp("matdl_home"))
    os.environ["MATDL_OFFLINE"] = "1"
    mirror = mirror_root()
    if mirror: os.environ["MATDL_MIRROR"] = str(mirror)
    yield
    for k, v in saved.items():
        if v is None: os.environ.pop(k, None)
        else: os.environ[k] = v


_NO_MIRROR = "needs the data mirror (MATDL_MIRROR or ../shared/data)"


@pytest.fixture
def _fail_without_mirror():
    pytest.fail(f"CI=true but this test {_NO_MIRROR}: under CI a missing mirror is a failure, not a skip")


# A user without the mirror skips these tests (the reason shows in pytest's summary); CI fails them.
requires_mirror = (pytest.mark.skipif(False, reason="the mirror is there") if mirror_root() is not None
                   else pytest.mark.usefixtures("_fail_without_mirror") if in_ci() else pytest.mark.skip(reason=_NO_MIRROR))


@pytest.fixture
def run_benchmark(tmp_path):
    "Run `bench/<name>.py --quick` and return its last line, having checked the exit code and the files it writes."
    import subprocess
    import sys

    def run(name: str, *args: str) -> str:
        out_stem = tmp_path / "_".join((name,) + args).replace("-", "")
        out = subprocess.run([sys.executable, str(ROOT / "bench" / f"{name}.py"), "--quick", *args, "--out", str(out_stem)],
                             capture_output=True, text=True, timeout=1800)
        assert out.returncode == 0, out.stderr[-2000:]
        last = out.stdout.strip().splitlines()[-1]
        assert out_stem.with_suffix(".json").exists() and out_stem.with_suffix(".md").read_text().strip().endswith(last)
        return last
    return run
