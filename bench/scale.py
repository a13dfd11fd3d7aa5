"""Scaling out on this machine: data-parallel training, graph building in worker processes, memory, and the cost of
building graphs and of the bond-angle model.

1. Training throughput (samples per second) with 1 and 2 processes (torchrun; gloo on a CPU, NCCL on GPUs) for
   ElemNet on OQMD element fractions and CGCNN on the Castelli perovskites. Each process gets one core (one thread),
   so two processes have twice the hardware of one, as two GPUs or two machines would; the scaling efficiency is
   rate(2) / (2 x rate(1)). One process using all cores is printed beside them.
2. Graph building into the chunked store (`scale.graph_store`) with 1, 2 and N worker processes on 10x the
   perovskite set (replicas, each with a small random strain so that every one is a different structure).
3. Memory of a fresh process after building the graphs of 10x the perovskite set and training one CGCNN epoch on
   them, graphs in a list (`GraphDataset`) against the store (`GraphDataset.from_graphs`), per structure above the
   process's memory before the graphs: anonymous memory (the process's own) and file-backed (the memory-mapped
   chunks, which the kernel can drop and read again), from /proc/self/status.
4. Graph building against pymatgen's neighbour search at 40, 320 and 1,080 atoms (perovskite supercells, cutoff
   8 A, 12 neighbours, the best of 5).
5. CGCNN and the ALIGNN-style model, seconds per training epoch on 256 cells of 5, 20 and 40 atoms (perovskite
   supercells with atoms displaced by 0.05 A, as real cells are not perfectly symmetric), with the line graph of
   the 6 nearest bonds (the default) and of all bonds (ALIGNN's own choice).
6. On a GPU (when PyTorch sees one): samples per second for ElemNet and CGCNN in float32, bfloat16 and float16.

    python bench/scale.py                  # full size (2 CPU cores: about 20 minutes)
    python bench/scale.py --quick          # a smoke test
    python bench/scale.py --out bench/results/scale

The last line printed is `RESULT ddp_efficiency=<e> graph_workers_speedup=<s> store_anon_kb_per_structure=<a>
store_resident_kb_per_structure=<r> list_resident_kb_per_structure=<l>`, with ddp_efficiency the mean of ElemNet's and
CGCNN's; per structure, the store's anonymous memory (the process's own), the store's resident memory (anonymous plus
the memory-mapped chunks) and a plain list's resident memory.
"""
import argparse
import contextlib
import functools
import io
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Subset

from _common import Log
from matdl_nb.core import seed_everything
from matdl_nb.data import load_dataset

HERE = Path(__file__).resolve()


@functools.lru_cache(maxsize=1)
def castelli():
    "The Castelli training perovskites (3,787), parsed once, without the parser's progress bar."
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return load_dataset("castelli_perovskites", split="train")


def perovskites(copies: int, limit: int | None = None, seed: int = 0) -> tuple[list, np.ndarray]:
    "The Castelli training perovskites (first `limit`), `copies` times, every copy after the first strained by up to 1%."
    frame = castelli()
    frame = frame.iloc[:limit] if limit else frame
    rng, structures, targets = np.random.default_rng(seed), [], []
    for copy in range(copies):
        for structure, target in zip(frame.structure, frame.heat_ref):
            if copy:
                structure = structure.copy()
                structure.apply_strain(rng.uniform(-0.01, 0.01, 3))
            structures.append(structure)
            targets.append(target)
    return structures, np.asarray(targets, np.float32)


def rattled_cells(repeat: tuple, n: int, seed: int = 0) -> list:
    "`n` perovskite supercells, every atom displaced by 0.05 A in a random direction."
    frame = castelli().iloc[:n]
    np.random.seed(seed)  # Structure.perturb draws from numpy's global generator
    cells = []
    for structure in frame.structure:
        cell = structure * repeat
        cell.perturb(0.05)
        cells.append(cell)
    return cells


def composition_data(rows: int):
    from matdl_nb.composition import element_fractions
    oqmd = load_dataset("oqmd_formation_enthalpy", split="train").iloc[:rows]
    return element_fractions(oqmd.formula, progress=False), oqmd.formation_enthalpy.to_numpy(np.float32)


