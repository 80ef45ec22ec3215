"""Run sizes for every chapter, in one place.

The book runs at three sizes, chosen with the environment variable ``ISLTEACH_PROFILE``:

``quick``
    CPU-sized runs for continuous integration and a laptop: minutes per chapter.
``colab``
    Sized for one Google Colab T4 GPU: about 15-30 minutes per chapter.
``paper``
    The papers' own scale (hours to days on a GPU).

Without the variable, the profile is ``colab`` when a CUDA GPU is visible and
``quick`` otherwise. Every chapter reads its sizes from :func:`get_profile` and
never hard-codes a number of steps, crops or seeds.

Each chapter owns one table below (``CH1`` ... ``CH5``, ``APPENDIX``): a dict
mapping profile name to the keyword sizes of that chapter.

Examples
--------
>>> from islteach.profiles import get_profile
>>> p = get_profile("quick")
>>> p.name
'quick'
>>> p.seed
0
"""
from __future__ import annotations

import os
import types

PROFILE_NAMES = ("quick", "colab", "paper")
ENV_VAR = "ISLTEACH_PROFILE"

#: Global settings shared by all chapters.
COMMON = {
    "quick": {"seed": 0},
    "colab": {"seed": 0},
    "paper": {"seed": 0},
}

# --- Chapter 1: virtual staining -------------------------------------------
# ISL Finkbeiner field (13 phase planes -> DAPI / MAP2) and SEPhACE (6 bright-field planes -> DAPI).
# quick: a small encoder on CPU (random init when ImageNet weights can't be downloaded);
# colab / paper: DenseNet-121 + ImageNet as Bonte et al.
# quick steps, measured on this CPU (seed 0, held-out quadrant PCC, one prediction / eight orientations):
# 300: 0.707 / 0.719; 800: 0.763 / 0.770 (310 s); 1200: 0.776 / 0.785 (411 s); 1200 at lr 2e-3: 0.782 / 0.785.
_CH1_COMMON = {
    "planes": [0, 6, 12],            # ISL phase z-planes feeding the input channels (reader may change)
    "sephace_planes": [0, 2, 5],     # SEPhACE bright-field planes (sorted by focus)
    # SEPhACE's nuclei are ~80 px wide at full resolution (40x, 0.16 um pixels): binned 2x2, a
    # 128-px crop holds several. quick, seeds 0/1/2, eight orientations, PCC on binned field 2:
    # binned, 150 steps: 0.783 / 0.780 / 0.776 (74 s of training); full resolution, 300 steps: 0.768
    # (seed 0, 150 s); binned with 64-px crops, 300 steps: 0.728 (seed 0).
    "sephace_binning": 2,
    "encoder_weights": "imagenet",
    "lr": 1e-3,
    "tile": 256,                     # predict_tiled tile side / overlap
    "overlap": 64,                   # quick, 800-step model, eight orientations: 0.770 (32) -> 0.771 (64)
    "pcc_tile": 128,                 # PCC per held-out tile of this side
}
CH1 = {
    "quick": {**_CH1_COMMON, "encoder_name": "resnet18", "crop_size": 128, "batch_size": 8, "n_crops": 2000,
              "steps": 1200, "steps_map2": 100, "steps_sephace": 150, "val_every": 50,
              "checkpoint_every": 100},
    "colab": {**_CH1_COMMON, "encoder_name": "densenet121", "crop_size": 256, "batch_size": 16, "n_crops": 4000,
              "steps": 3000, "steps_map2": 1500, "steps_sephace": 1000, "val_every": 250,
              "checkpoint_every": 250},
    "paper": {**_CH1_COMMON, "encoder_name": "densenet121", "crop_size": 512, "batch_size": 8, "n_crops": 5000,
              "sephace_binning": 1,
              "steps": 20000, "steps_map2": 20000, "steps_sephace": 5000, "val_every": 1000,
              "checkpoint_every": 1000},
}

