"""Segmenting the user's own labelled micrographs: a folder in (the three layouts, index and colour masks, one-line
errors), the command line training and predicting in a subprocess on a tiny folder this test writes, and the
benchmark's smoke test on the NASA sets."""
import json
import re

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest

from conftest import requires_mirror
from test_cli import matdl
from matdl_nb.segmentation import (FolderError, LabelledImages, forest_predict, forest_segmenter, iou_table, mask_classes,
                                   outline_tolerance, pair_folder, parse_classes, segmentation_folder, training_split)


def particles(seed: int, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    "A grey image of bright disks on a dark noisy background, and its mask."
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    mask = np.zeros((size, size), np.uint8)
    for _ in range(4):
        r, c, radius = rng.integers(8, size - 8), rng.integers(8, size - 8), rng.integers(4, 8)
        mask[(yy - r) ** 2 + (xx - c) ** 2 < radius ** 2] = 1
    image = (60 + 120 * mask + rng.normal(0, 12, mask.shape)).clip(0, 255).astype(np.uint8)
    return image, mask


@pytest.mark.parametrize("layout", ["images_masks", "suffix", "splits"])
def test_the_three_layouts_read_alike(tmp_path, layout):
    for k in range(3):
        image, mask = particles(k)
        if layout == "images_masks": ipath, mpath = tmp_path / "images" / f"p{k}.png", tmp_path / "masks" / f"p{k}.png"
        elif layout == "suffix": ipath, mpath = tmp_path / f"p{k}.png", tmp_path / f"p{k}_mask.png"
        else:
            split = "train" if k < 2 else "val"
            ipath, mpath = tmp_path / split / f"p{k}.png", tmp_path / f"{split}_annot" / f"p{k}_mask.png"
        ipath.parent.mkdir(exist_ok=True); mpath.parent.mkdir(exist_ok=True)
        iio.imwrite(ipath, image); iio.imwrite(mpath, mask)
    sets = segmentation_folder(tmp_path, "particle")
    assert sum(len(s) for s in sets.values()) == 3 and all(s.classes == ["background", "particle"] for s in sets.values())
    train, valid = training_split(sets)
    assert len(train) == 2 and len(valid) == 1
    assert set(np.unique(np.concatenate([m.ravel() for m in train.masks]))) == {0, 1}


def test_colour_masks_and_their_errors():
    rgb = np.zeros((20, 20, 4), np.uint8); rgb[..., 3] = 255
    rgb[:5] = (0, 0, 255, 255); rgb[5:8] = (255, 0, 0, 255); rgb[8:] = (90, 90, 90, 255)  # grey: the image showing through
    classes = parse_classes("blue=#0000ff,red=#FF0000")
    mask = mask_classes(rgb, classes)
    assert (mask[:5] == 1).all() and (mask[5:8] == 2).all() and (mask[8:] == 0).all()
    assert (mask_classes((rgb.astype(np.uint16) * 257), classes) == mask).all()  # 16-bit colour
    rgb[10, 10] = (0, 255, 0, 255)
    with pytest.raises(FolderError, match=r"m.tif: 1 pixels of colour #00ff00 map to no class"):
        mask_classes(rgb, classes, "m.tif")
    with pytest.raises(FolderError, match="a colour mask; say which colour is which class"):
        mask_classes(rgb)
    with pytest.raises(FolderError, match="class indices must be whole numbers"):
        mask_classes(np.full((20, 20), 0.5))


def test_a_forest_learns_disks(tmp_path):
    images, masks = zip(*(particles(k) for k in range(3)))
    data = LabelledImages([((i - i.mean()) / i.std()).astype(np.float32) for i in images], [m.astype(np.int64) for m in masks],
                          ["a", "b", "c"], ["background", "particle"])
    forest = forest_segmenter(LabelledImages(data.images[:2], data.masks[:2], data.names[:2], data.classes), n_estimators=20)
    assert iou_table(data.masks[2:], [forest_predict(forest, data.images[2])], data.classes)["iou particle"] > 0.8


def test_the_rare_class_weight_is_capped():
    from matdl_nb.segmentation import folder_dataloaders, folder_learner
    images, masks = zip(*(particles(k) for k in range(3)))
    masks = [np.where(np.arange(64)[None, :] < 1, 2, m).astype(np.int64) for m in masks]  # a rare third class: one column
    data = LabelledImages([((i - i.mean()) / i.std()).astype(np.float32) for i in images], masks, ["a", "b", "c"],
                          ["background", "particle", "edge"])
    dls = folder_dataloaders(data, data, crops_per_epoch=2, crop=32, batch_size=2, depth=2, device="cpu")
    weights = {cap: folder_learner(dls, weight_cap=cap, depth=2, width=4).loss_func.weights for cap in (25.0, 3.0, 1.0)}
    assert weights[25.0][2] > 3 and float(weights[3.0][2]) == 3.0 and weights[1.0].tolist() == [1.0, 1.0, 1.0]


def test_train_and_predict_a_folder_from_the_command_line(tmp_path):
    folder = tmp_path / "mine"
    for k in range(4):
        image, mask = particles(k)
        (folder / "images").mkdir(parents=True, exist_ok=True); (folder / "masks").mkdir(exist_ok=True)
        iio.imwrite(folder / "images" / f"p{k}.png", image); iio.imwrite(folder / "masks" / f"p{k}.png", mask)
    done = matdl("train", "unet", "--data", folder, "--classes", "particle", "--epochs", "2", "--crop", "32",
                 "--scale", "0.5", "--out", tmp_path / "model", "--no-progress")
    assert done.returncode == 0, done.stderr
    job = json.loads((tmp_path / "model" / "job.json").read_text())
    assert job["source"] == "folder" and job["classes"] == ["background", "particle"] and len(job["valid_entropy"]) == 1
    assert job["scale"] == 0.5  # trained on halved images; `matdl predict` halves, predicts, and resizes the mask back
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert 0 <= metrics["mean_iou"] <= 1 and "forest_mean_iou" in metrics
    new, _ = particles(9)
    iio.imwrite(tmp_path / "new.png", new)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    done = matdl("predict", tmp_path / "model", tmp_path / "new.png", tmp_path / "broken.png", "--out", tmp_path / "out")
    assert done.returncode == 1 and "broken.png" in done.stderr and "Traceback" not in done.stderr  # the batch goes on
    table = pd.read_csv(tmp_path / "out" / "predictions.csv")
    assert list(table.file) == [str(tmp_path / "new.png")]
    assert abs(table["fraction background"] + table["fraction particle"] - 1).max() < 1e-9
    assert {"objects particle", "mean entropy", "unlike training"} <= set(table.columns)
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"new-mask.png", "new-overlay.png", "new-particle-objects.csv", "predictions.csv"} <= written
    assert iio.imread(tmp_path / "out" / "new-mask.png").shape == new.shape
    overlay = iio.imread(tmp_path / "out" / "new-overlay.png")
    assert overlay.shape[1] > 2.5 * overlay.shape[0]  # three panels: classes, uncertainty, object sizes


