"""XRD: the simulator against pymatgen, crystal system and space group of measured and measured-like patterns, phase
identification on real measured patterns.

1. Our vectorised `peak_list` against pymatgen's `XRDCalculator` on the same structures (the 288 AFLOW prototypes and
   random pyxtal crystals): patterns per second for both, and the largest position and intensity differences.
2. Crystal system and space group (all 230): networks trained only on random crystals like the database's
   (`xrd_classifier.wyckoff_crystal`: pyxtal's Wyckoff statistics of 88,678 Materials Project structures, elements of real
   compounds), a new lattice, elements and instrument for every pattern. Each network trains at the rate of its own
   lr_find. Runs: ours (RatioCNN) at the headline number of patterns with `--seeds` seeds and at more patterns (the
   learning curve over patterns); Park et al.'s CNN (input standardised: without it, it does not train); and three
   ablations of ours: the old uniform random crystals, no new lattice per pattern, no ratio branch. Each run is
   calibrated (temperature on simulated validation patterns, reject threshold for 90% on simulated patterns from another
   instrument) and tested on patterns recorded by another instrument: new random crystals; real structures never trained
   on, grouped by structure type (AFLOW prototypes, Avogadro's COD crystals, the JARVIS sample, Castelli perovskites as
   one type), each type counted once; the 5 single-phase XRD-AutoAnalyzer patterns; the 88 autoXRD thin films. The
   headline network is saved as a model folder and the films go through `matdl predict`, as a user runs it.
3. Phase identification on the 8 measured XRD-AutoAnalyzer patterns (Szymanski et al. 2021): PatternCNNs trained with
   three seeds on simulated mixtures of the 56 reference phases, each alone and the average of their probabilities
   (`ProbabilityAverage`) in the identify-fit-subtract loop, scored by formula against the file names. The loop's
   probability threshold is chosen for each model on simulated mixtures recorded by the other instrument
   (`threshold_scores`, best F1), never on the measured patterns; the answers at the old fixed threshold of 0.5
   are printed beside (that rule came first, and missed two phases: both are reported). `--phases-from` takes
   this part from an earlier results file instead of training the phase networks again.

    python bench/xrd.py --out bench/results/xrd      # 2 CPU cores: see the total time at the end of the committed output
    python bench/xrd.py --quick                      # a smoke test
    python bench/xrd.py --out bench/results/xrd --resume   # keep the steps and runs already in <out>.json, run the rest
    python bench/xrd.py --patterns 32000 64000 128000 --seeds 3 --out bench/results/xrd --resume   # add sizes and seeds

--resume keeps every run made with the same data and recipe and the same headline size; more seeds and more learning-curve
sizes may be added. The headline network's model folder is kept beside <out> (<out>.model, not committed): without it
the headline seed-0 run is trained again, since `matdl predict` needs it.

Needs the XRD-AutoAnalyzer, autoXRD, Castelli and JARVIS files (MATDL_MIRROR or the internet) and Debian's
libavogadro-data. The last line is `RESULT xrd_speedup=<s> cs_acc_types=<a> sg_acc_types=<b> autoxrd_cs_acc=<c>
autoxrd_sg_acc=<d> autoxrd_cs_acc_half=<e> park_cs_acc=<p> real_phase_recall=<r> real_phase_recall_at_half=<h>
real_phase_precision=<q> n_train=<n>`: cs_acc_types and sg_acc_types the mean over the headline seeds of the
type-balanced accuracy on the real structures; autoxrd_* through `matdl predict` with the seed-0 headline model.
"""
import argparse
import json
import multiprocessing
import os
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from _common import Log

TEST_INSTRUMENT = "another instrument"


def simulator_speed(log, quick):
    from pymatgen.analysis.diffraction.xrd import XRDCalculator
    from matdl_nb.data import load_dataset
    from matdl_nb.xrd import pattern_agreement, peak_list, random_crystals
    prototypes = load_dataset("aflow_prototypes")
    randoms, _ = random_crystals(50 if quick else 300, seed=123, progress=False)
    calculator, speed = XRDCalculator(), []
    for name, structures in (("AFLOW prototypes", list(prototypes.structure)), ("random pyxtal crystals", [s for s, _ in randoms])):
        t0 = time.perf_counter(); ours = [peak_list(s) for s in structures]; t_ours = time.perf_counter() - t0
        t0 = time.perf_counter(); theirs = [calculator.get_pattern(s, two_theta_range=(5, 90)) for s in structures]
        t_pmg = time.perf_counter() - t0
        agree = pd.DataFrame([pattern_agreement(o, (p.x, p.y)) for o, p in zip(ours, theirs)])
        speed.append(dict(structures=name, n=len(structures), ours_per_s=round(len(structures) / t_ours, 1),
                          xrdcalculator_per_s=round(len(structures) / t_pmg, 1), speedup=round(t_pmg / t_ours, 1),
                          max_position_error_deg=float(agree.max_position_error.max()),
                          max_intensity_error_pct=float(agree.max_intensity_error.max())))
    speedup = sum(r["n"] / r["xrdcalculator_per_s"] for r in speed) / sum(r["n"] / r["ours_per_s"] for r in speed)
    log("\n## Simulator against pymatgen's XRDCalculator (Cu K-alpha, 5-90 degrees 2-theta)\n")
    log(pd.DataFrame(speed).to_markdown(index=False))
    log(f"\nall together: {speedup:.1f}x faster (required: positions within 0.01 degrees, intensities within 1%)")
    return speed, speedup


