"""ElemNet and IRNet against a random forest on Magpie features, on the OQMD formation-enthalpy split.

Trains on CrabNet's OQMD `val.csv` (51,255 formulas, 5% of them held back for early stopping) and tests on
its `test.csv` (51,255 formulas), where ElemNet, a random forest, Roost and CrabNet published predictions:
their MAE on the very same rows is printed beside ours. Then a learning curve (test MAE against training-set
size for ElemNet and the random forest), transfer learning from OQMD to pymatgen's experimental formation
enthalpies, and the PCA of ElemNet's first-layer element weights.

    python bench/elemnet.py                 # full size, about 30 minutes on 2 CPU cores
    python bench/elemnet.py --quick         # a smoke test on a few thousand rows
    python bench/elemnet.py --out bench/results/elemnet   # also write elemnet.md and elemnet.json

Data come through matdl_nb's registry (internet, or a mirror in MATDL_MIRROR). The last line printed is
`RESULT elemnet_mae=<x> irnet_mae=<y> rf_mae=<z> n_train=<n>`.
"""
import argparse
import contextlib
import io
import time

import numpy as np
import pandas as pd

from _common import Log
from matdl_nb.composition import (ElemNet, IRNet, composition_learner, element_embedding, element_fractions,
                                  fine_tune_learner, fit_random_forest, magpie_features, predict, supported)
from matdl_nb.core import seed_everything
from matdl_nb.data import load_dataset, random_split


def mae(y, p) -> float: return float(np.mean(np.abs(np.asarray(y) - np.asarray(p))))


def quietly(learn, epochs, lr):
    "fit_one_cycle without progress bars or fastai's per-epoch prints; returns the learner (best epoch kept)."
    with learn.no_bar(), learn.no_logging(), contextlib.redirect_stdout(io.StringIO()):
        learn.fit_one_cycle(epochs, lr)
    return learn


def best_valid_mae(learn) -> float: return float(min(v[2] for v in learn.recorder.values))


