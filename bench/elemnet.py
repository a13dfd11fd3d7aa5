"""ElemNet and IRNet trained to convergence against a random forest on Magpie features, on OQMD or Matbench mp_e_form.

`--data oqmd` (the default) trains on CrabNet's OQMD `val.csv` (51,255 formulas, 5% of them held back for early
stopping) and tests on its `test.csv` (51,255 formulas), where ElemNet, a random forest, Roost and CrabNet published
predictions: their MAE on the very same rows is printed beside ours. `--data mp_e_form` uses Matbench's 132,752
Materials Project formation energies, one row per composition (the lowest energy of its polymorphs: the ground state,
which is what a composition alone can claim to predict), 20% of the compositions held out as a fixed test split
(seed 0), 5% of the rest for early stopping.

Every network is trained to convergence by `matdl_nb.train.fit_to_convergence`: fastai's learning-rate range test
(`lr_find`, recorded), a start at ten times its 'valley' suggestion but never above the rate of its lowest loss,
reached by a 3-epoch linear warm-up, the rate cut by 4 after 5 epochs without a better validation loss, training
stopped after `--patience` (15) epochs without one, at most `--max-epochs` (150); the best epoch is kept and the
epochs used are printed. Then a learning curve (test MAE against training-set size for the mean, ElemNet, IRNet and
the forest, every network converged the same way), optionally a second recipe at every size, a fixed budget of
one-cycle epochs without early stopping (`--one-cycle-epochs 40`), which suits ElemNet better on OQMD. With both
recipes, each network's recipe at each size is chosen on the validation rows (never the test rows), and ElemNet's
verdict against the forest (`crossover_rows`) uses the chosen one; `--seeds K` repeats ElemNet (every recipe) with K
seeds at the full size and reports their mean and spread. For OQMD, transfer learning to pymatgen's experimental
formation enthalpies and the PCA of ElemNet's first-layer weights follow.

    python bench/elemnet.py --one-cycle-epochs 40 --out bench/results/elemnet        # OQMD
    python bench/elemnet.py --data mp_e_form --one-cycle-epochs 40 --seeds 2 --out bench/results/elemnet_mp_e_form
    python bench/elemnet.py --quick                 # a smoke test on a few thousand rows

The committed OQMD run took 64 minutes (its one-cycle runs at the full size only: it predates the per-size recipes);
the committed mp_e_form run's time is at the end of its output; both on a 2-core CPU, one torch thread each. On a CPU the
networks train in bfloat16 mixed precision (`--precision bf16`, weights and updates in float32); `--precision fp32`
turns it off. Data come through matdl_nb's registry (internet, or a mirror in MATDL_MIRROR). The last line for OQMD
is `RESULT elemnet_mae=<x> irnet_mae=<y> rf_mae=<z> n_train=<n>`; for mp_e_form it adds
`crossover_rows=<rows or none>`, the smallest measured training size at which ElemNet's test MAE is below the
forest's; with `--one-cycle-epochs` both add `elemnet_converged_mae`, `elemnet_one_cycle_mae`, `elemnet_chosen_mae`
(full size, means over the seeds) and `elemnet_seeds`.
"""
import argparse
import contextlib
import io
import time

import numpy as np
import pandas as pd

from _common import Log
from matdl_nb.composition import (ElemNet, IRNet, composition_learner, element_embedding, element_fractions,
                                  fine_tune_learner, fit_random_forest, magpie_features, one_row_per_formula, predict,
                                  supported)
from matdl_nb.core import get_device, seed_everything
from matdl_nb.data import load_dataset, random_split
from matdl_nb.scale import mixed_precision
from matdl_nb.train import fit_to_convergence

NETS = {"ElemNet": ElemNet, "IRNet": IRNet}


def mae(y, p) -> float: return float(np.mean(np.abs(np.asarray(y) - np.asarray(p))))


def one_cycle(learn, epochs, lr):
    "fit_one_cycle for all epochs without progress bars or fastai's prints (no early stopping: it would cut the annealing)."
    with learn.no_bar(), learn.no_logging(), contextlib.redirect_stdout(io.StringIO()):
        learn.fit_one_cycle(epochs, lr)
    return learn


def best_valid_mae(learn) -> float: return float(min(v[2] for v in learn.recorder.values))


def key(name: str, recipe: str) -> str:
    "The name of a network trained with a recipe in the curves and predictions: 'ElemNet' (converged), 'ElemNet, one-cycle'."
    return name if recipe == "converged" else f"{name}, {recipe}"


