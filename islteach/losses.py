"""Loss functions shared by the chapters (append-only: add yours below, don't edit others').

Every loss is a ``torch.nn.Module`` called as ``loss(prediction, target)`` and returning a
scalar tensor, so it can be handed to :func:`islteach.train.fit` as ``loss_fn``.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


# --- Chapter 4: distance maps (Bonte et al.'s CombinedLoss, Zaki et al.'s two MSEs) ----------
def _check_two_channels(prediction, target, name="prediction"):
    if not isinstance(prediction, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError("prediction and target must be torch tensors, got "
                        f"{type(prediction).__name__} and {type(target).__name__}")
    if prediction.ndim != 4 or prediction.shape[1] != 2:
        raise ValueError(f"{name} must have shape (B, 2, H, W), got {tuple(prediction.shape)}")
    if target.shape != prediction.shape:
        raise ValueError(f"target must have the shape of {name} {tuple(prediction.shape)}, "
                         f"got {tuple(target.shape)}")


class CombinedLoss(nn.Module):
    r"""Bonte et al.'s loss for a distance map plus a semantic mask {cite}`bonte2022`.

    .. math:: \mathrm{CombinedLoss}_\alpha(y) = \mathrm{MSE}(y_d, t_d)
              + \alpha\,\mathrm{BCEWithLogits}(y_s, t_s)

    Channel 0 of the prediction is the distance map ``y_d`` (raw values, compared with the
    target distance by mean squared error), channel 1 the mask logits ``y_s`` (binary cross
    entropy after a sigmoid). The paper sets ``alpha = 2000``, the ratio of the two terms at
    the start of training on its images: the distance error is measured in squared pixels and
    is large for big cells, the cross entropy starts near ``ln 2``. On another scale (smaller
    objects, a rescaled distance) the ratio is different: :func:`initial_loss_ratio` measures it.

    Parameters
    ----------
    alpha : float
        Weight of the mask term (non-negative).

    Examples
    --------
    >>> loss = CombinedLoss(alpha=2000.0)
    >>> y = torch.zeros(1, 2, 8, 8); t = torch.zeros(1, 2, 8, 8)
    >>> round(float(loss(y, t)), 1)  # 0 + 2000 * ln 2
    1386.3
    """

    def __init__(self, alpha: float = 2000.0):
        super().__init__()
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha >= 0:
            raise ValueError(f"alpha must be a non-negative number, got {alpha!r}")
        self.alpha = float(alpha)

    def terms(self, prediction, target) -> dict:
        """The two terms separately: ``{"mse": ..., "bce": ..., "weighted_bce": alpha * bce}``."""
        _check_two_channels(prediction, target)
        mse = F.mse_loss(prediction[:, 0], target[:, 0])
        bce = F.binary_cross_entropy_with_logits(prediction[:, 1], target[:, 1])
        return {"mse": mse, "bce": bce, "weighted_bce": self.alpha * bce}

    def forward(self, prediction, target):
        t = self.terms(prediction, target)
        return t["mse"] + t["weighted_bce"]

    def extra_repr(self) -> str:
        return f"alpha={self.alpha:g}"


def initial_loss_ratio(distance_targets) -> float:
    """MSE / BCE of an untrained network that outputs zeros: Bonte et al.'s way to pick ``alpha``.

    A freshly initialised network outputs values near 0 in both channels: its distance
    error is then the mean squared target distance and its cross entropy ``ln 2``.

    Parameters
    ----------
    distance_targets : array-like or tensor of non-negative floats
        Target distance maps (any shape), in the units the network will learn.

    Returns
    -------
    float
        ``mean(d**2) / ln 2``.

    Examples
    --------
    >>> round(initial_loss_ratio(torch.full((4, 4), 2.0)), 2)
    5.77
    """
    d = torch.as_tensor(distance_targets, dtype=torch.float64)
    if d.numel() == 0 or not bool(torch.isfinite(d).all()) or bool((d < 0).any()):
        raise ValueError("distance_targets must be a non-empty array of finite non-negative distances")
    return float((d ** 2).mean() / math.log(2.0))


class TwoMapMSELoss(nn.Module):
    """Zaki et al.'s FPN2-WS objective: MSE of each of two sigmoid maps, summed {cite}`zaki2020`.

    Channel 0 is the normalised distance transform, channel 1 the blurred border, both
    already in [0, 1] (the networks end with a sigmoid). The two networks share no
    parameter, so minimising the sum trains each one on its own MSE.

    Examples
    --------
    >>> y = torch.full((1, 2, 4, 4), 0.5); t = torch.zeros(1, 2, 4, 4)
    >>> float(TwoMapMSELoss()(y, t))
    0.5
    """

    def terms(self, prediction, target) -> dict:
        """``{"distance": mse of channel 0, "border": mse of channel 1}``."""
        _check_two_channels(prediction, target)
        return {"distance": F.mse_loss(prediction[:, 0], target[:, 0]),
                "border": F.mse_loss(prediction[:, 1], target[:, 1])}

    def forward(self, prediction, target):
        t = self.terms(prediction, target)
        return t["distance"] + t["border"]


# --- Chapter 3: soft Jaccard (IoU) loss of Bonte et al.'s segmentation fine-tuning -------------
def soft_jaccard_loss(probability, target, eps: float = 1.0):
    r"""One minus the soft Jaccard index of a probability map and a binary target.

    .. math:: L(p, t) = 1 - \frac{\sum p\,t + \epsilon}{\sum p + \sum t - \sum p\,t + \epsilon}

    The sums run over the whole batch (all pixels of all images), as in
    segmentation-models-pytorch's ``JaccardLoss``; ``eps`` smooths the ratio so that an
    empty target with an empty prediction gives a loss of 0, matching the paper's
    convention that the IoU of two empty masks is 1 {cite}`bonte2022`.

    Parameters
    ----------
    probability : torch.Tensor
        Probabilities in [0, 1] (after the network's sigmoid), any shape.
    target : torch.Tensor
        Same shape, 0/1 values (bool, integer or float).
    eps : float
        Smoothing (non-negative).

    Returns
    -------
    torch.Tensor
        Scalar loss in [0, 1].

    Examples
    --------
    >>> t = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    >>> float(soft_jaccard_loss(t, t))
    0.0
    >>> round(float(soft_jaccard_loss(torch.tensor([[1.0, 0.0, 0.0, 0.0]]), t, eps=0.0)), 3)
    0.5
    """
    if not isinstance(probability, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError("probability and target must be torch tensors, got "
                        f"{type(probability).__name__} and {type(target).__name__}")
    if probability.shape != target.shape:
        raise ValueError(f"target must have the shape of probability {tuple(probability.shape)}, "
                         f"got {tuple(target.shape)}")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
        raise ValueError(f"eps must be a non-negative number, got {eps!r}")
    p = probability.float()
    t = target.to(p.dtype)
    inter = (p * t).sum()
    union = p.sum() + t.sum() - inter
    return 1.0 - (inter + eps) / (union + eps)


class SoftJaccardLoss(nn.Module):
    """:func:`soft_jaccard_loss` as a module (``loss(probability, target)``), for :func:`islteach.train.fit`.

    Examples
    --------
    >>> loss = SoftJaccardLoss()
    >>> float(loss(torch.ones(1, 1, 2, 2), torch.ones(1, 1, 2, 2)))
    0.0
    """

    def __init__(self, eps: float = 1.0):
        super().__init__()
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
            raise ValueError(f"eps must be a non-negative number, got {eps!r}")
        self.eps = float(eps)

    def forward(self, probability, target):
        return soft_jaccard_loss(probability, target, self.eps)

    def extra_repr(self) -> str:
        return f"eps={self.eps:g}"
