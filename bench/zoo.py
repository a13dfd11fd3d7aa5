"""Build the pretrained models that ship in the package (`matdl_nb/pretrained/`), check every card, and time prediction.

For each model named (or `--all`): train it from scratch with its recipe (`matdl_nb.zoo.BUILDERS`), write its
float16 weights (or vectors), config and card into the package, then print the card. Afterwards, for every shipped model:
recheck its card (`check_card`: hashes, example answers, the test metric on the card's fixed sample), and a table of each
card's test metric beside its baseline. Then the speed the issue asks for:

- formulas per second of `load("formation-energy").predict(...)` on 20,000 distinct Matbench formulas, featurising
  included (the best of three runs, in this process, after loading);
- the cold start of `matdl predict formation-energy Fe2O3` in a new process (the median of three), imports included.

    python bench/zoo.py --all --out bench/results/zoo      # build all six, check, time (2-core CPU: about 75 minutes)
    python bench/zoo.py band-gap                           # rebuild one model
    python bench/zoo.py --check --out bench/results/zoo    # build nothing: check the shipped models and time them
    python bench/zoo.py --quick                            # a smoke test: a tiny band-gap model in a scratch folder

The last line is `RESULT models=<shipped> total_mb=<MB of weights> formulas_per_s=<n> cold_start_s=<s>`.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from _common import Log
from matdl_nb import zoo


def formulas_per_second(name: str, formulas: list, repeats: int = 3) -> float:
    model = zoo.load(name)
    model.predict(formulas[:100])  # warm up
    best = min(_timed(lambda: model.predict(formulas)) for _ in range(repeats))
    return len(formulas) / best


def _timed(work) -> float:
    t0 = time.perf_counter(); work(); return time.perf_counter() - t0


def cold_start(name: str, repeats: int = 3, zoo_dir=None) -> float:
    "Seconds of `matdl predict NAME Fe2O3` in a new Python process (the median of `repeats`)."
    command = [sys.executable, "-c", "import sys; from matdl_nb.cli import main; sys.exit(main())", "predict", name, "Fe2O3"]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "MATDL_ZOO": str(zoo_dir or zoo.ZOO_DIR)})
        times.append(time.perf_counter() - t0)
        if done.returncode: raise SystemExit(f"matdl predict {name} failed: {done.stderr[-1000:]}")
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help=f"models to build: {', '.join(zoo.BUILDERS)}")
    parser.add_argument("--all", action="store_true", help="build every model")
    parser.add_argument("--check", action="store_true", help="build nothing; check and time the shipped models")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=str, default=None, help="write <out>.md (the full output) and <out>.json")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in zoo.BUILDERS]
    if unknown: parser.error(f"unknown model(s) {', '.join(unknown)}; the models: {', '.join(zoo.BUILDERS)}")
    log, start = Log(__file__, argv), time.time()
    if args.quick:  # a scratch zoo: the package's models stay as they are
        scratch = Path(tempfile.mkdtemp()) / "pretrained"
        scratch.mkdir()
        zoo.ZOO_DIR = scratch
        built = [zoo.build_composition("band-gap", seed=args.seed, epochs=1, members=2, progress=False)]
    else:
        build = list(zoo.BUILDERS) if args.all else [] if args.check else args.names
        built = [zoo.build(name, seed=args.seed, progress=False) for name in build]
    for card in built:
        log(f"\n## built {card['name']} in {card['training']['minutes']} min\n")
        log(zoo.show_card(card["name"]))
    names = zoo.names()
    checks = pd.DataFrame([zoo.check_card(n) for n in names])
    log("\n## Every shipped model against its card (hashes, example answers, test metric on the card's fixed sample)\n")
    log(checks.to_markdown(index=False, floatfmt=".4g"))
    rows = []
    for n in names:
        c = zoo.card(n)
        rows.append({"model": n, "input": c["input"], "test rows": c["test"]["rows"], "metric": c["test"]["metric"],
                     "better": c["test"]["better"], "value": c["test"]["value"],
                     "float32 value": c["test"].get("float32_value"),  # the networks before their weights were halved
                     "baseline": c["test"]["baseline"],
                     "baseline value": c["test"]["baseline_value"],
                     "ratio (model / baseline)": c["test"]["value"] / c["test"]["baseline_value"] if c["test"]["baseline_value"] else float("nan"),
                     "within 2 sd": c["test"].get("within_2sd"), "units": c["units"],
                     "MB": sum(f["bytes"] for f in c["files"].values()) / 1e6})
    table = pd.DataFrame(rows)
    log("\n## Test metric of every card beside its baseline ('better': whether lower or higher is better)\n")
    log(table.to_markdown(index=False, floatfmt=".4g"))
    total_mb = float(table.MB.sum())
    speed_model = "formation-energy" if "formation-energy" in names else names[0]
    split = zoo.composition_split(speed_model, args.seed)
    formulas = list(pd.concat([split["train"], split["valid"], split["test"]]).formula.unique()[:2000 if args.quick else 20000])
    speed = formulas_per_second(speed_model, formulas)
    cold = cold_start(speed_model, repeats=1 if args.quick else 3)  # MATDL_ZOO: the scratch zoo under --quick
    log(f"\n{speed_model}: {speed:,.0f} formulas per second ({len(formulas):,} distinct formulas, featurising included, "
        f"best of 3); cold start of `matdl predict {speed_model} Fe2O3`: {cold:.1f} s (target: >= 5,000 per second, "
        f"under 10 s); weights in all: {total_mb:.1f} MB (target <= 50)")
    log(f"\ntotal time {(time.time() - start) / 60:.1f} min")
    result = dict(models=len(names), total_mb=total_mb, formulas_per_s=speed, cold_start_s=cold)
    log(f"RESULT models={len(names)} total_mb={total_mb:.1f} formulas_per_s={speed:.0f} cold_start_s={cold:.2f}")
    log.save(args.out, dict(result=result, cards=rows, checks=checks.to_dict("records"), quick=args.quick))


if __name__ == "__main__":
    main()
