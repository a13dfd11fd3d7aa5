"""Crystal graphs and graph networks on the Castelli perovskites.

1. Graph construction: our vectorised `neighbor_edges` (pymatgen's `get_neighbor_list`, numpy selection of the
   12 nearest neighbours plus ties) against the same edges built by looping over `Structure.get_all_neighbors`,
   on the same structures and cutoff, checked to give identical edge sets; time per structure and the ratio.
2. Test MAE (eV per 5-atom cell) of the mean, CGCNN and the ALIGNN-style model, trained on CDVAE's perov_5
   `val.csv` (3,787 structures, 10% held back for choosing the best epoch) and tested on its `test.csv` (3,785).

    python bench/gnn.py                  # full size, 100 epochs each (2 CPU cores: about 20 minutes; H100: about 7)
    python bench/gnn.py --quick          # a smoke test
    python bench/gnn.py --out bench/results/gnn

The last line printed is `RESULT cgcnn_mae=<x> alignn_mae=<y> mean_mae=<m> graph_speedup=<s>`.
"""
import argparse
import contextlib
import io
import time

import numpy as np
import pandas as pd

from _common import Log
from matdl_nb.core import seed_everything
from matdl_nb.data import load_dataset, random_split
from matdl_nb.gnn import ALIGNN, CGCNN, graph_learner, predict_structures
from matdl_nb.graphs import GraphDataset, neighbor_edges


def edges_by_loop(structure, cutoff: float, max_neighbors: int, tol: float = 1e-4):
    "The same edges as `neighbor_edges`, the slow way: a Python loop over `Structure.get_all_neighbors`."
    src, dst, dist = [], [], []
    for centre, neighbours in enumerate(structure.get_all_neighbors(cutoff)):
        neighbours = sorted(neighbours, key=lambda n: n.nn_distance)
        if neighbours:
            limit = neighbours[min(max_neighbors, len(neighbours)) - 1].nn_distance + tol
            for rank, n in enumerate(neighbours):
                if rank < max_neighbors or n.nn_distance <= limit:
                    src.append(n.index); dst.append(centre); dist.append(n.nn_distance)
    return np.array(src), np.array(dst), np.array(dist)


