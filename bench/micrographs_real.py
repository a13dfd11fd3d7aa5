"""Segmenting real labelled SEM micrographs (NASA benchmark, Stuckner et al. 2022): a U-Net trained from a folder against
the random forest on filter features and Otsu's threshold, scored on the same test pixels.

For each set, Super2 (a nickel superalloy: two kinds of precipitate on a matrix, colour overlays) and EBC2 (an
environmental barrier coating: oxide and cracks on a background, index masks):
1. the U-Net of `matdl_nb.segmentation` trained on the four training images (random crops, dihedral, brightness,
   contrast and noise augmentation, class-weighted cross-entropy + Dice), the epoch with the best validation mean IoU
   kept (whole validation images); EBC2 at half scale with one more level (its oxide is a layer a few hundred pixels
   thick: a crop must see the layers beside it), Super2 at full scale (its small precipitates are a few pixels);
   predictions averaged over the eight symmetries of the square;
2. the forest (scikit-image multiscale filter features, scikit-learn random forest on labelled pixels of the same
   training images) and Otsu's (multi-)threshold with the training masks' brightness order;
3. all three on the test images (Super2 also on `different_test`: other alloys and imaging conditions): IoU of each
   annotated class and their mean (background left out), and the absolute error of each image's predicted area
   fraction of each annotated class, averaged;
4. whether `unlike_training` (mean MC-dropout entropy above twice the largest validation image's) flags test images;
5. how exact the labels are: each annotated class's IoU when only its outlines in the test masks move by one pixel
   (`outline_tolerance`), beside the models' IoU.

    python bench/micrographs_real.py                 # both sets (2 CPU cores: about 25 minutes)
    python bench/micrographs_real.py --quick         # a smoke test: one epoch, small crops
    python bench/micrographs_real.py --out bench/results/micrographs_real

The last line is `RESULT super2_unet_iou=<a> super2_forest_iou=<b> super2_different_unet_iou=<c> ebc2_unet_miou=<d>
ebc2_forest_miou=<e> area_fraction_error=<f>`: mean IoU of the annotated classes on the test images (a-e), and the
U-Net's area-fraction error on Super2 test (f).
"""
import argparse
import time

import numpy as np
import pandas as pd
import torch

from _common import Log
from matdl_nb.core import seed_everything
from matdl_nb.segmentation import (area_fractions, folder_dataloaders, folder_learner, forest_predict,
                                   forest_segmenter, iou_table, nasa_sets, otsu_predict, otsu_segmenter,
                                   outline_tolerance, rescaled, segment_image, unlike_training)

SETTINGS = {"Super2": dict(scale=1.0, depth=3), "EBC2": dict(scale=0.5, depth=4)}  # per set: image scale, U-Net levels


