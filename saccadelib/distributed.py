"""Training on many processes (``torchrun``): where this process stands, and the few collective steps
the shared loop takes (``train.fit``). A plain run is rank 0 of 1 and takes none of them."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Processes:
    """This process's place in a ``torchrun`` launch; a plain run is rank 0 of 1.

    With N processes each draws its own 1/N of every batch and epoch (``task.training_stream``), the
    gradients are averaged by DistributedDataParallel, and rank 0 alone evaluates and writes: a global
    step sees ``batch_size`` canvases, as in one process. BatchNorm statistics stay per process."""
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> "Processes":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls()
        return cls(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


class TrainingLoss(torch.nn.Module):
    """``model.training_loss`` as a forward pass, so DistributedDataParallel sees (and syncs) the step."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, batch):
        return self.model.training_loss(batch)


def start_processes(procs: Processes, batch_size: int, train_size: int, device: torch.device) -> tuple[torch.device, bool]:
    """Join the process group (gloo on CPU, NCCL on GPUs); returns this rank's device and whether this
    call started the group (and so ends it)."""
    if batch_size % procs.world or train_size % procs.world:
        raise ValueError(f"batch_size {batch_size} and train_size {train_size} must divide among "
                         f"{procs.world} processes")
    if device.type == "cuda":
        device = torch.device("cuda", procs.local_rank)
        torch.cuda.set_device(device)
    if dist.is_initialized():
        return device, False
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device, True


def broadcast_flag(flag: bool, device: torch.device) -> bool:
    """Rank 0's decision, on every rank (e.g. to stop at the time budget together)."""
    value = torch.tensor([int(flag)], device=device)
    dist.broadcast(value, 0)
    return bool(value.item())


def all_sum(values: dict[str, float], device: torch.device) -> dict[str, float]:
    keys = sorted(values)
    total = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return dict(zip(keys, total.tolist()))


def finish(own_group: bool, summary: dict) -> dict:
    if own_group:
        dist.barrier()  # the others wait for rank 0's test score and files before the group ends
        dist.destroy_process_group()
    return summary