def time_per_structure(fn, structures, repeat: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        for s in structures: fn(s)
    return (time.perf_counter() - start) / (repeat * len(structures))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke test on a few hundred structures")
    parser.add_argument("--epochs", type=int, default=100, help="epochs for CGCNN")
    parser.add_argument("--alignn-epochs", type=int, default=100,
                        help="epochs for the ALIGNN-style model (each costs about seven CGCNN epochs on a CPU)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--out", type=str, default=None, help="write <out>.md (the full output) and <out>.json")
    args = parser.parse_args(argv)
    log, start = Log(__file__, argv), time.time()
    epochs = {"cgcnn": 2, "alignn": 2} if args.quick else {"cgcnn": args.epochs, "alignn": args.alignn_epochs}

    train_all = load_dataset("castelli_perovskites", split="train")
    test = load_dataset("castelli_perovskites", split="test")
    jarvis = load_dataset("jarvis_sample")
    if args.quick: train_all, test = train_all.iloc[:300], test.iloc[:200]

    # 1. graph construction speed, same structures and cutoff for both methods
    cutoff, k = 8.0, 12
    sets = {"perovskites (5 atoms)": list(test.structure[:200 if args.quick else 1000]),
            "JARVIS sample (1-36 atoms)": list(jarvis.structure),
            "perovskite 3x3x3 supercells (135 atoms)": [s * (3, 3, 3) for s in test.structure[:5 if args.quick else 20]]}
    speed = []
    for name, structures in sets.items():
        for s in structures[:20]:  # the two methods must agree before their speed means anything
            ours, loop = neighbor_edges(s, cutoff, k), edges_by_loop(s, cutoff, k)
            key = lambda a, b, d: sorted(zip(a.tolist(), b.tolist(), np.rint(np.asarray(d, float) * 1e3).astype(int).tolist()))
            assert key(ours[0], ours[1], ours[3]) == key(*loop), f"edge sets differ on {s.composition}"
        t_ours = time_per_structure(lambda s: neighbor_edges(s, cutoff, k), structures, repeat=3)
        t_loop = time_per_structure(lambda s: edges_by_loop(s, cutoff, k), structures)
        speed.append(dict(method=name, structures=len(structures), ours_ms=round(1e3 * t_ours, 3),
                          get_all_neighbors_ms=round(1e3 * t_loop, 3), speedup=round(t_loop / t_ours, 1)))
    total_ours = sum(r["ours_ms"] * r["structures"] for r in speed)
    total_loop = sum(r["get_all_neighbors_ms"] * r["structures"] for r in speed)
    graph_speedup = total_loop / total_ours
    log(f"\n## Graph construction, cutoff {cutoff} A, {k} nearest neighbours plus ties (ms per structure)\n")
    log(pd.DataFrame(speed).to_markdown(index=False))
    log(f"\nall structures together: {graph_speedup:.1f}x faster than looping over Structure.get_all_neighbors")

    # 2. models on the perovskites
    train, valid = random_split(train_all, test_frac=0.1, seed=0)
    options = dict(cutoff=cutoff, max_neighbors=k)
    t0 = time.time()
    datasets = {name: GraphDataset(d.structure, d.heat_ref, progress=False, **options)
                for name, d in (("train", train), ("valid", valid))}
    log(f"\ntrain {len(train):,} (+{len(valid):,} to pick the best epoch), test {len(test):,} structures; "
        f"graphs built in {time.time() - t0:.1f} s")
    y_test = test.heat_ref.to_numpy()
    rows, preds = [], {"mean": np.full_like(y_test, train.heat_ref.mean())}
    rows.append(dict(model="mean of training targets", n_train=len(train), test_mae=float(np.abs(y_test - preds["mean"]).mean()),
                     epochs=0, train_minutes=0.0))
    for name, cls in (("cgcnn", CGCNN), ("alignn", ALIGNN)):
        seed_everything(0)
        t0 = time.time()
        learn = graph_learner(cls, datasets["train"], datasets["valid"], batch_size=args.batch_size)
        with learn.no_bar(), learn.no_logging(), contextlib.redirect_stdout(io.StringIO()):
            learn.fit_one_cycle(epochs[name], args.lr)
        minutes = (time.time() - t0) / 60
        preds[name] = predict_structures(learn.model, test.structure, **options)
        rows.append(dict(model={"cgcnn": "CGCNN", "alignn": "ALIGNN-style"}[name], n_train=len(train),
                         test_mae=float(np.abs(y_test - preds[name]).mean()), epochs=epochs[name],
                         train_minutes=round(minutes, 1)))
        log(f"{name}: {epochs[name]} epochs in {minutes:.1f} min, test MAE {rows[-1]['test_mae']:.4f} eV")
    log("\n## Test MAE on the Castelli perovskites (eV per 5-atom cell)\n")
    log(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".4f"))
    log("\nReference (Matbench matbench_perovskites, about 15k training structures): CGCNN 0.045 eV, ALIGNN 0.029 eV.")
    elapsed = time.time() - start
    log(f"\ntotal time {elapsed / 60:.1f} min")
    result = (f"RESULT cgcnn_mae={rows[1]['test_mae']:.4f} alignn_mae={rows[2]['test_mae']:.4f} "
              f"mean_mae={rows[0]['test_mae']:.4f} graph_speedup={graph_speedup:.1f}")
    log(result)
    log.save(args.out, dict(table=rows, graph_speed=speed, graph_speedup=graph_speedup,
                                                            minutes=round(elapsed / 60, 1), quick=args.quick))


if __name__ == "__main__":
    main()
