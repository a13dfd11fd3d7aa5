"""Measured XRD patterns: phase identification on the 8 real patterns of XRD-AutoAnalyzer, and a crystal-system
classifier trained through the simulated diffractometer, tested on another instrument and on the real patterns.

1. A PatternCNN trained on simulated, augmented patterns of the 56 reference phases (one main phase plus up to two
   impurities) identifies the phases of each measured pattern with the identify-fit-subtract loop; scored by
   formula against the file names (phases found / present, false phases).
2. XRDNet on (pattern, mask) trained on random pyxtal crystals plus substituted AFLOW prototypes, for a learning curve
   over the number of random crystals; tested on patterns from a different instrument profile (monochromated, wider
   peaks, stronger texture, partial scans) and on the five single-phase measured patterns.

    python bench/xrd_measured.py --out bench/results/xrd_measured      # about 20 minutes on 2 CPU cores
    python bench/xrd_measured.py --quick

Needs the XRD-AutoAnalyzer files (MATDL_MIRROR or the internet). The last line is
`RESULT real_phase_recall=<r> real_phase_precision=<p> false_phases=<f> cs_acc_other_instrument=<a>
proto_cs_acc=<d> real_cs_acc=<c> n_train=<n>`.
"""
import argparse
import time
import warnings

import numpy as np
import pandas as pd
import torch
from fastai.learner import Learner
from fastai.metrics import accuracy
from torch import nn

from _common import Log
from matdl_nb.core import seed_everything
from matdl_nb.data import crystal_system, load_dataset
from matdl_nb.train import make_dataloaders
from matdl_nb.xrd import random_crystals
from matdl_nb.xrd_measured import (OTHER_INSTRUMENT, Diffractometer, PatternCNN, PhaseLibrary, PhaseMixtures,
                                   best_polymorph, crystal_system_accuracy, crystal_system_training_set, identify_phases,
                                   measured_xrd_learner, mixture_collate, predict_pattern, score_identification,
                                   two_theta_grid)


def phase_identification(log, n_samples, epochs):
    references, measured = load_dataset("xrd_autoanalyzer", part="references"), load_dataset("xrd_autoanalyzer")
    library = PhaseLibrary(references.structure, references.name, n_variants=8, progress=False)
    grid = two_theta_grid(10, 80, 0.04)
    seed_everything(0)
    dls = make_dataloaders(PhaseMixtures(library, n_samples, seed=0), PhaseMixtures(library, 512, seed=1), batch_size=128,
                           collate_fn=mixture_collate(library, Diffractometer(grid)))
    learn = Learner(dls, PatternCNN(len(grid), len(library)), loss_func=nn.CrossEntropyLoss(), metrics=accuracy)
    start = time.time()
    with learn.no_bar(): learn.fit_one_cycle(epochs, 3e-3)
    log(f"phase network: {n_samples:,} simulated samples x {epochs} epochs in {(time.time() - start) / 60:.1f} min; "
        f"main-phase accuracy on simulated validation samples {float(learn.validate()[1]):.3f}")
    other = Diffractometer(grid, **OTHER_INSTRUMENT)
    batch = mixture_collate(library, other)([PhaseMixtures(library, 1024, seed=7)[i] for i in range(1024)])
    learn.model.eval()
    with torch.no_grad(): other_acc = float((learn.model(batch[0]).argmax(1) == batch[1]).float().mean())
    log(f"main-phase accuracy on 1,024 simulated samples from the other instrument: {other_acc:.3f}")
    results = {r.name: identify_phases(learn.model, library, r.two_theta, r.intensity, grid, name=r.name) for r in measured.itertuples()}
    scores = score_identification(results, measured)
    log("\n## Phase identification on the 8 measured patterns (XRD-AutoAnalyzer example, Szymanski et al. 2021)\n")
    log(scores.to_markdown())
    found, present, false = int(scores.found.sum()), int(scores.present.sum()), int(scores.false.sum())
    identified = sum(len(r["phases"]) for r in results.values())
    log(f"\nphases found {found} / present {present}; false phases {false}; identified {identified}")
    return library, measured, grid, dict(recall=found / present, precision=(identified - false) / identified if identified else float("nan"),
                                         false=false, other_instrument_phase_acc=other_acc, table=scores.reset_index().to_dict("records"))