def _test_chunk(n_test: int) -> int:
    "Crystals per cached chunk of a test set: 140 (the library's default), or all of a smaller set (a quick run makes only what it uses)."
    return min(140, n_test)


def _data(settings):
    "The training crystals (of each kind), the test sets, the same in every process (cached templates, fixed seeds)."
    from matdl_nb.xrd_classifier import random_crystal_templates
    from matdl_nb.xrd_evaluation import real_test_structures, real_test_templates
    n, v, kinds = settings["n_random"], settings.get("n_valid", 200), ("wyckoff", "uniform")
    randoms = {kind: random_crystal_templates(n + v, seed=0, workers=1, progress=False, kind=kind)[0] for kind in kinds}
    data = {kind: (t[np.arange(n)], t[np.arange(n, n + v)]) for kind, t in randoms.items()}
    test, _ = random_crystal_templates(settings["n_test"], seed=1, workers=1, progress=False, chunk_size=_test_chunk(settings["n_test"]))
    simulated, _ = random_crystal_templates(settings["n_test"], seed=2, workers=1, progress=False,  # where the reject threshold is chosen
                                            chunk_size=_test_chunk(settings["n_test"]))
    table = real_test_structures(avogadro=True, jarvis=True, perovskites=settings["perovskites"])
    return data, test, simulated, real_test_templates(table, progress=False)


def _films():
    "The 88 autoXRD thin films: (path, crystal system, space group)."
    from matdl_nb.data import load_dataset
    films = load_dataset("autoxrd_films")
    return [dict(name=f.name, path=str(f.path), crystal_system=f.crystal_system, space_group=int(f.space_group)) for f in films.itertuples()]


def _run(job):
    "One training run in a worker process: (model, patterns, variant, seed) -> scores; the model folder of the headline run."
    import torch
    torch.set_num_threads(job.get("threads", 1))
    warnings.filterwarnings("ignore")
    from matdl_nb.core import seed_everything
    from matdl_nb.train import save_model
    from matdl_nb.xrd import two_theta_grid
    from matdl_nb.xrd_classifier import TEST_INSTRUMENTS, predict_pattern, predict_templates, symmetry_learner
    from matdl_nb.xrd_evaluation import (accuracy_coverage, fit_temperature, reject_threshold, score_films, score_summary, structure_scores)
    from matdl_nb.xrd_measured import Diffractometer
    settings, (model, patterns, variant, seed) = job["settings"], job["run"]
    data, test, simulated, real = _data(settings)
    train, valid = data["uniform" if variant == "uniform crystals" else "wyckoff"]
    grid = (10.0, 80.0, 0.04)
    seed_everything(seed)
    learn = symmetry_learner(train, valid, model=model, grid=grid, samples_per_epoch=patterns // settings["epochs"],
                             strain=None if variant == "no new lattices" else (0.15, 5.0), swap=0.0 if variant == "no new lattices" else 0.5,
                             **({"ratios": False} if variant == "no ratio branch" else {}))
    learn.recorder.train_metrics = True
    start = time.time()
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(settings["epochs"], job["lr"])
    minutes = (time.time() - start) / 60
    last = learn.recorder.values[-1]  # train loss, train cs, train sg, train top5, valid loss, valid cs, ...
    # calibration: the temperature on the validation crystals, the threshold on other simulated crystals from another instrument
    probabilities = predict_templates(learn.model, valid, Diffractometer(two_theta_grid(*grid)), seed + 1)
    temperature = tuple(fit_temperature(p, t) for p, t in zip(probabilities, (valid.system.numpy(), valid.arrays["space_group"].numpy() - 1)))
    instrument = TEST_INSTRUMENTS[TEST_INSTRUMENT]
    sim = structure_scores(learn.model, simulated, instrument, 7, temperature)
    threshold = reject_threshold(sim.confidence, sim.correct, target=0.9)
    calibration = dict(temperature=temperature, threshold=threshold)
    randoms = score_summary(structure_scores(learn.model, test, instrument, 5, temperature))
    scores = structure_scores(learn.model, real, instrument, 5, temperature)
    types = score_summary(scores)
    hard = score_summary(structure_scores(learn.model, real, TEST_INSTRUMENTS["another instrument, strong texture, partial scans"], 5, temperature))
    singles = [predict_pattern(learn.model, p["two_theta"], p["intensity"], calibration=calibration)["crystal_system"].answer[0] == p["truth"]
               for p in job["real"]]
    films = score_films(learn.model, pd.DataFrame(job["films"]), calibration)  # single-peak scans are left out (attrs["skipped"])
    half = accuracy_coverage(films.confidence, films.correct).query("coverage >= 0.5").accuracy.iloc[0]
    row = dict(model=model, patterns=patterns, variant=variant, seed=seed, minutes=round(minutes, 1), lr=job["lr"],
               train_cs=float(last[1]), valid_cs=float(last[5]), temperature=round(temperature[0], 3), threshold=round(threshold, 3),
               random_cs=randoms["accuracy"], random_sg=randoms["space_group"], types_cs=types["type_balanced"],
               structures_cs=types["accuracy"], types_sg=types["space_group_type_balanced"], types_cs_textured=hard["type_balanced"],
               types_answered=float((scores.confidence >= threshold).mean()),
               types_cs_answered=float(scores.correct[scores.confidence >= threshold].mean()) if (scores.confidence >= threshold).any() else float("nan"),
               singles_cs=float(np.mean(singles)), films_cs=float(films.correct.mean()), films_sg=float(films.sg_correct.mean()),
               films_cs_half=float(half), films_answered=float(films.sure.mean()),
               films_cs_answered=float(films.correct[films.sure].mean()) if films.sure.any() else float("nan"),
               films_used=len(films), films_skipped=[name for name, _ in films.attrs["skipped"]],
               by_system=scores.groupby("truth").correct.mean().round(3).to_dict(), by_source=scores.groupby("source").correct.mean().round(3).to_dict())
    if job.get("save"):
        save_model(learn.model, job["save"], extra=dict(grid=list(grid), measured=True, calibration=calibration))
        Path(job["save"], "job.json").write_text(json.dumps(dict(kind="xrd", measured=True, epochs=settings["epochs"], samples=patterns,
                                                                    seed=seed, data="random crystals like the database's (bench/xrd.py)")))
    return row