def test_bad_folders_give_one_line(tmp_path):
    folder = tmp_path / "bad"; (folder / "images").mkdir(parents=True); (folder / "masks").mkdir()
    image, mask = particles(0)
    iio.imwrite(folder / "images" / "a.png", image); iio.imwrite(folder / "images" / "b.png", image)
    iio.imwrite(folder / "masks" / "a.png", mask)
    done = matdl("train", "unet", "--data", folder, "--epochs", "1", "--out", tmp_path / "m")
    assert done.returncode == 1 and "no mask for b.png" in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "m").exists()
    iio.imwrite(folder / "masks" / "b.png", mask[:32])
    done = matdl("train", "unet", "--data", folder, "--epochs", "1", "--out", tmp_path / "m")
    assert done.returncode == 1 and "b.png: mask of 32x64 pixels for an image of 64x64" in done.stderr
    assert matdl("train", "unet", "--data", folder, "--target", "y").returncode == 2
    assert matdl("train", "unet", "--classes", "a").returncode == 2  # --classes without --data


@requires_mirror
def test_the_nasa_sets_read(run_benchmark, tmp_path):
    assert re.fullmatch(r"RESULT super2_unet_iou=[\d.na]+ super2_forest_iou=[\d.na]+ super2_different_unet_iou=[\d.na]+ "
                        r"ebc2_unet_miou=[\d.na]+ ebc2_forest_miou=[\d.na]+ area_fraction_error=[\d.na]+",
                        run_benchmark("micrographs_real"))
    # beside the models, the labels against themselves with one class's outlines moved by a pixel
    tolerance = json.loads((tmp_path / "micrographs_real.json").read_text())["outline_tolerance"]
    assert set(tolerance) == {"Super2 test", "Super2 different_test", "EBC2 test"}
    red = tolerance["Super2 test"]["red_precipitate"]
    assert set(red) == {"IoU grown", "IoU shrunk", "IoU shifted"} and all(0.5 < v < 0.9 for v in red.values())


def test_outline_tolerance_of_a_square():
    square = np.zeros((7, 7), int); square[2:5, 2:5] = 1
    table = outline_tolerance([square], ["background", "particle"])
    assert np.allclose(table.loc["particle"].to_numpy(), [9 / 21, 1 / 9, 6 / 12])
    with pytest.raises(ValueError, match="at least 1"): outline_tolerance([square], ["background", "particle"], pixels=0)
