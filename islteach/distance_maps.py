"""Instance segmentation with distance maps: two published recipes, one set of building blocks.

A semantic mask says *where* nuclei are but not *which* pixels belong to which nucleus:
two touching nuclei form one connected blob. A distance map (high in the middle of every
object, low at its border) has one peak per object, and a watershed grown from those peaks
cuts the blob along its neck. Chapter 4 trains two networks that predict such maps.

Bonte et al. {cite}`bonte2022`
    One U-Net with two output channels: a distance map (distance to the border in pixels)
    and the semantic mask (logits), trained with :class:`islteach.losses.CombinedLoss`
    (MSE + alpha * BCE). Seeds = regional maxima of the h-maxima transform of the predicted
    distance; the watershed fills the predicted mask (:func:`bonte_instances`).
    The ISL variant starts from chapter 1's one-output virtual-staining U-Net and appends two
    ``Conv2d`` layers to get two channels (:func:`isl_two_output`).
Zaki et al. (FPN2-WS) {cite}`zaki2020`
    Two single-output feature-pyramid networks (segmentation-models-pytorch ``FPN``) with a
    sigmoid: one predicts the normalised distance transform (0 at the border, 1 in the centre),
    the other the Gaussian-blurred (sigma 1) nucleus border; both trained with MSE, the encoder
    frozen for the first steps when it is pretrained. Seeds = distance > 0.6, seeded watershed on
    the border image (:func:`fpn2ws_instances`).

Functions
---------
bonte_targets, fpn2ws_targets
    The two-channel training targets of each recipe from instance labels.
bonte_model, isl_two_output, fpn_model, fpn2ws_model
    The networks.
instance_dataset, train_bonte, train_fpn2ws
    Random-crop datasets and training with :func:`islteach.train.fit` (one loop for the book).
predict_maps, hmax_seeds, bonte_instances, fpn2ws_instances, choose_parameter
    Whole-field prediction, the h-maxima seeds of Bonte et al.'s watershed
    (:func:`islteach.postprocess.hmax_seeds`, exported here too), post-processing to labels,
    validation-based choice of h / threshold.
one_pixel_error_iou, coarse_target_maps, resolution_bound, score_table
    The small-object effect, the best a network of a given output resolution could do, and a
    Markdown table of :func:`islteach.metrics.score_record` records (the scores: F1 at
    0.5 / 0.7 / 0.9 pooled, mAP averaged over images, error types).

Chapter 4's transfer experiments (synthetic cells; the ISL field with chapter 2's labels) run
through :func:`islteach.transfer.learning_curve` with :class:`islteach.transfer.InstancePointRunner`,
which calls the models, training and post-processing of this module.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .postprocess import hmax_seeds, map_images  # hmax_seeds: defined there, next to hmax_watershed

__all__ = [
    "RECIPES",
    "bonte_seed_run",
    "bonte_targets",
    "fpn2ws_targets",
    "make_targets",
    "rescale_image",
    "rescale_labels",
    "median_diameter",
    "bonte_model",
    "TwoOutputHead",
    "isl_two_output",
    "fpn_model",
    "FPN2WS",
    "fpn2ws_model",
    "instance_dataset",
    "train_bonte",
    "train_fpn2ws",
    "predict_maps",
    "hmax_seeds",
    "bonte_instances",
    "fpn2ws_instances",
    "to_instances",
    "choose_parameter",
    "coarse_target_maps",
    "resolution_bound",
    "one_pixel_error_iou",
    "erode_labels",
    "score_table",
]

#: The two recipes of the chapter.
RECIPES = ("bonte", "fpn2ws")


# ------------------------------------------------------------------------------------ checks
def _check_labels(labels, name="labels") -> np.ndarray:
    """A 2-D label image (:func:`islteach.metrics.check_labels`: ValueError naming ``name``)."""
    from .metrics import check_labels

    return check_labels(labels, name, ndims=(2,))


def _check_image(image, name="image") -> np.ndarray:
    a = np.asarray(image)
    if a.ndim not in (2, 3) or a.dtype.kind not in "uif":
        raise ValueError(f"{name} must be a real (H, W) or (C, H, W) array, got {a.dtype} {a.shape}")
    return a


def _check_scale(scale) -> float:
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale <= 1:
        raise ValueError(f"scale must be a number in (0, 1], got {scale!r}")
    return float(scale)


def _check_recipe(recipe) -> str:
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {RECIPES}, got {recipe!r}")
    return recipe


# ----------------------------------------------------------------------------------- targets
def bonte_targets(labels, distance_scale: float = 1.0) -> np.ndarray:
    """Bonte et al.'s targets: distance to the object border (pixels) and the semantic mask.

    Parameters
    ----------
    labels : (H, W) int array
        Instance labels, 0 = background.
    distance_scale : float
        Factor applied to the distance (1: pixels, as in the paper).

    Returns
    -------
    (2, H, W) float32
        Channel 0 the distance map (0 in the background), channel 1 the mask (0 / 1).

    Examples
    --------
    >>> lab = np.zeros((9, 9), np.int32); lab[2:7, 2:7] = 1
    >>> t = bonte_targets(lab)
    >>> t.shape, float(t[0].max()), float(t[1].sum())
    ((2, 9, 9), 3.0, 25.0)
    """
    from .postprocess import distance_map

    lab = _check_labels(labels)
    d = distance_map(lab, mode="bonte").astype(np.float32) * np.float32(distance_scale)
    return np.stack([d, (lab > 0).astype(np.float32)])


def fpn2ws_targets(labels, sigma: float = 1.0) -> np.ndarray:
    """Zaki et al.'s targets: normalised distance transform and Gaussian-blurred border.

    Parameters
    ----------
    labels : (H, W) int array
    sigma : float
        Gaussian sigma of the border image (1 in the paper).

    Returns
    -------
    (2, H, W) float32
        Channel 0: distance normalised per object to [0, 1] (1 at each centre); channel 1:
        the object borders blurred with a Gaussian, in [0, 1].

    Examples
    --------
    >>> lab = np.zeros((9, 9), np.int32); lab[2:7, 2:7] = 1
    >>> t = fpn2ws_targets(lab)
    >>> float(t[0].max()), bool(t[1].max() <= 1)
    (1.0, True)
    """
    from .postprocess import blurred_border, distance_map

    lab = _check_labels(labels)
    d = distance_map(lab, mode="normalized").astype(np.float32)
    b = blurred_border(lab, sigma=sigma).astype(np.float32)
    return np.stack([d, b])


def make_targets(labels, recipe: str, **kwargs) -> np.ndarray:
    """:func:`bonte_targets` or :func:`fpn2ws_targets` by name (``recipe`` in :data:`RECIPES`)."""
    _check_recipe(recipe)
    return bonte_targets(labels, **kwargs) if recipe == "bonte" else fpn2ws_targets(labels, **kwargs)


def rescale_image(image, scale: float) -> np.ndarray:
    """Resize an (H, W) or (C, H, W) image by ``scale`` (anti-aliased, bilinear), float32.

    Downsampling by 2 makes every training crop and every prediction 4 times cheaper; nuclei of
    BBBC039 (radius about 15 pixels) still span about 7 pixels.
    """
    from skimage.transform import resize

    img = _check_image(image).astype(np.float32, copy=False)
    scale = _check_scale(scale)
    if scale == 1.0:
        return img
    h, w = img.shape[-2:]
    shape = (max(1, round(h * scale)), max(1, round(w * scale)))
    if img.ndim == 3:
        shape = (img.shape[0],) + shape
    return resize(img, shape, order=1, anti_aliasing=True, preserve_range=True).astype(np.float32)


def rescale_labels(labels, scale: float) -> np.ndarray:
    """Resize instance labels by ``scale`` (nearest neighbour; objects that vanish are dropped)."""
    from skimage.transform import resize

    lab = _check_labels(labels)
    scale = _check_scale(scale)
    if scale == 1.0:
        return lab.astype(np.int32, copy=False)
    shape = (max(1, round(lab.shape[0] * scale)), max(1, round(lab.shape[1] * scale)))
    return resize(lab, shape, order=0, anti_aliasing=False, preserve_range=True).astype(np.int32)


def median_diameter(labels) -> float:
    """Median equivalent diameter (pixels) of the objects of one label image or a list of them.

    The equivalent diameter of an object of area A is the diameter of the disc of that area,
    sqrt(4 A / pi). Comparing it between two data sets tells whether a network trained on one
    sees the objects of the other at its training size (chapter 4 applies its BBBC039 network
    to the ISL field). Background (0) is ignored; NaN when there is no object.
    """
    if isinstance(labels, np.ndarray) and labels.ndim == 2:
        labels = [labels]
    areas = []
    for i, lab in enumerate(labels):
        lab = _check_labels(lab, f"labels[{i}]")
        counts = np.bincount(lab.ravel())[1:]
        areas.append(counts[counts > 0])
    areas = np.concatenate(areas) if areas else np.zeros(0)
    if areas.size == 0:
        return float("nan")
    return float(np.median(np.sqrt(4.0 * areas / np.pi)))


def _upsample(maps, shape) -> np.ndarray:
    from skimage.transform import resize

    if maps.shape[-2:] == tuple(shape):
        return maps
    return resize(maps, (maps.shape[0],) + tuple(shape), order=1, anti_aliasing=False,
                  preserve_range=True).astype(np.float32)


# ------------------------------------------------------------------------------------ models
def bonte_model(encoder_name: str = "resnet18", encoder_weights=None, in_channels: int = 1,
                encoder_depth: int = 5, decoder_channels=None, strict: bool = False):
    """Bonte et al.'s "U-Net on steroids" with two output channels (distance, mask logits).

    Built with :func:`islteach.models.unet` (``classes=2``), which loads pretrained encoder
    weights when it can and records what it used in ``model.islteach_init``. With
    ``encoder_depth < 5`` or custom ``decoder_channels`` a lighter smp ``Unet`` is built and the
    encoder weights are copied over (CPU-sized runs).

    Parameters
    ----------
    encoder_name : str
        segmentation-models-pytorch encoder (``"densenet121"`` in the paper, ``"resnet18"`` on CPU).
    encoder_weights : str or None
        ``"imagenet"`` or ``None`` (random initialisation).
    in_channels : int
    encoder_depth : int
        3 to 5 encoder stages.
    decoder_channels : sequence of int, optional
        One per stage (default smp's ``(256, 128, 64, 32, 16)[:encoder_depth]``).
    strict : bool
        Raise instead of falling back to random weights.

    Returns
    -------
    torch.nn.Module
        Maps ``(B, in_channels, H, W)`` (H, W multiples of ``2**encoder_depth``) to ``(B, 2, H, W)``.

    Examples
    --------
    >>> import torch
    >>> m = bonte_model("resnet18", None, in_channels=1, encoder_depth=4)
    >>> tuple(m(torch.zeros(1, 1, 64, 64)).shape), m.islteach_init
    ((1, 2, 64, 64), 'random')
    """
    from . import models

    if isinstance(encoder_depth, bool) or encoder_depth not in (3, 4, 5):
        raise ValueError(f"encoder_depth must be 3, 4 or 5, got {encoder_depth!r}")
    base = models.unet(encoder_name, encoder_weights=encoder_weights, in_channels=in_channels,
                       classes=2, activation=None, strict=strict)
    if encoder_depth == 5 and decoder_channels is None:
        base.islteach_recipe = "bonte"
        return base
    import segmentation_models_pytorch as smp

    if decoder_channels is None:
        decoder_channels = (256, 128, 64, 32, 16)[:encoder_depth]
    decoder_channels = tuple(int(c) for c in decoder_channels)
    if len(decoder_channels) != encoder_depth or min(decoder_channels) < 1:
        raise ValueError(f"decoder_channels must hold {encoder_depth} positive integers, "
                         f"got {decoder_channels!r}")
    model = smp.Unet(encoder_name, encoder_weights=None, in_channels=in_channels, classes=2,
                     encoder_depth=encoder_depth, decoder_channels=decoder_channels)
    model.encoder.load_state_dict(base.encoder.state_dict(), strict=False)
    model.islteach_init = base.islteach_init
    model.islteach_config = dict(base.islteach_config, encoder_depth=encoder_depth,
                                 decoder_channels=list(decoder_channels))
    model.islteach_recipe = "bonte"
    return model


class TwoOutputHead(nn.Module):
    """A one-output network followed by two ``Conv2d`` layers that give 2 channels.

    Bonte et al. fine-tune the ISL-pretrained (one-output) U-Net for instance segmentation
    by appending two convolutions. We put a leaky ReLU between them, otherwise the two linear
    layers would collapse into one; a plain ReLU can die: the pretext output is about 0 in the
    background, and when early fine-tuning steps push it below 0 everywhere no gradient
    reaches the body any more (we saw the loss triple and the output turn constant).

    Parameters
    ----------
    body : torch.nn.Module
        Maps ``(B, C, H, W)`` to ``(B, 1, H, W)``.
    hidden : int
        Channels between the two convolutions.
    """

    def __init__(self, body, hidden: int = 16):
        super().__init__()
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"hidden must be a positive integer, got {hidden!r}")
        self.body = body
        self.head = nn.Sequential(
            nn.Conv2d(1, hidden, kernel_size=3, padding=1),
            nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(hidden, 2, kernel_size=1),
        )

    def forward(self, x):
        return self.head(self.body(x))


def isl_two_output(model, hidden: int = 16, shift: float | None = 0.5):
    """Bonte et al.'s ISL variant: a one-output pretrained network + two ``Conv2d`` layers.

    Parameters
    ----------
    model : torch.nn.Module
        The chapter 1 virtual-staining network (one output channel), e.g. from
        :func:`islteach.virtual_staining.get_isl_model`. All its weights stay trainable.
    hidden : int
        Channels between the two appended convolutions.
    shift : float or None
        How the appended layers start. A number (default 0.5, chapter 3's
        :data:`islteach.transfer.ISL_SHIFT`): the distance channel starts as the virtual
        stain ``f`` and the mask logits as ``f - shift``, so before any fine-tuning the network
        already is the zero-shot segmenter "virtual stain above ``shift``" (small random
        perturbations break the symmetry between hidden channels). ``None``: the second
        convolution starts random, so the pretext output is not used as a mask at first.

    Returns
    -------
    TwoOutputHead
        ``(B, C, H, W) -> (B, 2, H, W)``; ``islteach_init`` is ``"isl"``.

    Examples
    --------
    >>> import torch
    >>> body = torch.nn.Conv2d(3, 1, 3, padding=1)
    >>> tuple(isl_two_output(body)(torch.zeros(1, 3, 16, 16)).shape)
    (1, 2, 16, 16)
    """
    import torch

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if shift is not None and (isinstance(shift, bool) or not np.isfinite(float(shift))):
        raise ValueError(f"shift must be a finite number or None, got {shift!r}")
    net = TwoOutputHead(model, hidden=hidden)
    conv1, conv2 = net.head[0], net.head[2]
    with torch.no_grad():
        # every hidden channel starts as (almost) a copy of the body's output
        conv1.weight.mul_(0.01)
        conv1.bias.zero_()
        conv1.weight[:, 0, 1, 1] += 1.0
        if shift is not None:
            conv2.weight.mul_(0.01)
            conv2.weight[:, :, 0, 0] += 1.0 / hidden  # each output = mean of the hidden copies = f
            conv2.bias.copy_(torch.tensor([0.0, -float(shift)]))
    net.islteach_init = "isl"
    net.islteach_recipe = "bonte"
    return net


def fpn_model(encoder_name: str = "resnet18", encoder_weights=None, in_channels: int = 1,
              activation: str | None = "sigmoid", pyramid_channels: int = 256,
              segmentation_channels: int = 128, strict: bool = False):
    """One single-output feature pyramid network (smp ``FPN``) with a sigmoid, as in FPN2-WS.

    Pretrained encoder weights are loaded through :func:`islteach.models.unet` (same cache,
    same offline fallback, printed when it falls back) and copied into the FPN's encoder.
    ``pyramid_channels`` / ``segmentation_channels`` are smp's decoder widths (256 / 128 by
    default; smaller for CPU runs).

    Returns
    -------
    torch.nn.Module
        ``(B, in_channels, H, W) -> (B, 1, H, W)`` in [0, 1]; ``islteach_init`` says which weights.

    Examples
    --------
    >>> import torch
    >>> m = fpn_model("resnet18", None)
    >>> tuple(m(torch.zeros(1, 1, 64, 64)).shape)
    (1, 1, 64, 64)
    """
    import segmentation_models_pytorch as smp

    from . import models

    model = smp.FPN(encoder_name, encoder_weights=None, in_channels=in_channels, classes=1,
                    activation=activation, decoder_pyramid_channels=int(pyramid_channels),
                    decoder_segmentation_channels=int(segmentation_channels))
    init = "random"
    if encoder_weights is not None:
        base = models.unet(encoder_name, encoder_weights=encoder_weights, in_channels=in_channels,
                           classes=1, strict=strict)
        init = base.islteach_init
        if init != "random":
            model.encoder.load_state_dict(base.encoder.state_dict())
    model.islteach_init = init
    return model


class FPN2WS(nn.Module):
    """Zaki et al.'s FPN2-WS networks: one FPN for the distance, one for the border.

    ``forward`` returns both maps stacked, ``(B, 2, H, W)`` (distance, border), so one call of
    :func:`islteach.train.fit` with :class:`islteach.losses.TwoMapMSELoss` trains the two
    networks side by side (they share no parameter, so each minimises its own MSE).
    """

    def __init__(self, distance_net, border_net):
        super().__init__()
        self.distance_net = distance_net
        self.border_net = border_net

    def forward(self, x):
        return torch.cat([self.distance_net(x), self.border_net(x)], dim=1)

    def set_encoders_trainable(self, trainable: bool) -> None:
        """Freeze (``False``) or unfreeze (``True``) both encoders."""
        for net in (self.distance_net, self.border_net):
            for p in net.encoder.parameters():
                p.requires_grad_(bool(trainable))


def fpn2ws_model(encoder_name: str = "resnet18", encoder_weights=None, in_channels: int = 1,
                 pyramid_channels: int = 256, segmentation_channels: int = 128, strict: bool = False):
    """The two FPN networks of FPN2-WS in one module (see :class:`FPN2WS` and :func:`fpn_model`).

    Examples
    --------
    >>> import torch
    >>> m = fpn2ws_model("resnet18", None)
    >>> tuple(m(torch.zeros(2, 1, 64, 64)).shape)
    (2, 2, 64, 64)
    """
    kw = dict(pyramid_channels=pyramid_channels, segmentation_channels=segmentation_channels, strict=strict)
    d = fpn_model(encoder_name, encoder_weights, in_channels, **kw)
    b = fpn_model(encoder_name, encoder_weights, in_channels, **kw)
    model = FPN2WS(d, b)
    model.islteach_init = d.islteach_init
    model.islteach_recipe = "fpn2ws"
    return model


# ---------------------------------------------------------------------------------- training
def instance_dataset(images, labels, recipe: str, *, crop_size: int = 128, n_crops: int = 20,
                     scale: float = 1.0, seed: int = 0, flips: bool = True, **target_kwargs):
    """Random-crop training set of (image, two-channel target) pairs for one recipe.

    Parameters
    ----------
    images : sequence of (H, W) or (C, H, W) float arrays
        Network inputs, already normalised (e.g. :func:`islteach.data.normalize_percentile`).
    labels : sequence of (H, W) int arrays
        Instance labels aligned with ``images``.
    recipe : {"bonte", "fpn2ws"}
    crop_size : int
        Side of the crops, after rescaling.
    n_crops : int
        Crops per image (positions drawn once, flips / rotations at every access).
    scale : float
        Resize images and labels by this factor first (targets are computed at that scale).
    seed : int
    **target_kwargs
        Passed to :func:`bonte_targets` / :func:`fpn2ws_targets`.

    Returns
    -------
    islteach.data.PairDataset
    """
    from .data import PairDataset

    _check_recipe(recipe)
    scale = _check_scale(scale)
    if len(images) != len(labels):
        raise ValueError(f"images and labels must hold as many items, got {len(images)} and {len(labels)}")
    if len(images) == 0:
        raise ValueError("images must not be empty")
    xs, ts = [], []
    for i, (img, lab) in enumerate(zip(images, labels)):
        img = _check_image(img, f"images[{i}]")
        lab = _check_labels(lab, f"labels[{i}]")
        if img.shape[-2:] != lab.shape:
            raise ValueError(f"images[{i}] {img.shape} and labels[{i}] {lab.shape} differ in (H, W)")
        xs.append(rescale_image(img, scale))
        ts.append(make_targets(rescale_labels(lab, scale), recipe, **target_kwargs))
    return PairDataset(xs, ts, crop_size=crop_size, n_crops=n_crops, seed=seed, flips=flips)


def train_bonte(model, dataset, *, steps: int, alpha: float, batch_size: int = 8, lr: float = 1e-3,
                seed: int = 0, progress: bool = True, checkpoint_dir=None, checkpoint_every: int = 200,
                **fit_kwargs):
    """Train a two-output model with :class:`islteach.losses.CombinedLoss` via :func:`islteach.train.fit`.

    Parameters
    ----------
    model : torch.nn.Module
        E.g. :func:`bonte_model`.
    dataset : torch.utils.data.Dataset
        E.g. :func:`instance_dataset` with ``recipe="bonte"``.
    steps : int
        Total optimisation steps (including those done before a resume).
    alpha : float
        Weight of the mask term of :class:`islteach.losses.CombinedLoss`.
    batch_size, lr, seed, progress
        Passed to :func:`islteach.train.fit`.
    checkpoint_dir : path-like, optional
        Checkpoint directory (see :func:`islteach.train.checkpoint_dir_for`): a rerun with the
        same directory resumes from its ``last.pt``; after a finished run it loads the final
        weights and history without training again. ``None``: no checkpoints.
    checkpoint_every : int
        Steps between checkpoints (one is always written at the last step).
    **fit_kwargs
        Any other argument of :func:`islteach.train.fit` (``device``, ``val_fn``, ...).

    Returns
    -------
    islteach.train.History
    """
    from .losses import CombinedLoss
    from .train import fit

    return fit(model, dataset, CombinedLoss(alpha), steps=steps, batch_size=batch_size, lr=lr,
               seed=seed, progress=progress, checkpoint_dir=checkpoint_dir,
               checkpoint_every=checkpoint_every, **fit_kwargs)


def bonte_seed_run(x_train, y_train, x_val, y_val, x_test, y_test, *, seed: int, alpha: float, steps: int,
                   encoder_name: str, encoder_weights=None, encoder_depth: int = 5, decoder_channels=None,
                   crop_size: int = 128, n_crops: int = 20, scale: float = 1.0, batch_size: int = 8,
                   lr: float = 1e-3, h_values=(0.5, 1.0, 2.0), min_size: int = 0, checkpoint_dir=None,
                   checkpoint_every: int = 200, progress: bool = True, **fit_kwargs):
    """Bonte et al.'s whole recipe for one seed: data set, initial weights, training, h on validation, test scores.

    Everything random (crop positions, flips, batches, initial weights) follows from ``seed``,
    so a second seed of the same recipe measures how much of a result is the luck of one draw.

    Parameters
    ----------
    x_train, y_train, x_val, y_val, x_test, y_test : sequences of arrays
        Normalised images and their instance labels.
    seed : int
    alpha, steps, batch_size, lr, checkpoint_dir, checkpoint_every, progress, **fit_kwargs
        See :func:`train_bonte`.
    encoder_name, encoder_weights, encoder_depth, decoder_channels
        See :func:`bonte_model`.
    crop_size, n_crops, scale
        See :func:`instance_dataset`.
    h_values : sequence of float
        Candidate h, chosen on the validation images at F1@0.7 (:func:`choose_parameter`).
    min_size : int

    Returns
    -------
    model : torch.nn.Module
    history : islteach.train.History
    record : dict
        :func:`islteach.metrics.score_record` on the test images, plus ``seed``, ``h`` and
        ``train_seconds``.
    """
    import torch

    from .metrics import score_record

    ds = instance_dataset(x_train, y_train, "bonte", crop_size=crop_size, n_crops=n_crops, scale=scale, seed=seed)
    torch.manual_seed(int(seed))
    model = bonte_model(encoder_name, encoder_weights, in_channels=ds.inputs[0].shape[0],
                        encoder_depth=encoder_depth, decoder_channels=decoder_channels)
    model.train()
    hist = train_bonte(model, ds, steps=steps, alpha=alpha, batch_size=batch_size, lr=lr, seed=seed,
                       progress=progress, checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every,
                       **fit_kwargs)
    maps_val = [predict_maps(model, x, scale=scale) for x in x_val]
    h, _ = choose_parameter(maps_val, y_val, "bonte", list(h_values), min_size=min_size)
    maps_test = [predict_maps(model, x, scale=scale) for x in x_test]
    pred = map_images(lambda m: bonte_instances(m, h, min_size=min_size), maps_test)
    record = {**score_record(y_test, pred), "seed": int(seed), "h": h, "train_seconds": round(hist.seconds, 1)}
    return model, hist, record


def train_fpn2ws(model, dataset, *, steps: int, freeze_steps: int = 0, batch_size: int = 8,
                 lr: float = 1e-3, seed: int = 0, progress: bool = True, checkpoint_dir=None,
                 checkpoint_every: int = 200, resume: bool = True, **fit_kwargs):
    """Train FPN2-WS (sigmoid outputs, MSE, Adam) via :func:`islteach.train.fit`.

    When ``freeze_steps > 0`` and the encoders are pretrained (``model.islteach_init`` is not
    ``"random"``), both encoders are frozen for the first ``freeze_steps`` steps and unfrozen
    afterwards (Zaki et al.: 2 warm-up cycles of 25). A random encoder is never frozen.

    Parameters
    ----------
    model : FPN2WS
        Both networks in one module (:func:`fpn2ws_model`), so one checkpoint holds both.
    dataset : torch.utils.data.Dataset
        E.g. :func:`instance_dataset` with ``recipe="fpn2ws"``.
    steps : int
        Total optimisation steps (including those done before a resume).
    freeze_steps : int
        Steps with frozen encoders (pretrained encoders only).
    batch_size, lr, seed, progress
        Passed to :func:`islteach.train.fit`.
    checkpoint_dir : path-like, optional
        Checkpoint directory (see :func:`islteach.train.checkpoint_dir_for`). A rerun with the
        same directory resumes from its ``last.pt`` with the encoders frozen only if the
        checkpoint lies inside the frozen phase; after a finished run it loads the final weights
        and history without training again. ``None``: no checkpoints.
    checkpoint_every : int
        Steps between checkpoints (one is always written at the last step).
    resume : bool
        Continue from ``checkpoint_dir/last.pt`` when it exists.
    **fit_kwargs
        Any other argument of :func:`islteach.train.fit` (``device``, ``callback``, ...).

    Returns
    -------
    islteach.train.History
        With ``frozen_steps`` set to the number of steps the encoders were frozen (over the
        whole run, resumed or not).
    """
    import torch

    from .losses import TwoMapMSELoss
    from .train import fit, load_checkpoint

    if isinstance(freeze_steps, bool) or not isinstance(freeze_steps, int) or freeze_steps < 0:
        raise ValueError(f"freeze_steps must be a non-negative integer, got {freeze_steps!r}")
    pretrained = getattr(model, "islteach_init", "random") != "random"
    n_frozen = min(freeze_steps, steps) if pretrained else 0
    callback = fit_kwargs.pop("callback", None)
    start = 0  # the step fit resumes from: freeze only if that lies inside the frozen phase
    if n_frozen and checkpoint_dir is not None and resume:
        ck = load_checkpoint(checkpoint_dir)
        start = int(ck["step"]) if ck is not None else 0
        del ck
    if n_frozen:
        # the optimiser holds every parameter; frozen ones get no gradient, so Adam skips them
        # (built the same way whether resumed or not, so its saved state fits)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        model.set_encoders_trainable(start >= n_frozen)

        def cb(step, loss):
            if step == n_frozen:
                model.set_encoders_trainable(True)
            if callback is not None:
                callback(step, loss)

        fit_kwargs["optimizer"] = opt
    else:
        cb = callback
    try:
        hist = fit(model, dataset, TwoMapMSELoss(), steps=steps, batch_size=batch_size, lr=lr,
                   seed=seed, progress=progress, callback=cb, checkpoint_dir=checkpoint_dir,
                   checkpoint_every=checkpoint_every, resume=resume, **fit_kwargs)
    finally:
        if n_frozen:
            model.set_encoders_trainable(True)
    hist.frozen_steps = n_frozen
    return hist


# -------------------------------------------------------------------------------- prediction
def predict_maps(model, image, *, scale: float = 1.0, tile: int | None = None, overlap: int = 32,
                 batch_size: int = 4, device=None) -> np.ndarray:
    """Predict the two maps of a whole field, at the training scale, returned at full size.

    Parameters
    ----------
    model : torch.nn.Module
        A two-output model (:func:`bonte_model`, :func:`isl_two_output`, :func:`fpn2ws_model`).
    image : (H, W) or (C, H, W) float array
        Normalised as for training.
    scale : float
        The scale the model was trained at; the maps are resized back to (H, W) bilinearly.
    tile : int, optional
        Tile side (multiple of 32). Default: one tile covering the rescaled field when it fits
        in 512 pixels, else 256.

    Returns
    -------
    (2, H, W) float32
        Raw model outputs (Bonte: distance, mask logits; FPN2-WS: distance, border in [0, 1]).
    """
    from .train import predict_tiled

    img = _check_image(image).astype(np.float32, copy=False)
    if img.ndim == 2:
        img = img[None]
    small = rescale_image(img, scale)
    if tile is None:
        side = int(np.ceil(max(small.shape[-2:]) / 32.0) * 32)
        tile = side if side <= 512 else 256
    ov = min(overlap, tile // 2)
    maps = predict_tiled(model, small, tile=tile, overlap=ov, batch_size=batch_size, device=device)
    if maps.shape[0] != 2:
        raise ValueError(f"model must output 2 channels, got {maps.shape[0]}")
    return _upsample(maps, img.shape[-2:])


def _check_maps(maps) -> np.ndarray:
    m = np.asarray(maps)
    if m.ndim != 3 or m.shape[0] != 2 or m.dtype.kind != "f":
        raise ValueError(f"maps must be a float array of shape (2, H, W), got {m.dtype} {m.shape}")
    return m


def bonte_instances(maps, h: float, *, mask_threshold: float = 0.0, min_size: int = 0) -> np.ndarray:
    """Instance labels from Bonte-style maps: h-maxima seeds, watershed inside the mask.

    Parameters
    ----------
    maps : (2, H, W) float
        Predicted distance (channel 0) and mask logits (channel 1).
    h : float
        Minimum height of a distance peak, in the units of the distance channel (Bonte et al.
        use h = 10 pixels for large cells; chosen on validation images here).
    mask_threshold : float
        Threshold on the logits (0 = probability 0.5).
    min_size : int
        Objects smaller than this (pixels) are removed.

    Returns
    -------
    (H, W) int32 labels
    """
    from .postprocess import hmax_watershed

    m = _check_maps(maps)
    return hmax_watershed(m[0], m[1] > mask_threshold, h=h, min_size=min_size).astype(np.int32)


def fpn2ws_instances(maps, threshold: float = 0.6, *, min_size: int = 0, **kwargs) -> np.ndarray:
    """Instance labels from FPN2-WS maps: seeds = distance > ``threshold``, seeded watershed.

    Parameters
    ----------
    maps : (2, H, W) float
        Predicted normalised distance (channel 0) and blurred border (channel 1), in [0, 1].
    threshold : float
        Seed threshold on the normalised distance (0.6 in the paper).
    min_size : int
    **kwargs
        Passed to :func:`islteach.postprocess.seeded_watershed`.

    Returns
    -------
    (H, W) int32 labels
    """
    from .postprocess import seeded_watershed

    m = _check_maps(maps)
    return seeded_watershed(m[0], m[1], threshold=threshold, min_size=min_size, **kwargs).astype(np.int32)


def to_instances(maps, recipe: str, parameter, **kwargs) -> np.ndarray:
    """:func:`bonte_instances` (parameter = h) or :func:`fpn2ws_instances`.

    For FPN2-WS ``parameter`` is the seed threshold, or a pair ``(threshold, mask_threshold)``:
    the foreground is then ``distance > mask_threshold``. A sigmoid trained with MSE
    approaches 0 slowly, so after short training the background is not exactly 0 and the
    foreground threshold matters as much as the seed threshold.

    For Bonte ``parameter`` is h, or a pair ``(h, mask_threshold)`` with the threshold on the
    mask logits (0 means probability 0.5): after a short fine-tuning the mask output can be
    well ordered but not yet calibrated, so its threshold is worth choosing on validation too.
    """
    _check_recipe(recipe)
    fn = bonte_instances if recipe == "bonte" else fpn2ws_instances
    if isinstance(parameter, (tuple, list)):
        if len(parameter) != 2:
            first = "h" if recipe == "bonte" else "threshold"
            raise ValueError(f"parameter must be a number or a ({first}, mask_threshold) pair, got {parameter!r}")
        return fn(maps, float(parameter[0]), mask_threshold=float(parameter[1]), **kwargs)
    return fn(maps, float(parameter), **kwargs)


def choose_parameter(maps_list, labels_list, recipe: str, values, *, iou: float = 0.7, **kwargs):
    """Pick h (Bonte) or the seed threshold (FPN2-WS) that maximises F1 at ``iou`` on validation.

    Parameters
    ----------
    maps_list : sequence of (2, H, W) float arrays
        Predicted maps of the validation images.
    labels_list : sequence of (H, W) int arrays
        Their true labels.
    recipe : {"bonte", "fpn2ws"}
    values : sequence
        Candidate parameters: floats (h, or the FPN2-WS seed threshold) or pairs
        ``(h or threshold, mask_threshold)`` (see :func:`to_instances`).
    iou : float
        IoU threshold of the F1 score used to choose.
    **kwargs
        Passed to :func:`to_instances` (e.g. ``min_size``).

    Returns
    -------
    best : float or tuple
    scores : dict
        ``{value: F1}`` over the validation images (objects pooled).
    """
    scores = {v: f[0] for v, f in _candidate_f1(maps_list, labels_list, recipe, values, (iou,), **kwargs).items()}
    values = list(scores)
    order = {v: i for i, v in enumerate(values)}
    mid = len(values) // 2  # ties: prefer the candidate nearest the middle of the list
    best = max(values, key=lambda v: (scores[v], -abs(order[v] - mid)))
    return best, scores


def _candidate_f1(maps_list, labels_list, recipe: str, values, ious, **kwargs) -> dict:
    """``{candidate: F1 at each of ious}``: each candidate post-processes every map once."""
    from .metrics import matching_dataset

    if len(maps_list) != len(labels_list) or len(maps_list) == 0:
        raise ValueError("maps_list and labels_list must be non-empty and of the same length")
    values = [tuple(float(u) for u in v) if isinstance(v, (tuple, list)) else float(v) for v in values]
    if not values:
        raise ValueError("values must not be empty")
    out = {}
    for v in values:
        preds = map_images(lambda m: to_instances(m, recipe, v, **kwargs), maps_list)  # noqa: B023 (used at once)
        out[v] = [float(f) for f in matching_dataset(list(labels_list), preds, thresholds=tuple(ious)).summed.f1]
    return out


def coarse_target_maps(labels, recipe: str, *, scale: float = 1.0, stride: int = 4) -> np.ndarray:
    """The TRUE targets of ``labels`` as a network of a given output resolution could draw them.

    The targets are made at ``scale`` (as for training), averaged over blocks of ``stride``
    pixels (an FPN predicts at 1/4 of its input: ``stride=4``) and resized back to the full
    size bilinearly, as :func:`predict_maps` does with a network's output. Post-processing them
    (:func:`to_instances`) shows the best a perfect network of that resolution could score.

    Parameters
    ----------
    labels : (H, W) int array
    recipe : {"bonte", "fpn2ws"}
    scale : float
    stride : int
        Output stride of the network (1: full resolution).

    Returns
    -------
    (2, H, W) float32
        For Bonte the mask channel is turned into logits (+-5) so that the usual mask
        threshold 0 applies.

    Examples
    --------
    >>> lab = np.zeros((64, 64), np.int32); lab[8:30, 8:30] = 1; lab[8:30, 30:52] = 2
    >>> int(to_instances(coarse_target_maps(lab, "fpn2ws", stride=1), "fpn2ws", (0.6, 0.02)).max())
    2
    """
    from skimage.transform import resize

    lab = _check_labels(labels)
    _check_recipe(recipe)
    scale = _check_scale(scale)
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"stride must be a positive integer, got {stride!r}")
    t = make_targets(rescale_labels(lab, scale), recipe)
    if recipe == "bonte":
        t[1] = np.where(t[1] > 0.5, 5.0, -5.0)
    if stride > 1:
        h, w = t.shape[1:]
        t = resize(t, (2, max(1, h // stride), max(1, w // stride)), order=1, anti_aliasing=True)
    return _upsample(t.astype(np.float32), lab.shape)


def resolution_bound(labels_list, recipe: str, candidates, *, scale: float = 1.0, stride: int = 4,
                     min_size: int = 0, ious=(0.7, 0.9)) -> dict:
    """Best F1 that perfect maps of a given resolution reach, over post-processing candidates.

    Every candidate post-processes the true coarse maps of ``labels_list`` once; for every IoU
    threshold in ``ious`` the best candidate is taken separately (objects pooled over images,
    as in :func:`choose_parameter`), so the figures are an upper bound for any network of that
    output resolution post-processed with one of the candidates.

    Returns
    -------
    dict
        ``{"f1_07": ..., "f1_09": ..., "parameters": {"f1_07": best, ...}}`` (keys from ``ious``).
    """
    ious = tuple(float(t) for t in ious)
    if not ious:
        raise ValueError("ious must not be empty")
    maps = [coarse_target_maps(y, recipe, scale=scale, stride=stride) for y in labels_list]
    f1 = _candidate_f1(maps, labels_list, recipe, candidates, ious, min_size=min_size)
    out, params = {}, {}
    for i, t in enumerate(ious):
        key = "f1_" + f"{t:.2f}".rstrip("0").replace(".", "")  # 0.7 -> f1_07, 0.75 -> f1_075
        best = max(f1, key=lambda c: f1[c][i])  # first candidate wins ties
        out[key], params[key] = f1[best][i], best
    out["parameters"] = params
    return out


def one_pixel_error_iou(radius: float, pixelated: bool = False) -> float:
    """IoU of a disc with the same disc one pixel smaller: Zaki et al.'s small-object example.

    Parameters
    ----------
    radius : float
        Disc radius in pixels (> 1).
    pixelated : bool
        ``False``: the continuous value ``(r - 1)**2 / r**2``. ``True``: rasterise the disc on
        the pixel grid and erode it by one pixel (what a segmentation actually looks like).

    Examples
    --------
    >>> round(one_pixel_error_iou(60), 3), round(one_pixel_error_iou(4), 3)
    (0.967, 0.562)
    """
    if isinstance(radius, bool) or not isinstance(radius, (int, float)) or not radius > 1:
        raise ValueError(f"radius must be a number > 1, got {radius!r}")
    if not pixelated:
        return float((radius - 1.0) ** 2 / radius ** 2)
    from scipy import ndimage as ndi

    n = int(np.ceil(radius)) + 2
    yy, xx = np.mgrid[-n:n + 1, -n:n + 1]
    disc = xx ** 2 + yy ** 2 <= radius ** 2
    inner = ndi.binary_erosion(disc)
    return float(inner.sum() / disc.sum())


def erode_labels(labels, pixels: int = 1) -> np.ndarray:
    """Shrink every object by ``pixels`` (a segmentation that misses a border ring of each object).

    Examples
    --------
    >>> lab = np.zeros((9, 9), np.int32); lab[2:7, 2:7] = 1
    >>> int((erode_labels(lab) > 0).sum())
    9
    """
    lab = _check_labels(labels)
    if isinstance(pixels, bool) or not isinstance(pixels, (int, np.integer)) or pixels < 0:
        raise ValueError(f"pixels must be a non-negative integer, got {pixels!r}")
    out = lab.copy()
    for _ in range(int(pixels)):
        # a pixel stays when all its 4-neighbours carry the same label
        keep = np.ones(out.shape, bool)
        p = np.pad(out, 1, mode="constant")
        for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
            keep &= p[dy:dy + out.shape[0], dx:dx + out.shape[1]] == out
        out = np.where(keep, out, 0)
    return out.astype(np.int32)


def score_table(rows: dict, columns=("mAP", "F1@0.5", "F1@0.7", "F1@0.9"), digits: int = 3) -> str:
    """A Markdown table of scores, one row per method; missing values show as -.

    Parameters
    ----------
    rows : dict
        ``{method: record}``: a :func:`islteach.metrics.score_record` record (column ``"mAP"``
        is its ``mAP``, ``"F1@0.7"`` its ``f1["0.7"]``, ``"AP@0.5"`` its ``ap["0.5"]``,
        ``"PQ"`` its ``pq``), or a plain ``{column: value}`` dict (e.g. a paper's numbers).
    columns : sequence of str
    digits : int

    Examples
    --------
    >>> print(score_table({"a": {"mAP": 0.5}}, columns=("mAP", "F1@0.7")))
    | method | mAP | F1@0.7 |
    |---|---|---|
    | a | 0.500 | - |
    """
    if not isinstance(rows, dict):
        raise TypeError(f"rows must be a dict, got {type(rows).__name__}")

    def value(r, c):
        if c in r:
            return r[c]
        kind, _, t = c.partition("@")
        sub = {"F1": "f1", "AP": "ap"}.get(kind)
        if sub and isinstance(r.get(sub), dict):
            return r[sub].get(f"{float(t):g}")
        if c == "PQ":
            return r.get("pq")
        return None

    lines = ["| method | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, r in rows.items():
        cells = [f"{v:.{digits}f}" if (v := value(r, c)) is not None else "-" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