def _learning_rates(settings, iterations: int = 100):
    "fastai's lr_find valley for each network on the training pipeline (recorded; each network trains at its own)."
    import contextlib, io
    import torch
    torch.set_num_threads(2)
    from matdl_nb.core import seed_everything
    from matdl_nb.xrd_classifier import symmetry_learner
    data, *_ = _data(settings)
    train, valid = data["wyckoff"]
    found = {}
    for model in ("ratio", "park"):
        seed_everything(0)
        learn = symmetry_learner(train, valid, model=model, samples_per_epoch=4096)
        with learn.no_bar(), learn.no_logging(), contextlib.redirect_stdout(io.StringIO()):
            found[model] = float(learn.lr_find(num_it=iterations, show_plot=False).valley)
    return found


def _predict_films_as_a_user(model_dir, films, log):
    "The 88 films through `matdl predict MODEL FILES... --out DIR`, exactly as a user runs it; scores from its predictions.csv."
    import contextlib, io, tempfile
    from matdl_nb.cli import main
    from matdl_nb.xrd_evaluation import accuracy_coverage
    with tempfile.TemporaryDirectory() as out:
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(["predict", str(model_dir), *[f["path"] for f in films], "--out", out])
        table = pd.read_csv(Path(out) / "predictions.csv")
    failures = [l for l in stderr.getvalue().splitlines() if l.startswith("matdl: cannot use")]
    truth = {f["path"]: f for f in films}
    table["correct"] = [row["crystal system"] == truth[row["file"]]["crystal_system"] for _, row in table.iterrows()]
    table["sg_correct"] = [str(row["space group"]) == str(truth[row["file"]]["space_group"]) for _, row in table.iterrows()]
    half = accuracy_coverage(table.probability, table.correct).query("coverage >= 0.5").accuracy.iloc[0]
    sure = table.answer != "uncertain"
    counts = table.file.map(lambda f: truth[f]["crystal_system"]).value_counts()  # of the films it could use
    log(f"`matdl predict` on the {len(films)} autoXRD films: exit code {code}, {len(table)} answered, {len(failures)} could not be used"
        + (f" ({'; '.join(failures)})" if failures else ""))
    return dict(autoxrd_cs_acc=float(table.correct.mean()), autoxrd_sg_acc=float(table.sg_correct.mean()), autoxrd_cs_acc_half=float(half),
                autoxrd_answered=float(sure.mean()), autoxrd_cs_acc_answered=float(table.correct[sure].mean()) if sure.any() else float("nan"),
                autoxrd_majority=float(counts.iloc[0] / len(table)), autoxrd_majority_class=counts.index[0], autoxrd_unreadable=len(failures),
                autoxrd_used=len(table), autoxrd_total=len(films),
                confusion=pd.crosstab(table.file.map(lambda f: truth[f]["crystal_system"]), table["crystal system"]).to_dict())


