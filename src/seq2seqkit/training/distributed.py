"""Training on several processes through torch.distributed: who this process is, its share of a
batch, and the few collective steps the training loop needs.

``torchrun --nproc_per_node=N -m seq2seqkit train CONFIG`` starts N processes (ranks) and tells each
its rank in the environment; ``World.from_environment`` joins them (gloo on the CPU, NCCL on GPUs).
Every rank draws the same batches (the sampler is a function of seed and epoch) with a budget of
``batch_tokens`` per rank, and takes every N-th example of each: ranks never disagree on how many
steps an epoch has, so none waits forever for another (a rank left without an example trains on a
stand-in with weight 0). The loss of each share is weighted by its part of the batch's target
tokens, so N ranks step exactly as one process with N times the batch does. Rank 0 alone
validates, logs and writes checkpoints; decisions (stop on a signal or a time budget, stop early)
are taken together.

Without torchrun (or with one process) the world is a single rank and every collective step
returns at once.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from seq2seqkit.errors import ConfigError

# Rank 0 validates while the others wait in a collective: long enough for a large validation set.
COLLECTIVE_TIMEOUT = datetime.timedelta(hours=2)


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0  # the rank among this machine's processes: which GPU this one takes

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @classmethod
    def from_environment(cls, device: torch.device) -> World:
        """Join the process group torchrun describes in RANK / WORLD_SIZE / LOCAL_RANK (gloo on
        the CPU, NCCL on GPUs); a single process without them."""
        size = int(os.environ.get("WORLD_SIZE", "1"))
        if size == 1:
            return cls()
        world = cls(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
        if not dist.is_available():
            raise ConfigError("this torch build has no torch.distributed; train with one process")
        if not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            dist.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT)
        return world

    def device(self, device: torch.device) -> torch.device:
        """This rank's device: on GPUs the one of its local rank."""
        if device.type == "cuda" and self.distributed:
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        return device

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model as training calls it: in DistributedDataParallel on several processes.

        DDP reduces each parameter's gradient as backward produces it, also for parameters the
        loss uses outside forward (the output layer), and expects every parameter to get one in
        every step (no ``find_unused_parameters``, whose search from forward's outputs would
        miss the output layer)."""
        if not self.distributed:
            return model
        device = next(model.parameters()).device
        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    def share(self, indices: Sequence[int]) -> tuple[list[int], bool]:
        """This rank's examples of a batch (every size-th), and whether they count: a rank left
        without one takes the batch's first as a stand-in whose loss is weighted 0."""
        mine = list(indices[self.rank :: self.size])
        return (mine, True) if mine else ([indices[0]], False)

    def sum(self, values: Sequence[float], device: torch.device) -> list[float]:
        """Each value summed over the ranks (one all-reduce)."""
        if not self.distributed:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` (any picklable object built by this program), on every rank."""
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """Every rank's ``tensor`` (same shape and dtype on all), in rank order, on every rank."""
        if not self.distributed:
            return [tensor]
        parts = [torch.empty_like(tensor) for _ in range(self.size)]
        dist.all_gather(parts, tensor)
        return parts

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()