# --- Chapter 2: Cellpose ground truth --------------------------------------
# Cellpose trained from scratch (offline) on the first `train_images` BBBC039 training images:
# `n_epochs` x `nimg_per_epoch` random crops of `crop_size` px, in batches of `batch_size`, AdamW
# learning rate `lr`, objects rescaled to `diam_mean` px (smaller = faster, coarser borders; the
# pretrained 'nuclei' uses 17).
# `test_images`: how many BBBC039 test images are scored (None = all 50).
# `flow_threshold`: Cellpose's flow-error cut-off (its default 0.4 suits well-trained models; the short
#   quick training gives less consistent flows, so more masks are kept with 0.8).
# `isl_diameter`, `isl_percentile`: nucleus diameter (px) and normalisation percentiles passed to
#   Cellpose on the sparse ISL DAPI field.
# `classical`: settings of islteach.groundtruth.classical_labels (chosen on the training split).
CH2 = {
    "quick": {"train_images": 40, "n_epochs": 100, "nimg_per_epoch": 4, "batch_size": 4,
              "crop_size": 96, "diam_mean": 12.0, "lr": 0.005, "test_images": 12,
              "flow_threshold": 0.8, "isl_diameter": 26.0, "isl_percentile": (1.0, 99.8),
              "classical": {"sigma": 1.0, "h": 1.0}},
    "colab": {"train_images": 100, "n_epochs": 300, "nimg_per_epoch": 16, "batch_size": 8,
              "crop_size": 224, "diam_mean": 17.0, "lr": 0.005, "test_images": None,
              "flow_threshold": 0.4, "isl_diameter": 26.0, "isl_percentile": (1.0, 99.8),
              "classical": {"sigma": 1.0, "h": 1.0}},
    "paper": {"train_images": 100, "n_epochs": 1000, "nimg_per_epoch": 100, "batch_size": 8,
              "crop_size": 224, "diam_mean": 17.0, "lr": 0.005, "test_images": None,
              "flow_threshold": 0.4, "isl_diameter": 26.0, "isl_percentile": (1.0, 99.8),
              "classical": {"sigma": 1.0, "h": 1.0}},
}

# --- Chapter 3: transfer learning ------------------------------------------
# Track A (synthetic fields) and track B (the ISL field). ``synth_pretext`` is the
# label-free -> DAPI pretext on its own pool of fields; ``*_finetune`` are keyword
# arguments of islteach.transfer.finetune_and_evaluate (soft Jaccard loss, Adam);
# ``pretext_encoder_lr_scale``: the pretext inits' encoder (pretrained) learns at this fraction of
# ``lr`` (the random init trains every layer at ``lr``). Measured on the hardest synthetic microscope,
# quick sizes, seeds 0-2: ISL init IoU 0.43 / 0.18 / 0.53 with one rate for all layers (a fine-tuning
# that can erase the pretext), 0.45 / 0.52 / 0.53 with the encoder at 0.1; freezing the encoder
# for the first 30 of 60 steps instead gave 0.39 / 0.24 / 0.46.
# ``isl_control``: MAP2 control pretext on the ISL field: "always" (retrain it if
# chapter 1 did not save it), "if-saved" (only when chapter 1 saved it), "never".
# ``synth_difficulties``: the synthetic microscopes of the difficulty sweep (islteach.synth.difficulty_settings:
# 0 = nuclei plain in the label-free planes, 1 = hard to see), easiest first; each trains its own
# pretext with ``synth_pretext`` and fine-tunes at N = 1 with ``synth_finetune`` (its easiest
# microscope is track A's, whose N = 1 points it reuses from the cache).
# quick: one step of resnet18 on 4 crops of 64x64 costs ~0.12 s on this CPU (two threads).
_CH3_SYNTH_INPUT = {"synth_bf_planes": [0, 4], "synth_phase": True}
# The ISL field's pretext inits are fine-tuned so that they keep what the pretext knew (chapter 3,
# "A fine-tuning that keeps the pretext"): the sigmoid head centred at the zero-shot threshold of
# the annotated tile with slope 20 (the DAPI output spans about 0 to 0.55, so Bonte et al.'s fixed
# sigmoid(x - 0.5) starts them as a near-constant map), BatchNorm kept at the pretext's statistics
# (a batch of four 64-px crops of one tile is no estimate of them), and a rate of 3e-5 (the encoder
# at a tenth of that). The chapter measures the paper's recipe and a rate of lr / 10 beside it, in
# the quick profile only (session of 2026-12-03: N = 1, seeds 0-2, mean test IoU 0.165 for the
# paper's recipe, 0.329 at 1e-4, 0.435 at 3e-5, 0.473 at 1e-5, zero-shot 0.468). The random init
# trains every layer at ``lr``.
# ``n_crops`` and ``scheduler`` of ``isl_finetune``: the crops of an annotated tile are drawn once,
# so at N = 1 with 5 crops of 64 px a network sees at most a third of its 256-px tile. Measured
# (quick, N = 1, seeds 0-2 on tiles 2, 6, 10, mean test IoU random / ISL init, 60 steps): 5 crops
# at a constant rate 0.167 / 0.448; 40 crops, constant 0.187 / 0.477; 40 crops with the rate
# decayed to zero (cosine), checkpoints 48, 54, 60: 0.345 / 0.481 (120 steps: 0.358 / 0.479). At a
# constant rate the random init's checkpoints swing by up to 0.3 IoU; the decay lets it end well,
# which makes it a meaningful baseline at no extra cost. ``_ISL_FT_CROPS`` sets both in every
# profile (measured in quick only).
_ISL_FT_CROPS = {"n_crops": 40, "scheduler": "cosine"}
KEEP_PRETEXT = {"pretext_lr": 3e-5, "pretext_encoder_lr_scale": 0.1, "pretext_freeze_norm": True,
                 "pretext_head_slope": 20.0}
