"""Weakly supervised instance segmentation with a learned canonical shape (Costa et al., 2022).

Two networks are trained together from binary masks (and, optionally, the number of
nuclei per patch) only:

* :class:`ShapeMLP` -- an implicit canonical shape ``log p(s | x, y, r)`` defined on
  continuous coordinates, so it can be sampled at any resolution;
* :class:`AffineEncoder` -- a CNN that predicts, for ``N`` candidate instances, an affine
  transformation ``X' = L X + t`` (``L`` lower triangular with a positive diagonal) and a
  presence probability ``p(z)``.

Every candidate instance is the canonical shape sampled on its transformed coordinate grid
(:func:`render_instances`); the image mask is ``max_i p(s_i) p(z_i)`` (:func:`combine_instances`),
so any binary segmentation loss trains both networks end to end
(:func:`shape_prior_loss`: BCE + soft Dice + ``alpha (sum_i p(z_i) - K)^2``).
:func:`predict_instances` turns the predicted parameters into an instance label image, with
the optional merge post-processing of the paper.

Coordinates: a grid covers the image with ``x`` (columns) and ``y`` (rows) in ``[-1, 1]``
at pixel centres; the last axis of every coordinate tensor is ``(x, y)``.

Examples
--------
>>> import torch
>>> from islteach.shape_prior import ShapePriorModel
>>> model = ShapePriorModel(encoder_name="tiny")
>>> out = model(torch.zeros(2, 1, 128, 128), grid_size=32)
>>> tuple(out["mask"].shape), tuple(out["presence"].shape)
((2, 128, 128), (2, 128))
"""
from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .provenance import shown_path

__all__ = [
    "ShapeMLP",
    "seed_run",
    "dsb_checkpoint_tag",
    "AffineEncoder",
    "ShapePriorModel",
    "canonical_grid",
    "render_instances",
    "combine_instances",
    "render_mask",
    "shape_prior_loss",
    "count_loss",
    "soft_dice_loss",
    "count_instances",
    "cut_patches",
    "train_shape_prior",
    "predict_params",
    "predict_instances",
    "instance_ellipses",
    "canonical_shape",
    "canonical_radius",
    "canonical_shape_stats",
    "merge_overlapping",
    "evaluate_instances",
    "F1_THRESHOLDS",
]

#: Costa et al. report the F1 score at IoU thresholds 0.1, 0.2, ..., 1.0 (and their mean).
F1_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def _float32_region(device: torch.device):
    """A context with CUDA autocast off (a no-op off CUDA): the affine heads, the rendering and the
    loss stay in float32 under mixed precision, only the CNN backbone runs in float16."""
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", enabled=False)
    return contextlib.nullcontext()


# --------------------------------------------------------------------------- shape
class ShapeMLP(nn.Module):
    """The implicit canonical shape ``log p(s | x, y, r)``.

    Three fully connected layers with 8, 4 and 1 outputs; ReLU after the first two; the
    input ``(x, y, r)`` (``r = sqrt(x^2 + y^2)``) is concatenated to the outputs of the
    first two layers; the output goes through a negative Softplus, so it is a
    log-likelihood (``<= 0``) and ``p(s) = exp(output)``.

    Parameters
    ----------
    widths : tuple of int
        Outputs of the two hidden layers (the paper: ``(8, 4)``).
    init : {"radial", "elongated", "default"}
        ``"default"``: PyTorch's initialisation only. ``"radial"``: additionally the output
        layer's weight on ``r`` is 5 and its bias -5, so the initial shape is a blob around
        the origin (radius about 1) that fades outwards; training then shapes it. (The paper
        does not say how the MLP was initialised; a blob makes short CPU runs converge.)
        ``"elongated"``: a shape that is *not* a disc, so that a round result is learned, not
        inherited: the first layer computes ``|x| / 2`` and ``|y|`` with four ReLUs, the second
        adds them, and the output is a blob where ``|x| / 2 + |y| < 3/4``, a diamond twice as
        wide as high (axis ratio about 2).

    Examples
    --------
    >>> import torch
    >>> mlp = ShapeMLP()
    >>> logp = mlp(torch.zeros(5, 2))
    >>> logp.shape, bool((logp <= 0).all())
    (torch.Size([5]), True)
    """

    def __init__(self, widths=(8, 4), init: str = "radial"):
        super().__init__()
        w1, w2 = (int(w) for w in widths)
        self.fc1 = nn.Linear(3, w1)
        self.fc2 = nn.Linear(w1 + 3, w2)
        self.fc3 = nn.Linear(w2 + 3, 1)
        if init == "radial":
            with torch.no_grad():
                self.fc3.weight[0, -1] = 5.0
                self.fc3.bias[0] = -5.0
        elif init == "elongated":
            if w1 < 4 or w2 < 1:
                raise ValueError(f"init='elongated' needs widths of at least (4, 1), got {widths}")
            with torch.no_grad():
                for layer in (self.fc1, self.fc2, self.fc3):
                    layer.weight.zero_()
                    layer.bias.zero_()
                # fc1 units 0..3: relu(x/2), relu(-x/2), relu(y), relu(-y); inputs are (x, y, r)
                self.fc1.weight[0, 0], self.fc1.weight[1, 0] = 0.5, -0.5
                self.fc1.weight[2, 1], self.fc1.weight[3, 1] = 1.0, -1.0
                self.fc2.weight[0, :4] = 1.0          # fc2 unit 0: |x| / 2 + |y|
                self.fc3.weight[0, 0] = 10.0          # log p = -softplus(10 (|x|/2 + |y|) - 7.5)
                self.fc3.bias[0] = -7.5
                # small random weights elsewhere, so the other units can learn too
                for layer in (self.fc1, self.fc2):
                    extra = torch.randn_like(layer.weight) * 0.01
                    extra[: (4 if layer is self.fc1 else 1)] = 0.0
                    layer.weight += extra
        elif init != "default":
            raise ValueError(f"init must be 'radial', 'elongated' or 'default', got {init!r}")

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """``coords`` (..., 2) as (x, y) -> log p(s) with shape (...)."""
        if coords.shape[-1] != 2:
            raise ValueError(f"coords must have a last axis of length 2 (x, y), got shape {tuple(coords.shape)}")
        r = torch.sqrt((coords * coords).sum(-1, keepdim=True) + 1e-12)
        f = torch.cat([coords, r], dim=-1)
        h = F.relu(self.fc1(f))
        h = F.relu(self.fc2(torch.cat([h, f], dim=-1)))
        out = self.fc3(torch.cat([h, f], dim=-1))
        return -F.softplus(out).squeeze(-1)


