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


def test_show_report_is_a_table_with_a_total_row(capsys):
    from islteach import cost

    works = [cost.Work("a", flops=73e9 * 60), cost.Work("b", flops=73e9 * 120)]
    cost.show_report(works, device_classes=("cpu",), title="T")
    out = capsys.readouterr().out  # outside IPython the table prints as aligned text
    lines = out.splitlines()
    assert lines[0].startswith("T (cost model")
    assert lines[1].split()[0] == "work" and lines[1].rstrip().endswith("(2 cores) (min)")
    rows = {ln.split()[0]: ln.split()[-1] for ln in lines[3:]}
    assert rows["a"] == "1.0" and rows["b"] == "2.0" and rows["total"] == "3.0"