CH3 = {
    "quick": {**_CH3_SYNTH_INPUT, "seeds": [0, 1, 2], "synth_difficulties": [0.0, 0.5, 1.0],
              "synth_size": 128, "synth_test_fields": 8, "synth_eval_fields": 4,
              "synth_pretext": {"n_fields": 32, "encoder_name": "resnet18", "encoder_weights": None,
                                "steps": 300, "batch_size": 8, "lr": 1e-3, "crop_size": 64, "n_crops": 20},
              "synth_n_values": [1, 10],
              "synth_finetune": {"steps": 60, "batch_size": 4, "lr": 1e-3, "crop_size": 64, "n_crops": 5,
                                 "eval_every": 12, "n_last": 3, "tile": 128, "pretext_encoder_lr_scale": 0.1},
              "synth_control": False,
              "isl_tile": 256, "isl_n_values": [1, 12],
              "isl_finetune": {"steps": 60, "batch_size": 4, "lr": 1e-3, "crop_size": 64,
                               **_ISL_FT_CROPS, "eval_every": 6, "n_last": 3, "tile": 256,
                               **KEEP_PRETEXT},
              "isl_control": "if-saved", "control_n_values": [1]},
    "colab": {**_CH3_SYNTH_INPUT, "seeds": [0, 1, 2], "synth_difficulties": [0.0, 0.5, 1.0],
              "synth_size": 256, "synth_test_fields": 20, "synth_eval_fields": 8,
              "synth_pretext": {"n_fields": 200, "encoder_name": "resnet34", "encoder_weights": "imagenet",
                                "steps": 2000, "batch_size": 16, "lr": 1e-3, "crop_size": 128, "n_crops": 20},
              "synth_n_values": [1, 10, 50, 100, 200, 500],
              "synth_finetune": {"steps": 300, "batch_size": 8, "lr": 1e-3, "crop_size": 128, "n_crops": 5,
                                 "eval_every": 50, "n_last": 3, "tile": 256,
                                 "pretext_encoder_lr_scale": 0.1},
              "synth_control": True,
              "isl_tile": 256, "isl_n_values": [1, 3, 12],
              "isl_finetune": {"steps": 300, "batch_size": 8, "lr": 1e-3, "crop_size": 128,
                               **_ISL_FT_CROPS, "eval_every": 25, "n_last": 3, "tile": 256,
                               **KEEP_PRETEXT},
              "isl_control": "always", "control_n_values": [1, 3, 12]},
    "paper": {**_CH3_SYNTH_INPUT, "seeds": [0, 1, 2], "synth_difficulties": [0.0, 0.25, 0.5, 0.75, 1.0],
              "synth_size": 512, "synth_test_fields": 190, "synth_eval_fields": 37,
              "synth_pretext": {"n_fields": 384, "encoder_name": "densenet121", "encoder_weights": "imagenet",
                                "steps": 20000, "batch_size": 8, "lr": 1e-3, "crop_size": 512, "n_crops": 5},
              "synth_n_values": [1, 10, 50, 100, 200, 500],
              "synth_finetune": {"steps": 2000, "batch_size": 8, "lr": 1e-3, "crop_size": 256, "n_crops": 5,
                                 "eval_every": 200, "n_last": 3, "tile": 512,
                                 "pretext_encoder_lr_scale": 0.1},
              "synth_control": True,
              "isl_tile": 128, "isl_n_values": [1, 3, 10, 48],
              "isl_finetune": {"steps": 2000, "batch_size": 8, "lr": 1e-3, "crop_size": 128,
                               **_ISL_FT_CROPS, "eval_every": 100, "n_last": 3, "tile": 256,
                               **KEEP_PRETEXT},
              "isl_control": "always", "control_n_values": [1, 3, 10, 48]},
}