def canonical_grid(size: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Pixel-centre coordinates of a ``size x size`` image in ``[-1, 1]``: shape (size, size, 2) as (x, y).

    Examples
    --------
    >>> g = canonical_grid(4)
    >>> g[0, 0].tolist(), g[3, 3].tolist()
    ([-0.75, -0.75], [0.75, 0.75])
    """
    if not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    v = (torch.arange(int(size), device=device, dtype=dtype) + 0.5) * (2.0 / size) - 1.0
    yy, xx = torch.meshgrid(v, v, indexing="ij")
    return torch.stack([xx, yy], dim=-1)


def render_instances(shape, L: torch.Tensor, t: torch.Tensor, size: int) -> torch.Tensor:
    """Sample the canonical shape on every instance's transformed grid ``X' = L X + t``.

    Parameters
    ----------
    shape : callable
        Maps coordinates (..., 2) to ``log p(s)`` (...), e.g. a :class:`ShapeMLP`.
    L : Tensor (B, N, 2, 2)
        Per-instance linear part (acts on column vectors ``(x, y)``).
    t : Tensor (B, N, 2)
        Per-instance translation.
    size : int
        Grid resolution (the grid always spans the whole image).

    Returns
    -------
    Tensor (B, N, size, size)
        ``log p(s_i)`` at every pixel of every instance.
    """
    if L.ndim != 4 or L.shape[-2:] != (2, 2):
        raise ValueError(f"L must have shape (B, N, 2, 2), got {tuple(L.shape)}")
    if t.shape != L.shape[:2] + (2,):
        raise ValueError(f"t must have shape {tuple(L.shape[:2]) + (2,)}, got {tuple(t.shape)}")
    X = canonical_grid(size, device=L.device, dtype=L.dtype)
    Xp = torch.einsum("bnij,hwj->bnhwi", L, X) + t[:, :, None, None, :]
    return shape(Xp)


def combine_instances(log_ps: torch.Tensor, presence: torch.Tensor) -> torch.Tensor:
    """Image mask ``p(y) = max_i p(s_i) p(z_i)``: (B, N, H, W) log-probs and (B, N) presence -> (B, H, W)."""
    if presence.shape != log_ps.shape[:2]:
        raise ValueError(f"presence must have shape {tuple(log_ps.shape[:2])}, got {tuple(presence.shape)}")
    if log_ps.shape[1] == 0:
        return log_ps.new_zeros((log_ps.shape[0],) + tuple(log_ps.shape[2:]))
    return (log_ps.exp() * presence[:, :, None, None]).amax(dim=1)


def render_mask(shape, L: torch.Tensor, t: torch.Tensor, presence: torch.Tensor, size: int,
                search: str = "lookup", chunk: int = 32, lookup_size: int = 256,
                lookup_extent: float = 4.0) -> torch.Tensor:
    """``combine_instances(render_instances(shape, L, t, size), presence)`` computed cheaply.

    The gradient of a maximum flows only to the arg-max instance of each pixel. So the
    arg-max instance of every pixel is first found without autograd, and the shape is then
    evaluated again, with autograd, only at that instance: the values and gradients are those
    of the direct computation for the chosen instance, at a fraction of the memory and time.

    Parameters
    ----------
    shape, L, t, presence, size
        As in :func:`render_instances` and :func:`combine_instances`.
    search : {"lookup", "exact"}
        How the arg-max is found. ``"exact"`` evaluates the shape for every instance and pixel
        (in chunks of ``chunk`` instances). ``"lookup"`` (default, several times faster on a
        CPU) samples a ``lookup_size``-pixel table of ``p(s)`` over
        ``[-lookup_extent, lookup_extent]^2`` bilinearly (edge values beyond it); the chosen
        instance can then differ from the exact arg-max only where two instances are almost tied.

    Returns
    -------
    Tensor (B, size, size)
    """
    if presence.shape != L.shape[:2]:
        raise ValueError(f"presence must have shape {tuple(L.shape[:2])}, got {tuple(presence.shape)}")
    if search not in ("lookup", "exact"):
        raise ValueError(f"search must be 'lookup' or 'exact', got {search!r}")
    B, N = presence.shape
    if N == 0:
        return L.new_zeros((B, size, size))
    with torch.no_grad():
        if search == "lookup":
            table = shape(canonical_grid(lookup_size, device=L.device, dtype=L.dtype) * lookup_extent).exp()
            X = canonical_grid(size, device=L.device, dtype=L.dtype)
            Xp = torch.einsum("bnij,hwj->bnhwi", L, X) + t[:, :, None, None, :]
            v = F.grid_sample(table[None, None], (Xp / lookup_extent).reshape(1, B * N * size, size, 2),
                              mode="bilinear", padding_mode="border", align_corners=False)
            v = v.view(B, N, size, size) * presence[:, :, None, None]
            best_i = v.argmax(1)
        else:
            best_v = None
            best_i = None
            for s in range(0, N, chunk):
                v = render_instances(shape, L[:, s:s + chunk], t[:, s:s + chunk], size).exp()
                v = v * presence[:, s:s + chunk, None, None]
                cv, ci = v.max(1)
                ci = ci + s
                if best_v is None:
                    best_v, best_i = cv, ci
                else:
                    better = cv > best_v
                    best_v = torch.where(better, cv, best_v)
                    best_i = torch.where(better, ci, best_i)
    idx = best_i.view(B, -1)  # (B, P)
    Lg = torch.gather(L.reshape(B, N, 4), 1, idx[..., None].expand(-1, -1, 4)).view(B, -1, 2, 2)
    tg = torch.gather(t, 1, idx[..., None].expand(-1, -1, 2))
    pg = torch.gather(presence, 1, idx)
    X = canonical_grid(size, device=L.device, dtype=L.dtype).view(1, -1, 2, 1)
    Xp = (Lg @ X).squeeze(-1) + tg
    return (shape(Xp).exp() * pg).view(B, size, size)


# --------------------------------------------------------------------------- encoder
def _tiny_backbone(in_channels: int, width: int = 32) -> tuple[nn.Module, int]:
    """A small stride-16 CNN (4 strided stages, then two dilated convs instead of a 5th stride)."""

    def block(cin, cout, stride=1, dilation=1):
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )

    w = int(width)
    net = nn.Sequential(
        block(in_channels, w // 2, 2), block(w // 2, w // 2),
        block(w // 2, w, 2), block(w, w),
        block(w, 2 * w, 2), block(2 * w, 2 * w),
        block(2 * w, 2 * w, 2),
        block(2 * w, 2 * w, dilation=2), block(2 * w, 2 * w, dilation=2),
    )
    return net, 2 * w


class _SmpBackbone(nn.Module):
    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder
        self.out_channels = encoder.out_channels[-1]

    def forward(self, x):
        return self.encoder(x)[-1]


def build_backbone(encoder_name: str = "resnet50", in_channels: int = 1, encoder_weights: str | None = "imagenet",
                   verbose: bool = True) -> tuple[nn.Module, int, str]:
    """A stride-16 feature extractor: ``(module, out_channels, init)``.

    ``encoder_name="tiny"`` is a small CNN defined here (random init). Any other name is a
    segmentation_models_pytorch encoder (``"resnet50"``, ``"resnet18"``, ``"tu-..."``) built
    with ``output_stride=16``: the last strided stage is replaced by dilated convolutions, as
    in the paper. When ``encoder_weights`` cannot be loaded (no internet, ``HF_HUB_OFFLINE=1``)
    the encoder falls back to random initialisation, says so when ``verbose``, and
    ``init`` is ``"random"``.
    """
    if not isinstance(encoder_name, str) or not encoder_name:
        raise ValueError(f"encoder_name must be 'tiny' or a segmentation_models_pytorch encoder name, "
                         f"got {encoder_name!r}")
    name = encoder_name
    if name == "tiny":
        net, ch = _tiny_backbone(in_channels)
        return net, ch, "random"
    from segmentation_models_pytorch.encoders import get_encoder

    init = "random"
    enc = None
    if encoder_weights is not None:
        from .models import weights_available

        reason = "not in the local cache and the hub is unreachable (offline or HF_HUB_OFFLINE=1)"
        try:
            if name.startswith("tu-") or weights_available(name, encoder_weights):
                enc = get_encoder(name, in_channels=in_channels, weights=encoder_weights, output_stride=16)
                init = str(encoder_weights)
        except Exception as e:  # download failed: fail fast, say it, go on
            reason = f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"
        if enc is None and verbose:
            print(f"{encoder_weights} weights for the {name} encoder could not be loaded ({reason}); "
                  "using RANDOM initialisation instead.")
    if enc is None:
        enc = get_encoder(name, in_channels=in_channels, weights=None, output_stride=16)
    mod = _SmpBackbone(enc)
    return mod, mod.out_channels, init


class AffineEncoder(nn.Module):
    """Backbone -> stride-16 feature grid -> per cell, ``instances_per_cell`` affine transforms and presences.

    Two 1x1 convolution heads read the feature grid (8 x 8 for a 128 x 128 input, so
    ``N = 2 * 8 * 8 = 128`` candidate instances): one gives the 5 parameters of the
    transformation of each instance, the other its presence logit.

    The transformation is ``X' = L X + t`` with ``L = s0 * [[exp(a), 0], [b, exp(c)]]``
    (lower triangular, positive diagonal). The head predicts the instance centre ``c`` as
    an offset from its grid cell's centre (in cells, like the anchors of one-stage
    detectors) and ``t = -L c``, so that ``X' = L (X - c)``: the same family of transforms,
    parametrised so that a zero head output means "a nucleus of typical size centred on
    this cell". ``s0`` sets that size: the canonical unit disc covers about one grid cell.

    Parameters
    ----------
    encoder_name : str
        ``"tiny"`` or a segmentation_models_pytorch encoder name (``"resnet50"`` in the paper).
    encoder_weights : str or None
        ``"imagenet"`` to try pretrained weights (random initialisation when they can't be had).
    in_channels : int
    instances_per_cell : int
        2 in the paper.
    max_offset : float
        Largest centre offset from the cell centre, in cells (``tanh``-bounded).
    presence_prior : float
        Initial presence probability of every candidate.
    """

    def __init__(self, encoder_name: str = "resnet50", encoder_weights: str | None = "imagenet", in_channels: int = 1,
                 instances_per_cell: int = 2, max_offset: float = 1.5, presence_prior: float = 0.1,
                 verbose: bool = True):
        super().__init__()
        if instances_per_cell < 1:
            raise ValueError(f"instances_per_cell must be >= 1, got {instances_per_cell}")
        if not 0 < presence_prior < 1:
            raise ValueError(f"presence_prior must be in (0, 1), got {presence_prior}")
        self.backbone, ch, self.init = build_backbone(encoder_name, in_channels, encoder_weights, verbose=verbose)
        self.encoder_name = encoder_name
        self.k = int(instances_per_cell)
        self.max_offset = float(max_offset)
        self.head_t = nn.Conv2d(ch, 5 * self.k, 1)
        self.head_z = nn.Conv2d(ch, self.k, 1)
        nn.init.normal_(self.head_t.weight, std=1e-3)
        nn.init.zeros_(self.head_t.bias)
        nn.init.normal_(self.head_z.weight, std=1e-3)
        nn.init.constant_(self.head_z.bias, math.log(presence_prior / (1 - presence_prior)))

    def forward(self, images: torch.Tensor) -> dict:
        """``images`` (B, C, H, W) -> dict with ``L`` (B, N, 2, 2), ``t`` (B, N, 2), ``center`` (B, N, 2),
        ``presence`` (B, N) and ``presence_logit`` (B, N)."""
        if images.ndim != 4:
            raise ValueError(f"images must have shape (B, C, H, W), got {tuple(images.shape)}")
        feat = self.backbone(images)
        with _float32_region(feat.device):  # float16 only in the backbone under mixed precision
            return self._params(feat.float() if feat.dtype in (torch.float16, torch.bfloat16) else feat)

    def _params(self, feat: torch.Tensor) -> dict:
        """The instance parameters read from the backbone's feature grid ``feat`` (B, C, gh, gw)."""
        B, _, gh, gw = feat.shape
        k = self.k
        raw = self.head_t(feat).view(B, k, 5, gh, gw).permute(0, 3, 4, 1, 2).reshape(B, gh * gw * k, 5)
        logit = self.head_z(feat).view(B, k, gh, gw).permute(0, 2, 3, 1).reshape(B, gh * gw * k)
        # cell centres in [-1, 1] (x, y), one per instance
        cy = (torch.arange(gh, device=feat.device, dtype=feat.dtype) + 0.5) * (2.0 / gh) - 1.0
        cx = (torch.arange(gw, device=feat.device, dtype=feat.dtype) + 0.5) * (2.0 / gw) - 1.0
        yy, xx = torch.meshgrid(cy, cx, indexing="ij")
        anchors = torch.stack([xx, yy], -1).view(gh * gw, 1, 2).expand(gh * gw, k, 2).reshape(1, gh * gw * k, 2)
        cell = torch.tensor([2.0 / gw, 2.0 / gh], device=feat.device, dtype=feat.dtype)
        center = anchors + self.max_offset * torch.tanh(raw[..., 0:2]) * cell
        s0 = 2.0 / float(cell.mean())  # canonical unit disc -> about one cell wide
        a, b, c = raw[..., 2].clamp(-4, 4), raw[..., 3], raw[..., 4].clamp(-4, 4)
        L = torch.zeros(B, raw.shape[1], 2, 2, device=feat.device, dtype=feat.dtype)
        L[..., 0, 0] = s0 * torch.exp(a)
        L[..., 1, 0] = s0 * b
        L[..., 1, 1] = s0 * torch.exp(c)
        t = -(L @ center.unsqueeze(-1)).squeeze(-1)
        return {"L": L, "t": t, "center": center, "presence": torch.sigmoid(logit), "presence_logit": logit}


class ShapePriorModel(nn.Module):
    """Encoder + canonical shape: images (B, C, H, W) -> image mask, instance parameters and presences.

    Parameters
    ----------
    encoder_name, encoder_weights, in_channels, instances_per_cell, max_offset, presence_prior
        Passed to :class:`AffineEncoder`.
    shape_widths, shape_init
        Passed to :class:`ShapeMLP` (``widths``, ``init``).
    """

    def __init__(self, encoder_name: str = "resnet50", encoder_weights: str | None = "imagenet", in_channels: int = 1,
                 instances_per_cell: int = 2, max_offset: float = 1.5, presence_prior: float = 0.1,
                 shape_widths=(8, 4), shape_init: str = "radial", verbose: bool = True):
        super().__init__()
        self.encoder = AffineEncoder(encoder_name, encoder_weights, in_channels, instances_per_cell,
                                     max_offset, presence_prior, verbose=verbose)
        self.shape = ShapeMLP(shape_widths, init=shape_init)
        self.init = self.encoder.init

    def forward(self, images: torch.Tensor, grid_size: int | None = None) -> dict:
        """Predict; ``grid_size`` (default: a quarter of the input size, as in training) is the
        resolution of the instance grids. ``mask`` (B, H, W) is upsampled to the input size."""
        params = self.encoder(images)
        H, W = images.shape[-2:]
        if H != W:
            raise ValueError(f"images must be square, got {H}x{W}")
        g = int(grid_size or max(1, H // 4))
        with _float32_region(images.device):
            mask = render_mask(self.shape, params["L"], params["t"], params["presence"], g)
            if g != H:
                mask = F.interpolate(mask[:, None], size=(H, W), mode="bilinear", align_corners=False)[:, 0]
        return {**params, "mask": mask, "grid_size": g}


# --------------------------------------------------------------------------- losses
def soft_dice_loss(pred: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """``1 - (2 |P G| + smooth) / (|P| + |G| + smooth)`` per image, averaged over the batch (B, H, W)."""
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    p = pred.flatten(1)
    g = target.flatten(1).to(p.dtype)
    inter = (p * g).sum(1)
    return (1 - (2 * inter + smooth) / (p.sum(1) + g.sum(1) + smooth)).mean()


def count_loss(presence: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Costa et al.'s count loss ``(sum_i p(z_i) - K)^2``, averaged over the images of a batch.

    Parameters
    ----------
    presence : Tensor (B, N)
        Presence probabilities ``p(z_i)`` of the ``N`` candidate instances of each image.
    counts : Tensor (B,)
        Number of nuclei ``K`` per image (any numeric dtype).

    Returns
    -------
    Tensor (scalar)
        Differentiable with respect to ``presence``: ``d/dp(z_i) = 2 (sum_j p(z_j) - K) / B``.

    Examples
    --------
    >>> import torch
    >>> float(count_loss(torch.tensor([[0.5, 0.5, 1.0]]), torch.tensor([3])))
    1.0
    """
    if presence.ndim != 2:
        raise ValueError(f"presence must have shape (B, N), got {tuple(presence.shape)}")
    counts = torch.as_tensor(counts, device=presence.device).to(presence.dtype).reshape(-1)
    if counts.shape[0] != presence.shape[0]:
        raise ValueError(f"counts must have one entry per image ({presence.shape[0]}), got {counts.shape[0]}")
    return ((presence.sum(1) - counts) ** 2).mean()


def shape_prior_loss(mask: torch.Tensor, target: torch.Tensor, presence: torch.Tensor | None = None,
                     counts: torch.Tensor | None = None, alpha: float = 1e-2) -> tuple[torch.Tensor, dict]:
    """Costa et al.'s loss: ``BCE + soft Dice`` on the image mask ``+ alpha * (sum_i p(z_i) - K)^2``.

    Parameters
    ----------
    mask : Tensor (B, H, W)
        Predicted foreground probability ``max_i p(s_i) p(z_i)``.
    target : Tensor (B, H, W)
        Binary ground-truth mask.
    presence : Tensor (B, N), optional
        Presence probabilities (needed for the count term).
    counts : Tensor (B,), optional
        Number of nuclei ``K`` per image; ``None`` or ``alpha=0`` drops the count term.
    alpha : float
        Weight of the count loss (``1e-2`` in the paper).

    Returns
    -------
    total : Tensor (scalar)
    parts : dict of float
        ``bce``, ``dice``, ``count`` (the unweighted squared count error, batch mean).

    Examples
    --------
    >>> import torch
    >>> m = torch.ones(1, 4, 4); p = torch.tensor([[0.5, 0.5, 1.0]])
    >>> total, parts = shape_prior_loss(m, m, p, torch.tensor([3.0]), alpha=1.0)
    >>> round(parts["count"], 3)
    1.0
    """
    if mask.shape != target.shape:
        raise ValueError(f"mask and target must have the same shape, got {tuple(mask.shape)} and {tuple(target.shape)}")
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    target = target.to(mask.dtype)
    bce = F.binary_cross_entropy(mask.clamp(1e-6, 1 - 1e-6), target)
    dice = soft_dice_loss(mask, target)
    total = bce + dice
    cnt = torch.zeros((), device=mask.device)
    if counts is not None and presence is not None:
        cnt = count_loss(presence, counts)
        if alpha > 0:
            total = total + alpha * cnt
    return total, {"bce": float(bce.detach()), "dice": float(dice.detach()), "count": float(cnt.detach())}


# --------------------------------------------------------------------------- data
def count_instances(labels: np.ndarray) -> int:
    """Number of distinct non-zero labels (instances with at least one pixel), as in the paper."""
    from .metrics import check_labels

    labels = check_labels(labels, "labels", ndims=(2,))
    u = np.unique(labels)
    return int((u > 0).sum())


def cut_patches(images: np.ndarray, labels: np.ndarray, crop_size: int = 128, stride: int | None = None):
    """Cut images (N, H, W) and instance labels into ``crop_size x crop_size`` patches.

    Returns ``(image_patches (M, crop_size, crop_size) f32, label_patches (M, crop_size, crop_size) int32,
    source (M,) index of the source image)``. Labels are kept for evaluation; training uses
    only ``label_patches > 0`` and :func:`count_instances`.
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim != 3 or labels.shape != images.shape:
        raise ValueError(f"images and labels must be (N, H, W) arrays of the same shape, "
                         f"got {images.shape} and {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be an integer array, got {labels.dtype}")
    if not isinstance(crop_size, (int, np.integer)) or crop_size < 1:
        raise ValueError(f"crop_size must be a positive integer, got {crop_size!r}")
    size = int(crop_size)
    stride = int(stride or size)
    _, H, W = images.shape
    if H < size or W < size:
        raise ValueError(f"images ({H}x{W}) must be at least crop_size={size}")
    ys = list(range(0, H - size + 1, stride))
    xs = list(range(0, W - size + 1, stride))
    ims, labs, src = [], [], []
    for n in range(images.shape[0]):
        for y in ys:
            for x in xs:
                ims.append(images[n, y:y + size, x:x + size])
                labs.append(labels[n, y:y + size, x:x + size])
                src.append(n)
    return (np.stack(ims).astype(np.float32), np.stack(labs).astype(np.int32), np.asarray(src))


# --------------------------------------------------------------------------- training
def _augment(x: torch.Tensor, y: torch.Tensor, gen: torch.Generator):
    """Random flips / 90-degree rotations (the count K is invariant)."""
    k = int(torch.randint(0, 4, (1,), generator=gen))
    if k:
        x, y = torch.rot90(x, k, (-2, -1)), torch.rot90(y, k, (-2, -1))
    if int(torch.randint(0, 2, (1,), generator=gen)):
        x, y = x.flip(-1), y.flip(-1)
    return x, y


def _save_shape_prior_checkpoint(checkpoint_dir, step, model, opt, sched, scaler, gen, hist, acc, n_acc,
                                 seconds, **run) -> None:
    """Write ``checkpoint_dir/last.pt`` atomically with everything :func:`train_shape_prior` resumes from."""
    from .train import CHECKPOINT_NAME, _atomic_torch_save, _rng_state

    _atomic_torch_save({
        "kind": "shape_prior", "model": model.state_dict(), "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(), "scaler": scaler.state_dict() if scaler.is_enabled() else None,
        "rng": _rng_state(), "generator": gen.get_state(), "step": int(step), **run,
        "history": {k: list(v) for k, v in hist.items()}, "acc": dict(acc), "n_acc": int(n_acc),
        "seconds": float(seconds),
    }, Path(checkpoint_dir) / CHECKPOINT_NAME)


def _resume_shape_prior(checkpoint_dir, model, opt, sched, scaler, gen, *, steps, seed, batch_size):
    """Restore the last checkpoint of :func:`train_shape_prior` in ``checkpoint_dir``, if any.

    Returns ``(step, hist, acc, n_acc, seconds)``; ``None`` when there is no checkpoint.
    """
    from .train import CHECKPOINT_NAME, load_checkpoint, restore_training_state

    ck = load_checkpoint(checkpoint_dir)
    if ck is None:
        return None
    where = Path(checkpoint_dir) / CHECKPOINT_NAME
    if ck.get("kind") != "shape_prior":
        raise ValueError(f"checkpoint_dir {checkpoint_dir} holds a checkpoint of another training "
                         f"({where} was not written by train_shape_prior); use another checkpoint_dir")
    if ck.get("steps") != steps:
        raise ValueError(f"steps={steps} differs from the checkpoint {where} (steps={ck.get('steps')}): the "
                         "one-cycle schedule spans the whole run, so it cannot be continued with another "
                         "length; use another checkpoint_dir or resume=False")
    if ck.get("seed") != seed or ck.get("batch_size") != batch_size:
        print(f"Note: checkpoint {shown_path(where)} was written with seed={ck.get('seed')}, "
              f"batch_size={ck.get('batch_size')}; continuing with seed={seed}, batch_size={batch_size}.")
    restore_training_state(ck, model, opt, sched, scaler)
    gen.set_state(ck["generator"])
    step = int(ck["step"])
    print(f"Resuming from checkpoint {shown_path(where)} at step {step}/{steps}.")
    return step, {k: list(v) for k, v in ck["history"].items()}, dict(ck["acc"]), int(ck["n_acc"]), \
        float(ck.get("seconds", 0.0))


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def train_shape_prior(model: ShapePriorModel, images: np.ndarray, masks: np.ndarray, counts=None, *,
                      steps: int, batch_size: int = 8, lr: float = 1e-2, alpha: float = 1e-2,
                      grid_size: int | None = None, weight_decay: float = 1e-4, optimizer: str = "sgd",
                      augment: bool = True,
                      seed: int = 0, device=None, log_every: int = 10, progress: bool = True,
                      amp: bool = True, checkpoint_dir=None, checkpoint_every: int = 200,
                      resume: bool = True, callback=None) -> dict:
    """Train encoder and canonical shape together from binary masks (and counts).

    SGD with Nesterov momentum 0.9 and a one-cycle learning rate schedule whose peak is
    ``lr`` (it starts at ``lr / 25``), as in the paper.

    Parameters
    ----------
    model : ShapePriorModel
    images : ndarray (M, H, W) float
        Normalised image patches.
    masks : ndarray (M, H, W)
        Binary masks -- the only pixel supervision.
    counts : ndarray (M,), optional
        Number of nuclei per patch; needed when ``alpha > 0``. With ``alpha = 0`` they are only
        logged (the squared count error in the history), never used in the loss.
    steps, batch_size, alpha, weight_decay, seed
    lr : float
        Peak learning rate of the one-cycle schedule (``max_lr`` of ``OneCycleLR``).
    grid_size : int, optional
        Instance grid resolution in training (default ``H // 4``).
    augment : bool
        Random flips and 90-degree rotations.
    amp : bool
        Mixed precision on CUDA (float16 autocast of the CNN backbone, gradient scaling); the
        affine heads, the rendering and the loss stay in float32. Ignored on a CPU.
    checkpoint_dir : path-like, optional
        Directory of ``last.pt`` (e.g. :func:`islteach.train.checkpoint_dir_for`): model,
        optimiser, schedule, gradient scaler, step, history, the global RNG states and the
        generator of the batches and augmentations, written atomically. ``None``: no checkpoints.
    checkpoint_every : int
        Write a checkpoint every this many steps (and at the last step).
    resume : bool
        Continue from ``checkpoint_dir/last.pt`` when it exists (on a CPU the result is the
        same, bit for bit, as an uninterrupted run; after a finished run nothing is trained
        again). The checkpoint must have been written with the same ``steps``.
    callback : callable, optional
        ``callback(step, loss)`` after every step (after any checkpoint of that step).

    Returns
    -------
    dict
        ``step``, ``loss``, ``bce``, ``dice``, ``count`` (means over ``log_every`` steps),
        ``lr``, ``seconds`` (summed over resumed runs), ``resumed_from`` (step of the
        checkpoint the run resumed from, 0 when it started fresh).

    Raises
    ------
    ValueError
        On inconsistent inputs, or a checkpoint in ``checkpoint_dir`` written with other ``steps``.
    """
    images = np.asarray(images)
    masks = np.asarray(masks)
    if images.ndim != 3 or masks.shape != images.shape:
        raise ValueError(f"images and masks must be (M, H, W) arrays of the same shape, got {images.shape} and {masks.shape}")
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"images must be a float array, got {images.dtype}")
    if alpha > 0:
        if counts is None:
            raise ValueError("counts are required when alpha > 0")
        counts = np.asarray(counts)
        if counts.shape != (images.shape[0],):
            raise ValueError(f"counts must have shape ({images.shape[0]},), got {counts.shape}")
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    checkpoint_every = _check_positive_int(checkpoint_every, "checkpoint_every")
    if callback is not None and not callable(callback):
        raise ValueError(f"callback must be callable, got {type(callback).__name__}")
    from .provenance import get_device

    device = get_device(device)
    model.to(device).train()
    X = torch.from_numpy(images.astype(np.float32))[:, None]
    Y = torch.from_numpy(masks > 0).float()
    C = torch.from_numpy(np.asarray(counts, np.float32)) if counts is not None else None
    gen = torch.Generator().manual_seed(int(seed))
    if optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr / 25, momentum=0.9, nesterov=True,
                              weight_decay=weight_decay)
    elif optimizer == "adam":
        opt = torch.optim.AdamW(model.parameters(), lr=lr / 25, weight_decay=weight_decay)
    else:
        raise ValueError(f"optimizer must be 'sgd' (the paper) or 'adam', got {optimizer!r}")
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=int(steps))
    use_amp = bool(amp) and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    hist = {"step": [], "loss": [], "bce": [], "dice": [], "count": [], "lr": []}
    acc = {"loss": 0.0, "bce": 0.0, "dice": 0.0, "count": 0.0}
    n_acc = 0
    start, seconds = 0, 0.0
    run = {"steps": int(steps), "seed": int(seed), "batch_size": int(batch_size)}
    if checkpoint_dir is not None and resume:
        restored = _resume_shape_prior(checkpoint_dir, model, opt, sched, scaler, gen, **run)
        if restored is not None:
            start, hist, acc, n_acc, seconds = restored
    t0 = time.perf_counter()
    M = X.shape[0]
    for step in range(start + 1, int(steps) + 1):
        idx = torch.randint(0, M, (min(batch_size, M),), generator=gen)
        x, y = X[idx], Y[idx]
        if augment:
            x, y = _augment(x, y, gen)
        x, y = x.to(device), y.to(device)
        c = C[idx].to(device) if C is not None else None
        with (torch.autocast(device_type="cuda", dtype=torch.float16) if use_amp else contextlib.nullcontext()):
            out = model(x, grid_size=grid_size)
        # the mask and presences are float32 (see _float32_region), so is the loss
        loss, parts = shape_prior_loss(out["mask"], y, out["presence"], c, alpha=alpha)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)  # clip the true gradients (a no-op without mixed precision)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        scaler.step(opt)
        scaler.update()
        sched.step()
        loss_value = float(loss.detach())
        acc["loss"] += loss_value
        for k in ("bce", "dice", "count"):
            acc[k] += parts[k]
        n_acc += 1
        if step % log_every == 0 or step == steps:
            hist["step"].append(step)
            for k in acc:
                hist[k].append(acc[k] / n_acc)
            hist["lr"].append(sched.get_last_lr()[0])
            if progress and (step % (log_every * 5) == 0 or step == steps):
                print(f"step {step:5d}/{steps}  loss {hist['loss'][-1]:.3f}  bce {hist['bce'][-1]:.3f}  "
                      f"dice {hist['dice'][-1]:.3f}  (sum p(z) - K)^2 {hist['count'][-1]:.1f}  "
                      f"[{seconds + time.perf_counter() - t0:.0f} s]", flush=True)
            acc = {k: 0.0 for k in acc}
            n_acc = 0
        if checkpoint_dir is not None and (step % checkpoint_every == 0 or step == steps):
            seconds += time.perf_counter() - t0
            t0 = time.perf_counter()
            _save_shape_prior_checkpoint(checkpoint_dir, step, model, opt, sched, scaler, gen, hist, acc,
                                         n_acc, seconds, **run)
        if callback is not None:
            callback(step, loss_value)
    hist["seconds"] = seconds + time.perf_counter() - t0
    hist["resumed_from"] = start
    model.eval()
    return hist


# --------------------------------------------------------------------------- inference
@torch.no_grad()
def predict_params(model: ShapePriorModel, images: np.ndarray, batch_size: int = 16, device=None) -> dict:
    """Encoder outputs for images (M, H, W) as numpy: ``L`` (M, N, 2, 2), ``t``, ``center`` (M, N, 2), ``presence`` (M, N)."""
    images = np.asarray(images)
    if images.ndim != 3 or not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"images must be a float (M, H, W) array, got {images.dtype} {images.shape}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device).eval()
    outs = {"L": [], "t": [], "center": [], "presence": []}
    for i in range(0, images.shape[0], batch_size):
        x = torch.from_numpy(images[i:i + batch_size].astype(np.float32))[:, None].to(device)
        p = model.encoder(x)
        for k in outs:
            outs[k].append(p[k].cpu().numpy())
    return {k: np.concatenate(v) for k, v in outs.items()}


@torch.no_grad()
def _present_probs(model, params, i, size, grid_size, presence_threshold, device):
    keep = np.flatnonzero(params["presence"][i] > presence_threshold)
    if keep.size == 0:
        return keep, np.zeros((0, size, size), np.float32)
    L = torch.from_numpy(params["L"][i][keep])[None].to(device)
    t = torch.from_numpy(params["t"][i][keep])[None].to(device)
    logp = render_instances(model.shape, L, t, grid_size)[0]
    v = logp.exp() * torch.from_numpy(params["presence"][i][keep]).to(device)[:, None, None]
    if grid_size != size:
        v = F.interpolate(v[None], size=(size, size), mode="bilinear", align_corners=False)[0]
    return keep, v.cpu().numpy()


def merge_overlapping(masks: np.ndarray, min_overlap: float = 0.5) -> np.ndarray:
    """Group id (K,) of each of K possibly overlapping instance masks (K, H, W): the paper's post-processing.

    A thin wrapper of :func:`islteach.postprocess.merge_instances`: going from the smallest
    instance ``m`` to the biggest, ``m`` joins the bigger instance ``b`` with the largest
    ``|b n m| / |m|`` when that ratio is at least ``min_overlap``.
    """
    from .postprocess import merge_instances

    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"masks must be a (K, H, W) stack, got shape {masks.shape}")
    _, groups = merge_instances(masks.astype(bool), min_overlap=min_overlap, return_groups=True)
    return np.asarray(groups, np.int64)