def _phase_setup():
    from matdl_nb.data import load_dataset
    from matdl_nb.xrd import two_theta_grid
    from matdl_nb.xrd_measured import PhaseLibrary
    references, measured = load_dataset("xrd_autoanalyzer", part="references"), load_dataset("xrd_autoanalyzer")
    return PhaseLibrary(references.structure, references.name, n_variants=8, progress=False), measured, two_theta_grid(10, 80, 0.04)


def _identify(model, library, measured, grid, threshold):
    "Phases of the 8 measured patterns: the score table, phases identified."
    from matdl_nb.xrd_measured import identify_phases, score_identification
    results = {r.name: identify_phases(model, library, r.two_theta, r.intensity, grid, threshold=threshold, name=r.name)
               for r in measured.itertuples()}
    return score_identification(results, measured), sum(len(r["phases"]) for r in results.values())


def _calibrate(model, library, grid, n):
    "The threshold chosen on `n` simulated mixtures from the other instrument, and the table it was chosen from."
    from matdl_nb.xrd_measured import choose_threshold, threshold_scores
    table = threshold_scores(model, library, grid, n=n, progress=False)
    return choose_threshold(table), table


def _train_phase_network(job):
    "One phase network in a worker process: (seed) -> its weights, its scores on simulated samples and on the 8 measured patterns."
    import torch
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    from fastai.learner import Learner
    from fastai.metrics import accuracy
    from torch import nn
    from matdl_nb.core import seed_everything
    from matdl_nb.train import make_dataloaders
    from matdl_nb.xrd_measured import OTHER_INSTRUMENT, Diffractometer, PatternCNN, PhaseMixtures, mixture_collate
    library, measured, grid = _phase_setup()
    seed, n_samples, epochs = job["seed"], job["samples"], job["epochs"]
    seed_everything(seed)
    dls = make_dataloaders(PhaseMixtures(library, n_samples, seed=seed), PhaseMixtures(library, 512, seed=100), batch_size=128,
                           collate_fn=mixture_collate(library, Diffractometer(grid)))
    learn = Learner(dls, PatternCNN(len(grid), len(library)), loss_func=nn.CrossEntropyLoss(), metrics=accuracy)
    start = time.time()
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(epochs, 3e-3)
    minutes = (time.time() - start) / 60
    batch = mixture_collate(library, Diffractometer(grid, **OTHER_INSTRUMENT))([PhaseMixtures(library, 1024, seed=7)[i] for i in range(1024)])
    learn.model.eval()
    with torch.no_grad(): other_acc = float((learn.model(batch[0]).argmax(1) == batch[1]).float().mean())
    threshold, table = _calibrate(learn.model, library, grid, job["calibration"])
    at_half, _ = _identify(learn.model, library, measured, grid, 0.5)
    scores, identified = _identify(learn.model, library, measured, grid, threshold)
    return dict(seed=seed, minutes=round(minutes, 1), valid_acc=float(learn.validate()[1]), other_instrument_acc=other_acc,
                simulated_f1=float(table.f1.max()), threshold=threshold, found=int(scores.found.sum()), false=int(scores.false.sum()),
                identified=identified, found_at_half=int(at_half.found.sum()), false_at_half=int(at_half.false.sum()),
                state=learn.model.state_dict(), args=dict(learn.model.init_args))