# --- Chapter 4: distance maps ----------------------------------------------
# scale: inputs and labels are resized by this factor for training and prediction (maps are
# resized back to full size before the watershed). encoder_depth / decoder_channels: a lighter
# smp U-Net for CPU runs (None = smp's default decoder); fpn_channels: FPN decoder widths
# (pyramid, segmentation). alpha: "auto" = Bonte et al.'s rule
# (initial ratio MSE / BCE measured on our targets) instead of their number, 2000.
# fpn_scale: the same for FPN2-WS, whose smp FPN predicts at 1/4 of its input resolution: at
# scale 0.5 its maps have one value per 8x8 block of BBBC039 pixels, too coarse for nuclei about
# 25 px wide (chapter 4 computes the bound with instance.resolution_bound), so it is trained at
# full resolution in every profile.
# fpn_lr: Adam's learning rate for FPN2-WS (1e-3 in the paper). The quick profile's 600 steps
# are far from the paper's 25 cycles; 3e-3 gets further in them. fpn_steps, measured (quick,
# seed 0, test F1@0.7 / F1@0.9, parameters chosen on the validation images): 300 steps
# 0.839 / 0.147, 500 0.875 / 0.279, 600 0.881 / 0.247, 700 0.890 / 0.234 (set fpn_steps here
# and rerun chapter 4 to reproduce); 600 with scheduler "cosine" 0.866 / 0.233. The quick profile
# takes 700 for an F1@0.7 of at least 0.88: chapter 4 then ran in 591 s on a 2-core AMD EPYC
# (session of 2026-12-04; 700 steps of FPN2-WS in 306 s).
# transfer_*: the synthetic-cells transfer experiment (cellmask pretext -> cell instances).
# An empty transfer_n skips it (quick: with 40-step fine-tunings it showed the protocol, not an
# effect, and chapter 4 needs its CPU minute to stay within 12).
# isl_*: the ISL-field transfer experiment (chapter 1's DAPI model -> nucleus instances with
# chapter 2's labels): tiles of isl_tile px, isl_val_tiles of them choose (h, mask threshold).
# quick runs N = 1 only (N = 4 scored mAP 0.000 / 0.013 for ISL / random init, seed 0, at 18 s a
# point); colab and paper run the curve.
# transfer_crops_total / isl_crops_total: training crops per point, shared out over the N
# annotated images (max(1, total // N) crops per image).
# checkpoint_every: steps between the checkpoints of the Bonte and FPN2-WS trainings on BBBC039.
_CH4_COMMON = {
    "encoder_name": "resnet18",
    "crop_size": 128,
    "batch_size": 8,
    "lr": 1e-3,
    "alpha": "auto",
    # learning-rate schedule of the Bonte and FPN2-WS trainings (islteach.train.fit): None = the
    # papers' constant rate; "cosine" = warm-up of `warmup` steps, then a cosine decay to zero.
    # Measured on BBBC039 (quick, seed 0, 250 steps): cosine F1@0.9 0.727, constant 0.750.
    "scheduler": None,
    "warmup": 0,
    "h_values": [0.5, 1.0, 1.5, 2.0, 3.0],
    "thresholds": [0.4, 0.5, 0.6, 0.7],
    "mask_thresholds": [0.05, 0.1, 0.2],
    "min_size": 16,
    "test_images": 50,
    # ISL field: (h, mask-logit threshold) candidates, chosen at IoU isl_choose_iou on the
    # validation tiles (short fine-tuning leaves the mask output ordered but not calibrated)
    "isl_h_values": [1.0, 2.0, 3.0],
    "isl_mask_thresholds": [-1.0, 0.0, 1.0],  # ties go to the middle pair, (2.0, 0.0)
    "isl_choose_iou": 0.5,
    "transfer_crops_total": 40,
    "isl_crops_total": 40,
    # synthetic cells with membranes (the transfer_* experiment): seeds of its train / test /
    # validation fields and of its one large un-annotated pretext field, the number of
    # validation fields, and the random crops the membrane-stain pretext draws from that field
    "cells_seeds": {"train": 1000, "test": 2000, "val": 3000, "pretext": 4000},
    "cells_val_fields": 2,
    "cells_pretext_n_crops": 200,
}
CH4 = {
    "quick": dict(_CH4_COMMON, scale=1.0, fpn_scale=1.0, encoder_weights=None, encoder_depth=4,
                  decoder_channels=[64, 32, 16, 8], fpn_channels=[64, 32], n_crops=20,
                  bonte_steps=250, bonte_seeds=[0, 1], fpn_steps=700, fpn_lr=3e-3, freeze_steps=15, val_images=8,
                  checkpoint_every=200,
                  transfer_size=96, transfer_n=[], transfer_test=4, transfer_pretext_steps=120,
                  transfer_steps=40, transfer_batch=4, transfer_seeds=[0],
                  isl_tile=256, isl_val_tiles=2, isl_n=[1], isl_steps=80, isl_batch=4, isl_crop=96,
                  isl_seeds=[0]),
    "colab": dict(_CH4_COMMON, scale=1.0, fpn_scale=1.0, encoder_weights="imagenet", encoder_depth=5,
                  decoder_channels=None, fpn_channels=[256, 128], n_crops=40,
                  bonte_steps=4000, bonte_seeds=[0, 1], fpn_steps=4000, fpn_lr=1e-3, checkpoint_every=500,
                  freeze_steps=320, val_images=50,
                  transfer_size=256, transfer_n=[1, 10, 50, 80], transfer_test=17,
                  transfer_pretext_steps=1500, transfer_steps=800, transfer_batch=8,
                  transfer_seeds=[0, 1],
                  isl_tile=256, isl_val_tiles=2, isl_n=[1, 4, 10], isl_steps=1000, isl_batch=8,
                  isl_crop=128, isl_seeds=[0, 1]),
    "paper": dict(_CH4_COMMON, scale=1.0, fpn_scale=1.0, encoder_name="densenet121", encoder_weights="imagenet",
                  encoder_depth=5, decoder_channels=None, fpn_channels=[256, 128], crop_size=256,
                  n_crops=175,
                  bonte_steps=20000, bonte_seeds=[0, 1, 2], fpn_steps=20000, fpn_lr=1e-3, freeze_steps=1600, val_images=50,
                  checkpoint_every=2000,
                  transfer_size=512, transfer_n=[1, 10, 50, 80], transfer_test=17,
                  transfer_pretext_steps=10000, transfer_steps=10000, transfer_batch=8,
                  transfer_seeds=[0, 1, 2],
                  isl_tile=256, isl_val_tiles=2, isl_n=[1, 4, 10], isl_steps=3000, isl_batch=8,
                  isl_crop=256, isl_seeds=[0, 1, 2]),
}