def predict_instances(model: ShapePriorModel, images: np.ndarray, *, grid_size: int | None = None,
                      presence_threshold: float = 0.5, post: bool = False, min_overlap: float = 0.5,
                      params: dict | None = None, batch_size: int = 16, device=None) -> np.ndarray:
    """Instance labels (M, H, W) int32 from the model.

    Candidates with ``p(z) > presence_threshold`` are rendered on a ``grid_size`` grid
    (default: the full image resolution) and upsampled to the image; a pixel is foreground
    when ``max_i p(s_i) p(z_i) >= 0.5`` and takes the label of that arg-max instance. With
    ``post=True`` instances are first grouped with :func:`merge_overlapping` (each instance's
    own mask is ``p(s_i) p(z_i) >= 0.5``), and pixels take their arg-max instance's group.
    """
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"images must be (M, H, W), got shape {images.shape}")
    size = images.shape[-1]
    grid_size = int(grid_size or size)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    if params is None:
        params = predict_params(model, images, batch_size=batch_size, device=device)
    out = np.zeros(images.shape, np.int32)
    for i in range(images.shape[0]):
        keep, v = _present_probs(model, params, i, size, grid_size, presence_threshold, device)
        if keep.size == 0:
            continue
        best = v.argmax(0)
        fg = v.max(0) >= 0.5
        ids = np.arange(1, keep.size + 1)
        if post:
            ids = merge_overlapping(v >= 0.5, min_overlap=min_overlap) + 1
        lab = np.where(fg, ids[best], 0)
        # consecutive labels, in order of first appearance
        u, inv = np.unique(lab, return_inverse=True)
        out[i] = inv.reshape(lab.shape) if u[0] == 0 else inv.reshape(lab.shape) + 1
    return out


