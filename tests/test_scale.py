"""Scaling out: data-parallel training on two CPU processes (gloo), mixed precision for the composition and graph
models, and the chunked on-disk store (workers, hashes, rebuilding damaged chunks)."""
import json
import warnings

import numpy as np
import pytest
import torch

from matdl_nb.composition import ElemNet, composition_learner
from matdl_nb.gnn import ALIGNN, CGCNN, graph_learner
from matdl_nb.graphs import GraphDataset, structure_to_graph
from matdl_nb.scale import ChunkStore, check_data_parallel, graph_store, launch, mixed_precision, structure_key, world
from matdl_nb.test_utils import rocksalt


def test_two_cpu_processes_train_one_model_on_disjoint_shards():
    check = check_data_parallel(processes=2, rows=512, epochs=3, batch_size=32)
    assert check["shard_sizes"] == [256, 256]
    assert check["shards_disjoint"], "the two processes saw some of the same rows in one epoch"
    assert check["union_is_whole"], "together the shards must be the whole training set"
    assert check["max_weight_difference"] == 0.0, "the copies of the model diverged"
    # one process with a batch of 64 sees the same number of rows per step; the rows differ, so the loss agrees closely
    assert abs(check["valid_loss"] - check["valid_loss_alone"]) < 0.1 * check["valid_loss_alone"]


def test_the_process_group_outlives_each_fit_and_is_destroyed_at_exit(tmp_path):
    # left to the interpreter's teardown, gloo can abort a process ("terminate called without an active exception"):
    # `distributed` registers `_end_process_group` at exit once, however many fits; our own ranks end with `_exit_rank`
    code = ("import atexit, os, torch; from matdl_nb.scale import _exit_rank, _fit_toy; "
            "_fit_toy(64, 1, 8, 0); _fit_toy(64, 1, 8, 1); alive = torch.distributed.is_initialized(); "
            "atexit._run_exitfuncs(); "  # what Python runs at exit, before its teardown
            f"open(os.path.join({str(tmp_path)!r}, 'rank' + os.environ['RANK']), 'w')"
            ".write(f'{alive} {torch.distributed.is_initialized()}'); _exit_rank()")
    done = launch(["-c", code], processes=2, env={"MATDL_DEVICE": "cpu"}, capture=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    # the group alive after two fits, gone once the exit handlers ran
    assert [(tmp_path / f"rank{r}").read_text() for r in range(2)] == ["True False"] * 2


def test_a_single_process_is_left_alone():
    from matdl_nb.scale import distributed
    from matdl_nb.test_utils import tiny_learner
    learn = tiny_learner()
    n_callbacks = len(learn.cbs)
    with distributed(learn) as inside: assert inside is learn and len(learn.cbs) == n_callbacks
    assert world() == (0, 1)


def _composition_learner():
    rng = np.random.default_rng(0)
    x = rng.dirichlet(np.ones(86) * 0.05, size=320).astype(np.float32)
    y = (x[:, :10] @ rng.normal(size=10)).astype(np.float32)
    return composition_learner(ElemNet, x[:256], y[:256], x[256:], y[256:], batch_size=32, device="cpu")


def _graph_learner(model_class):
    structures = [rocksalt(a=a) for a in np.linspace(5.0, 6.2, 24)]
    targets = np.linspace(-1.0, 1.0, 24)
    train = GraphDataset(structures[:16], targets[:16], cutoff=5.0, progress=False)
    valid = GraphDataset(structures[16:], targets[16:], cutoff=5.0, progress=False)
    return graph_learner(model_class, train, valid, batch_size=8, device="cpu")


@pytest.mark.parametrize("make", [_composition_learner, lambda: _graph_learner(CGCNN), lambda: _graph_learner(ALIGNN)],
                         ids=["elemnet", "cgcnn", "alignn"])
def test_bfloat16_mixed_precision_trains_the_topic_models(make):
    learn, dtypes = mixed_precision(make(), "bf16"), []
    first = next(m for m in learn.model.modules() if isinstance(m, torch.nn.Linear))
    first.register_forward_hook(lambda module, inputs, output: dtypes.append(output.dtype))
    with learn.no_bar(), learn.no_logging(): learn.fit(2, 1e-3)
    assert torch.bfloat16 in dtypes, "autocast did not reach the model"
    assert all(p.dtype == torch.float32 for p in learn.model.parameters()), "weights stay in float32"
    assert np.isfinite(np.array(learn.recorder.values, dtype=float)).all()
    assert mixed_precision(learn, None) is learn
    dtypes.clear()
    with learn.no_bar(): learn.validate()
    assert dtypes and set(dtypes) == {torch.float32}, "mixed_precision(learn, None) goes back to float32"


def test_float16_on_a_cpu_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="needs a CUDA GPU"): mixed_precision(_composition_learner(), "fp16")


