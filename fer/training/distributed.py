"""Training on a GPU or several processes with fastai's own engine.

Launched under ``torchrun --nproc_per_node N`` (or ``accelerate launch``), ``fer.finetune`` trains every
process's share of each epoch inside fastai's ``Learner.distrib_ctx`` (DistributedDataParallel through
Hugging Face Accelerate: NCCL on GPUs, gloo on CPUs); only rank 0 writes checkpoints, logs, the export and
the card. On a CUDA GPU training runs in mixed precision (bf16 where the GPU supports it, else fp16).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

import torch
from fastai.torch_core import rank_distrib


def world_size() -> int:
    """How many training processes the launcher started (1 without torchrun/accelerate)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """Rank 0 (or the only process): the one that writes files."""
    return rank_distrib() == 0


def _broadcast_indices(self, indices: list[int], rank: int) -> list[int]:
    """fastai's ``DistributedDL._broadcast`` moves the indices to CUDA for NCCL; gloo (CPU) needs them on the CPU."""
    on_gpu = torch.distributed.get_backend() == "nccl"
    tensor = torch.tensor(indices, dtype=torch.long, device="cuda" if on_gpu else "cpu")
    torch.distributed.broadcast(tensor, rank)
    return tensor.cpu().tolist()


def setup_process() -> None:
    """Before the learner is built, when there are several processes: this process's GPU (``LOCAL_RANK``)
    and CPU-capable index broadcasting for fastai's distributed data loader (``DistributedDL``)."""
    if world_size() <= 1:
        return
    from fastai.distributed import (
        DistributedDL,  # needs accelerate; imported only when it is used
    )

    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    DistributedDL._broadcast = _broadcast_indices


@contextlib.contextmanager
def single_process():
    """This process on its own for a while: fastai gathers losses and predictions across processes whenever
    ``WORLD_SIZE`` > 1, whether or not the others take part."""
    saved = os.environ.get("WORLD_SIZE")
    os.environ["WORLD_SIZE"] = "1"
    try:
        yield
    finally:
        if saved is not None:
            os.environ["WORLD_SIZE"] = saved


def shared_learning_rate(find: Callable[[], float]) -> float:
    """``find()`` (fastai's lr finder, which cannot run distributed) on rank 0 alone, before the process group
    exists; with several processes the others wait for the group and receive rank 0's suggestion."""
    if world_size() <= 1:
        return find()
    lr = None
    if is_main_process():
        with single_process():
            lr = find()
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    shared = [lr]
    torch.distributed.broadcast_object_list(shared, src=0)
    return float(shared[0])


@contextlib.contextmanager
def training_context(learn):
    """fastai's ``distrib_ctx`` when launched as several processes, else nothing.

    Batch norm stays per-process (no SyncBatchNorm), so the exported model is the plain one; some timm
    bodies keep layers fastai's head does not use (e.g. MobileNetV3's ``conv_head``), so DDP looks for
    unused parameters. On the way out the processes leave their group and each goes on alone: fastai
    gathers predictions across processes whenever ``WORLD_SIZE`` > 1, so rank 0's ``learn.predict`` (the
    export's check) would otherwise wait for processes that have finished."""
    if world_size() <= 1:
        yield learn
        return
    from accelerate import DistributedDataParallelKwargs

    with learn.distrib_ctx(sync_bn=False, cpu=not torch.cuda.is_available(),
                           kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)]):
        yield learn
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    os.environ["WORLD_SIZE"] = "1"


def resolve_precision(precision: str) -> str:
    """``auto`` (or ``fp32``, ``fp16``, ``bf16``: :data:`fer.training.config.PRECISIONS`) → bf16 on a CUDA GPU that
    supports it, fp16 on other CUDA GPUs, fp32 on the CPU. Mixed precision without a GPU is a ValueError."""
    cuda = torch.cuda.is_available()
    if precision == "auto":
        return ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "fp32"
    if precision != "fp32" and not cuda:
        raise ValueError(f"--precision {precision}: mixed precision needs a CUDA GPU (none found); use fp32")
    return precision


def apply_precision(learn, precision: str) -> str:
    """Add fastai's mixed-precision callback for ``precision`` (see :func:`resolve_precision`); returns the one used."""
    used = resolve_precision(precision)
    if used == "fp16":
        learn.to_fp16()
    elif used == "bf16":
        learn.to_bf16()
    return used


def ready_for_export(learn) -> None:
    """After training: full precision and the CPU, so the exported ``.pkl`` loads anywhere and ``learn.predict``
    (the ONNX export's reference) computes in fp32 like the exported model."""
    learn.to_fp32()
    learn.dls.cpu()
    learn.model.cpu()
