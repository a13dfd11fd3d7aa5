"""Microscopy: the simulator's ground truth held exactly, the U-Net's shapes and errors, pixels to atoms on tiny cases,
image loaders that only ever raise our own error, and the benchmark's smoke test."""
import math
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matdl_nb.micrographs import (IMAGE_FORMATS, MX2_MATERIALS, STEM_CLASSES, ImageReadError, LatticeSimulator,
                                  STEMSimulator, column_intensities, load_image, mx2_sites, simulate_micrographs)
from matdl_nb.microscopy import (SegmentationLoss, UNet, class_weights, confusion, detection_scores, find_columns,
                                 match_columns, predict_probabilities, segmentation_scores)

CLEAN = dict(size=128, pixel_size=0.125, probe_sigma=0.35, rotation=0.0, dose=None, jitter=0.0, drift=0.0, blur=0.0,
             background=0.0, read_noise=0.0)


def test_defect_free_sheet_has_two_columns_per_cell():
    a = MX2_MATERIALS["WSe2"]["a"]
    xy, sublattice = mx2_sites("WSe2", 6 * a, 4 * a * math.sqrt(3), offset=(0.01, 0.01), margin=0)
    assert len(xy) == 2 * 6 * 4 * 2 and np.bincount(sublattice).tolist() == [48, 48]  # 2 cells per a x a√3 rectangle
    sheet = STEMSimulator(**CLEAN, dopant=0.0, single_vacancy=0.0, double_vacancy=0.0).simulate(1, seed=0)
    assert set(sheet.columns["class"]) == {1, 2}
    counts = sheet.columns["class"].value_counts()
    assert abs(counts[1] - counts[2]) <= 0.05 * len(sheet.columns)  # one metal per chalcogen pair


def test_columns_sit_on_the_lattice_with_the_requested_classes():
    sim = STEMSimulator(**CLEAN, dopant=1.0, single_vacancy=1.0, double_vacancy=0.0)
    cols = sim.simulate(1, seed=2).columns
    assert set(cols["class"]) == {3, 4}  # every metal a dopant, every chalcogen pair a single vacancy
    xy = cols[["x_px", "y_px"]].to_numpy()
    d = np.sort(np.linalg.norm(xy[:, None] - xy[None], axis=-1), 1)[:, 1]
    np.testing.assert_allclose(d, MX2_MATERIALS["WSe2"]["a"] / math.sqrt(3) / 0.125, rtol=1e-9)
    np.testing.assert_allclose(cols.x_A, cols.x_px * 0.125)
    np.testing.assert_allclose(cols.y_A, cols.y_px * 0.125)


def test_removed_column_is_absent_from_image_and_mask():
    batch = STEMSimulator(**CLEAN, dopant=0.0, single_vacancy=0.0, double_vacancy=0.3).simulate(1, seed=4)
    image, mask, cols = batch.images[0], batch.masks[0], batch.columns
    empty = cols[cols["class"] == 5]
    assert len(empty) > 5
    r, c = np.round(empty.y_px).astype(int).clip(0, 127), np.round(empty.x_px).astype(int).clip(0, 127)
    span = image.max() - image.min()
    assert (image[r, c] - image.min()).max() < 1e-3 * span  # nothing there: the image is at its floor
    assert set(mask[r, c].tolist()) == {5}  # the mask marks a vacancy, never an atom
    full = cols[cols["class"] == 1]
    rf, cf = np.round(full.y_px).astype(int).clip(0, 127), np.round(full.x_px).astype(int).clip(0, 127)
    assert (image[rf, cf] - image.min()).min() > 0.5 * span


def test_column_brightness_follows_z_to_the_1_7():
    levels = column_intensities("WSe2")
    assert levels["chalcogen pair"] == pytest.approx(2 * (34 / 74) ** 1.7)
    assert levels["dopant"] == pytest.approx((23 / 74) ** 1.7) and levels["double vacancy"] == 0
    assert column_intensities("WSe2", exponent=2.0)["single vacancy"] == pytest.approx((34 / 74) ** 2)


def test_simulators_are_reproducible_and_sized():
    for sim in (STEMSimulator(size=96), LatticeSimulator(size=64)):
        a, b = sim.simulate(2, seed=5), sim.simulate(2, seed=5)
        assert np.array_equal(a.images, b.images) and np.array_equal(a.masks, b.masks)
        assert not np.array_equal(a.images, sim.simulate(2, seed=6).images)
        assert a.images.shape == a.masks.shape == (2, sim.size, sim.size) and a.images.dtype == np.float32
    images, masks = simulate_micrographs(2, "two_phase", size=48, seed=0)
    assert images.shape == masks.shape == (2, 48, 48) and set(np.unique(masks)) <= {0, 1}
    with pytest.raises(ValueError, match="Unknown material 'WTe3'"):
        STEMSimulator(material="WTe3")


@pytest.mark.parametrize("depth,shape", [(3, (64, 64)), (3, (136, 200)), (2, (12, 20)), (4, (16, 48))])
def test_unet_keeps_the_image_size(depth, shape):
    net = UNet(depth=depth, width=4, n_classes=3).eval()
    assert net(torch.zeros(2, 1, *shape)).shape == (2, 3, *shape)


