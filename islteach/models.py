"""Model builders: the U-Net "on steroids" of Bonte et al. and how to save and reload it.

:func:`unet` wraps :class:`segmentation_models_pytorch.Unet` with the library's own
vocabulary (``encoder_name``, ``encoder_weights``, ``in_channels``, ``classes``,
``activation``). Pretrained encoder weights come from the Hugging Face hub
(segmentation-models-pytorch 0.5+ keeps them there, ``smp-hub/<encoder>.<weights>``).
Without internet (continuous integration, a laptop offline) the download is not
attempted in a retry loop: :func:`unet` checks the local cache, honours
``HF_HUB_OFFLINE=1`` and probes the hub with a short timeout, then falls back to a
random initialisation and says so, unless ``strict=True``. The initialisation that
actually happened is recorded on the model as ``model.islteach_init``
(``"imagenet"``, ``"random"``, ...).

:func:`save_model` and :func:`load_model` store the weights together with everything
needed to rebuild the network and trace where it came from (encoder, channels, input
planes, normalisation, profile, data hashes).
"""
from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

__all__ = ["unet", "weights_available", "save_model", "load_model", "count_parameters"]

#: Host that serves segmentation-models-pytorch's pretrained encoders.
HUB_HOST = "huggingface.co"
#: Seconds to wait for the hub before giving up (DNS + TCP connect).
PROBE_TIMEOUT_S = 3.0

_probe_cache: dict = {}


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def hub_reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether ``huggingface.co:443`` accepts a TCP connection within ``timeout`` seconds.

    ``False`` at once when ``HF_HUB_OFFLINE`` is set. The probe runs in a daemon
    thread so that a hanging DNS lookup cannot block longer than ``timeout``; the
    answer is cached for the session (a positive one only).
    """
    if _env_true("HF_HUB_OFFLINE"):
        return False
    if _probe_cache.get("ok"):
        return True
    result = {"ok": False}

    def _probe():
        try:
            with socket.create_connection((HUB_HOST, 443), timeout=timeout):
                result["ok"] = True
        except OSError:
            result["ok"] = False

    t = threading.Thread(target=_probe, daemon=True)
    t.start()
    t.join(timeout + 0.5)
    if result["ok"]:
        _probe_cache["ok"] = True
    return bool(result["ok"])


def _pretrained_settings(encoder_name: str, encoder_weights: str) -> dict:
    from segmentation_models_pytorch.encoders import encoders

    if encoder_name not in encoders:
        raise ValueError(
            f"encoder_name must be one of segmentation_models_pytorch's encoders, got {encoder_name!r}"
        )
    settings = encoders[encoder_name]["pretrained_settings"]
    if encoder_weights not in settings:
        raise ValueError(
            f"encoder_weights={encoder_weights!r} is not available for {encoder_name!r}; "
            f"expected one of {sorted(settings)} or None"
        )
    return settings[encoder_weights]


def _weights_file(encoder_name: str, encoder_weights: str, download: bool):
    """Path of the encoder's ``model.safetensors`` (cache first; download only if ``download``)."""
    from huggingface_hub import hf_hub_download

    s = _pretrained_settings(encoder_name, encoder_weights)
    try:
        return hf_hub_download(
            s["repo_id"], filename="model.safetensors", revision=s["revision"], local_files_only=True
        )
    except Exception:
        if not download:
            raise
    return hf_hub_download(s["repo_id"], filename="model.safetensors", revision=s["revision"])


def weights_available(encoder_name: str = "densenet121", encoder_weights: str = "imagenet") -> bool:
    """Whether pretrained encoder weights are in the local cache or the hub is reachable (fast)."""
    try:
        _weights_file(encoder_name, encoder_weights, download=False)
        return True
    except ValueError:
        raise
    except Exception:
        return hub_reachable()