# --------------------------------------------------------------------------- explain
@torch.no_grad()
def canonical_shape(shape: nn.Module, size: int = 64, extent: float = 1.0) -> np.ndarray:
    """``p(s)`` of the canonical shape on a ``size x size`` grid over ``[-extent, extent]^2`` (numpy)."""
    p = next(shape.parameters())
    g = canonical_grid(size, device=p.device, dtype=p.dtype) * float(extent)
    return shape(g).exp().cpu().numpy()


def canonical_radius(shape: nn.Module, size: int = 256, extent: float = 2.0) -> float:
    """Radius of the disc with the same area as ``{p(s) >= 0.5}`` in canonical coordinates."""
    p = canonical_shape(shape, size, extent)
    area = (p >= 0.5).sum() * (2.0 * extent / size) ** 2
    return float(math.sqrt(area / math.pi))


def canonical_shape_stats(shape: nn.Module, size: int = 256, extent: float = 2.0) -> dict:
    """How round the learned shape is: ``radius`` (:func:`canonical_radius`) and ``axis_ratio``
    (long / short axis of the ``p(s) >= 0.5`` region from its second moments; 1 for a disc)."""
    inside = canonical_shape(shape, size, extent) >= 0.5
    yy, xx = np.nonzero(inside)
    if yy.size < 3:
        return {"radius": 0.0, "axis_ratio": float("nan")}
    ev = np.sort(np.linalg.eigvalsh(np.cov(np.stack([xx, yy]).astype(float))))
    radius = float(math.sqrt(inside.sum() * (2.0 * extent / size) ** 2 / math.pi))
    return {"radius": radius, "axis_ratio": float(math.sqrt(ev[1] / max(ev[0], 1e-12)))}