def test_unet_errors_name_the_problem():
    net = UNet(depth=3, width=4)
    with pytest.raises(ValueError, match="multiples of 8; got 100 x 64"):
        net(torch.zeros(1, 1, 100, 64))
    with pytest.raises(ValueError, match=re.escape("shape [batch, 1, height, width], got [64, 64]")):
        net(torch.zeros(64, 64))
    # any size goes through predict_probabilities, which pads and crops back
    probs = predict_probabilities(net, np.zeros((2, 37, 50), np.float32))
    assert probs.shape == (2, 6, 37, 50) and np.allclose(probs.sum(1), 1, atol=1e-5)


def test_pixel_scores_on_a_tiny_case():
    true = np.array([[0, 0, 1, 1], [0, 2, 2, 1]])
    pred = np.array([[0, 1, 1, 1], [0, 2, 0, 1]])
    m = confusion(true, pred, 3)
    assert m.tolist() == [[2, 1, 0], [0, 3, 0], [1, 0, 1]]
    s = segmentation_scores(m, ["bg", "a", "b"])
    assert s["pixel_accuracy"] == pytest.approx(6 / 8)
    assert s["mean_iou"] == pytest.approx(np.mean([2 / 4, 3 / 4, 1 / 2]))
    w = class_weights(np.array([[0, 0, 0, 1]]), 2)
    assert w.tolist() == pytest.approx([2 / 3, 2.0])
    target = torch.tensor([[[0, 0, 0, 1]]])
    confident = torch.tensor([[[[9.0, 9.0, 9.0, -9.0]], [[-9.0, -9.0, -9.0, 9.0]]]])  # [1, 2 classes, 1, 4]
    loss = SegmentationLoss(w)
    assert float(loss(confident, target)) < 1e-3 < float(loss(torch.zeros(1, 2, 1, 4), target))


def test_columns_found_matched_and_scored():
    probs = np.zeros((6, 40, 40)); probs[0] = 1
    for (x, y), cls in (((10, 10), 1), ((30, 10), 3), ((10, 30), 5)):  # a metal, a dopant, a double vacancy
        probs[0, y - 2:y + 3, x - 2:x + 3] = 0.1; probs[cls, y - 2:y + 3, x - 2:x + 3] = 0.9
    found = find_columns(probs)
    assert found[["x_px", "y_px"]].round(6).values.tolist() == [[10, 10], [30, 10], [10, 30]]
    assert found["class"].tolist() == [1, 3, 5] and found.area.tolist() == [25, 25, 25]
    truth = pd.DataFrame({"x_px": [10.5, 30.0, 10.0, 30.0], "y_px": [10.0, 10.0, 30.0, 30.0], "class": [1, 1, 5, 2]})
    pairs, dist = match_columns(found[["x_px", "y_px"]].to_numpy(), truth[["x_px", "y_px"]].to_numpy(), radius=2.0)
    assert pairs.tolist() == [[0, 0], [1, 1], [2, 2]] and dist.tolist() == pytest.approx([0.5, 0.0, 0.0])
    scores = detection_scores(found.assign(image=0), truth.assign(image=0), (40, 40), radius=2.0, border=0)
    assert scores.loc["metal", ["true", "found", "correct"]].tolist() == [2, 1, 1]
    assert scores.loc["dopant", ["true", "found", "correct"]].tolist() == [0, 1, 0]  # found where a metal is
    assert scores.loc["double vacancy", "f1"] == 1.0
    assert scores.loc["atom", "recall"] == pytest.approx(1 / 3)  # metal + chalcogen pair: 3 true, 1 correct


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2048), suffix=st.sampled_from(sorted(IMAGE_FORMATS)))
def test_random_bytes_raise_only_our_error(tmp_path, data, suffix):
    path = tmp_path / f"random{suffix}"
    path.write_bytes(data)
    try:
        image = load_image(path)
    except ImageReadError as err:
        assert path.name in str(err)
    else:  # the rare byte string that is a valid image must come back as one
        assert image.ndim == 2 and image.dtype == np.float32


def test_real_formats_read_back(tmp_path):
    import h5py
    import imageio.v3 as iio
    import tifffile
    image = STEMSimulator(size=64).simulate(1, seed=0).images[0]
    tifffile.imwrite(tmp_path / "a.tif", image)
    np.save(tmp_path / "a.npy", image)
    iio.imwrite(tmp_path / "a.png", (255 * (image - image.min()) / np.ptp(image)).astype(np.uint8))
    with h5py.File(tmp_path / "a.hspy", "w") as f: f.create_dataset("Experiments/scan/data", data=image)
    for name in ("a.tif", "a.npy", "a.hspy"):
        np.testing.assert_allclose(load_image(tmp_path / name), image)
    assert load_image(tmp_path / "a.png").shape == (64, 64)
    with pytest.raises(ImageReadError, match="unknown image format '.txt'"):
        load_image(tmp_path / "a.txt")
    with pytest.raises(ImageReadError, match="no such file"):
        load_image(tmp_path / "missing.tif")


def test_benchmark_smoke(run_benchmark):
    assert re.fullmatch(r"RESULT atom_f1=[\d.]+ vacancy_f1=[\d.na]+ dopant_f1=[\d.na]+ miou=[\d.]+ imgs_per_s=[\d.]+ "
                        r"real_match=[\d.]+ n_train=\d+ single_vacancy_f1=[\d.na]+ classical_dopant_f1=[\d.na]+ "
                        r"classical_single_vacancy_f1=[\d.na]+", run_benchmark("microscopy"))
