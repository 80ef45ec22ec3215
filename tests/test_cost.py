"""The cost model: FLOPs counted on real builders, and the colab profile's budget per chapter."""
import pytest

import islteach.shape_prior  # noqa: F401  (registers chapter 5's network)
from islteach import cost


def test_training_flops_scale_with_batch_and_steps_and_match_a_hand_count():
    one = cost.training("a", "unet", encoder_name="resnet18", in_channels=3, classes=1, crop_size=128,
                        batch_size=1, steps=1)
    many = cost.training("b", "unet", encoder_name="resnet18", in_channels=3, classes=1, crop_size=128,
                         batch_size=8, steps=220)
    assert many.flops == pytest.approx(8 * 220 * one.flops)
    assert one.flops == pytest.approx(8.02e9, rel=0.01)  # fwd + bwd of one 128 px crop
    assert cost.seconds(many, "cpu") == pytest.approx(many.flops / cost.DEVICE_CLASSES["cpu"]["flops_per_s"])


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="steps"):
        cost.training("a", "unet", encoder_name="resnet18", in_channels=1, classes=1, crop_size=64,
                      batch_size=1, steps=-1)
    with pytest.raises(ValueError, match="device_class"):
        cost.seconds(cost.Work("x", 1.0), "tpu")
    with pytest.raises(ValueError, match="chapter"):
        cost.chapter_works("ch9")
    assert cost.device_class_of("Tesla T4") == "t4" and cost.device_class_of("cpu") == "cpu"


@pytest.mark.slow
def test_no_chapter_is_expected_above_25_minutes_on_a_t4_in_the_colab_profile(monkeypatch):
    monkeypatch.delenv("ISLTEACH_SMOKE", raising=False)
    minutes = cost.expected_minutes("colab", "t4")
    assert len(minutes) == 5
    assert all(0 < m <= 25 for m in minutes.values()), minutes
