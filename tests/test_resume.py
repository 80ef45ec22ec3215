"""Work that survives a new VM: a training killed with SIGKILL resumes from its last checkpoint.

Each training runs in its own Python process: one is killed (SIGKILL, as when Colab recycles a
runtime) right after its first checkpoint appears, rerun to completion with the same checkpoint
directory, and compared, tensor by tensor, with an uninterrupted run in another process.
"""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

STEPS, EVERY = 40, 5

# argv: kind ("fit" or "shape_prior"), checkpoint dir ("-": none), output file, seconds to sleep per step
SCRIPT = textwrap.dedent(f"""
    import sys, time
    import numpy as np
    import torch

    kind, ckdir, out, pause = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    ckdir = None if ckdir == "-" else ckdir
    torch.set_num_threads(1)
    callback = (lambda step, loss: time.sleep(pause)) if pause else None
    g = torch.Generator().manual_seed(0)
    if kind == "fit":
        from islteach.train import fit

        ds = torch.utils.data.TensorDataset(torch.randn(32, 1, 16, 16, generator=g),
                                            torch.randn(32, 1, 16, 16, generator=g))
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(),
                                  torch.nn.Conv2d(8, 1, 3, padding=1))
        h = fit(net, ds, torch.nn.functional.l1_loss, steps={STEPS}, batch_size=4, lr=1e-2, scheduler="cosine",
                checkpoint_dir=ckdir, checkpoint_every={EVERY}, seed=3, device="cpu", progress=False,
                callback=callback)
        curves = {{"loss": h.loss, "lr": h.lr, "step": h.step}}
        resumed_from = h.resumed_from
    else:
        from islteach import shape_prior as sp

        images = torch.rand(8, 32, 32, generator=g).numpy()
        masks = images > 0.7
        counts = np.arange(8) % 4
        torch.manual_seed(0)
        net = sp.ShapePriorModel(encoder_name="tiny", encoder_weights=None)
        h = sp.train_shape_prior(net, images, masks, counts, steps={STEPS}, batch_size=2, lr=0.05, alpha=0.01,
                                 seed=3, device="cpu", log_every=3, progress=False, checkpoint_dir=ckdir,
                                 checkpoint_every={EVERY}, callback=callback)
        resumed_from = h.pop("resumed_from")
        h.pop("seconds")
        curves = h
    torch.save({{"state": net.state_dict(), "curves": curves, "resumed_from": resumed_from}}, out)
""")


def _start(kind, ckdir, out, pause=0.0):
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.Popen([sys.executable, "-c", SCRIPT, kind, str(ckdir or "-"), str(out), str(pause)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc, timeout=120):
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out


@pytest.mark.parametrize("kind", ["fit", "shape_prior"])
def test_a_killed_training_resumes_to_the_weights_and_history_of_an_uninterrupted_run(tmp_path, kind):
    ckdir = tmp_path / "checkpoints"
    reference = _start(kind, None, tmp_path / "reference.pt")  # runs alongside the killed one

    victim = _start(kind, ckdir, tmp_path / "never.pt", pause=0.05)
    last = ckdir / "last.pt"
    deadline = time.monotonic() + 90
    while not last.exists():
        assert victim.poll() is None, victim.communicate()[0]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    assert not (tmp_path / "never.pt").exists()  # killed before the end

    ck = torch.load(last, map_location="cpu", weights_only=False)  # complete: it loads
    assert ck["step"] % EVERY == 0 and 0 < ck["step"] < STEPS
    assert [p.name for p in ckdir.iterdir()] == ["last.pt"]  # no temporary file left behind

    _finish(_start(kind, ckdir, tmp_path / "resumed.pt"))
    _finish(reference)
    resumed = torch.load(tmp_path / "resumed.pt", weights_only=False)
    ref = torch.load(tmp_path / "reference.pt", weights_only=False)
    assert resumed["resumed_from"] == ck["step"] and ref["resumed_from"] == 0
    assert resumed["state"].keys() == ref["state"].keys()
    for k, v in ref["state"].items():
        assert torch.equal(resumed["state"][k], v), k
    assert resumed["curves"] == ref["curves"]
    assert sorted(p.name for p in ckdir.iterdir()) == ["last.pt"]