def _validate(encoder_name, in_channels, classes):
    if not isinstance(encoder_name, str):
        raise TypeError(f"encoder_name must be a string, got {type(encoder_name).__name__}")
    for name, v in (("in_channels", in_channels), ("classes", classes)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    from segmentation_models_pytorch.encoders import encoders

    if not encoder_name.startswith(("tu-", "timm-")) and encoder_name not in encoders:
        raise ValueError(
            f"encoder_name must be a segmentation_models_pytorch encoder (e.g. 'resnet18', "
            f"'densenet121'), got {encoder_name!r}"
        )


def unet(
    encoder_name: str = "densenet121",
    encoder_weights: str | None = "imagenet",
    in_channels: int = 3,
    classes: int = 1,
    activation=None,
    strict: bool = False,
    verbose: bool = True,
):
    """A U-Net with a pretrained (or randomly initialised) encoder.

    Parameters
    ----------
    encoder_name : str
        Any encoder of segmentation-models-pytorch, e.g. ``"densenet121"`` (Bonte et
        al.'s "U-Net on steroids") or ``"resnet18"`` (small, for CPU runs).
    encoder_weights : str or None
        ``"imagenet"`` (default) or another weight set of that encoder; ``None`` for a
        random initialisation.
    in_channels : int
        Number of input channels (e.g. 3 label-free planes). With pretrained weights
        and ``in_channels != 3`` the first convolution is adapted as smp does.
    classes : int
        Number of output channels.
    activation : str, callable or None
        Output activation passed to smp (``None``: raw values, as for regression).
    strict : bool
        If True, raise :class:`RuntimeError` when the requested weights cannot be
        loaded instead of falling back to random initialisation.
    verbose : bool
        Print what was loaded when it is not what was asked for.

    Returns
    -------
    torch.nn.Module
        An ``smp.Unet`` with attributes ``islteach_init`` (``"imagenet"``,
        ``"random"``, ...: the initialisation that actually happened) and
        ``islteach_config`` (the keyword arguments needed to rebuild it).

    Examples
    --------
    >>> m = unet("resnet18", encoder_weights=None, in_channels=3)
    >>> m.islteach_init
    'random'
    """
    import segmentation_models_pytorch as smp

    _validate(encoder_name, in_channels, classes)
    if encoder_weights is not None and not isinstance(encoder_weights, str):
        raise TypeError(f"encoder_weights must be a string or None, got {encoder_weights!r}")

    init = "random"
    reason = None
    if encoder_name.startswith(("tu-", "timm-")):
        # timm encoders: weights named in encoder_name; only try when the hub answers.
        want = encoder_weights is not None
        if want and hub_reachable():
            try:
                model = smp.Unet(encoder_name, encoder_weights=True, in_channels=in_channels,
                                 classes=classes, activation=activation)
                init = "pretrained"
            except Exception as e:  # pragma: no cover - needs internet
                reason = f"{type(e).__name__}: {e}"
                model = None
        else:
            model = None
            if want:
                reason = "the Hugging Face hub is not reachable (offline or HF_HUB_OFFLINE=1)"
        if model is None:
            model = smp.Unet(encoder_name, encoder_weights=None, in_channels=in_channels,
                             classes=classes, activation=activation)
    else:
        # Build on 3 channels, load the encoder weights ourselves (so that we control
        # the download), then adapt the first convolution as smp.get_encoder does.
        model = smp.Unet(encoder_name, encoder_weights=None, in_channels=3,
                         classes=classes, activation=activation)
        if encoder_weights is not None:
            _pretrained_settings(encoder_name, encoder_weights)  # validate names first
            t0 = time.perf_counter()
            try:
                from safetensors.torch import load_file

                path = _weights_file(encoder_name, encoder_weights, download=hub_reachable())
                model.encoder.load_state_dict(load_file(path, device="cpu"))
                init = encoder_weights
            except Exception as e:
                reason = (
                    "the Hugging Face hub is not reachable (offline or HF_HUB_OFFLINE=1) and the "
                    "weights are not in the local cache"
                    if not hub_reachable()
                    else f"{type(e).__name__}: {e}"
                )
                reason += f" [gave up after {time.perf_counter() - t0:.1f} s]"
        model.encoder.set_in_channels(in_channels, pretrained=init != "random")

    if encoder_weights is not None and init == "random":
        msg = (
            f"Could not load {encoder_weights!r} weights for encoder {encoder_name!r}: {reason}."
        )
        if strict:
            raise RuntimeError(msg + " (strict=True)")
        if verbose:
            print(msg + " Using RANDOM initialisation instead.")
    model.islteach_init = init
    model.islteach_config = {
        "encoder_name": encoder_name,
        "encoder_weights": encoder_weights,
        "in_channels": in_channels,
        "classes": classes,
        "activation": activation if (activation is None or isinstance(activation, str)) else repr(activation),
        "init": init,
    }
    return model


def count_parameters(model) -> int:
    """Number of trainable parameters of a torch module."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def save_model(model, path, **metadata) -> Path:
    """Save a model built by :func:`unet` with its configuration and free-form metadata.

    The write is atomic (temporary file, then rename), so an interrupted save never
    leaves a corrupt model file.

    Parameters
    ----------
    model : torch.nn.Module
        A model from :func:`unet` (it carries ``islteach_config``).
    path : path-like
        Destination file (``.pt``); parent directories are created.
    **metadata
        Anything JSON-like worth keeping: ``planes``, ``target``, ``normalisation``,
        ``profile``, ``data_sha256``, ``pcc`` ...

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import tempfile, os
    >>> m = unet("resnet18", encoder_weights=None)
    >>> p = save_model(m, os.path.join(tempfile.mkdtemp(), "m.pt"), target="dapi")
    >>> m2, meta = load_model(p)
    >>> meta["target"]
    'dapi'
    """
    import torch

    config = getattr(model, "islteach_config", None)
    if config is None:
        raise TypeError("model must be built by islteach.models.unet (it has no islteach_config)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {"format": "islteach-model-1", "config": dict(config), "metadata": dict(metadata),
               "state_dict": state}
    from .provenance import atomic_path

    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_model(path, device=None):
    """Rebuild and load a model saved by :func:`save_model`.

    Parameters
    ----------
    path : path-like
    device : str or torch.device, optional
        Where to put the model (default CPU).

    Returns
    -------
    model : torch.nn.Module
        In eval mode; ``model.islteach_init`` is the initialisation it was trained
        from, ``model.islteach_source`` the file it was loaded from.
    metadata : dict
        The keyword metadata given to :func:`save_model` plus ``"config"``.
    """
    import torch

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no model file at {path}")
    payload = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(payload, dict) or payload.get("format") != "islteach-model-1":
        raise ValueError(f"{path} is not a model file written by islteach.models.save_model")
    cfg = dict(payload["config"])
    act = cfg.get("activation")
    if isinstance(act, str) and act.startswith("<"):
        act = None  # a callable activation cannot be restored from its repr
    model = unet(cfg["encoder_name"], encoder_weights=None, in_channels=cfg["in_channels"],
                 classes=cfg["classes"], activation=act, verbose=False)
    model.load_state_dict(payload["state_dict"])
    model.islteach_init = cfg.get("init", "random")
    model.islteach_config = cfg
    model.islteach_source = str(path)
    if device is not None:
        model.to(device)
    model.eval()
    meta = dict(payload.get("metadata") or {})
    meta["config"] = cfg
    return model, meta