def crystal_systems(log, library, measured, grid, sizes, epochs):
    test_crystals, _ = random_crystals(300, seed=11, progress=False)
    other = Diffractometer(grid, **OTHER_INSTRUMENT)
    singles = measured[measured.phases.map(len) == 1]
    truth = {r.name: crystal_system(int(best_polymorph(library, r.phases[0], r.two_theta, r.intensity, grid).rsplit("_", 1)[1]))
             for r in singles.itertuples()}
    rows = []
    for n in sizes:
        data = crystal_system_training_set(n, 4, seed=0, progress=False)
        seed_everything(0)
        learn = measured_xrd_learner(data["train"], data["valid"], batch_size=64)
        start = time.time()
        with learn.no_bar(): learn.fit_one_cycle(epochs, 3e-3)
        held_out = data["held_out"]
        real = [predict_pattern(learn.model, r.two_theta, r.intensity)["crystal_system"].answer[0] == truth[r.name] for r in singles.itertuples()]
        rows.append(dict(random_crystals=n, training_structures=len(data["train"]), minutes=round((time.time() - start) / 60, 1),
                         cs_acc_other_instrument=crystal_system_accuracy(learn.model, [s for s, _ in test_crystals],
                                                                         [g for _, g in test_crystals], other, seed=5),
                         proto_cs_acc=crystal_system_accuracy(learn.model, held_out.structure.tolist(),
                                                              held_out.spacegroup_number.tolist(), other, seed=5),
                         real_cs_acc=float(np.mean(real))))
    table = pd.DataFrame(rows)
    log(f"\n## Crystal system, XRDNet on (pattern, mask), {epochs} epochs; tested on another instrument\n")
    log("truth for the real single-phase patterns (best-fitting reference polymorph): " + ", ".join(f"{k} {v}" for k, v in truth.items()))
    log(table.to_markdown(index=False, floatfmt=".3f"))
    log("Park et al. (IUCrJ 2017), 150k ICSD patterns: crystal system 0.95 (clean simulated test patterns).")
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=8192, help="simulated samples per epoch for the phase network")
    parser.add_argument("--epochs", type=int, default=14)
    parser.add_argument("--sizes", type=int, nargs="+", default=[250, 1000, 2000], help="random crystals, learning curve")
    parser.add_argument("--cs-epochs", type=int, default=10)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=str, default=None)
    args = parser.parse_args(argv)
    if args.quick: args.samples, args.epochs, args.sizes, args.cs_epochs = 512, 1, [50], 1
    warnings.filterwarnings("ignore")
    log, start = Log(__file__, argv), time.time()
    library, measured, grid, phases = phase_identification(log, args.samples, args.epochs)
    curve = crystal_systems(log, library, measured, grid, args.sizes, args.cs_epochs)
    last = curve.iloc[-1]
    summary = [dict(measure="phases found / present (8 measured patterns)", value=round(phases["recall"], 3), target="1.0"),
               dict(measure="false phases, all 8 patterns", value=phases["false"], target="at most 1"),
               dict(measure="crystal system, random crystals, other instrument", value=round(last.cs_acc_other_instrument, 3), target="0.85 (Park: 0.95)"),
               dict(measure="crystal system, held-out AFLOW prototypes, other instrument", value=round(last.proto_cs_acc, 3), target=""),
               dict(measure="crystal system, 5 real single-phase patterns", value=round(last.real_cs_acc, 3), target="")]
    log("\n## Summary\n"); log(pd.DataFrame(summary).to_markdown(index=False))
    log(f"\ntotal time {(time.time() - start) / 60:.1f} min")
    log(f"RESULT real_phase_recall={phases['recall']:.3f} real_phase_precision={phases['precision']:.3f} false_phases={phases['false']} "
        f"cs_acc_other_instrument={last.cs_acc_other_instrument:.3f} proto_cs_acc={last.proto_cs_acc:.3f} "
        f"real_cs_acc={last.real_cs_acc:.3f} n_train={int(last.training_structures)}")
    log.save(args.out, dict(summary=summary, phases=phases, learning_curve=curve.to_dict("records")))


if __name__ == "__main__":
    main()