def score(truth, predicted, classes) -> dict:
    "IoU per annotated class, their mean, and the mean absolute area-fraction error over images and annotated classes."
    table = iou_table(truth, predicted, classes)
    annotated = classes[1:]
    errors = [abs(area_fractions(p, classes)[c] - area_fractions(t, classes)[c]) for t, p in zip(truth, predicted) for c in annotated]
    return {**{f"IoU {c}": table[f"iou {c}"] for c in annotated}, "IoU mean": float(np.nanmean([table[f"iou {c}"] for c in annotated])),
            "pixel accuracy": table["pixel_accuracy"], "area-fraction error": float(np.mean(errors))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--crops", type=int, default=64, help="random training crops per epoch")
    parser.add_argument("--crop", type=int, default=256, help="crop size, pixels")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--pixels", type=int, default=20_000, help="labelled pixels per training image for the forest")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sets", nargs="+", default=["Super2", "EBC2"])
    parser.add_argument("--scale", type=float, default=None, help="image scale for every set (default: SETTINGS)")
    parser.add_argument("--depth", type=int, default=None, help="U-Net levels for every set (default: SETTINGS)")
    parser.add_argument("--width", type=int, default=16, help="U-Net channels at the first level")
    parser.add_argument("--weight-cap", type=float, default=25.0, help="the largest class weight of the cross-entropy")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=str, default=None, help="write <out>.md (the full output) and <out>.json")
    args = parser.parse_args(argv)
    if args.quick: args.epochs, args.crops, args.crop, args.trees, args.pixels = 1, 8, 128, 10, 2000
    # whole images are predicted in tiles of at least 256 pixels (a quick run's small crops would make 4x the tiles) with
    # 8 Monte-Carlo dropout passes for the uncertainty (2 in a quick run)
    tile, mc_samples = max(args.crop, 256), 2 if args.quick else 8
    log, start = Log(__file__, argv), time.time()
    log(f"\nU-Net: {args.epochs} epochs of {args.crops} random {args.crop} x {args.crop} crops, one-cycle at {args.lr}; forest: "
        f"{args.trees} trees on {args.pixels:,} labelled pixels per training image; seed {args.seed}")
    rows, minutes, flags, tolerances = [], {}, {}, {}
    for material in args.sets:
        t0 = time.time()
        sets = nasa_sets(material)
        classes = sets["train"].classes
        scale, depth = args.scale or SETTINGS[material]["scale"], args.depth or SETTINGS[material]["depth"]
        seed_everything(args.seed)
        dls = folder_dataloaders(rescaled(sets["train"], scale), rescaled(sets["val"], scale), crops_per_epoch=args.crops,
                                 crop=args.crop, batch_size=8, depth=depth, seed=args.seed)
        learn = folder_learner(dls, width=args.width, depth=depth, dropout=0.1, weight_cap=args.weight_cap)
        with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(args.epochs, args.lr)
        history = pd.DataFrame(learn.recorder.values, columns=learn.recorder.metric_names[1:-1])
        best = int(history.mean_iou.idxmax())
        unet_minutes = (time.time() - t0) / 60
        t1 = time.time()
        forest = forest_segmenter(sets["train"], pixels_per_image=args.pixels, n_estimators=args.trees, seed=args.seed)
        otsu = otsu_segmenter(sets["train"])
        forest_minutes = (time.time() - t1) / 60
        log(f"\n## {material}\n\n{sets['train']}\nU-Net ({depth} levels, width {args.width}, images at scale {scale}) trained in "
            f"{unet_minutes:.1f} min (best validation mean IoU {history.mean_iou.max():.3f} at epoch {best + 1} of "
            f"{args.epochs}, kept); forest in {forest_minutes:.1f} min")
        unsure = lambda im, **kw: float(segment_image(learn.model, im, mc_samples=mc_samples, tile=tile, scale=scale, **kw)[1].mean())
        valid_entropy = [unsure(im) for im in sets["val"].images]
        for split in [s for s in ("test", "different_test") if s in sets]:
            data = sets[split]
            entropies = [unsure(im) for im in data.images]
            flagged = [unlike_training(e, valid_entropy) for e in entropies]
            log(f"{material} {split}: {sum(flagged)} of {len(flagged)} images flagged unlike training (mean entropy "
                f"{', '.join(f'{e:.3f}' for e in entropies)}; validation images at most {max(valid_entropy):.3f})")
            flags[f"{material} {split}"] = [int(sum(flagged)), len(flagged)]
            predictions = {"U-Net": [segment_image(learn.model, im, mc_samples=0, tile=tile, scale=scale, tta=True)[0]
                                     for im in data.images],
                           "forest": [forest_predict(forest, im) for im in data.images],
                           "Otsu": [otsu_predict(otsu, im) for im in data.images]}
            for model, predicted in predictions.items():
                rows.append(dict(set=f"{material} {split}", model=model, images=len(data), **score(data.masks, predicted, classes)))
            tolerance = outline_tolerance(data.masks, classes)
            tolerances[f"{material} {split}"] = tolerance.round(4).to_dict(orient="index")
            log(f"{material} {split}, the labels against themselves with one class's outlines moved by one pixel (IoU of that "
                f"class):\n{tolerance.to_markdown(floatfmt='.4f')}")
        minutes[material] = round((time.time() - t0) / 60, 1)
    table = pd.DataFrame(rows)
    log("\n## Test images: IoU of each annotated class (background left out), their mean, and the area-fraction error\n")
    log(table.to_markdown(index=False, floatfmt=".4f"))
    get = lambda s, m, k="IoU mean": float(table[(table.set == s) & (table.model == m)][k].iloc[0]) if ((table.set == s) & (table.model == m)).any() else float("nan")
    result = dict(super2_unet_iou=get("Super2 test", "U-Net"), super2_forest_iou=get("Super2 test", "forest"),
                  super2_different_unet_iou=get("Super2 different_test", "U-Net"), ebc2_unet_miou=get("EBC2 test", "U-Net"),
                  ebc2_forest_miou=get("EBC2 test", "forest"),
                  area_fraction_error=get("Super2 test", "U-Net", "area-fraction error"))
    log("\nReference: Stuckner et al. (npj Comput. Mater. 8, 200, 2022) trained U-Nets with encoders pretrained on ImageNet "
        "or MicroNet on these sets (not rerun here). Targets here: the U-Net >= 0.90 IoU on Super2 test, 0.05 above the "
        "forest on Super2 and EBC2, area-fraction error <= 0.02.")
    elapsed = time.time() - start
    log(f"\ntotal time {elapsed / 60:.1f} min ({', '.join(f'{k} {v} min' for k, v in minutes.items())}), "
        f"{torch.get_num_threads()} torch threads")
    log("RESULT " + " ".join(f"{k}={v:.4f}" for k, v in result.items()))
    log.save(args.out, dict(table=rows, result=result, minutes=round(elapsed / 60, 1), epochs=args.epochs, crops=args.crops,
                            crop=args.crop, seed=args.seed, quick=args.quick,
                            flagged_unlike_training=flags, outline_tolerance=tolerances, settings=SETTINGS))


if __name__ == "__main__":
    main()