def describe(recipe: str, run: dict, args) -> str:
    if recipe != "converged": return f"{args.one_cycle_epochs} one-cycle epochs at peak 3e-3"
    return (f"converged (lr_find valley {run['lr_find']:.2g}, best {run['lr_best']:.2g}, start {run['lr']:.2g}, "
            f"{run['epochs']} epochs, best {run['best_epoch']}, "
            f"{'stopped by itself' if run['converged'] else 'hit max_epochs: not converged'}, rate cut at {run['lr_cuts']})")


def fixed_budget(model_class, x_tr, y_tr, x_va, y_va, args, batch_size, seed=0):
    "The fixed-budget recipe: `--one-cycle-epochs` one-cycle epochs at a peak of 3e-3, no early stopping; the learner and a run record."
    seed_everything(seed)
    t0 = time.time()
    learn = composition_learner(model_class, x_tr, y_tr, x_va, y_va, batch_size=batch_size, patience=None)
    if args.precision == "bf16": mixed_precision(learn, "bf16")
    one_cycle(learn, args.one_cycle_epochs, 3e-3)
    mixed_precision(learn, None)
    return learn, dict(minutes=round((time.time() - t0) / 60, 2), epochs=args.one_cycle_epochs, lr=3e-3)


def converge(model_class, x_tr, y_tr, x_va, y_va, args, batch_size, seed=0):
    "A composition model trained to convergence; returns the learner and what happened (lr found, epochs, minutes)."
    seed_everything(seed)
    learn = composition_learner(model_class, x_tr, y_tr, x_va, y_va, batch_size=batch_size, patience=None)
    if args.precision == "bf16": mixed_precision(learn, "bf16")
    t0 = time.time()
    with learn.no_bar(), learn.no_logging(), contextlib.redirect_stdout(io.StringIO()):
        run = fit_to_convergence(learn, max_epochs=args.max_epochs, patience=args.patience, lr_patience=5,
                                 lr_find_iterations=args.lr_find_iterations)
    mixed_precision(learn, None)
    run.update(minutes=round((time.time() - t0) / 60, 2), best_valid_mae=round(best_valid_mae(learn), 4),
               **{k: float(f"{run[k]:.3g}") for k in ("lr", "lr_find", "lr_best")})
    return learn, run


