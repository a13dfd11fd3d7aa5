"""Powder-pattern simulation speed and agreement, and CNN accuracy for crystal system and space group.

1. Our vectorised `peak_list` against pymatgen's `XRDCalculator` on the same structures (the 288 AFLOW
   prototypes and random pyxtal crystals): patterns per second for both, and the largest peak-position and
   relative-intensity differences.
2. The two-headed 1D CNN trained on augmented patterns of random pyxtal crystals (36 space groups, all seven
   crystal systems), tested on clean patterns of unseen random crystals and of the AFLOW prototypes.

    python bench/xrd.py                 # 8,000 training crystals, about 40 minutes on 2 CPU cores
    python bench/xrd.py --n 150000      # Park et al.'s scale, for a GPU
    python bench/xrd.py --quick         # a smoke test

The last line is `RESULT xrd_speedup=<s> cs_acc=<a> sg_acc=<b> sg_top5=<c> proto_cs_acc=<d> n_train=<n>`.
"""
import argparse
import contextlib
import io
import time

import numpy as np
import pandas as pd
from pymatgen.analysis.diffraction.xrd import XRDCalculator

from _common import Log
from matdl_nb.core import seed_everything
from matdl_nb.data import CRYSTAL_SYSTEMS, load_dataset
from matdl_nb.train import classification_report
from matdl_nb.xrd import (SPACE_GROUP_CLASSES, PeakDataset, pattern_agreement, peak_list, peaks_of, predict_peaks,
                          random_crystal_peaks, random_crystals, xrd_learner)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=8000, help="training crystals (10%% of them validate)")
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=str, default=None, help="write <out>.md (the full output) and <out>.json")
    args = parser.parse_args(argv)
    if args.quick: args.n, args.n_test, args.epochs = 300, 100, 2
    log, start = Log(__file__, argv), time.time()

    # 1. simulator: speed and agreement with pymatgen on the same structures
    prototypes = load_dataset("aflow_prototypes")
    randoms, _ = random_crystals(50 if args.quick else 300, seed=123, progress=False)
    calculator = XRDCalculator()
    speed = []
    worst = dict(max_position_error=0.0, max_intensity_error=0.0)
    for name, structures in (("AFLOW prototypes", list(prototypes.structure)), ("random pyxtal crystals", [s for s, _ in randoms])):
        t0 = time.perf_counter(); ours = [peak_list(s) for s in structures]; t_ours = time.perf_counter() - t0
        t0 = time.perf_counter(); theirs = [calculator.get_pattern(s, two_theta_range=(5, 90)) for s in structures]
        t_pmg = time.perf_counter() - t0
        agree = pd.DataFrame([pattern_agreement(o, (p.x, p.y)) for o, p in zip(ours, theirs)])
        for k in worst: worst[k] = max(worst[k], float(agree[k].max()))
        speed.append(dict(structures=name, n=len(structures), ours_per_s=round(len(structures) / t_ours, 1),
                          xrdcalculator_per_s=round(len(structures) / t_pmg, 1), speedup=round(t_pmg / t_ours, 1),
                          max_position_error_deg=round(float(agree.max_position_error.max()), 6),
                          max_intensity_error_pct=round(float(agree.max_intensity_error.max()), 4)))
    xrd_speedup = sum(r["n"] / r["xrdcalculator_per_s"] for r in speed) / sum(r["n"] / r["ours_per_s"] for r in speed)
    log("\n## Simulator against pymatgen's XRDCalculator (Cu K-alpha, 5-90 degrees 2-theta)\n")
    log(pd.DataFrame(speed).to_markdown(index=False))
    log(f"\nall together: {xrd_speedup:.1f}x faster; largest position difference {worst['max_position_error']:.2e} degrees, "
        f"largest intensity difference {worst['max_intensity_error']:.2e}% of the strongest peak "
        f"(required: 0.01 degrees and 1%)")

    # 2. the classifier
    t0 = time.time()
    train_peaks = random_crystal_peaks(args.n, seed=0, progress=False)
    test_peaks = random_crystal_peaks(args.n_test, seed=1, progress=False)
    log(f"\n{args.n:,} training and {args.n_test:,} test crystals generated in {(time.time() - t0) / 60:.1f} min "
        f"({int(train_peaks['attempts']):,} attempts for the training set: {int(train_peaks['failed'])} failed, "
        f"{int(train_peaks['symmetry_changed'])} changed symmetry, {int(train_peaks['duplicates'])} duplicates)")
    counts = pd.Series(train_peaks["crystal_system"]).value_counts().reindex(CRYSTAL_SYSTEMS)
    log("training crystals per crystal system: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    n_valid = args.n // 10
    split = {k: (v[n_valid:], v[:n_valid]) for k, v in train_peaks.items() if v.ndim > 0}
    seed_everything(0)
    learn = xrd_learner(PeakDataset({k: v[0] for k, v in split.items()}), PeakDataset({k: v[1] for k, v in split.items()}),
                        batch_size=args.batch_size)
    t0 = time.time()
    with learn.no_bar(), learn.no_logging(), contextlib.redirect_stdout(io.StringIO()):
        learn.fit_one_cycle(args.epochs, args.lr)
    train_minutes = (time.time() - t0) / 60
    log(f"trained {args.epochs} epochs in {train_minutes:.1f} min; last validation: "
        + ", ".join(f"{n} {v:.3f}" for n, v in zip(learn.recorder.metric_names[3:-1], learn.recorder.values[-1][2:])))

    cs_p, sg_p = predict_peaks(learn.model, test_peaks)
    cs_true = np.array([CRYSTAL_SYSTEMS.index(c) for c in test_peaks["crystal_system"]])
    sg_true = np.array([SPACE_GROUP_CLASSES.index(int(g)) for g in test_peaks["space_group"]])
    cs_report, sg_report = classification_report(cs_true, cs_p, (1, 3)), classification_report(sg_true, sg_p, (1, 5))
    pcs_p, psg_p = predict_peaks(learn.model, peaks_of(list(prototypes.structure)))
    pcs_true = np.array([CRYSTAL_SYSTEMS.index(c) for c in prototypes.crystal_system])
    inside = prototypes.spacegroup_number.isin(SPACE_GROUP_CLASSES).to_numpy()
    psg_true = np.array([SPACE_GROUP_CLASSES.index(g) for g in prototypes.spacegroup_number[inside]])
    pcs_report, psg_report = classification_report(pcs_true, pcs_p, (1, 3)), classification_report(psg_true, psg_p[inside], (1, 5))
    table = [dict(test_set=f"random crystals ({args.n_test:,})", cs_top1=cs_report["top1"], cs_top3=cs_report["top3"],
                  sg_top1=sg_report["top1"], sg_top5=sg_report["top5"]),
             dict(test_set=f"AFLOW prototypes ({len(prototypes)}; space groups: {int(inside.sum())} in our classes)",
                  cs_top1=pcs_report["top1"], cs_top3=pcs_report["top3"], sg_top1=psg_report["top1"], sg_top5=psg_report["top5"])]
    log(f"\n## Accuracy on clean patterns (30 nm crystallites), trained on {args.n - n_valid:,} crystals\n")
    log(pd.DataFrame(table).to_markdown(index=False, floatfmt=".3f"))
    log("\nPark et al. (IUCrJ 2017), 150k patterns of ICSD structures, 230 space groups: crystal system 94.99%, "
        "space group 81.14%.")
    elapsed = time.time() - start
    log(f"\ntotal time {elapsed / 60:.1f} min")
    result = (f"RESULT xrd_speedup={xrd_speedup:.1f} cs_acc={cs_report['top1']:.4f} sg_acc={sg_report['top1']:.4f} "
              f"sg_top5={sg_report['top5']:.4f} proto_cs_acc={pcs_report['top1']:.4f} n_train={args.n - n_valid}")
    log(result)
    log.save(args.out, dict(
        simulator=speed, xrd_speedup=xrd_speedup, table=table,
            accuracy=dict(cs_acc=cs_report["top1"], sg_acc=sg_report["top1"], sg_top5=sg_report["top5"],
                          proto_cs_acc=pcs_report["top1"], proto_sg_acc=psg_report["top1"]),
            n_train=args.n - n_valid, train_minutes=round(train_minutes, 1), minutes=round(elapsed / 60, 1),
            quick=args.quick))


if __name__ == "__main__":
    main()