def train_net(model_class, x_tr, y_tr, x_va, y_va, epochs, lr, batch_size, seed=0):
    "One-cycle training for all epochs (no early stopping: it would cut the annealing phase); the best epoch is kept."
    seed_everything(seed)
    return quietly(composition_learner(model_class, x_tr, y_tr, x_va, y_va, batch_size=batch_size, patience=None),
                   epochs, lr)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke test on a few thousand rows")
    parser.add_argument("--epochs", type=int, default=40, help="epochs for the full-size networks")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--lr", type=float, default=3e-3,
                        help="peak one-cycle learning rate (3e-3 gave the lowest validation MAE of 3e-4, 1e-3, 3e-3)")
    parser.add_argument("--trees", type=int, default=200, help="trees of the random forest")
    parser.add_argument("--out", type=str, default=None, help="write <out>.md (the full output) and <out>.json")
    args = parser.parse_args(argv)
    log, start = Log(__file__, argv), time.time()
    epochs = 3 if args.quick else args.epochs

    train_all = load_dataset("oqmd_formation_enthalpy", split="train")
    test = load_dataset("oqmd_formation_enthalpy", split="test")
    if args.quick: train_all, test = train_all.iloc[:2000], test.iloc[:1000]
    train, valid = random_split(train_all, test_frac=0.05, seed=0)
    x_tr, x_va, x_te = (element_fractions(d.formula, progress=False) for d in (train, valid, test))
    y_tr, y_va, y_te = (d.formation_enthalpy.to_numpy(np.float32) for d in (train, valid, test))
    t0 = time.time()
    m_tr, m_te = magpie_features(train.formula, progress=False), magpie_features(test.formula, progress=False)
    log(f"train {len(train):,} (+{len(valid):,} to pick the best epoch), test {len(test):,} formulas; "
        f"Magpie features in {time.time() - t0:.0f} s")

    published = {}
    for model in ("elemnet", "rf", "roost", "crabnet"):
        p = load_dataset("oqmd_published_predictions", model=model).set_index("formula")
        rows = p.index.intersection(test.formula)
        published[model] = mae(p.loc[rows, "actual"], p.loc[rows, "predicted"])

    table, preds, times = [], {}, {}
    preds["mean"] = np.full_like(y_te, y_tr.mean()); times["mean"] = 0.0
    t0 = time.time(); forest = fit_random_forest(m_tr, y_tr, n_estimators=50 if args.quick else args.trees)
    preds["rf"] = forest.predict(m_te); times["rf"] = time.time() - t0
    nets = {}
    for name, cls in (("elemnet", ElemNet), ("irnet", IRNet)):
        t0 = time.time()
        nets[name] = train_net(cls, x_tr, y_tr, x_va, y_va, epochs, args.lr, args.batch_size)
        preds[name] = predict(nets[name].model, x_te); times[name] = time.time() - t0
        log(f"{name}: {len(nets[name].recorder.values)} epochs in {times[name]:.0f} s")
    labels = {"mean": "mean of training targets", "rf": "random forest (Magpie)", "elemnet": "ElemNet (17 layers)",
              "irnet": "IRNet (17 layers)"}
    for key in ("mean", "rf", "elemnet", "irnet"):
        table.append(dict(model=labels[key], n_train=len(train), test_mae=round(mae(y_te, preds[key]), 4),
                          published_mae=round(published[key], 4) if key in published else None,
                          train_seconds=round(times[key], 1)))
    log("\n## Test MAE on the OQMD test split (eV/atom)\n")
    log(pd.DataFrame(table).to_markdown(index=False))
    log("\npublished MAE on the same test rows: " + ", ".join(f"{k} {v:.4f}" for k, v in published.items()))

    # learning curve: the full-size points are the runs above
    full = len(train)
    sizes = [s for s in ((500, 1000) if args.quick else (1000, 4000, 16000)) if s < full] + [full]
    curve = {"sizes": sizes, "ElemNet": [], "IRNet": [], "RF (Magpie)": []}
    for size in sizes:
        if size == full:
            for key, name in (("ElemNet", "elemnet"), ("IRNet", "irnet"), ("RF (Magpie)", "rf")):
                curve[key].append(mae(y_te, preds[name]))
            continue
        pick = np.random.default_rng(size).choice(full, size, replace=False)
        scaled = int(round(epochs * (full / size) ** 0.25))  # more passes over fewer rows, within a bounded budget
        batch = args.batch_size if size >= 4000 else 128  # at least 8 steps per epoch on the smallest subsets
        for key, cls in (("ElemNet", ElemNet), ("IRNet", IRNet)):
            learn = train_net(cls, x_tr[pick], y_tr[pick], x_va, y_va, scaled, args.lr, batch)
            curve[key].append(mae(y_te, predict(learn.model, x_te)))
        rf_small = fit_random_forest(m_tr[pick], y_tr[pick], n_estimators=50 if args.quick else args.trees)
        curve["RF (Magpie)"].append(mae(y_te, rf_small.predict(m_te)))
        log(f"learning curve: {size:,} rows ({scaled} epochs): " + ", ".join(f"{k} {v[-1]:.4f}" for k, v in curve.items() if k != "sizes"))
    log("\n## Learning curve: test MAE (eV/atom) against training-set size\n")
    curve_table = pd.DataFrame(curve).rename(columns={"sizes": "training rows"})
    curve_table["training rows"] = curve_table["training rows"].map("{:,}".format)
    log(curve_table.to_markdown(index=False, floatfmt=".4f"))

    # transfer learning to experimental formation enthalpies
    experimental = load_dataset("exp_formation_enthalpy")
    experimental = experimental[supported(experimental.formula)]
    exp_train, exp_test = random_split(experimental, test_frac=0.2, seed=1)
    exp_train, exp_valid = random_split(exp_train, test_frac=0.1, seed=1)
    xe = [element_fractions(d.formula, progress=False) for d in (exp_train, exp_valid, exp_test)]
    ye = [d.dhf_ev_per_atom.to_numpy(np.float32) for d in (exp_train, exp_valid, exp_test)]
    tl_epochs = 5 if args.quick else 50
    transfer = []
    for name, cls in (("ElemNet", ElemNet), ("IRNet", IRNet)):
        scratch = train_net(cls, xe[0], ye[0], xe[1], ye[1], tl_epochs, args.lr, 64)
        tuned = {}
        for lr in (1e-4, 1e-3):  # the fine-tuning rate is chosen on the validation rows, never on the held-out ones
            seed_everything(0)
            tuned[lr] = quietly(fine_tune_learner(nets[name.lower()].model, xe[0], ye[0], xe[1], ye[1], patience=None),
                                tl_epochs, lr)
        best_lr = min(tuned, key=lambda lr: best_valid_mae(tuned[lr]))
        transfer += [dict(model=f"{name}, experimental data only", test_mae=mae(ye[2], predict(scratch.model, xe[2]))),
                     dict(model=f"{name}, OQMD only (no fine-tuning)", test_mae=mae(ye[2], predict(nets[name.lower()].model, xe[2]))),
                     dict(model=f"{name}, OQMD then fine-tuned (lr {best_lr:g})", test_mae=mae(ye[2], predict(tuned[best_lr].model, xe[2])))]
    rf_exp = fit_random_forest(magpie_features(exp_train.formula, progress=False), ye[0])
    transfer.append(dict(model="RF (Magpie), experimental data only",
                         test_mae=mae(ye[2], rf_exp.predict(magpie_features(exp_test.formula, progress=False)))))
    log(f"\n## Transfer learning: {len(exp_train)} experimental training rows (+{len(exp_valid)} validation), "
        f"{len(exp_test)} held out (eV/atom)\n")
    log(pd.DataFrame(transfer).to_markdown(index=False, floatfmt=".4f"))
    log("(Jha et al. 2019 report 0.06 eV/atom on 1,963 experimental formation energies with transfer learning.)")

    embedding = element_embedding(nets["elemnet"].model).reset_index(names="element")
    elapsed = time.time() - start
    log(f"\ntotal time {elapsed / 60:.1f} min")
    result = (f"RESULT elemnet_mae={mae(y_te, preds['elemnet']):.4f} irnet_mae={mae(y_te, preds['irnet']):.4f} "
              f"rf_mae={mae(y_te, preds['rf']):.4f} n_train={len(train)}")
    log(result)
    log.save(args.out, dict(
        table=table, published=published, learning_curve=curve, transfer=transfer,
            embedding=embedding.to_dict(orient="list"), minutes=round(elapsed / 60, 1),
            quick=args.quick))


if __name__ == "__main__":
    main()
