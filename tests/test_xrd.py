"""The powder-pattern simulator against pymatgen, its errors, rendering, augmentations, and the benchmark's smoke test."""
import math

import numpy as np
import pytest
import torch
from pymatgen.analysis.diffraction.xrd import XRDCalculator
from pymatgen.core import Lattice, Structure

from matdl_nb.core import seed_everything
from matdl_nb.test_utils import rocksalt, toy_pattern
from matdl_nb.xrd import (XRDError, PatternPipeline, XRDNet, pattern_agreement, peak_list, random_crystals, render_patterns,
                          scherrer_fwhm, training_pipeline, two_theta_grid)


FIXED = {
    "NaCl": rocksalt(conventional=True),
    "Si diamond": Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.431), ["Si"], [[0, 0, 0]]),
    "wurtzite ZnO": Structure.from_spacegroup("P6_3mc", Lattice.hexagonal(3.25, 5.21), ["Zn", "O"], [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.382]]),
    "rutile TiO2": Structure.from_spacegroup("P4_2/mnm", Lattice.tetragonal(4.594, 2.959), ["Ti", "O"], [[0, 0, 0], [0.305, 0.305, 0]]),
    "triclinic": Structure(Lattice.from_parameters(4.1, 5.3, 6.2, 81, 97, 103), ["Ba", "Ti", "O", "O"],
                           [[0.1, 0.2, 0.3], [0.6, 0.5, 0.4], [0.3, 0.9, 0.1], [0.8, 0.1, 0.7]]),
}


@pytest.mark.parametrize("name", list(FIXED))
@pytest.mark.parametrize("wavelength,window", [(1.54184, (5, 90)), (0.7107, (10, 60))])
def test_agrees_with_xrdcalculator(name, wavelength, window):
    ours = peak_list(FIXED[name], wavelength=wavelength, two_theta_range=window)
    ref = XRDCalculator(wavelength=wavelength).get_pattern(FIXED[name], two_theta_range=window)
    agreement = pattern_agreement(ours, (ref.x, ref.y))
    assert agreement["n_peaks"] > 0
    assert agreement["max_position_error"] < 0.01 and agreement["max_intensity_error"] < 1.0


def test_random_crystals_agree_and_are_distinct():
    crystals, stats = random_crystals(15, seed=11, progress=False)
    assert len(crystals) == 15 and stats["attempts"] >= 15
    calc = XRDCalculator()
    for structure, _ in crystals:
        ref = calc.get_pattern(structure, two_theta_range=(5, 90))
        a = pattern_agreement(peak_list(structure), (ref.x, ref.y))
        assert a["max_position_error"] < 0.01 and a["max_intensity_error"] < 1.0


def test_bad_structures_get_clear_errors():
    with pytest.raises(XRDError, match="row 2 has partially occupied"):
        peak_list(Structure(Lattice.cubic(3.6), [{"Cu": 0.5, "Au": 0.5}], [[0, 0, 0]]), label="row 2")
    with pytest.raises(XRDError, match="no atoms"):
        peak_list(Structure(Lattice.cubic(3.0), [], []))


def test_rendered_peak_has_the_scherrer_width_and_unit_area():
    grid = two_theta_grid(20, 80, 0.01)
    fwhm = scherrer_fwhm(torch.tensor([[50.0]]), 20.0)
    expected = math.degrees(0.9 * 1.54184 / (200 * math.cos(math.radians(25))))
    assert float(fwhm) == pytest.approx(expected, rel=1e-5)
    for profile in ("gaussian", "lorentzian", "pseudo_voigt"):
        p = render_patterns(torch.tensor([[50.0]]), torch.ones(1, 1), fwhm, grid, profile)[0]
        above = grid[p >= 0.5]
        assert float(above.max() - above.min()) == pytest.approx(float(fwhm), abs=0.02)


def test_pipeline_shapes_and_determinism():
    grid = two_theta_grid()
    tt, inten = torch.tensor([[30.0, 45.0, 0.0]]).repeat(4, 1), torch.tensor([[100.0, 50.0, 0.0]]).repeat(4, 1)
    seed_everything(0); a = training_pipeline()(tt, inten)
    seed_everything(0); b = training_pipeline()(tt, inten)
    assert a.shape == (4, 1, len(grid)) and torch.equal(a, b)
    assert torch.allclose(a.amax(-1), torch.ones(4, 1))
    clean = PatternPipeline()(tt, inten)
    assert torch.equal(clean[0], clean[1])  # no augmentation, no randomness


def test_network_shapes():
    assert XRDNet()(torch.rand(3, 1, 2126)).shape == (3, 43)
    grid, pattern = toy_pattern()
    assert XRDNet().eval()(torch.tensor(pattern)[None, None]).shape == (1, 43)
    with pytest.raises(ValueError, match=r"shape \[batch, 1, 2126\]"):
        XRDNet()(torch.rand(3, 2126))


def test_the_grid_travels_with_the_model(tmp_path):
    from matdl_nb.train import load_model, save_model
    from matdl_nb.xrd import PeakDataset, random_crystal_peaks, xrd_learner
    peaks = random_crystal_peaks(12, seed=5, progress=False, cache=False)
    data = PeakDataset({k: v for k, v in peaks.items() if np.ndim(v) > 0})
    learn = xrd_learner(data, data, batch_size=4, grid=(10.0, 60.0, 0.05), device="cpu")
    assert learn.model.init_args["grid"] == (10.0, 60.0, 0.05) and learn.model.init_args["n_points"] == 1001
    assert learn.dls.one_batch()[0].shape[-1] == 1001
    save_model(learn.model, tmp_path / "m")
    assert tuple(load_model(tmp_path / "m").init_args["grid"]) == (10.0, 60.0, 0.05)
    with pytest.raises(TypeError, match="grid"): xrd_learner(data, data, n_points=100)
    with pytest.raises(ValueError, match="points"): XRDNet(n_points=100)


def test_partial_labels_and_whole_patterns():
    from matdl_nb.xrd import MAX_PEAKS, PeakDataset, TwoHeadLoss, predict_peaks
    peaks = dict(two_theta=np.full((2, 5), 30.0), intensity=np.ones((2, 5)), space_group=np.array([225, 200]),
                 crystal_system=np.array(["cubic", "cubic"]))
    labels = PeakDataset(peaks).labels
    assert labels[1, 1] == -1 and labels[0, 1] >= 0, "a space group outside the 36 still teaches the crystal system"
    logits = torch.zeros(2, 43, requires_grad=True)
    loss = TwoHeadLoss()(logits, labels); loss.backward()
    assert torch.isfinite(loss) and logits.grad[1, 7:].abs().sum() == 0
    with pytest.raises(ValueError, match="1-230"): PeakDataset({**peaks, "space_group": np.array([225, 231])})
    with pytest.raises(ValueError, match="whole pattern|predict_pattern"):
        predict_peaks(XRDNet(), dict(two_theta=np.zeros((1, 2126)), intensity=np.zeros((1, 2126))))
    assert MAX_PEAKS == 200