def phase_identification(log, networks, calibration):
    "The ensemble of the seeds' phase networks on the 8 measured patterns, after each network alone."
    from matdl_nb.xrd_measured import PatternCNN, ProbabilityAverage
    library, measured, grid = _phase_setup()
    log(f"\n## Phase identification on the 8 measured patterns (XRD-AutoAnalyzer example, Szymanski et al. 2021)\n\n"
        f"{len(networks)} phase networks (PatternCNN, seeds {', '.join(str(n['seed']) for n in networks)}), each trained on simulated "
        f"mixtures of the 56 reference phases; each alone, then the average of their probabilities. The loop's threshold is "
        f"chosen for each model on {calibration} simulated mixtures from the other instrument (best F1 there: `simulated_f1`); "
        f"`found`, `false`: the 8 measured patterns at that threshold; `*_at_half`: at the old fixed 0.5\n")
    columns = ["seed", "minutes", "valid_acc", "other_instrument_acc", "simulated_f1", "threshold", "found", "false", "identified",
               "found_at_half", "false_at_half"]
    table = pd.DataFrame([{k: n[k] for k in columns} for n in networks])
    log(table.round(3).to_markdown(index=False))
    models = []
    for n in networks:
        model = PatternCNN(**n["args"]); model.load_state_dict(n["state"]); models.append(model.eval())
    ensemble = ProbabilityAverage(models)
    threshold, thresholds = _calibrate(ensemble, library, grid, calibration)
    log(f"\nthe ensemble on {calibration} simulated mixtures from the other instrument, by threshold (chosen: {threshold}):\n")
    log(thresholds.round(3).to_markdown())
    at_half, identified_at_half = _identify(ensemble, library, measured, grid, 0.5)
    scores, identified = _identify(ensemble, library, measured, grid, threshold)
    log(f"\nthe ensemble at threshold {threshold}:\n"); log(scores.to_markdown())
    found, present, false = int(scores.found.sum()), int(scores.present.sum()), int(scores.false.sum())
    log(f"\nensemble at {threshold}: phases found {found} / present {present}; false phases {false}; identified {identified}")
    log(f"ensemble at 0.5: phases found {int(at_half.found.sum())} / present {present}; false phases {int(at_half.false.sum())}; "
        f"identified {identified_at_half}")
    return dict(recall=found / present, precision=(identified - false) / identified if identified else float("nan"), false=false,
                threshold=threshold, simulated=thresholds.reset_index().to_dict("records"),
                recall_at_half=float(at_half.found.sum() / present), false_at_half=int(at_half.false.sum()),
                other_instrument_phase_acc=float(table.other_instrument_acc.mean()), table=scores.reset_index().to_dict("records"),
                single_networks=table.to_dict("records"))


def real_single_phase_patterns():
    "The 5 single-phase measured patterns, with the crystal system of the best-fitting reference polymorph as truth."
    from matdl_nb.data import crystal_system
    from matdl_nb.xrd_measured import best_polymorph
    library, measured, grid = _phase_setup()
    real = []
    for r in measured[measured.phases.map(len) == 1].itertuples():
        polymorph = best_polymorph(library, r.phases[0], r.two_theta, r.intensity, grid)
        real.append(dict(name=r.name, polymorph=polymorph, truth=crystal_system(int(polymorph.rsplit("_", 1)[1])),
                         two_theta=r.two_theta, intensity=r.intensity))
    return real


def _extends(earlier: dict, settings: dict) -> bool:
    """Whether runs made with the `earlier` settings belong to a run with `settings`: the same data and recipe, the same headline
    size; more seeds or more learning-curve sizes may be added. (Results written before --n-valid existed used 200 validation
    crystals.)"""
    same = lambda d: {k: v for k, v in {"n_valid": 200, **d}.items() if k not in ("patterns", "seeds")}
    return same(earlier) == same(settings) and earlier["patterns"][0] == settings["patterns"][0]


def _previous(args, settings):
    "What an interrupted run with the same settings left in <out>.json and <out>.md (None unless --resume)."
    if not (args.resume and args.out): return None
    out = Path(args.out)
    if not out.with_suffix(".json").exists(): return None
    results = json.loads(out.with_suffix(".json").read_text())
    if results.get("quick") != args.quick or not _extends(results.get("settings", settings), settings):
        raise SystemExit(f"--resume: {out.with_suffix('.json')} was written with other settings ({results.get('settings')}); "
                         "run without --resume (more seeds or more learning-curve sizes after the same headline size may be added)")
    lines = [l for l in out.with_suffix(".md").read_text().splitlines() if not l.startswith("█")]  # no progress-bar debris
    closing = [i for i, l in enumerate(lines) if l.startswith("## Crystal system: the table")]
    for key in CLOSING_KEYS: results.pop(key, None)
    return dict(results=results, lines=lines[:closing[0]] if closing else lines)


CLOSING_KEYS = ("summary", "cs_acc_types", "cs_acc_types_std", "sg_acc_types", "cs_acc_structures", "cs_acc_random", "park_cs_acc",
                "autoxrd", "autoxrd_cs_acc", "autoxrd_sg_acc", "autoxrd_cs_acc_half", "real_cs_acc", "real_phase_recall",
                "real_phase_recall_at_half", "real_phase_precision", "false_phases", "n_train", "minutes", "learning_curve")