def _squares(numbers):
    return [{"value": torch.tensor([float(n) ** 2])} for n in numbers]


def test_chunk_store_builds_once_checks_hashes_and_rebuilds_damage(tmp_path):
    store = ChunkStore(tmp_path, list(range(10)), _squares, chunk_size=4, workers=2, progress=False)
    assert (len(store), len(store.chunks), store.built) == (10, 3, 3)
    assert [float(store[i]["value"]) for i in (0, 5, 9, -1)] == [0.0, 25.0, 81.0, 81.0]
    assert ChunkStore(tmp_path, list(range(10)), _squares, chunk_size=4, progress=False).built == 0
    damaged = tmp_path / store.chunks[1]["file"]
    damaged.write_bytes(damaged.read_bytes()[:50])  # a partial file
    again = ChunkStore(tmp_path, list(range(10)), _squares, chunk_size=4, progress=False)
    assert again.built == 1 and float(again[5]["value"]) == 25.0
    data = bytearray(damaged.read_bytes()); data[-30] ^= 0xFF; damaged.write_bytes(bytes(data))  # corrupt while open
    again._open.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert float(again[6]["value"]) == 36.0
    assert any("does not match" in str(w.message) for w in caught)
    (tmp_path / "manifest.json").write_text("{ not json")  # a damaged manifest: every chunk is rebuilt, nothing is trusted
    assert ChunkStore(tmp_path, list(range(10)), _squares, chunk_size=4, progress=False).built == 3
    assert not list(tmp_path.glob(".*.part*")), "no temporary file is left behind"
    with pytest.raises(IndexError): store[10]


def test_graph_store_keys_by_structure_and_settings(tmp_path):
    structures = [rocksalt(a=a) for a in (5.4, 5.6, 5.8)]
    store = graph_store(structures, tmp_path, chunk_size=2, progress=False, cutoff=5.0)
    for i, s in enumerate(structures):
        direct = structure_to_graph(s, cutoff=5.0)
        assert torch.equal(store[i].edge_index, direct.edge_index) and torch.equal(store[i].angle_index, direct.angle_index)
    other = graph_store(structures, tmp_path, chunk_size=2, progress=False, cutoff=4.0)
    assert other.built == 2 and {c["file"] for c in other.chunks}.isdisjoint(c["file"] for c in store.chunks)
    assert structure_key(rocksalt()) == structure_key(rocksalt()) != structure_key(rocksalt(a=5.0))
    dataset = GraphDataset.from_graphs(store, [1.0, 2.0, 3.0])
    assert len(dataset) == 3 and float(dataset[2][1]) == 3.0
    with pytest.raises(TypeError, match="unknown graph settings"): graph_store(structures, tmp_path, radius=3.0)
    with pytest.raises(ValueError, match="graphs but"): GraphDataset.from_graphs(store, [1.0])
    assert json.loads((tmp_path / "manifest.json").read_text())


def test_processes_are_refused_where_they_cannot_work(tmp_path):
    from matdl_nb.jobs import JobError, train_job
    with pytest.raises(JobError, match="random forest trains in one process"):
        train_job("rf", tmp_path / "m", data="exp_formation_enthalpy", target="dhf_ev_per_atom", processes=2)
    with pytest.raises(JobError, match="processes must be 1 or more"):
        train_job("elemnet", tmp_path / "m", data="exp_formation_enthalpy", target="dhf_ev_per_atom", processes=0)
    assert not (tmp_path / "m").exists()


def test_matdl_train_runs_a_unet_on_two_processes(tmp_path):
    "The U-Net (batch norm, generated images) through `matdl train --processes 2`: rank 0 writes one model folder."
    from matdl_nb.cli import main
    import tempfile
    from pathlib import Path
    out, before = tmp_path / "unet", set(Path(tempfile.gettempdir()).glob("matdl-rank*"))
    assert main(["train", "unet", "--images", "16", "--epochs", "1", "--processes", "2", "--out", str(out), "--no-progress"]) == 0
    job = json.loads((out / "job.json").read_text())
    assert job["processes"] == 2 and (out / "metrics.json").exists()
    assert set(Path(tempfile.gettempdir()).glob("matdl-rank*")) == before, "the other rank's temporary folder is removed"
