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


CHAPTER_MODULES = ("virtual_staining", "groundtruth", "transfer", "distance_maps", "shape_prior")
RETIRED_KEYS = {"crop", "bsize", "patch", "backbone", "lr_max", "learning_rate"}


def test_chapter_modules_take_sizes_as_arguments_and_never_read_a_profile():
    import importlib
    import re
    from pathlib import Path

    for mod in CHAPTER_MODULES:
        src = Path(importlib.import_module(f"islteach.{mod}").__file__).read_text()
        assert not re.search(r"\bget_profile\b", src), f"islteach/{mod}.py uses get_profile"


def _keys_at_any_depth(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from _keys_at_any_depth(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _keys_at_any_depth(v)


def test_profile_tables_use_the_shared_vocabulary_not_retired_names():
    tables = {"common": profiles.COMMON, **profiles._SECTIONS}
    for section, table in tables.items():
        retired = RETIRED_KEYS & set(_keys_at_any_depth(table))
        assert not retired, f"{section} uses retired key(s) {sorted(retired)}"
    for name in profiles.PROFILE_NAMES:
        p = profiles.get_profile(name)
        assert {"crop_size", "lr"} <= set(p.ch2.as_dict())
        assert {"encoder_name", "crop_size", "lr"} <= set(p.ch5.as_dict())
        assert set(p.ch4.cells_seeds) == {"train", "test", "val", "pretext"}
        assert p.ch2.crop_size % 16 == 0  # Cellpose's bsize
