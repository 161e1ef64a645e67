"""Training throughput: the fastai loop (data loading + augmentation + step) vs the bare model's
forward+backward on random tensors, images/s, so a starving data pipeline shows.

    python benchmarks/train_throughput.py --data data/fer2013 --arch tf_efficientnet_lite0 --size 64
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from fer.training import learner as fl
from fer.training.preprocess import grey_stats


def bare_images_per_s(model: torch.nn.Module, size: int, bs: int, steps: int, bf16: bool = False) -> float:
    opt = torch.optim.AdamW(model.parameters(), 1e-4)
    x, y = torch.randn(bs, 1, size, size), torch.randint(0, 7, (bs,))
    times = []
    for _ in range(steps + 2):
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - t)
    return bs / statistics.median(times[2:])


def fastai_images_per_s(learn, steps: int) -> float:
    from fastai.callback.core import Callback, CancelFitException

    class Stop(Callback):
        def before_fit(self): self.times = []
        def before_batch(self): self.t = time.perf_counter()
        def after_step(self):
            self.times.append(time.perf_counter())
            if len(self.times) > steps + 2: raise CancelFitException

    stop = Stop()
    learn.fit(1, 1e-4, cbs=stop)
    gaps = [b - a for a, b in zip(stop.times[2:], stop.times[3:])]  # full loop time per batch incl. loading
    return learn.dls.bs / statistics.median(gaps)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--arch", default="tf_efficientnet_lite0")
    p.add_argument("--size", type=int, nargs="+", default=[64])
    p.add_argument("--bs", type=int, default=64)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--workers", type=int, default=0)
    args = p.parse_args()
    stats = grey_stats(fl.pretrained_cfg(args.arch))
    for size in args.size:
        dls = fl.face_dataloaders(args.data, size, stats, bs=args.bs, num_workers=args.workers)
        learn = fl.build_learner(dls, args.arch, pretrained=False)
        learn.unfreeze()
        learn.model.to(memory_format=torch.channels_last)  # as fastai's ChannelsLast does when fitting
        learn.model.train()
        bare = bare_images_per_s(learn.model, size, args.bs, args.steps)
        bare16 = bare_images_per_s(learn.model, size, args.bs, args.steps, bf16=True)
        loop = fastai_images_per_s(learn, args.steps)
        print(f"{args.arch} size {size} bs {args.bs} workers {args.workers}: bare fwd+bwd {bare:.0f} img/s "
              f"(bf16 autocast {bare16:.0f}), fastai loop {loop:.0f} img/s ({loop / bare:.0%} of bare); "
              f"epoch of 28,709 ≈ {28709 / loop:.0f} s", flush=True)


if __name__ == "__main__":
    main()