def instance_ellipses(L: np.ndarray, t: np.ndarray, image_size: int, radius: float = 1.0) -> np.ndarray:
    """Pixel-space ellipses of instances whose canonical shape is a disc of ``radius``.

    The instance ``{X : |L X + t| <= radius}`` is an ellipse centred at ``c = -L^-1 t`` with
    semi-axes ``radius / sigma_k(L)`` along the right singular vectors of ``L``.

    Parameters
    ----------
    L : ndarray (K, 2, 2)
    t : ndarray (K, 2)
    image_size : int
        Pixels per side of the image the grid spans.
    radius : float
        Radius of the canonical disc (e.g. :func:`canonical_radius`).

    Returns
    -------
    ndarray (K, 5)
        ``x_center, y_center`` (column, row in pixels), ``width, height`` (full axes, pixels)
        and ``angle`` (degrees from the x axis towards +y), ready for ``matplotlib.patches.Ellipse``.
    """
    L = np.asarray(L, np.float64)
    t = np.asarray(t, np.float64)
    if L.ndim != 3 or L.shape[1:] != (2, 2) or t.shape != (L.shape[0], 2):
        raise ValueError(f"L must be (K, 2, 2) and t (K, 2), got {L.shape} and {t.shape}")
    out = np.zeros((L.shape[0], 5))
    half = image_size / 2.0
    for k in range(L.shape[0]):
        c = -np.linalg.solve(L[k], t[k])
        _, s, vt = np.linalg.svd(L[k])
        axes = radius / s * half  # semi-axes in pixels, along rows of vt
        angle = math.degrees(math.atan2(vt[0, 1], vt[0, 0]))
        out[k] = [(c[0] + 1) * half - 0.5, (c[1] + 1) * half - 0.5, 2 * axes[0], 2 * axes[1], angle]
    return out


