"""Checks of chapter 5's code exercises (shape priors). See :mod:`islteach.checks`."""
from __future__ import annotations

from . import Case, close, register  # noqa: F401


def _scalar(value):
    """``value`` as a float when it is a 0-d (or 1-element) tensor or number, else None."""
    import torch

    if torch.is_tensor(value):
        return float(value.detach().reshape(-1)[0]) if value.numel() == 1 else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@register("ex-05-count-loss", name="count_loss", reference="islteach.shape_prior.count_loss",
          hint="sum the presence probabilities of each patch over its candidates, subtract K, square, "
               "then average over the patches of the batch; use torch operations so that autograd "
               "reaches presence.")
def _count_loss(count_loss):
    import torch

    # one patch: p(z) = 0.5 + 0.5 + 1.0 = 2 present, K = 3 -> (2 - 3)^2 = 1
    got = count_loss(torch.tensor([[0.5, 0.5, 1.0]]), torch.tensor([3.0]))
    yield Case("one patch, p(z) = [0.5, 0.5, 1], K = 3: loss 1", _scalar(got) is not None and close(_scalar(got), 1.0),
               "the expected number of present instances is the sum of p(z) over the candidates; "
               "the loss is its squared difference to K")
    got = count_loss(torch.tensor([[0.25, 0.75, 1.0, 0.0]]), torch.tensor([2.0]))
    yield Case("presences that sum to K exactly: loss 0", _scalar(got) is not None and close(_scalar(got), 0.0, atol=1e-6),
               "when sum_i p(z_i) equals K nothing should be penalised")
    got = count_loss(torch.full((1, 128), 0.1), torch.tensor([10.0]))
    yield Case("128 candidates at p(z) = 0.1 for K = 10: loss (12.8 - 10)^2 = 7.84",
               _scalar(got) is not None and close(_scalar(got), 7.84, rtol=1e-4),
               "sum the presences over the candidate axis (dim 1); do not average them")
    # three patches with count errors +2, -2 and 0: mean of squares 8/3 (square of the mean: 0; sum: 8)
    presence = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.5, 0.5, 0.0, 0.0], [1.0, 0.5, 0.5, 0.0]])
    counts = torch.tensor([2.0, 3.0, 2.0])
    got = count_loss(presence, counts)
    yield Case("a batch of 3 patches with count errors +2, -2, 0: loss 8/3 (mean of the squares)",
               _scalar(got) is not None and close(_scalar(got), 8 / 3, rtol=1e-5),
               "square each patch's error first, then take the mean over the batch (not the sum, and "
               "not the square of the mean error)")
    yield Case("returns one number (a 0-d tensor) for a batch", torch.is_tensor(got) and got.ndim == 0,
               "reduce over the batch so that the loss is a scalar tensor that .backward() accepts")
    got_int = count_loss(presence, torch.tensor([2, 3, 2]))
    yield Case("integer counts K (int64, like the chapter's k_test) give the same loss as float counts",
               _scalar(got_int) is not None and _scalar(got) is not None and close(_scalar(got_int), _scalar(got)),
               "convert K to the presences' floating dtype before subtracting")
    # gradient: too many present candidates (sum 4 > K = 1) and too few (sum 1 < K = 3), B = 2:
    # d/dp = 2 (sum - K) / B = +3 and -2: gradient descent lowers the first patch's presences
    presence = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.25, 0.25, 0.25, 0.25]], requires_grad=True)
    loss = count_loss(presence, torch.tensor([1.0, 3.0]))
    ok = torch.is_tensor(loss) and loss.requires_grad
    if ok:
        loss.backward()
        ok = presence.grad is not None and close(presence.grad.numpy(), [[3.0] * 4, [-2.0] * 4], rtol=1e-5)
    yield Case("gradient: +2(sum - K)/B on every p(z) of a patch with too many, negative with too few",
               ok, "keep the computation in torch on presence (no .item(), numpy or detach), and average "
                   "over the batch so that each patch's gradient is 2 (sum - K) / B")


@register("ex-05-image-mask", name="combine_instances", reference="islteach.shape_prior.combine_instances",
          hint="exponentiate the log-probabilities, weight each instance by its presence p(z) and take "
               "the maximum over the instance axis.")
def _image_mask(combine_instances):
    import math

    import torch

    def two(values, presence):
        """Two 1 x 2 instances on one image: log p(s) from p(s) values (N, W) and presences (N,)."""
        p = torch.tensor(values, dtype=torch.float32)[:, None, :]  # (N, 1, W)
        return p.log()[None], torch.tensor([presence], dtype=torch.float32)

    log_ps, pz = two([[0.8, 0.2]], [1.0])
    got = combine_instances(log_ps, pz)
    yield Case("one instance with p(z) = 1: the mask is p(s) = exp(log p(s))",
               torch.is_tensor(got) and close(got.detach().numpy(), [[[0.8, 0.2]]], rtol=1e-5),
               "the shape network returns log-probabilities: turn them into probabilities first")
    log_ps, pz = two([[0.6, 0.1], [0.7, 0.3]], [1.0, 1.0])
    got = combine_instances(log_ps, pz)
    yield Case("two overlapping instances: pixelwise maximum 0.7 and 0.3, not the sum",
               torch.is_tensor(got) and close(got.detach().numpy(), [[[0.7, 0.3]]], rtol=1e-5),
               "overlapping instances do not add up: a pixel takes the largest of the instances' values")
    log_ps, pz = two([[0.9, 0.9], [0.6, 0.1]], [0.5, 1.0])
    got = combine_instances(log_ps, pz)
    yield Case("presence weights each instance before the maximum: max(0.9 x 0.5, 0.6 x 1) = 0.6",
               torch.is_tensor(got) and close(got.detach().numpy(), [[[0.6, 0.45]]], rtol=1e-5),
               "multiply every instance's p(s) by its own p(z) first, then take the maximum over instances")
    g = torch.Generator().manual_seed(0)
    p = torch.rand(2, 3, 4, 5, generator=g) * 0.98 + 0.01
    pz = torch.rand(2, 3, generator=g)
    got = combine_instances(p.log(), pz)
    want = (p * pz[:, :, None, None]).amax(1)
    yield Case("a batch of 2 images, 3 instances, 4 x 5 pixels: shape (2, 4, 5), right values",
               torch.is_tensor(got) and tuple(got.shape) == (2, 4, 5) and close(got.detach().numpy(), want.numpy(), rtol=1e-5),
               "log_ps is (B, N, H, W) and presence (B, N): broadcast presence over the pixels and reduce "
               "over dim 1 only")
    # the gradient of a maximum reaches the winning instance only
    log_ps = torch.tensor([[[[math.log(0.4)]], [[math.log(0.8)]]]], requires_grad=True)  # (1, 2, 1, 1)
    pz = torch.tensor([[1.0, 0.75]], requires_grad=True)  # 0.4 x 1 against 0.8 x 0.75 = 0.6: instance 2 wins
    out = combine_instances(log_ps, pz)
    ok = torch.is_tensor(out) and out.requires_grad
    if ok:
        out.sum().backward()
        ok = (log_ps.grad is not None and pz.grad is not None
              and close(log_ps.grad.reshape(-1).numpy(), [0.0, 0.6], rtol=1e-5)
              and close(pz.grad.reshape(-1).numpy(), [0.0, 0.8], rtol=1e-5))
    yield Case("gradient: only the winning instance (0.8 x 0.75 against 0.4 x 1) receives it",
               ok, "keep it differentiable in torch (no numpy, no detach): a maximum passes the gradient "
                   "to the arg-max instance only")
