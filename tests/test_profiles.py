"""Profiles: one place for run sizes; provenance panel and results files."""
import json

import pytest

from islteach import profiles, provenance


def test_every_profile_has_every_chapter_section():
    for name in profiles.PROFILE_NAMES:
        p = profiles.get_profile(name)
        assert p.name == name
        for ch in ("ch1", "ch2", "ch3", "ch4", "ch5"):
            assert isinstance(getattr(p, ch), profiles.Section)


def test_all_profiles_define_the_same_keys_per_chapter():
    for table in profiles._SECTIONS.values():
        keys = {name: set(table[name]) for name in profiles.PROFILE_NAMES}
        assert keys["quick"] == keys["colab"] == keys["paper"], keys


def test_unknown_profile_name_is_rejected_with_the_known_ones():
    with pytest.raises(ValueError, match="quick"):
        profiles.get_profile("fast")


def test_environment_variable_selects_the_profile(monkeypatch):
    monkeypatch.setenv("ISLTEACH_PROFILE", "paper")
    assert profiles.get_profile().name == "paper"
    monkeypatch.setenv("ISLTEACH_PROFILE", "nonsense")
    with pytest.raises(ValueError, match="ISLTEACH_PROFILE"):
        profiles.get_profile()


def test_default_profile_follows_the_gpu(monkeypatch):
    monkeypatch.delenv("ISLTEACH_PROFILE", raising=False)
    monkeypatch.setattr(profiles, "cuda_available", lambda: False)
    assert profiles.default_profile_name() == "quick"
    monkeypatch.setattr(profiles, "cuda_available", lambda: True)
    assert profiles.default_profile_name() == "colab"


def test_seed_everything_rejects_negative_and_non_integer_seeds():
    with pytest.raises(ValueError, match="seed"):
        provenance.seed_everything(-1)
    with pytest.raises(ValueError, match="seed"):
        provenance.seed_everything(1.5)


def test_seed_everything_makes_torch_and_numpy_repeatable():
    import numpy as np
    import torch

    provenance.seed_everything(3)
    a = (np.random.rand(3), torch.rand(3))
    provenance.seed_everything(3)
    b = (np.random.rand(3), torch.rand(3))
    assert np.array_equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_save_results_writes_provenance_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv("ISLTEACH_RESULTS_DIR", str(tmp_path))
    f = tmp_path / "x.txt"
    f.write_text("hello")
    path = provenance.save_results("99_test", {"a": 1.0}, profile="quick", files=[f])
    data = json.loads(path.read_text())
    assert path == tmp_path / "quick" / "99_test.json"
    assert data["a"] == 1.0
    prov = data["provenance"]
    assert prov["profile"] == "quick"
    assert list(prov["files_sha256"].values()) == [
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    ]
    assert not list(tmp_path.rglob("*.tmp"))
    assert provenance.load_results("99_test", profile="quick")["a"] == 1.0


def test_save_results_rejects_non_dict():
    with pytest.raises(TypeError, match="results"):
        provenance.save_results("99_test", [1, 2])


def test_format_report_shows_profile_device_and_versions():
    report = provenance.env_report(profiles.get_profile("quick"))
    text = provenance.format_report(report)
    assert "profile : quick" in text and "device" in text and "torch" in text