# --------------------------------------------------------------------------- evaluation
def evaluate_instances(gt_labels: np.ndarray, pred_labels: np.ndarray) -> dict:
    """Costa et al.'s figures over a set of patches (pooled).

    Parameters
    ----------
    gt_labels, pred_labels : ndarray of int, (M, H, W)
        True and predicted instance labels of M patches.

    Returns
    -------
    dict
        ``iou`` and ``dice`` of the foreground of all patches together (semantic metrics),
        instance ``f1_05`` (F1 at IoU 0.5) and ``f1_mean`` (mean F1 over IoU 0.1, 0.2, ..., 1.0),
        ``f1`` per threshold (keys ``"0.1"`` ... ``"1"``) and the whole ``record``
        (:func:`islteach.metrics.score_record` at :data:`F1_THRESHOLDS`: objects of all
        patches pooled).
    """
    from .metrics import check_labels, score_record

    gt = check_labels(gt_labels, "gt_labels", ndims=(3,))
    pr = check_labels(pred_labels, "pred_labels", ndims=(3,))
    if gt.shape != pr.shape:
        raise ValueError(f"gt_labels and pred_labels must be (M, H, W) of the same shape, got {gt.shape} and {pr.shape}")
    g, p = gt > 0, pr > 0
    inter, union, tot = np.logical_and(g, p).sum(), np.logical_or(g, p).sum(), g.sum() + p.sum()
    iou = float(inter / union) if union else 1.0
    dice = float(2 * inter / tot) if tot else 1.0
    record = score_record(list(gt), list(pr), F1_THRESHOLDS)
    f1 = record["f1"]
    return {"iou": iou, "dice": dice, "f1_05": f1["0.5"], "f1_mean": float(np.mean(list(f1.values()))),
            "f1": dict(f1), "record": record}


