"""Uncertainty of ElemNet on the OQMD formation-enthalpy split: Monte-Carlo dropout, a deep ensemble, and both.

Five ElemNets (seeds 0-4) train on CrabNet's OQMD `val.csv` (10% held back as the validation rows on which the
recalibration factor is fitted) and predict its `test.csv`. For each method: test MAE, negative log-likelihood,
miscalibration area before and after recalibration, coverage of the central 90% interval, Spearman correlation
of |error| with sigma, and the MAE of the 50% most confident predictions relative to the MAE of all.

    python bench/uq.py                 # about 30 to 50 minutes on 2 CPU cores
    python bench/uq.py --quick         # a smoke test

Recalibration multiplies sigma by one factor fitted on the validation rows, in two ways: the likelihood-optimal
factor and the calibration-optimal one (they differ when the errors have heavy tails, see the notebook).

The last line is `RESULT mcd_miscal=<a> ens_miscal=<b> coverage90=<c> kept50_mae_ratio=<r>`: the miscalibration
areas of MC dropout and of the ensemble as predicted (before recalibration), and, for the ensemble of MC-dropout
members, the 90% coverage after calibration-optimal recalibration and the kept-half MAE over the full MAE.
"""
import argparse
import contextlib
import io
import time

import numpy as np
import pandas as pd
import torch
from torch.utils.data import TensorDataset

from _common import Log
from matdl_nb.composition import ElemNet, composition_learner, element_fractions
from matdl_nb.data import load_dataset, random_split
from matdl_nb.train import make_dataloader
from matdl_nb.uncertainty import (combine_gaussians, ensemble_passes, interval_coverage, mc_dropout_passes,
                                  miscalibration_area, recalibration_scale, train_ensemble, uq_report)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--mc-passes", type=int, default=30)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=str, default=None, help="write <out>.md (the full output) and <out>.json")
    args = parser.parse_args(argv)
    log, start = Log(__file__, argv), time.time()
    train_all = load_dataset("oqmd_formation_enthalpy", split="train")
    test = load_dataset("oqmd_formation_enthalpy", split="test")
    if args.quick:
        train_all, test, args.members, args.epochs, args.mc_passes = train_all.iloc[:3000], test.iloc[:1000], 2, 2, 4
    train, valid = random_split(train_all, test_frac=0.1, seed=0)
    x = {k: element_fractions(d.formula, progress=False) for k, d in (("train", train), ("valid", valid), ("test", test))}
    y = {k: d.formation_enthalpy.to_numpy(np.float32) for k, d in (("train", train), ("valid", valid), ("test", test))}
    log(f"train {len(train):,}, validation {len(valid):,}, test {len(test):,} formulas; {args.members} members, "
        f"{args.epochs} epochs each, {args.mc_passes} Monte-Carlo passes")

    t0 = time.time()
    with contextlib.redirect_stdout(io.StringIO()):
        members = train_ensemble(lambda seed: composition_learner(ElemNet, x["train"], y["train"], x["valid"], y["valid"],
                                                                  batch_size=512),
                                 n_models=args.members, fit=lambda l: l.fit_one_cycle(args.epochs, args.lr), progress=False)
    log(f"ensemble trained in {(time.time() - t0) / 60:.1f} min")
    dl = {k: make_dataloader(TensorDataset(torch.from_numpy(x[k]), torch.from_numpy(y[k])), 2048, device=members[0].dls.device)
          for k in ("valid", "test")}
    t0 = time.time()
    predictions = {}
    for split in ("valid", "test"):
        mc = mc_dropout_passes(members[0], dl[split], args.mc_passes, progress=False)
        ens = ensemble_passes(members, dl[split])[:, 0]
        both = ensemble_passes(members, dl[split], mc_passes=max(2, args.mc_passes // args.members))
        predictions[split] = {"MC dropout (one ElemNet)": (mc.mean(0), mc.std(0)),
                              f"ensemble of {args.members}": (ens.mean(0), ens.std(0)),
                              f"ensemble of {args.members} with MC dropout": combine_gaussians(both.mean(1), both.std(1))}
    log(f"predictions in {(time.time() - t0) / 60:.1f} min")
    table = []
    for method, (mean, std) in predictions["test"].items():
        raw = uq_report(y["test"], mean, std)
        row = dict(method=method, mae=raw["mae"], nll=raw["nll"], miscal=raw["miscalibration"], coverage90=raw["coverage90"],
                   spearman=raw["spearman"], kept50_mae=raw["kept50_mae_ratio"] * raw["mae"],
                   kept50_mae_ratio=raw["kept50_mae_ratio"])
        # two recalibration factors, both fitted on the validation rows: likelihood-optimal and calibration-optimal
        for how in ("nll", "calibration"):
            scale = recalibration_scale(y["valid"], *predictions["valid"][method], method=how)
            recal = uq_report(y["test"], mean, scale * std)
            row.update({f"scale_{how}": scale, f"nll_{how}": recal["nll"], f"miscal_{how}": recal["miscalibration"],
                        f"coverage90_{how}": recal["coverage90"]})
        table.append(row)
    frame = pd.DataFrame(table).set_index("method")
    log("\n## Test rows (eV/atom), as predicted\n")
    log(frame[["mae", "nll", "miscal", "coverage90", "spearman", "kept50_mae", "kept50_mae_ratio"]].to_markdown(floatfmt=".4f"))
    log("\n## After recalibration: sigma times a factor fitted on the validation rows\n")
    log("(nll: the factor that maximises the Gaussian likelihood; calibration: the one that minimises the miscalibration area)\n")
    log(frame[[c for c in frame.columns if c.endswith(("_nll", "_calibration"))]].to_markdown(floatfmt=".4f"))
    elapsed = time.time() - start
    log(f"\ntotal time {elapsed / 60:.1f} min")
    mcd, ens, both = table
    log(f"RESULT mcd_miscal={mcd['miscal']:.4f} ens_miscal={ens['miscal']:.4f} "
        f"coverage90={both['coverage90_calibration']:.4f} kept50_mae_ratio={both['kept50_mae_ratio']:.4f}")
    log.save(args.out, dict(table=table, minutes=round(elapsed / 60, 1), quick=args.quick))


if __name__ == "__main__":
    main()
