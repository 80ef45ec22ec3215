"""Checks of chapter 3's code exercises (transfer learning). See :mod:`islteach.checks`.

``ex-03-shifted-sigmoid``
    ``shifted_sigmoid(x)``: the ISL model's activation :math:`1 / (1 + e^{-(x - 0.5)})`
    (reference :func:`islteach.transfer.shifted_sigmoid`).
``ex-03-soft-jaccard``
    ``soft_jaccard_loss(probability, target, eps=1.0)``: one minus the soft IoU, summed over
    the batch (reference :func:`islteach.losses.soft_jaccard_loss`).

Every case is a handful of numbers whose answer is written out here by hand (no call of the
reference), so a check cannot pass a function only because it copies the package.
"""
from __future__ import annotations

import math

from . import Case, close, register  # noqa: F401


def _call(fn, *args, **kwargs):
    """``(result, None)`` or ``(None, "ExcType: message")`` when the learner's function raises.

    ``NotImplementedError`` is re-raised: it marks the stub, which :func:`islteach.checks.evaluate`
    reports as "not written yet".
    """
    try:
        return fn(*args, **kwargs), None
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001 - reported as a failed case, with its type
        return None, f"{type(exc).__name__}: {exc}"


def _is_tensor(v) -> bool:
    import torch

    return isinstance(v, torch.Tensor)


def _numbers(v):
    """The values of a tensor (or anything array-like) as a float64 NumPy array, or None."""
    import numpy as np

    try:
        if _is_tensor(v):
            v = v.detach().cpu().double().numpy()
        return np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError, RuntimeError):
        return None


def _sigmoid_05(values):
    return [1.0 / (1.0 + math.exp(-(v - 0.5))) for v in values]


# ------------------------------------------------------------------------------ shifted sigmoid
@register("ex-03-shifted-sigmoid", name="shifted_sigmoid", reference="islteach.transfer.shifted_sigmoid",
          hint="replace the raise by the formula f(x) = 1 / (1 + e^-(x - 0.5)) from the text, "
               "computed with torch operations on the tensor x.")
def _check_shifted_sigmoid(fn):
    import numpy as np
    import torch

    # 1. the centre
    out, err = _call(fn, torch.tensor([0.5]))
    got = _numbers(out)
    yield Case("x = 0.5 gives exactly 0.5 (the centre of the shifted sigmoid)",
               err is None and got is not None and close(got, [0.5]),
               err or ("the output at x = 0.5 must be 0.5: shift the input by 0.5 *before* the sigmoid "
                       "(inside the exponent), not the output after it"))

    # 2. values on both sides: catches a sign error inside exp, which still gives 0.5 at x = 0.5
    xs = [-1.0, 0.0, 1.0, 1.5, 3.0]
    out, err = _call(fn, torch.tensor(xs, dtype=torch.float64))
    got = _numbers(out)
    yield Case("x = -1, 0, 1, 1.5, 3 give 0.182, 0.378, 0.622, 0.731, 0.924",
               err is None and got is not None and close(got, _sigmoid_05(xs), atol=1e-6),
               err or ("larger x must give larger outputs (0.731 at x = 1.5, not 0.269): check the sign in "
                       "exp(-(x - 0.5)) and the 1 + ... in the denominator"))

    # 3. the ISL output range, symmetric about 0.5
    out, err = _call(fn, torch.tensor([0.0, 0.25, 0.75, 1.0]))
    got = _numbers(out)
    yield Case("the ISL model's output range [0, 1] maps to [0.378, 0.622], symmetric about 0.5",
               err is None and got is not None and got.shape == (4,)
               and close(got, _sigmoid_05([0.0, 0.25, 0.75, 1.0]), atol=1e-6)
               and close(got + got[::-1], [1.0] * 4, atol=1e-6),
               err or "f(0.5 + d) must equal 1 - f(0.5 - d): the curve is a plain sigmoid moved right by 0.5")

    # 4. extreme inputs
    out, err = _call(fn, torch.tensor([-100.0, 100.0]))
    got = _numbers(out)
    finite = got is not None and bool(np.isfinite(got).all())
    yield Case("x = -100 and x = 100 give 0 and 1 (no NaN or inf)",
               err is None and finite and close(got, [0.0, 1.0], atol=1e-6),
               err or ("exp(x) / (1 + exp(x)) overflows to inf / inf = NaN for large x: use the form "
                       "1 / (1 + exp(-(x - 0.5))) or torch.sigmoid" if got is not None and not finite else
                       "a very negative x must give 0 and a very positive x 1 (see the values above)"))

    # 5. a tensor in, a tensor of the same shape and dtype out
    x32 = torch.linspace(-2.0, 3.0, 18).reshape(2, 1, 3, 3)
    out32, err32 = _call(fn, x32)
    out64, err64 = _call(fn, x32.double())
    ok = (err32 is None and err64 is None and _is_tensor(out32) and _is_tensor(out64)
          and tuple(out32.shape) == (2, 1, 3, 3) and out32.dtype == torch.float32
          and out64.dtype == torch.float64)
    yield Case("a (2, 1, 3, 3) float32 batch gives a float32 tensor of that shape (float64 stays float64)",
               bool(ok),
               err32 or err64 or ("work elementwise with torch operations on the tensor itself and return a tensor "
                                  "shaped like x (no NumPy, no Python loop over values, no .item())"))

    # 6. gradients: the loss reaches the network through this activation
    x = torch.tensor([0.5, 2.5, -1.0], dtype=torch.float64, requires_grad=True)
    out, err = _call(fn, x)
    grad = None
    if err is None and _is_tensor(out) and out.requires_grad:
        try:
            (g,) = torch.autograd.grad(out.sum(), x)
            grad = g.detach().numpy()
        except RuntimeError as exc:
            err = f"{type(exc).__name__}: {exc}"
    f = _sigmoid_05([0.5, 2.5, -1.0])
    yield Case("its gradient is f (1 - f): 0.25 at x = 0.5, 0.105 at x = 2.5, 0.149 at x = -1",
               grad is not None and close(grad, [v * (1 - v) for v in f], atol=1e-6),
               err or ("gradients must flow through the function: keep the computation in torch "
                       "(no .detach(), .numpy(), .item() or torch.no_grad())" if grad is None else
                       "the gradient flows but has other values: it follows from the function's values, "
                       "so fix the cases above first"))