def _register_cost_model() -> None:
    """Let :mod:`islteach.cost` count this chapter's network (shared modules never import chapter modules)."""
    from . import cost

    cost.BUILDERS["shape_prior"] = ShapePriorModel


_register_cost_model()


def dsb_checkpoint_tag(setting: str, sizes, *, init: str, alpha: float, seed: int) -> str:
    """The checkpoint folder name of one of chapter 5's DSB trainings.

    It holds every size that changes the run, so that a changed recipe never resumes the
    checkpoint of another (see :func:`islteach.train.checkpoint_dir_for`).

    Parameters
    ----------
    setting : str
        The chapter's name of the setting, e.g. ``"count loss"`` (spaces become ``-``).
    sizes
        The profile's ``ch5`` section (``P.ch5``): ``encoder_name``, ``crop_size``,
        ``train_stride``, ``dsb_test_images``, ``batch_size``, ``optimizer``, ``lr``,
        ``train_grid``, ``shape_init``, ``presence_prior`` and ``steps`` are read from it.
    init : str
        The initialisation the encoder actually got (``model.init``).
    alpha : float
        Weight of the count loss (0: none).
    seed : int

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> c = SimpleNamespace(encoder_name="tiny", crop_size=128, train_stride=128, dsb_test_images=20,
    ...                     batch_size=8, optimizer="sgd", lr=0.1, train_grid=32, shape_init="elongated",
    ...                     presence_prior=0.1, steps=1000)
    >>> dsb_checkpoint_tag("count loss", c, init="random", alpha=0.01, seed=1)
    'ch5_dsb_count-loss_tiny-random_c128-128_t20_b8_sgd_lr0.1_a0.01_g32_elongated_p0.1_s1000_seed1'
    """
    c = sizes
    return (f"ch5_dsb_{setting.replace(' ', '-')}_{c.encoder_name}-{init}_c{c.crop_size}-{c.train_stride}"
            f"_t{c.dsb_test_images}_b{c.batch_size}_{c.optimizer}_lr{c.lr:g}_a{alpha:g}_g{c.train_grid}"
            f"_{c.shape_init}_p{c.presence_prior:g}_s{c.steps}_seed{seed}")