def load_split(args):
    "Training (with its validation rows) and test frames with `formula` and `target` columns, and a line about them."
    if args.data == "oqmd":
        train_all = load_dataset("oqmd_formation_enthalpy", split="train").rename(columns={"formation_enthalpy": "target"})
        test = load_dataset("oqmd_formation_enthalpy", split="test").rename(columns={"formation_enthalpy": "target"})
        about = "CrabNet's OQMD split (val.csv to train, test.csv to test)"
    else:
        raw = load_dataset("matbench_mp_e_form")
        if args.quick: raw = raw.iloc[:3000]
        known = raw[supported(raw.formula)]
        data = one_row_per_formula(known, "formation_energy", keep="min").rename(columns={"formation_energy": "target"})
        train_all, test = random_split(data, test_frac=0.2, seed=0)
        about = (f"Matbench mp_e_form: {len(raw):,} rows, {len(known):,} with ElemNet's 86 elements, {len(data):,} "
                 f"compositions after keeping the lowest energy per reduced formula ({len(known) - len(data):,} "
                 f"polymorph rows dropped); 20% of the compositions are the test split (seed 0)")
    if args.quick: train_all, test = train_all.iloc[:1200], test.iloc[:400]
    train, valid = random_split(train_all, test_frac=0.05, seed=0)
    return train, valid, test, about


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", choices=("oqmd", "mp_e_form"), default="oqmd")
    parser.add_argument("--quick", action="store_true", help="smoke test on a few thousand rows")
    parser.add_argument("--one-cycle-epochs", type=int, default=0,
                        help="also train each network for this fixed budget of one-cycle epochs (peak 3e-3; 0: not), "
                             "at every learning-curve size")
    parser.add_argument("--seeds", type=int, default=1,
                        help="seeds of each --seed-nets network (every recipe) at the full training size")
    parser.add_argument("--seed-nets", nargs="+", default=["ElemNet"], choices=list(NETS),
                        help="the networks trained with --seeds seeds at the full size (default ElemNet)")
    parser.add_argument("--max-epochs", type=int, default=150, help="upper bound on the epochs of one network")
    parser.add_argument("--patience", type=int, default=15, help="epochs without a better validation loss before stopping")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--precision", choices=("bf16", "fp32"), default=None,
                        help="bf16 mixed precision or fp32 (default bf16; fp32 with --quick: bf16 is about 5x slower on a CPU without bf16 units)")
    parser.add_argument("--trees", type=int, default=200, help="trees of the random forest")
    parser.add_argument("--sizes", type=int, nargs="*", default=None, help="learning-curve sizes below the full one")
    parser.add_argument("--lr-find-iterations", type=int, default=100, help="batches of each learning-rate range test")
    parser.add_argument("--out", type=str, default=None, help="write <out>.md (the full output) and <out>.json")
    args = parser.parse_args(argv)
    # quick: a smoke test of every step; the range test shrinks most (100 of its batches were most of the time)
    if args.quick: args.max_epochs, args.patience, args.trees, args.lr_find_iterations = 2, 1, 20, 12
    if args.precision is None: args.precision = "fp32" if args.quick else "bf16"
    if args.quick and args.one_cycle_epochs: args.one_cycle_epochs = 2
    recipes = ["converged"] + (["one-cycle"] if args.one_cycle_epochs else [])
    log, start = Log(__file__, argv), time.time()
    oqmd = args.data == "oqmd"

    train, valid, test, about = load_split(args)
    x_tr, x_va, x_te = (element_fractions(d.formula, progress=False) for d in (train, valid, test))
    y_tr, y_va, y_te = (d.target.to_numpy(np.float32) for d in (train, valid, test))
    t0 = time.time()
    m_tr, m_te = magpie_features(train.formula, progress=False), magpie_features(test.formula, progress=False)
    log(f"{about}\ntrain {len(train):,} (+{len(valid):,} for early stopping), test {len(test):,} formulas; "
        f"Magpie features in {time.time() - t0:.0f} s")
    log(f"recipe: lr_find ({args.lr_find_iterations} batches), 3 warm-up epochs to min(10 x valley, best rate), cut by 4 after 5 epochs without a better "
        f"validation loss, stop after "
        f"{args.patience} (at most {args.max_epochs} epochs), batch {args.batch_size}, Adam with fastai's default weight "
        f"decay, {args.precision} on {get_device()}")

    published = {}
    if oqmd:
        for model in ("elemnet", "rf", "roost", "crabnet"):
            p = load_dataset("oqmd_published_predictions", model=model).set_index("formula")
            rows = p.index.intersection(test.formula)
            published[model] = mae(p.loc[rows, "actual"], p.loc[rows, "predicted"])

    # the learning curve; its last point is the full training set, whose models are the headline
    full = len(train)
    small = args.sizes if args.sizes is not None else ((400,) if args.quick else
                                                       (1000, 4000, 16000))
    sizes = [s for s in small if s < full] + [full]
    curve = {"sizes": sizes, "mean": [], "RF (Magpie)": [],
             **{key(name, recipe): [] for name in NETS for recipe in recipes}}
    valid_curve = {key(name, recipe): [] for name in NETS for recipe in recipes}  # validation MAE: chooses the recipe
    runs, nets, preds, times, seed_runs = [], {}, {}, {}, []
    for size in sizes:
        pick = np.arange(full) if size == full else np.sort(np.random.default_rng(size).choice(full, size, replace=False))
        batch = args.batch_size if size >= 4000 else 128  # at least 8 steps per epoch on the smallest subsets
        curve["mean"].append(mae(y_te, np.full_like(y_te, y_tr[pick].mean())))
        for name, cls in NETS.items():
            seeds = range(args.seeds) if size == full and name in args.seed_nets else range(1)
            for recipe in recipes:
                for seed in seeds:
                    if recipe == "converged":
                        learn, run = converge(cls, x_tr[pick], y_tr[pick], x_va, y_va, args, batch, seed=seed)
                    else:
                        learn, run = fixed_budget(cls, x_tr[pick], y_tr[pick], x_va, y_va, args, batch, seed=seed)
                    p, valid = predict(learn.model, x_te), mae(y_va, predict(learn.model, x_va))
                    seed_runs.append(dict(model=name, recipe=recipe, n_train=size, seed=seed, valid_mae=round(valid, 4),
                                          test_mae=round(mae(y_te, p), 4), minutes=run["minutes"]))
                    if seed == 0:
                        runs.append(dict(model=name, recipe=recipe, n_train=size,
                                         **{k: v for k, v in run.items() if k != "best_valid_loss"},
                                         test_mae=round(mae(y_te, p), 4)))
                        if size == full: nets[key(name, recipe)], preds[key(name, recipe)], times[key(name, recipe)] = learn, p, run["minutes"] * 60
                    log(f"{size:,} rows, {name}, {describe(recipe, run, args)}, seed {seed}: {run['minutes']:.1f} min, "
                        f"validation MAE {valid:.4f}, test MAE {mae(y_te, p):.4f}")
                done = [r for r in seed_runs if r["model"] == name and r["recipe"] == recipe and r["n_train"] == size]
                curve[key(name, recipe)].append(float(np.mean([r["test_mae"] for r in done])))
                valid_curve[key(name, recipe)].append(float(np.mean([r["valid_mae"] for r in done])))
        t0 = time.time()
        forest = fit_random_forest(m_tr[pick], y_tr[pick], n_estimators=args.trees)
        curve["RF (Magpie)"].append(mae(y_te, forest.predict(m_te)))
        log(f"{size:,} rows, random forest: {time.time() - t0:.0f} s, test MAE {curve['RF (Magpie)'][-1]:.4f}")
        if size == full: preds["RF (Magpie)"], times["RF (Magpie)"] = forest.predict(m_te), time.time() - t0
    preds["mean"], times["mean"] = np.full_like(y_te, y_tr.mean()), 0.0
    # each network's recipe at each size, chosen on the validation rows (never on the test rows)
    chosen = {name: [min(recipes, key=lambda r: valid_curve[key(name, r)][i]) for i in range(len(sizes))] for name in NETS}
    for name in NETS: curve[f"{name}, recipe chosen on validation"] = [curve[key(name, r)][i] for i, r in enumerate(chosen[name])]

    labels = {"mean": "mean of training targets", "RF (Magpie)": "random forest (Magpie)",
              "ElemNet": "ElemNet (17 layers), converged", "IRNet": "IRNet (17 layers), converged",
              "ElemNet, one-cycle": f"ElemNet, {args.one_cycle_epochs} one-cycle epochs (fixed budget)",
              "IRNet, one-cycle": f"IRNet, {args.one_cycle_epochs} one-cycle epochs (fixed budget)"}
    key_published = {"RF (Magpie)": "rf", "ElemNet": "elemnet"}
    epochs_of = {key(r["model"], r["recipe"]): r["epochs"] for r in runs if r["n_train"] == full}
    table = [dict(model=labels[k], n_train=full, test_mae=round(mae(y_te, preds[k]), 4), epochs=epochs_of.get(k),
                  published_mae=round(published[key_published[k]], 4) if k in key_published and published else None,
                  train_seconds=round(times[k], 1)) for k in labels if k in preds]
    log(f"\n## Test MAE on the {'OQMD' if oqmd else 'mp_e_form'} test split (eV/atom)\n")
    log(pd.DataFrame(table).to_markdown(index=False))
    if published: log("\npublished MAE on the same test rows: " + ", ".join(f"{k} {v:.4f}" for k, v in published.items()))
    log("\n## Every network run: learning-rate range test and epochs used\n")
    log(pd.DataFrame(runs).to_markdown(index=False))
    if args.seeds > 1:
        log(f"\n## Seeds at the full size ({full:,} rows)\n")
        spread = pd.DataFrame([r for r in seed_runs if r["n_train"] == full and r["model"] in args.seed_nets])
        log(spread.to_markdown(index=False))
        log(spread.groupby(["model", "recipe"]).test_mae.agg(["mean", "std", "min", "max", "count"]).to_markdown(floatfmt=".4f"))
    log(f"\n## Learning curve: test MAE (eV/atom) against training-set size"
        f"{' (mean over seeds at the full size)' if args.seeds > 1 else ''}\n")
    curve_table = pd.DataFrame(curve).rename(columns={"sizes": "training rows", "mean": "mean of training targets"})
    curve_table["training rows"] = curve_table["training rows"].map("{:,}".format)
    log(curve_table.to_markdown(index=False, floatfmt=".4f"))
    log("recipe chosen on the validation rows at each size: "
        + "; ".join(f"{name} " + ", ".join(f"{n:,}: {r}" for n, r in zip(sizes, chosen[name])) for name in NETS))
    best_elemnet = curve["ElemNet, recipe chosen on validation"]
    below = [n for n, e, r in zip(sizes, best_elemnet, curve["RF (Magpie)"]) if e < r]
    crossover = below[0] if below else None
    log(f"ElemNet (recipe chosen on validation) below the forest at: {', '.join(f'{n:,} rows' for n in below) or 'no measured size'}")
    for recipe in recipes:
        under = [n for n, e, r in zip(sizes, curve[key("ElemNet", recipe)], curve["RF (Magpie)"]) if e < r]
        log(f"ElemNet, {recipe}, below the forest at: {', '.join(f'{n:,} rows' for n in under) or 'no measured size'}")

    results = dict(data=args.data, about=about, table=table, published=published, learning_curve=curve, runs=runs,
                   seed_runs=seed_runs, valid_curve=valid_curve, chosen_recipe=chosen, seeds=args.seeds,
                   one_cycle_epochs=args.one_cycle_epochs, crossover_rows=crossover, recipe=dict(max_epochs=args.max_epochs, patience=args.patience,
                                                         lr_patience=5, lr_factor=4, warmup=3, batch_size=args.batch_size,
                                                         lr_find_iterations=args.lr_find_iterations,
                                                         precision=args.precision), quick=args.quick)
    if oqmd:
        results["transfer"] = transfer_learning(args, nets, log)
        results["embedding"] = element_embedding(nets["ElemNet"].model).reset_index(names="element").to_dict(orient="list")
    elapsed = time.time() - start
    log(f"\ntotal time {elapsed / 60:.1f} min")
    result = (f"RESULT elemnet_mae={mae(y_te, preds['ElemNet']):.4f} irnet_mae={mae(y_te, preds['IRNet']):.4f} "
              f"rf_mae={mae(y_te, preds['RF (Magpie)']):.4f} n_train={full}")
    if not oqmd: result += f" crossover_rows={crossover if crossover is not None else 'none'}"
    if args.one_cycle_epochs:  # ElemNet's two recipes at the full size (means over --seeds), and the one chosen on validation
        result += (f" elemnet_converged_mae={curve['ElemNet'][-1]:.4f} elemnet_one_cycle_mae={curve['ElemNet, one-cycle'][-1]:.4f}"
                   f" elemnet_chosen_mae={best_elemnet[-1]:.4f} elemnet_seeds={args.seeds if 'ElemNet' in args.seed_nets else 1}")
    log(result)
    log.save(args.out, dict(results, minutes=round(elapsed / 60, 1)))