# --- Chapter 5: shape priors -----------------------------------------------
# DSB 2018 fluorescence (100 images of 256x256): the last ``dsb_test_images`` (sorted ids) are
# the test set, the others are cut into ``crop_size`` patches with ``train_stride`` for training.
# ``steps`` optimisation steps per model (the paper: 50 epochs, SGD Nesterov, one cycle to
# a peak ``lr`` of 1e-2; ``lr`` is that peak). ``shape_init="elongated"`` starts the canonical
# shape as a diamond twice as wide as high (not a disc), so that a round shape is learned, not
# inherited (``"radial"``: a round blob). ``seeds``: the with/without count loss comparison is
# repeated for each seed.
# BBBC039: the first ``bbbc039_train``/``bbbc039_test`` images of the train/test splits, resized by
# ``bbbc039_scale`` (its nuclei are about twice as wide as DSB's) and cut into ``crop_size`` patches;
# one model per seed of ``seeds``, ``bbbc039_steps`` steps at the peak rate ``bbbc039_lr``. quick: DSB's
# rate of 0.1 does not train on BBBC039 (session of 2026-12-06, 12 training images, test F1@0.5 with
# the count loss + P): 0.000 at 150 steps (seed 0) and 600 (seeds 0 and 1), image IoU 0.058 / 0.096 / 0.000
# (seed 0 at 300 steps: the dice term stays near 0.8, no candidate present on any test patch); 0.05, 600 steps: 0.690 (seed 0) but 0.000 (seed 1)
# and 0.000 at 300 steps; 0.02, 600 steps: 0.666 / 0.653 / 0.660 / 0.673 (seeds 0-3), 300 steps:
# 0.564 / 0.222; 0.01, 600 steps: 0.641 / 0.646. Measured with a copy of the chapter's BBBC039 cell.
# Fully supervised reference: chapter 4's Bonte U-Net (``reference_encoder``, h-maxima ``reference_h``),
# ``reference_steps`` steps in batches of ``reference_batch_size`` from ``reference_n_crops`` random
# crops per training image. ``checkpoint_every``: steps between the checkpoints of every training.
CH5 = {
    "quick": {
        "encoder_name": "tiny", "encoder_weights": None, "crop_size": 128, "train_stride": 128,
        "dsb_test_images": 20, "steps": 1000, "seeds": [0, 1], "batch_size": 8, "optimizer": "sgd", "lr": 0.1,
        "alpha": 1e-2, "train_grid": 32, "shape_init": "elongated", "presence_prior": 0.1,
        "bbbc039_scale": 0.5, "bbbc039_train": 12, "bbbc039_test": 6, "bbbc039_steps": 600, "bbbc039_lr": 0.02,
        "reference_steps": 150, "reference_encoder": "resnet18", "reference_h": 1.0,
        "reference_n_crops": 4, "reference_batch_size": 8, "checkpoint_every": 100,
    },
    "colab": {
        "encoder_name": "resnet50", "encoder_weights": "imagenet", "crop_size": 128, "train_stride": 64,
        "dsb_test_images": 20, "steps": 4000, "seeds": [0, 1], "batch_size": 16, "optimizer": "sgd", "lr": 1e-2,
        "alpha": 1e-2, "train_grid": 32, "shape_init": "elongated", "presence_prior": 0.1,
        "bbbc039_scale": 0.5, "bbbc039_train": 100, "bbbc039_test": 50, "bbbc039_steps": 3000, "bbbc039_lr": 1e-2,
        "reference_steps": 2000, "reference_encoder": "resnet34", "reference_h": 1.0,
        "reference_n_crops": 4, "reference_batch_size": 8, "checkpoint_every": 500,
    },
    "paper": {
        "encoder_name": "resnet50", "encoder_weights": "imagenet", "crop_size": 128, "train_stride": 64,
        "dsb_test_images": 20, "steps": 20000, "seeds": [0, 1, 2], "batch_size": 16, "optimizer": "sgd", "lr": 1e-2,
        "alpha": 1e-2, "train_grid": 32, "shape_init": "elongated", "presence_prior": 0.1,
        "bbbc039_scale": 0.5, "bbbc039_train": 100, "bbbc039_test": 50, "bbbc039_steps": 20000, "bbbc039_lr": 1e-2,
        "reference_steps": 10000, "reference_encoder": "resnet34", "reference_h": 1.0,
        "reference_n_crops": 4, "reference_batch_size": 8, "checkpoint_every": 2000,
    },
}