def seed_run(x_train, mask_train, k_train, x_test, lab_test, *, seed: int, alpha: float, steps: int,
             encoder_name: str, encoder_weights=None, presence_prior: float = 0.1, shape_init: str = "radial",
             batch_size: int = 8, lr: float = 1e-2, optimizer: str = "sgd", grid_size: int | None = None,
             test_grid: int | None = None, checkpoint_dir=None, checkpoint_every: int = 200, device=None,
             progress: bool = False) -> tuple:
    """One seed of the chapter's recipe: initial weights, training, test scores and the learned shape.

    Everything random (initial weights, batches, flips) follows from ``seed``, so running the
    recipe for several seeds measures how much of a difference between two settings (with and
    without the count loss) is the luck of one draw.

    Parameters
    ----------
    x_train, mask_train, k_train
        Training patches, their binary masks and nucleus counts (see :func:`train_shape_prior`).
    x_test, lab_test
        Test patches and their instance labels.
    seed : int
    alpha, steps, batch_size, lr, optimizer, grid_size, checkpoint_dir, checkpoint_every, device, progress
        See :func:`train_shape_prior`.
    encoder_name, encoder_weights, presence_prior, shape_init
        See :class:`ShapePriorModel`.
    test_grid : int, optional
        Rendering grid of the test predictions (default: the patch side).

    Returns
    -------
    model : ShapePriorModel
    history : dict
    record : dict
        ``seed``, ``f1_05`` and ``f1_05_post`` (instance F1 at IoU 0.5 without / with the merge
        post-processing), ``n_present`` (mean present candidates per test patch),
        ``shape_init`` and ``shape`` (:func:`canonical_shape_stats` before and after training).
    """
    torch.manual_seed(int(seed))
    model = ShapePriorModel(encoder_name=encoder_name, encoder_weights=encoder_weights,
                            presence_prior=presence_prior, shape_init=shape_init, verbose=False)
    before = canonical_shape_stats(model.shape)
    hist = train_shape_prior(model, x_train, mask_train, k_train, steps=steps, batch_size=batch_size, lr=lr,
                             alpha=alpha, optimizer=optimizer, grid_size=grid_size, seed=seed, device=device,
                             progress=progress, checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every)
    params = predict_params(model, x_test, device=device)
    grid = int(test_grid or x_test.shape[-1])
    record = {"seed": int(seed), "n_present": float((params["presence"] > 0.5).sum(1).mean()),
              "shape_init": before, "shape": canonical_shape_stats(model.shape)}
    for post in (False, True):
        pred = predict_instances(model, x_test, params=params, grid_size=grid, post=post, device=device)
        record["f1_05_post" if post else "f1_05"] = float(evaluate_instances(lab_test, pred)["f1_05"])
    return model, hist, record