# ------------------------------------------------------------------------------ soft Jaccard loss
def _loss(fn, p, t, eps):
    """The learner's loss as a float and whether it came back as a 0-d tensor, or an error."""
    out, err = _call(fn, p, t, eps=eps)
    if err is not None:
        return None, False, err
    vals = _numbers(out)
    if vals is None or vals.size != 1:
        return None, False, f"expected one number (a scalar tensor), got {type(out).__name__}" + (
            f" of shape {tuple(vals.shape)}" if vals is not None else "")
    return float(vals.ravel()[0]), _is_tensor(out) and out.ndim == 0, None


@register("ex-03-soft-jaccard", name="soft_jaccard_loss", reference="islteach.losses.soft_jaccard_loss",
          hint="replace the raise: a soft intersection, a union and their smoothed ratio (the formula in the "
               "text above), each a sum over every pixel of the batch.")
def _check_soft_jaccard(fn):
    import numpy as np
    import torch

    T = torch.tensor

    # 1. a perfect prediction
    p = T([[1.0, 1.0, 0.0, 0.0]])
    v0, _, err0 = _loss(fn, p, p.clone(), 0.0)
    v1, _, err1 = _loss(fn, p, p.clone(), 1.0)
    yield Case("a perfect prediction gives a loss of 0 (eps = 0 and eps = 1)",
               err0 is None and err1 is None and close(v0, 0.0) and close(v1, 0.0),
               err0 or err1 or "the loss is 1 - IoU, and the IoU of a mask with itself is 1")

    # 2. half the nucleus found, no smoothing: IoU = 1 / 2
    t = T([[1.0, 1.0, 0.0, 0.0]])
    v, _, err = _loss(fn, T([[1.0, 0.0, 0.0, 0.0]]), t, 0.0)
    yield Case("p = [1, 0, 0, 0] against t = [1, 1, 0, 0], eps = 0: loss 1 - 1/2 = 0.5",
               err is None and close(v, 0.5),
               err or ("IoU = intersection / union with union = sum(p) + sum(t) - intersection "
                       "(not sum(p) + sum(t), which is the Dice denominator); the loss is 1 - IoU; "
                       "use the eps you are given (0 here)"))

    # 3. soft probabilities: the intersection is sum(p * t), no threshold
    v, _, err = _loss(fn, T([[0.5, 0.5, 0.0, 0.0]]), T([[1.0, 0.0, 0.0, 0.0]]), 0.0)
    yield Case("p = [0.5, 0.5, 0, 0] against t = [1, 0, 0, 0], eps = 0: loss 1 - 0.5/1.5 = 0.667",
               err is None and close(v, 2.0 / 3.0),
               err or "use the probabilities themselves (soft intersection sum(p * t)), never a thresholded mask")

    # 4. eps in the numerator and in the denominator
    v, _, err = _loss(fn, T([[1.0, 0.0, 0.0, 0.0]]), t, 1.0)
    yield Case("p = [1, 0, 0, 0] against t = [1, 1, 0, 0], eps = 1: loss 1 - (1 + 1)/(2 + 1) = 0.333",
               err is None and close(v, 1.0 / 3.0),
               err or "eps is added to the intersection *and* to the union")

    # 5. nothing to find and nothing found
    z = torch.zeros(1, 1, 4, 4)
    v, _, err = _loss(fn, z, z.clone(), 1.0)
    yield Case("an empty target with an empty prediction, eps = 1: loss 0 (IoU of two empty masks is 1)",
               err is None and v is not None and v == v and close(v, 0.0),
               err or "with eps added to both sums, 0/0 becomes eps/eps = 1, i.e. a loss of 0")

    # 6. the batch is one sum
    pa = T([[[[1.0, 1.0], [1.0, 1.0]]], [[[1.0, 0.0], [0.0, 0.0]]]])
    ta = T([[[[1.0, 1.0], [1.0, 1.0]]], [[[0.0, 0.0], [0.0, 1.0]]]])
    v, _, err = _loss(fn, pa, ta, 0.0)
    yield Case("a batch of two 2x2 images (IoU 4/4 and 0/2): one pooled IoU 4/6, loss 0.333, "
               "not the mean of per-image losses (0.5)",
               err is None and close(v, 1.0 / 3.0),
               err or ("sum over every pixel of every image of the batch before dividing (pooled, like "
                       "segmentation-models-pytorch's JaccardLoss), not image by image"))

    # 7. a bool target, a scalar tensor out
    v, scalar, err = _loss(fn, T([[1.0, 0.0, 0.0, 0.0]]), T([[True, True, False, False]]), 0.0)
    yield Case("a bool target works and the loss comes back as a 0-d torch tensor",
               err is None and scalar and close(v, 0.5),
               err or ("convert the target to the probability's dtype (e.g. target.to(p.dtype)) and return the "
                       "tensor itself (no .item(), no float(...)), so that fit() can call backward on it"))

    # 8. gradients with respect to the probabilities
    pv = np.array([0.8, 0.3, 0.6, 0.1])
    tv = np.array([1.0, 0.0, 1.0, 1.0])
    eps = 1.0
    inter = float((pv * tv).sum())
    union = float(pv.sum() + tv.sum()) - inter
    expected = -(tv * (union + eps) - (inter + eps) * (1 - tv)) / (union + eps) ** 2
    p = torch.tensor(pv[None], dtype=torch.float32, requires_grad=True)
    out, err = _call(fn, p, torch.tensor(tv[None], dtype=torch.float32), eps=eps)
    grad = None
    if err is None and _is_tensor(out) and out.requires_grad:
        try:
            (g,) = torch.autograd.grad(out.sum(), p)
            grad = g.detach().double().numpy()[0]
        except RuntimeError as exc:
            err = f"{type(exc).__name__}: {exc}"
    yield Case("gradient w.r.t. p = [0.8, 0.3, 0.6, 0.1] (t = [1, 0, 1, 1], eps = 1): "
               "[-0.233, 0.135, -0.233, -0.233]",
               grad is not None and close(grad, expected, atol=1e-5),
               err or ("gradients must reach the probabilities: keep everything in torch operations "
                       "(no threshold, .detach(), .item() or NumPy)" if grad is None else
                       "the gradient flows but has other values: it follows from the loss's values, "
                       "so fix the cases above first"))