_SECTIONS = {"ch1": CH1, "ch2": CH2, "ch3": CH3, "ch4": CH4, "ch5": CH5}

# --- Appendix: data sets (owner: data helper) ---------------------------------
# n_show: example images per data set in the figures; synth_fields: synthetic fields
# whose nuclei are counted; synth_size: their side in pixels.
APPENDIX = {
    "quick": {"n_show": 4, "synth_fields": 20, "synth_size": 256},
    "colab": {"n_show": 4, "synth_fields": 100, "synth_size": 256},
    "paper": {"n_show": 6, "synth_fields": 500, "synth_size": 256},
}
_SECTIONS["appendix"] = APPENDIX
# --- end Appendix ---------------------------------------------------------------


# --- The smoke switch -------------------------------------------------------------------------
#: ``ISLTEACH_SMOKE=1``: the profile's encoders, input and batch sizes, N lists, initialisations and
#: controls, with a few steps, one seed and small evaluation sets, so that every code path of the
#: ``colab`` profile (DenseNet-121, ResNet-50, the ImageNet fallback, every control) runs on a CPU
#: in minutes (CI runs all five chapters this way). Results go to ``results/<profile>-smoke``. The
#: values below replace the profile's; a dict value updates the profile's dict of that key.
SMOKE_VAR = "ISLTEACH_SMOKE"
SMOKE = {
    "ch1": {"steps": 2, "steps_map2": 2, "steps_sephace": 2, "val_every": 1, "checkpoint_every": 1},
    "ch2": {"train_images": 4, "n_epochs": 1, "nimg_per_epoch": 2, "test_images": 2},
    # the synthetic N list stops at 50: zero-shot scoring of a 500-field pool alone takes minutes on a CPU
    "ch3": {"seeds": [0], "synth_test_fields": 2, "synth_eval_fields": 2, "synth_n_values": [1, 10, 50],
            "synth_pretext": {"n_fields": 4, "steps": 2},
            "synth_finetune": {"steps": 2, "eval_every": 1, "n_last": 1},
            "isl_finetune": {"steps": 2, "eval_every": 1, "n_last": 1}},
    "ch4": {"bonte_steps": 2, "fpn_steps": 2, "freeze_steps": 1, "test_images": 3, "val_images": 2,
            "transfer_pretext_steps": 2, "transfer_steps": 2, "transfer_test": 2, "transfer_seeds": [0],
            "isl_steps": 2, "isl_seeds": [0]},
    "ch5": {"steps": 2, "dsb_test_images": 3, "bbbc039_train": 4, "bbbc039_test": 2, "bbbc039_steps": 2,
            "reference_steps": 2},
    "appendix": {"synth_fields": 4},
}


