"""Uncertainty metrics on exact cases, Monte-Carlo dropout behaviour, ensembles, and the benchmark's smoke test."""
import re

import numpy as np
import pytest
import torch
from scipy import stats

from conftest import requires_mirror
from matdl_nb.test_utils import tiny_learner
from matdl_nb.uncertainty import (calibration_curve, combine_gaussians, dropout_layers, gaussian_nll, interval_coverage,
                                  mc_dropout, miscalibration_area, mutual_information, predictive_entropy,
                                  recalibration_scale, reject_curve, sharpness, uq_report)



def test_nll_matches_scipy():
    y, mu, sd = np.array([0.3, -1.2, 2.0]), np.array([0.0, -1.0, 1.5]), np.array([0.5, 0.2, 1.0])
    assert gaussian_nll(y, mu, sd) == pytest.approx(-stats.norm.logpdf(y, mu, sd).mean())


def test_calibration_of_known_distributions():
    rng = np.random.default_rng(1)
    y = rng.normal(0, 2, 200_000)
    assert miscalibration_area(y, np.zeros_like(y), np.full_like(y, 2.0)) < 0.005
    over = miscalibration_area(y, np.zeros_like(y), np.full_like(y, 1.0))  # sigma too small: overconfident
    under = miscalibration_area(y, np.zeros_like(y), np.full_like(y, 4.0))  # too large: underconfident
    assert over > 0.1 and under > 0.1
    expected, observed = calibration_curve(y, np.zeros_like(y), np.full_like(y, 1.0))
    assert (observed < expected).all()  # overconfident intervals hold too few points at every level


def test_recalibration_restores_calibration():
    rng = np.random.default_rng(2)
    y = rng.normal(0, 3, 50_000)
    s = recalibration_scale(y[:25_000], np.zeros(25_000), np.ones(25_000))
    assert s == pytest.approx(3.0, rel=0.02)
    assert interval_coverage(y[25_000:], np.zeros(25_000), s * np.ones(25_000), 0.9) == pytest.approx(0.9, abs=0.01)


def test_reject_curve_and_report_exact():
    y, mu, sd = [0.0, 0.0, 5.0, 1.0], [0.0] * 4, [0.1, 0.2, 0.9, 0.4]
    fractions, mae = reject_curve(y, mu, sd, np.array([0.25, 0.5, 1.0]))
    assert mae.tolist() == [0.0, 0.0, 1.5]
    report = uq_report(y, mu, sd)
    assert report["kept50_mae_ratio"] == 0.0 and report["spearman"] == pytest.approx(0.9486832980505138)
    assert sharpness([1.0, 1.0]) == 1.0


def test_entropy_and_mutual_information_exact():
    p = np.array([[[0.5, 0.5]], [[0.5, 0.5]]])
    assert predictive_entropy(p)[0] == pytest.approx(np.log(2)) and mutual_information(p)[0] == pytest.approx(0.0)
    q = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
    assert mutual_information(q)[0] == pytest.approx(np.log(2), abs=1e-6)


def test_combine_gaussians_law_of_total_variance():
    means, stds = np.array([[1.0, 2.0], [3.0, 2.0]]), np.array([[1.0, 0.0], [1.0, 2.0]])
    m, s = combine_gaussians(means, stds)
    assert m.tolist() == [2.0, 2.0] and s.tolist() == pytest.approx([np.sqrt(2.0), np.sqrt(2.0)])


def test_mc_dropout_leaves_batchnorm_and_train_mode_alone():
    learn = tiny_learner(dropout=0.3)
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(2, 1e-2)
    bn = [m for m in learn.model.modules() if isinstance(m, torch.nn.BatchNorm1d)][0]
    before = (bn.running_mean.clone(), bn.running_var.clone())
    mean, std = mc_dropout(learn, n_passes=5, progress=False)
    assert torch.equal(bn.running_mean, before[0]) and torch.equal(bn.running_var, before[1])
    assert (std > 0).all() and len(dropout_layers(learn.model)) == 2
    with learn.no_bar(): plain, _ = learn.get_preds()
    assert not any(m.training for m in learn.model.modules())
    with learn.no_bar(): again, _ = learn.get_preds()
    assert torch.equal(plain, again)  # deterministic again after the passes


@requires_mirror
def test_benchmark_smoke(run_benchmark):
    assert re.fullmatch(r"RESULT mcd_miscal=[\d.]+ ens_miscal=[\d.]+ coverage90=[\d.]+ kept50_mae_ratio=[\d.]+", run_benchmark("uq"))
