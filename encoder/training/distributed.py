"""Data-parallel training across processes started by ``torchrun`` (gloo on CPU).

Every process reads the same table and builds the same model; each trains on its own share of
every batch (``rank::world``), gradients are summed over processes before each optimiser step
(each share's loss weighted by its size, so the step is the one-process step on the whole batch),
and validation losses are summed the same way, so every process takes the same early-stopping
decisions. Process 0 alone writes checkpoints and the encoder directory.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def init_from_env() -> None:
    """Join the process group ``torchrun`` set up (gloo backend); a clear error outside torchrun."""
    from encoder.io.errors import InputError
    missing = [v for v in TORCHRUN_VARIABLES if v not in os.environ]
    if missing:
        raise InputError(f"--distributed runs under torchrun (e.g. torchrun --nproc-per-node 2 "
                         f"-m pipelines encoder train ...); {missing[0]} is not set")
    if not dist.is_initialized():
        dist.init_process_group("gloo")


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of processes ((0, 1) when not distributed)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_reduce_gradients(model: torch.nn.Module) -> None:
    """Sum every parameter's gradient over processes (a parameter without one counts as zeros)."""
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in model.parameters()]
    flat = torch.cat([g.reshape(-1) for g in grads])  # (P,) one message instead of one per tensor
    dist.all_reduce(flat)
    offset = 0
    for p, g in zip(model.parameters(), grads):
        n = g.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """``values`` summed over processes (unchanged when not distributed)."""
    if rank_and_world()[1] > 1:
        values = values.clone()
        dist.all_reduce(values)
    return values


def broadcast_parameters(model: torch.nn.Module) -> None:
    """Process 0's weights on every process."""
    for tensor in model.state_dict().values():
        dist.broadcast(tensor, src=0)