def smoke_enabled() -> bool:
    """Whether the smoke switch ``$ISLTEACH_SMOKE`` is on (``1``, ``true`` or ``yes``)."""
    return os.environ.get(SMOKE_VAR, "").strip().lower() in ("1", "true", "yes")


def _smoke(section: dict, overrides: dict) -> dict:
    out = dict(section)
    for key, value in overrides.items():
        if key not in out:
            raise KeyError(f"SMOKE names {key!r}, which the profile does not have")
        out[key] = {**out[key], **value} if isinstance(value, dict) else value
    return out


class Section(types.SimpleNamespace):
    """Attribute access to one chapter's sizes (``p.ch1.steps``), also usable as a dict."""

    def __getitem__(self, key):
        return getattr(self, key)

    def as_dict(self) -> dict:
        return dict(vars(self))


class Profile(types.SimpleNamespace):
    """All run sizes of one profile: ``name``, ``seed`` and one :class:`Section` per chapter."""

    def as_dict(self) -> dict:
        out = {}
        for k, v in vars(self).items():
            out[k] = v.as_dict() if isinstance(v, Section) else v
        return out


def cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # pragma: no cover - torch missing or broken
        return False


def default_profile_name() -> str:
    """``$ISLTEACH_PROFILE`` if set, else ``colab`` with a CUDA GPU and ``quick`` without."""
    name = os.environ.get(ENV_VAR, "").strip().lower()
    if name:
        if name not in PROFILE_NAMES:
            raise ValueError(
                f"{ENV_VAR}={name!r} is not a known profile; expected one of {PROFILE_NAMES}"
            )
        return name
    return "colab" if cuda_available() else "quick"


def get_profile(name: str | None = None, smoke: bool | None = None) -> Profile:
    """Return the run sizes for profile ``name`` (default: :func:`default_profile_name`).

    Parameters
    ----------
    name : {"quick", "colab", "paper"}, optional
    smoke : bool, optional
        Apply the smoke switch (:data:`SMOKE`); default: ``$ISLTEACH_SMOKE``. Pass False for the
        profile's real sizes, e.g. to estimate its cost during a smoke run.

    Returns
    -------
    Profile
        ``p.name``, ``p.seed``, ``p.smoke`` (the smoke switch, :data:`SMOKE`) and ``p.ch1`` ...
        ``p.ch5`` sections.
    """
    if name is None:
        name = default_profile_name()
    if not isinstance(name, str) or name not in PROFILE_NAMES:
        raise ValueError(f"name must be one of {PROFILE_NAMES}, got {name!r}")
    smoke = smoke_enabled() if smoke is None else bool(smoke)
    sections = {key: Section(**(_smoke(table[name], SMOKE.get(key, {})) if smoke else table[name]))
                for key, table in _SECTIONS.items()}
    return Profile(name=name, smoke=smoke, **COMMON[name], **sections)
