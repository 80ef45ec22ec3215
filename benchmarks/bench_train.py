"""Training steps per second of the U-Net used in chapters 1, 3 and 4, on this machine.

Usage: python benchmarks/bench_train.py [--encoder resnet18] [--crop 128] [--batch 8] [--steps 20]

Trains a randomly initialised U-Net (smp) with islteach.train.fit on random tensors, so
only the network's speed is measured (no data loading), and prints steps/s and
images/s, on CUDA when present. It prints and never asserts.
"""
import argparse
import os
import time

import torch

from islteach.models import unet
from islteach.provenance import get_device
from islteach.train import fit


class RandomPairs(torch.utils.data.Dataset):
    def __init__(self, n, channels, crop):
        g = torch.Generator().manual_seed(0)
        self.x = torch.rand(n, channels, crop, crop, generator=g)
        self.y = torch.rand(n, 1, crop, crop, generator=g)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--encoder", default="resnet18")
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args(argv)
    device = get_device()
    model = unet(args.encoder, encoder_weights=None, in_channels=3, classes=1, verbose=False)
    data = RandomPairs(64, 3, args.crop)
    fit(model, data, torch.nn.functional.l1_loss, steps=3, batch_size=args.batch, device=device,
        progress=False)  # warm-up
    t0 = time.perf_counter()
    fit(model, data, torch.nn.functional.l1_loss, steps=args.steps, batch_size=args.batch,
        device=device, progress=False)
    dt = time.perf_counter() - t0
    print(f"device {device}, torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}")
    print(f"U-Net {args.encoder}, batch {args.batch} x 3 x {args.crop} x {args.crop}: "
          f"{args.steps / dt:.2f} steps/s, {args.steps * args.batch / dt:.1f} images/s")


if __name__ == "__main__":
    main()