def make_learner(model: str, rows: int, device=None):
    "ElemNet on `rows` OQMD compositions or CGCNN on `rows` perovskites, with 10% more rows for validation."
    if model == "elemnet":
        from matdl_nb.composition import ElemNet, composition_learner
        x, y = composition_data(rows + rows // 10)
        return composition_learner(ElemNet, x[:rows], y[:rows], x[rows:], y[rows:], batch_size=256, device=device)
    from matdl_nb.gnn import CGCNN, graph_learner
    from matdl_nb.graphs import GraphDataset
    structures, targets = perovskites(1 + (rows + rows // 10) // 3787)
    train = GraphDataset(structures[:rows], targets[:rows], progress=False, line_graph=False)
    valid = GraphDataset(structures[rows:rows + rows // 10], targets[rows:rows + rows // 10], progress=False, line_graph=False)
    return graph_learner(CGCNN, train, valid, batch_size=64, device=device)


def worker_throughput(args) -> None:
    "One rank of the throughput run: train inside `distributed`, rank 0 writes the seconds and the samples."
    from matdl_nb.scale import distributed, world
    seed_everything(0)
    learn = make_learner(args.model, args.rows)
    with distributed(learn), learn.no_bar(), learn.no_logging():
        learn.fit(1, 1e-3)  # warm-up: process group, first allocations
        start = time.perf_counter()
        learn.fit(args.epochs, 1e-3)
        seconds = time.perf_counter() - start
    if world()[0] == 0:
        Path(args.result).write_text(json.dumps(dict(seconds=seconds, samples=args.rows * args.epochs, processes=world()[1])))


def _memory_kb() -> dict:
    "This process's memory now, kB: anonymous, file-backed (memory-mapped files) and the peak resident size so far."
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "RssFile", "VmHWM"): fields[key] = int(value.split()[0])
    return dict(anonymous=fields["RssAnon"], file_backed=fields["RssFile"], peak=fields["VmHWM"])


def worker_memory(args) -> None:
    "Build the graphs of 10x the perovskites in a list or in the store, train one CGCNN epoch, report memory."
    from matdl_nb.gnn import CGCNN, graph_learner
    from matdl_nb.graphs import GraphDataset
    from matdl_nb.scale import graph_store
    structures, targets = perovskites(args.copies, args.limit)
    n_valid = len(structures) // 20
    before = _memory_kb()
    if args.mode == "list":
        train = GraphDataset(structures[n_valid:], targets[n_valid:], progress=False)
        valid = GraphDataset(structures[:n_valid], targets[:n_valid], progress=False)
    else:
        store = graph_store(structures, args.folder, workers=2, chunk_size=512, progress=False)
        train = GraphDataset.from_graphs(Subset(store, range(n_valid, len(store))), targets[n_valid:])
        valid = GraphDataset.from_graphs(Subset(store, range(n_valid)), targets[:n_valid])
    learn = graph_learner(CGCNN, train, valid, batch_size=64, device="cpu")
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3)
    Path(args.result).write_text(json.dumps(dict(before=before, after=_memory_kb(), structures=len(structures))))


def run_worker(kind: str, processes: int, env: dict | None = None, **options) -> dict:
    "Run this script's worker `kind` in `processes` ranks (torchrun) or one fresh process; its JSON result."
    from matdl_nb.scale import launch
    with tempfile.TemporaryDirectory() as folder:
        result = Path(folder) / "result.json"
        argv = [str(HERE), "--worker", kind, "--result", str(result)] + [f"--{k}={v}" for k, v in options.items()]
        done = launch(argv, processes=processes, capture=True, env=env)
        if done.returncode != 0: raise RuntimeError(f"worker {kind} x{processes} failed:\n{done.stderr[-3000:]}")
        return json.loads(result.read_text())


def best_ms(function, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter(); function(); times.append(time.perf_counter() - start)
    return 1000 * min(times)


def epoch_seconds(learn, epochs: int = 2) -> float:
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, 1e-3)  # warm-up
        start = time.perf_counter()
        learn.fit(epochs, 1e-3)
    return (time.perf_counter() - start) / epochs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test on small data")
    parser.add_argument("--out", default=None, help="write <out>.md (the full output) and <out>.json")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # internal: one process of a measurement
    for name in ("result", "model", "mode", "folder"): parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    for name in ("rows", "epochs", "copies", "limit"): parser.add_argument(f"--{name}", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker == "throughput": return worker_throughput(args)
    if args.worker == "memory": return worker_memory(args)

    from matdl_nb.gnn import ALIGNN, CGCNN, graph_learner
    from matdl_nb.graphs import GraphDataset, neighbor_edges, structure_to_graph
    from matdl_nb.scale import graph_store
    log, start = Log(__file__, argv), time.time()
    log(f"cores: {os.cpu_count()}")
    quick = args.quick

    log("\n## 1. Data-parallel training: samples per second, 1 and 2 processes (torchrun)\n")
    rows = dict(elemnet=4000 if quick else 40000, cgcnn=600 if quick else 7574)
    epochs = 1 if quick else 3
    ddp, cores = [], os.cpu_count() or 1
    for model in ("elemnet", "cgcnn"):
        rates = {}
        for processes, threads in ((1, 1), (2, 1), (1, cores)):  # one core, two cores in two processes, all cores in one
            r = run_worker("throughput", processes, {"OMP_NUM_THREADS": str(threads)}, model=model, rows=rows[model], epochs=epochs)
            rates[processes, threads] = r["samples"] / r["seconds"]
        ddp.append(dict(model=model, rows=rows[model], epochs=epochs, one_process_one_thread=round(rates[1, 1], 1),
                        two_processes_one_thread_each=round(rates[2, 1], 1),
                        efficiency=round(rates[2, 1] / (2 * rates[1, 1]), 3),
                        one_process_all_cores=round(rates[1, cores], 1)))
        log(f"{model}: {rates[1, 1]:.0f} samples/s on one core, {rates[2, 1]:.0f} on two processes of one core each, "
            f"{rates[1, cores]:.0f} in one process on all {cores} cores")
    log(pd.DataFrame(ddp).to_markdown(index=False))
    efficiency = float(np.mean([r["efficiency"] for r in ddp]))

    copies, limit = (1, 500) if quick else (10, None)
    structures, _ = perovskites(copies, limit)
    log(f"\n## 2. Graph building into the chunked store: {len(structures):,} structures "
        f"({copies}x the perovskites{f', first {limit}' if limit else ''}), line graphs included\n")
    workers = sorted({1, 2, os.cpu_count() or 1})
    builds = []
    with tempfile.TemporaryDirectory() as folder:
        for n in workers:
            t0 = time.perf_counter()
            store = graph_store(structures, Path(folder) / f"w{n}", workers=n, chunk_size=512, progress=False)
            seconds = time.perf_counter() - t0
            builds.append(dict(workers=n, graphs=len(store), seconds=round(seconds, 1), graphs_per_second=round(len(store) / seconds, 1)))
        disk_kb = sum((Path(folder) / "w1" / c["file"]).stat().st_size for c in store.chunks) / 1024 / len(store)
    for b in builds: b["speedup"] = round(b["graphs_per_second"] / builds[0]["graphs_per_second"], 2)
    log(pd.DataFrame(builds).to_markdown(index=False))
    log(f"on disk: {disk_kb:.1f} kB per graph")
    workers_speedup = next(b["speedup"] for b in builds if b["workers"] == 2)

    log("\n## 3. Memory after building the graphs and one CGCNN epoch: a list against the store (fresh processes)\n")
    memory = []
    with tempfile.TemporaryDirectory() as folder:
        for mode in ("list", "store"):
            r = run_worker("memory", 1, mode=mode, copies=copies, limit=limit or 0, folder=folder)
            n, before, after = r["structures"], r["before"], r["after"]
            memory.append(dict(graphs_in=mode, structures=n, anonymous_kb_per_structure=round((after["anonymous"] - before["anonymous"]) / n, 2),
                               file_backed_kb_per_structure=round((after["file_backed"] - before["file_backed"]) / n, 2),
                               peak_mb=round(after["peak"] / 1024), before_graphs_mb=round(before["peak"] / 1024)))
    log(pd.DataFrame(memory).to_markdown(index=False))
    log("anonymous: the process's own memory; file-backed: memory-mapped chunk files, which the kernel drops and reads "
        "again when memory runs short (they count in the resident size, so the peak does not show the difference)")
    for row in memory: row["resident_kb_per_structure"] = round(row["anonymous_kb_per_structure"] + row["file_backed_kb_per_structure"], 2)
    log("resident = anonymous + file-backed: what the process holds while it trains, mapped chunks included")
    store_anon, store_resident, list_resident = (memory[1]["anonymous_kb_per_structure"], memory[1]["resident_kb_per_structure"],
                                                 memory[0]["resident_kb_per_structure"])

    log("\n## 4. Building a graph against the neighbour search (ms, best of 5; cutoff 8 A, 12 neighbours)\n")
    base = castelli().structure.iloc[0]
    timing = []
    for n in (2, 4, 6):
        cell = base * (n, n, n)
        search, edges, graph = (best_ms(lambda: cell.get_neighbor_list(8.0)), best_ms(lambda: neighbor_edges(cell)),
                                best_ms(lambda: structure_to_graph(cell)))
        timing.append(dict(atoms=len(cell), neighbour_search_ms=round(search, 2), neighbor_edges_ms=round(edges, 2),
                           structure_to_graph_ms=round(graph, 2), graph_over_search=round(graph / search, 2)))
    log(pd.DataFrame(timing).to_markdown(index=False))

    log("\n## 5. Seconds per training epoch, CGCNN and the ALIGNN-style model (256 cells, batch 64)\n")
    epochs_table = []
    n_cells = 64 if quick else 256
    for label, repeat in (("5 atoms, ideal", None), ("5 atoms", (1, 1, 1)), ("20 atoms", (2, 2, 1)), ("40 atoms", (2, 2, 2))):
        cells = (list(castelli().structure.iloc[:n_cells]) if repeat is None
                 else rattled_cells(repeat, n_cells))
        targets = np.random.default_rng(0).normal(size=len(cells)).astype(np.float32)
        row = dict(cells=label)
        for angle_neighbors in (6, None):
            data = GraphDataset(cells, targets, progress=False, angle_neighbors=angle_neighbors)
            row[f"pairs_per_atom_{angle_neighbors or 'all'}"] = round(np.mean([g.angle_index.shape[1] / g.n_atoms for g in data.graphs]), 1)
            for cls in ((CGCNN, ALIGNN) if angle_neighbors == 6 else (ALIGNN,)):
                seed_everything(0)
                key = "cgcnn_s" if cls is CGCNN else f"alignn_{angle_neighbors or 'all'}_s"
                row[key] = round(epoch_seconds(graph_learner(cls, data, data, batch_size=64, device="cpu"), 1 if quick else 2), 2)
        row["alignn_over_cgcnn"] = round(row["alignn_6_s"] / row["cgcnn_s"], 2)
        row["alignn_all_over_cgcnn"] = round(row["alignn_all_s"] / row["cgcnn_s"], 2)
        epochs_table.append(row)
        log(f"{label}: CGCNN {row['cgcnn_s']} s, ALIGNN {row['alignn_6_s']} s (all bonds {row['alignn_all_s']} s)")
    log(pd.DataFrame(epochs_table).to_markdown(index=False))

    gpu = []
    if torch.cuda.is_available():
        from matdl_nb.scale import mixed_precision
        log(f"\n## 6. On the GPU ({torch.cuda.get_device_name(0)}): samples per second\n")
        for model in ("elemnet", "cgcnn"):
            for dtype in (None, "bf16", "fp16"):
                seed_everything(0)
                learn = mixed_precision(make_learner(model, rows[model], device="cuda"), dtype)
                seconds = epoch_seconds(learn, 2)
                gpu.append(dict(model=model, precision=dtype or "float32", samples_per_second=round(rows[model] / seconds, 1)))
        log(pd.DataFrame(gpu).to_markdown(index=False))
    else:
        log("\n(no GPU here: section 6, float32 against mixed precision on a GPU, runs where PyTorch sees one)")

    elapsed = time.time() - start
    log(f"\ntotal time {elapsed / 60:.1f} min")
    result = (f"RESULT ddp_efficiency={efficiency:.3f} graph_workers_speedup={workers_speedup:.2f} "
              f"store_anon_kb_per_structure={store_anon:.2f} store_resident_kb_per_structure={store_resident:.2f} "
              f"list_resident_kb_per_structure={list_resident:.2f}")
    log(result)
    log.save(args.out, dict(ddp=ddp, graph_building=builds, disk_kb_per_graph=disk_kb, memory=memory, graph_timing=timing,
                            epoch_seconds=epochs_table, gpu=gpu, minutes=round(elapsed / 60, 1), quick=quick))


if __name__ == "__main__":
    main()