def _phases_from(path, log):
    "Phase identification results and their output lines from an earlier results file (the phase code unchanged since)."
    earlier = json.loads(Path(path).with_suffix(".json").read_text())
    lines = Path(path).with_suffix(".md").read_text().splitlines()
    start = [i for i, l in enumerate(lines) if l.startswith("## Phase identification")]
    end = [i for i, l in enumerate(lines) if l.startswith("ensemble at 0.5:")]
    log(f"\n(phase identification: the results of {path}, whose networks and loop are unchanged; rerun without --phases-from to train them again)")
    for line in lines[start[0]:end[0] + 1]: log(line)
    return earlier["phases"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--crystals", type=int, default=4000, help="random training crystals (each kind)")
    parser.add_argument("--patterns", type=int, nargs="+", default=[64000, 256000],
                        help="training patterns of the headline network (the learning curve; the first is the headline size)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the headline network at the first size")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--perovskites", type=int, default=50, help="Castelli perovskites among the real test structures (one type)")
    parser.add_argument("--n-test", type=int, default=700)
    parser.add_argument("--n-valid", type=int, default=200, help="random validation crystals (each kind), after the training ones")
    parser.add_argument("--phase-samples", type=int, default=8192)
    parser.add_argument("--phase-epochs", type=int, default=14)
    parser.add_argument("--phase-seeds", type=int, default=3, help="phase networks trained (their probabilities averaged)")
    parser.add_argument("--phase-calibration", type=int, default=200, help="simulated mixtures the phase threshold is chosen on")
    parser.add_argument("--phases-from", type=str, default=None, help="take the phase identification from an earlier results file")
    parser.add_argument("--workers", type=int, default=2, help="training runs at a time")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per training run")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=str, default=None, help="write <out>.md (the full output) and <out>.json")
    parser.add_argument("--resume", action="store_true", help="keep the steps and runs already in <out>.json (same settings; more seeds or sizes may be added), run the rest")
    args = parser.parse_args(argv)
    if args.quick:
        # 100 + 40 crystals of each kind fill one cached chunk of 140: the crystals were most of a quick run's time
        args.crystals, args.n_valid, args.patterns, args.seeds, args.epochs, args.perovskites, args.n_test = 100, 40, [256, 512], 2, 1, 5, 28
        args.phase_samples, args.phase_epochs, args.phase_seeds, args.phase_calibration = 256, 1, 2, 12
    warnings.filterwarnings("ignore")
    os.environ.setdefault("SPGLIB_WARNING", "OFF")
    log, start = Log(__file__, argv), time.time()
    settings = dict(n_random=args.crystals, n_valid=args.n_valid, n_test=args.n_test, perovskites=args.perovskites, patterns=args.patterns,
                    epochs=args.epochs, seeds=args.seeds)
    previous = _previous(args, settings)
    if previous:
        log.lines = previous["lines"] + [f"\n(resumed on {time.strftime('%Y-%m-%d %H:%M')} as `{log.lines[0][2:]}`, code at commit "
                                         f"{log.machine['commit']}: the steps above come from the earlier run)\n"]
        results = previous["results"]
        speedup = results["xrd_speedup"]
    else:
        speed, speedup = simulator_speed(log, args.quick)
        results = dict(simulator=speed, xrd_speedup=speedup, quick=args.quick)
    results["settings"] = settings
    log.save(args.out, results)

    real_patterns = real_single_phase_patterns()
    from matdl_nb.xrd_classifier import random_crystal_templates
    t0 = time.time()
    for kind in ("wyckoff", "uniform"): random_crystal_templates(args.crystals + args.n_valid, seed=0, progress=False, kind=kind)  # all cores
    for seed in (1, 2): random_crystal_templates(args.n_test, seed=seed, progress=False, chunk_size=_test_chunk(args.n_test))
    data, test, simulated, real = _data(settings)
    films = _films()[::7] if args.quick else _films()  # a smoke test reads every seventh film
    if "learning_rates" not in results:
        log(f"\n## Crystal system and space group (all 230)\n\n{args.crystals:,} random training crystals (+{args.n_valid} for validation) of each kind (like the database's; "
            f"uniform) and {2 * args.n_test} random test crystals generated in {(time.time() - t0) / 60:.1f} min; real test structures: "
            f"{len(real)} of {len(set(real.types))} structure types ({', '.join(f'{v} {k}' for k, v in pd.Series(real.source).value_counts().items())}; "
            f"{len(real.skipped)} left out: a template cannot hold them); never trained on")
        log("truth for the real single-phase patterns (best-fitting reference polymorph): "
            + ", ".join(f"{p['name']} {p['truth']}" for p in real_patterns))
        results["learning_rates"] = _learning_rates(settings, 12 if args.quick else 100)  # quick: a smoke test of the step (100 batches were half its time)
        log(f"lr_find valleys on the training pipeline: {results['learning_rates']}; each network trains at its own")
        log.save(args.out, results)
    rates = results["learning_rates"]
    headline = args.patterns[0]
    runs = [("ratio", headline, "full", seed) for seed in range(args.seeds)]
    runs += [("ratio", n, "full", 0) for n in args.patterns[1:]]
    runs += [("park", headline, "full", 0), ("ratio", headline, "uniform crystals", 0)]
    if not args.quick: runs += [("ratio", headline, "no new lattices", 0), ("ratio", headline, "no ratio branch", 0)]
    # the headline network as a model folder, for `matdl predict`: beside <out> (so that --resume finds it), else temporary
    model_dir = Path(f"{args.out}.model") if args.out else Path(tempfile.mkdtemp()) / "xrd-model"
    rows = list(results.get("runs", []))
    if not (model_dir / "job.json").exists():  # an earlier run's headline model is gone: train it again
        rows = [r for r in rows if (r["model"], r["patterns"], r["variant"], r["seed"]) != runs[0]]
    done = {(r["model"], r["patterns"], r["variant"], r["seed"]) for r in rows}
    todo = [r for r in runs if r not in done]
    real_inputs = [{k: p[k] for k in ("two_theta", "intensity", "truth")} for p in real_patterns]
    context = multiprocessing.get_context("spawn")  # fresh processes: no threads inherited from this one
    with ProcessPoolExecutor(args.workers, mp_context=context) as pool:
        phase_jobs = [] if ("phases" in results or args.phases_from) else [
            pool.submit(_train_phase_network, dict(seed=seed, samples=args.phase_samples, epochs=args.phase_epochs,
                                                   calibration=args.phase_calibration))
            for seed in range(args.phase_seeds)]
        # the longest runs start first (the workers finish together); results are read in the order of `runs`
        futures = {run: pool.submit(_run, dict(settings=settings, run=run, real=real_inputs, films=films, threads=args.threads,
                                               lr=rates[run[0]], save=str(model_dir) if run == runs[0] else None))
                   for run in sorted(todo, key=lambda r: -r[1])}
        futures = [futures[run] for run in todo]
        if "phases" not in results:
            if args.phases_from: results["phases"] = _phases_from(args.phases_from, log)
            else:
                networks = []
                for future in phase_jobs:
                    networks.append(future.result())
                    n = networks[-1]
                    log(f"phase network, seed {n['seed']}: at its threshold {n['threshold']}, {n['found']} phases found, {n['false']} false")
                results["phases"] = phase_identification(log, networks, args.phase_calibration)
            log.save(args.out, results)
        if not any(l.startswith("## Crystal system: the runs") for l in log.lines): log("\n## Crystal system: the runs\n")
        for future in futures:
            rows.append(future.result())
            r = rows[-1]
            log(f"{r['model']}, {r['patterns']:,} patterns ({r['variant']}, seed {r['seed']}): {r['minutes']} min; training {r['train_cs']:.3f}, "
                f"validation {r['valid_cs']:.3f}; random crystals {r['random_cs']:.3f}; real types {r['types_cs']:.3f} "
                f"(structures {r['structures_cs']:.3f}); films {r['films_cs']:.3f} (most confident half {r['films_cs_half']:.3f})")
            results["runs"] = rows
            log.save(args.out, results)
    phases = results["phases"]
    order = {run: i for i, run in enumerate(runs)}
    rows = sorted(rows, key=lambda r: order.get((r["model"], r["patterns"], r["variant"], r["seed"]), len(runs)))
    results["runs"] = rows
    table = pd.DataFrame(rows)
    log(f"\n## Crystal system: the table\n\n{args.epochs} epochs of one-cycle at each network's lr_find valley, batch 32; tested on patterns "
        f"recorded by {TEST_INSTRUMENT!r}: {args.n_test} new random crystals, the {len(real)} real structures (types: each structure type "
        f"counts once; textured: strong texture and every scan partial), the 5 single-phase and the {len(films)} thin-film measured patterns; "
        "answered: the share at or above the reject threshold chosen on simulated patterns, and their accuracy\n")
    columns = ["model", "patterns", "variant", "seed", "minutes", "lr", "train_cs", "valid_cs", "random_cs", "types_cs", "structures_cs",
               "types_sg", "types_cs_textured", "types_answered", "types_cs_answered", "singles_cs", "films_cs", "films_cs_half",
               "films_answered", "films_cs_answered", "temperature", "threshold"]
    log(table[columns].to_markdown(index=False, floatfmt=".3f"))
    best = table[(table.model == "ratio") & (table.variant == "full") & (table.patterns == headline)]
    log("\nreal structures by crystal system (headline, seed 0): " + ", ".join(f"{k} {v:.2f}" for k, v in best.iloc[0].by_system.items()))
    log("real structures by source (headline, seed 0): " + ", ".join(f"{k} {v:.2f}" for k, v in best.iloc[0].by_source.items()))
    curve = table[(table.model == "ratio") & (table.variant == "full")].groupby("patterns").types_cs.mean()
    log("\nlearning curve over patterns (ours, real types): " + ", ".join(f"{n:,}: {v:.3f}" for n, v in curve.items()))
    estimate = ""
    if len(curve) >= 2 and curve.iloc[-1] > curve.iloc[0]:
        slope = np.polyfit(np.log10(curve.index.to_numpy(float)), curve.to_numpy(), 1)[0]
        needed = 10 ** (np.log10(curve.index[-1]) + (0.85 - curve.iloc[-1]) / slope) if curve.iloc[-1] < 0.85 else curve.index[-1]
        per_pattern = best.minutes.mean() / headline
        estimate = (f"log-linear in the patterns, real-type accuracy grows {slope:.3f} per tenfold; 0.85 would need about {needed:,.0f} "
                    f"patterns if the trend held: {needed * per_pattern / 60:,.0f} core-hours at this CPU's {headline / best.minutes.mean() / 60:,.0f} "
                    "patterns/s per core (a GPU's speed-up was not measured here: no GPU was lent)")
        log(estimate)
    user = _predict_films_as_a_user(model_dir, films, log)
    results.update(autoxrd=user)
    log("Park et al. (IUCrJ 2017), random split of ICSD, clean patterns: crystal system 0.9499, space group 0.8114. Vecsei et al. "
        "(PRB 2019): 54% space group on measured minerals, 82% on the most certain half. Oviedo et al. (2019): 89% space group on "
        "these thin films, with their own structures in training.")
    park = table[table.model == "park"].iloc[0]
    summary = [dict(measure="simulator speed-up over XRDCalculator", value=round(speedup, 1), target=""),
               dict(measure=f"crystal system, real structure types never seen, another instrument (ours, mean of {len(best)} seeds)",
                    value=f"{best.types_cs.mean():.3f} ± {best.types_cs.std(ddof=0):.3f}", target="0.85"),
               dict(measure="the same, per structure", value=round(best.structures_cs.mean(), 3), target=""),
               dict(measure="space group, real structure types", value=round(best.types_sg.mean(), 3), target=""),
               dict(measure="crystal system, Park's CNN (standardised input, its own lr), real types", value=round(park.types_cs, 3), target="well above chance"),
               dict(measure=f"crystal system, {user['autoxrd_used']} of {len(films)} measured thin films (the rest: too short a scan), through matdl predict", value=round(user["autoxrd_cs_acc"], 3),
                    target=f"0.80 (always '{user['autoxrd_majority_class']}': {user['autoxrd_majority']:.3f})"),
               dict(measure="the same, the most confident half", value=round(user["autoxrd_cs_acc_half"], 3), target="0.90"),
               dict(measure="space group, the films", value=round(user["autoxrd_sg_acc"], 3), target=""),
               dict(measure="phases found / present, 8 measured patterns, at the chosen threshold; at 0.5",
                    value=f"{phases['recall']:.3f}; {phases['recall_at_half']:.3f}", target="1.0"),
               dict(measure="false phases, all 8 patterns, at the chosen threshold; at 0.5", value=f"{phases['false']}; {phases['false_at_half']}",
                    target="at most 1")]
    log("\n## Summary\n"); log(pd.DataFrame(summary).to_markdown(index=False))
    results.update(summary=summary, n_train=args.crystals, cs_acc_types=float(best.types_cs.mean()), cs_acc_types_std=float(best.types_cs.std(ddof=0)),
                   sg_acc_types=float(best.types_sg.mean()), cs_acc_structures=float(best.structures_cs.mean()),
                   cs_acc_random=float(best.random_cs.mean()), park_cs_acc=float(park.types_cs), real_cs_acc=float(best.singles_cs.mean()),
                   autoxrd_cs_acc=user["autoxrd_cs_acc"], autoxrd_sg_acc=user["autoxrd_sg_acc"], autoxrd_cs_acc_half=user["autoxrd_cs_acc_half"],
                   autoxrd_used=user["autoxrd_used"], autoxrd_total=user["autoxrd_total"], n_seeds=len(best),
                   real_phase_recall=phases["recall"], real_phase_recall_at_half=phases["recall_at_half"],
                   real_phase_precision=phases["precision"], false_phases=phases["false"], learning_curve=curve.to_dict(), estimate=estimate)
    log(f"\ntotal time {(time.time() - start) / 60:.1f} min")
    log(f"RESULT xrd_speedup={speedup:.1f} cs_acc_types={best.types_cs.mean():.4f} sg_acc_types={best.types_sg.mean():.4f} "
        f"autoxrd_cs_acc={user['autoxrd_cs_acc']:.4f} autoxrd_sg_acc={user['autoxrd_sg_acc']:.4f} autoxrd_cs_acc_half={user['autoxrd_cs_acc_half']:.4f} "
        f"park_cs_acc={park.types_cs:.4f} real_phase_recall={phases['recall']:.3f} real_phase_recall_at_half={phases['recall_at_half']:.3f} "
        f"real_phase_precision={phases['precision']:.3f} n_train={args.crystals}")
    results["minutes"] = round((time.time() - start) / 60, 1)
    log.save(args.out, results)


if __name__ == "__main__":
    main()