def transfer_learning(args, nets, log) -> list:
    "Fine-tune the OQMD networks on pymatgen's experimental formation enthalpies, against training on those alone."
    experimental = load_dataset("exp_formation_enthalpy")
    experimental = experimental[supported(experimental.formula)]
    exp_train, exp_test = random_split(experimental, test_frac=0.2, seed=1)
    exp_train, exp_valid = random_split(exp_train, test_frac=0.1, seed=1)
    xe = [element_fractions(d.formula, progress=False) for d in (exp_train, exp_valid, exp_test)]
    ye = [d.dhf_ev_per_atom.to_numpy(np.float32) for d in (exp_train, exp_valid, exp_test)]
    epochs = 2 if args.quick else 50
    transfer = []
    for name, cls in NETS.items():
        seed_everything(0)
        scratch = one_cycle(composition_learner(cls, xe[0], ye[0], xe[1], ye[1], batch_size=64), epochs, 3e-3)
        tuned = {}
        for lr in (1e-4, 1e-3):  # the fine-tuning rate is chosen on the validation rows, never on the held-out ones
            seed_everything(0)
            tuned[lr] = one_cycle(fine_tune_learner(nets[name].model, xe[0], ye[0], xe[1], ye[1]), epochs, lr)
        best_lr = min(tuned, key=lambda lr: best_valid_mae(tuned[lr]))
        transfer += [dict(model=f"{name}, experimental data only", test_mae=mae(ye[2], predict(scratch.model, xe[2]))),
                     dict(model=f"{name}, OQMD only (no fine-tuning)", test_mae=mae(ye[2], predict(nets[name].model, xe[2]))),
                     dict(model=f"{name}, OQMD then fine-tuned (lr {best_lr:g})", test_mae=mae(ye[2], predict(tuned[best_lr].model, xe[2])))]
    forest = fit_random_forest(magpie_features(exp_train.formula, progress=False), ye[0])
    transfer.append(dict(model="RF (Magpie), experimental data only",
                         test_mae=mae(ye[2], forest.predict(magpie_features(exp_test.formula, progress=False)))))
    log(f"\n## Transfer learning: {len(exp_train)} experimental training rows (+{len(exp_valid)} validation), "
        f"{len(exp_test)} held out (eV/atom)\n")
    log(pd.DataFrame(transfer).to_markdown(index=False, floatfmt=".4f"))
    log("(Jha et al. 2019 report 0.06 eV/atom on 1,963 experimental formation energies with transfer learning.)")
    return transfer


if __name__ == "__main__":
    main()
