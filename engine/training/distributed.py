"""Data-parallel training across processes and machines, started by torchrun.

``torchrun --nproc_per_node N -m engine train ...`` sets RANK, WORLD_SIZE, LOCAL_RANK and
the rendezvous variables; ``init_from_env`` joins the process group (NCCL on CUDA, gloo
on CPU). Each rank trains on its own disjoint shard of A and of B with its own history
pool; gradients are averaged across ranks before every optimiser step, for the
generators and for the critics, the gradient-penalty path included. Only rank 0 writes
metrics, previews and checkpoints.

Why not ``DistributedDataParallel`` modules: each generator runs several times per step
(translation, reconstruction, identity) and the critic's gradient penalty needs a double
backward; DDP's reducer supports neither re-entrant forward passes without
``static_graph`` nor double backward. Averaging the gradients with one coalesced
``all_reduce`` per optimiser step is the same mathematics as DDP (the mean of the per-rank
gradients), works on every path, and costs one collective per update.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)

__all__ = ["DistInfo", "SINGLE", "init_from_env", "shutdown", "average_gradients", "broadcast_module",
           "agree_any", "agree_each", "broadcast_choice", "broadcast_value"]


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = DistInfo()


def init_from_env(device: str = "auto") -> DistInfo:
    """Join the process group torchrun describes; a plain single process gets ``SINGLE``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device in ("auto", "cuda") and torch.cuda.is_available()
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend)
    log.info("rank %d of %d (local %d) joined with %s", rank, world, local_rank, backend)
    return DistInfo(rank, world, local_rank, backend)


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def average_gradients(params: list[torch.Tensor], world_size: int, poison: bool = False) -> None:
    """Replace each gradient with its mean over all ranks, in one coalesced all_reduce.

    ``poison``: this rank's loss was not finite; its contribution becomes NaN, so every rank
    sees non-finite gradients and skips the same update (ranks never diverge).
    """
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    if poison:
        flat.fill_(float("nan"))
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat.div_(world_size)
    offset = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n


def broadcast_module(module: torch.nn.Module, src: int = 0) -> None:
    """Make every rank hold rank ``src``'s parameters and buffers."""
    for t in list(module.parameters()) + list(module.buffers()):
        with torch.no_grad():
            dist.broadcast(t.data, src)


def agree_any(flag: bool, device: torch.device | str = "cpu") -> bool:
    """True on every rank if it is true on any rank (stop requests, time limits)."""
    return agree_each((flag,), device)[0]


def agree_each(flags: tuple[bool, ...], device: torch.device | str = "cpu") -> tuple[bool, ...]:
    """``agree_any`` of each flag, in one collective: each is true on every rank if it is true on any rank."""
    t = torch.tensor([1.0 if f else 0.0 for f in flags], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return tuple(bool(v > 0) for v in t.tolist())


def broadcast_value(value: float, device: torch.device | str = "cpu", src: int = 0) -> float:
    """Rank ``src``'s ``value`` on every rank (what only the main rank measures: the family search's clock)."""
    t = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.broadcast(t, src)
    return float(t.item())


def broadcast_choice(index: int, device: torch.device | str = "cpu", src: int = 0) -> int:
    """Rank ``src``'s ``index`` on every rank (the family search's choice, which only the main rank measures)."""
    return round(broadcast_value(index, device, src))
