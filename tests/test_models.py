"""Specifications for islteach.models: U-Net factory, offline fallback, save/load."""
import socket

import numpy as np
import pytest
import torch

from islteach import models
from islteach.models import load_model, save_model, unet


@pytest.fixture
def offline(monkeypatch):
    """No network: HF_HUB_OFFLINE=1 and any socket connection attempt fails the test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def _no_connect(*a, **k):  # pragma: no cover - must not be called
        raise AssertionError("unet() probed the network although HF_HUB_OFFLINE=1")

    monkeypatch.setattr(socket, "create_connection", _no_connect)
    models._probe_cache.clear()


def test_unet_offline_falls_back_to_random_init_without_touching_the_network(offline, capsys):
    m = unet("resnet18", encoder_weights="imagenet", in_channels=3)
    assert m.islteach_init == "random"
    assert m.islteach_config["encoder_weights"] == "imagenet"
    assert "RANDOM initialisation" in capsys.readouterr().out


def test_unet_strict_raises_when_imagenet_weights_cannot_be_loaded(offline):
    with pytest.raises(RuntimeError, match="strict=True"):
        unet("resnet18", encoder_weights="imagenet", strict=True)


def test_unet_with_cached_weights_loads_them_and_records_imagenet(monkeypatch, tmp_path):
    from safetensors.torch import save_file

    donor = unet("resnet18", encoder_weights=None)
    sd = {k: v.contiguous() for k, v in donor.encoder.state_dict().items()}
    path = tmp_path / "model.safetensors"
    save_file(sd, str(path))
    monkeypatch.setattr(models, "_weights_file", lambda *a, **k: str(path))
    m = unet("resnet18", encoder_weights="imagenet", in_channels=3)
    assert m.islteach_init == "imagenet"
    for k, v in m.encoder.state_dict().items():
        assert torch.equal(v, sd[k]), k
    # with more input channels the first convolution is adapted from the pretrained one
    m4 = unet("resnet18", encoder_weights="imagenet", in_channels=4)
    assert m4.encoder.conv1.weight.shape[1] == 4
    assert m4.islteach_init == "imagenet"


def test_unet_maps_in_channels_to_classes_at_the_input_resolution():
    m = unet("resnet18", encoder_weights=None, in_channels=5, classes=2).eval()
    with torch.no_grad():
        y = m(torch.zeros(1, 5, 64, 96))
    assert tuple(y.shape) == (1, 2, 64, 96)
    assert m.islteach_init == "random"


@pytest.mark.parametrize("kwargs, exc", [
    ({"in_channels": 0}, ValueError),
    ({"classes": 1.5}, ValueError),
    ({"encoder_name": "no-such-encoder"}, ValueError),
    ({"encoder_weights": "not-a-weight-set"}, ValueError),
])
def test_unet_rejects_bad_arguments_naming_them(kwargs, exc, offline):
    args = {"encoder_name": "resnet18", "encoder_weights": None, **kwargs}
    with pytest.raises(exc):
        unet(**args)


def test_save_then_load_restores_weights_config_and_metadata(tmp_path):
    m = unet("resnet18", encoder_weights=None, in_channels=2, classes=1)
    path = save_model(m, tmp_path / "sub" / "m.pt", planes=[3, 6], target="dapi",
                      normalisation={"pmin": 1.0, "pmax": 99.8})
    assert not list((tmp_path / "sub").glob("*.tmp"))
    m2, meta = load_model(path)
    assert meta["planes"] == [3, 6] and meta["target"] == "dapi"
    assert meta["config"]["in_channels"] == 2 and meta["config"]["encoder_name"] == "resnet18"
    assert m2.islteach_init == "random" and m2.islteach_source == str(path)
    x = torch.randn(1, 2, 64, 64)
    m.eval()
    with torch.no_grad():
        np.testing.assert_array_equal(m(x).numpy(), m2(x).numpy())


def test_load_model_rejects_a_file_not_written_by_save_model(tmp_path):
    p = tmp_path / "foreign.pt"
    torch.save({"weights": 1}, p)
    with pytest.raises(ValueError, match="save_model"):
        load_model(p)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.pt")


def test_save_model_refuses_a_model_without_islteach_config(tmp_path):
    with pytest.raises(TypeError, match="islteach.models.unet"):
        save_model(torch.nn.Conv2d(1, 1, 1), tmp_path / "x.pt")
