"""Reproducibility and model persistence."""
import numpy as np
import torch

from matdl_nb.core import seed_everything
from matdl_nb.test_utils import TinyMLP, tiny_learner
from matdl_nb.train import get_predictions, load_model, save_model


def _train(seed: int) -> tuple[np.ndarray, float]:
    learn = tiny_learner(seed=seed)
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(3, 1e-2)
    preds, _ = get_predictions(learn)
    return preds, float(learn.recorder.values[-1][1])


def test_same_seed_same_numbers():
    (preds_a, loss_a), (preds_b, loss_b) = _train(7), _train(7)
    np.testing.assert_array_equal(preds_a, preds_b)
    assert loss_a == loss_b


def test_different_seed_different_numbers():
    assert not np.array_equal(_train(7)[0], _train(8)[0])


def test_save_and_load_round_trip(tmp_path):
    seed_everything(0)
    model = TinyMLP(hidden=16, dropout=0.2).eval()
    save_model(model, tmp_path / "m", extra={"units": "eV/atom"})
    reloaded = load_model(tmp_path / "m")
    x = torch.randn(5, 4)
    with torch.no_grad():
        assert torch.equal(model(x), reloaded(x))
    assert reloaded.init_args == {"n_features": 4, "hidden": 16, "dropout": 0.2}
