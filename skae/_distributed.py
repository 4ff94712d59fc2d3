"""Whether a fit trains data-parallel, and what the ranks must agree on.

An unchanged script that calls ``fit`` trains with DistributedDataParallel when
``torchrun --nproc-per-node N script.py`` launches it: the first distributed
fit initialises the default process group from torchrun's environment (gloo
for the CPU, nccl for CUDA) unless the script already did, and the engine
trains each rank on its slice of every global batch (:class:`~skae._engine.Shard`).

This module knows ``torch.distributed`` and torchrun's environment variables;
the training itself is the engine's.
"""

import atexit
import contextlib
import multiprocessing
import os
import threading

import torch

from ._device import resolve_device
from ._engine import Shard

#: What torchrun sets in each process it starts.
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def launched_by_torchrun():
    """Whether torchrun's environment variables are all set."""
    return all(name in os.environ for name in TORCHRUN_VARIABLES)


def current_shard(setting, device):
    """This process's :class:`~skae._engine.Shard`, or None to train alone.

    Parameters
    ----------
    setting : {"auto", True, False}
        The estimator's ``distributed`` parameter. "auto" goes data-parallel
        when the default process group is initialised, or when torchrun
        started this process with more than one rank (the group is then
        initialised here); but only from the main thread of a process that
        was not started by ``multiprocessing`` (joblib and dask workers
        inherit torchrun's variables, and fits in threads could not keep the
        ranks' collective calls in step). True requires a process group.
    device : torch.device
        The training device; it picks the backend of a group made here.
    """
    if setting is False:
        return None
    dist = torch.distributed
    if setting == "auto":
        if not dist.is_available() or threading.current_thread() is not threading.main_thread():
            return None
        if not dist.is_initialized():
            launched = launched_by_torchrun() and multiprocessing.parent_process() is None
            if not launched or int(os.environ["WORLD_SIZE"]) < 2:
                return None
            _init_process_group(device)
    elif not dist.is_available():
        raise ValueError("distributed=True, but this torch build has no torch.distributed.")
    elif not dist.is_initialized():
        if not launched_by_torchrun():
            raise ValueError(
                "distributed=True needs a process group: launch the script with torchrun "
                "(torchrun --nproc-per-node N script.py) or call "
                "torch.distributed.init_process_group before fit."
            )
        _init_process_group(device)
    world_size = dist.get_world_size()
    return Shard(dist.get_rank(), world_size) if world_size > 1 else None


def _init_process_group(device):
    """The default process group from torchrun's environment, destroyed at exit."""
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    torch.distributed.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    atexit.register(_destroy_process_group)


def _destroy_process_group():
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def rank_device(device):
    """Each rank's own GPU for ``device="cuda"`` (``LOCAL_RANK``, else the
    current CUDA device); other devices as given."""
    if device.type != "cuda" or device.index is not None:
        return device
    index = os.environ.get("LOCAL_RANK")
    return torch.device("cuda", int(index) if index is not None else torch.cuda.current_device())


def check_same_shape(shape, shard, device):
    """Refuse, on every rank alike, inputs whose shapes differ between ranks:
    each rank takes its rows by position, so every rank must pass the same X.
    ``shape`` None: this rank failed before (:func:`failing_together`)."""
    _reached.check = True
    local = torch.tensor(shape or FAILED, dtype=torch.int64, device=device)
    shapes = [torch.empty_like(local) for _ in range(shard.world_size)]
    torch.distributed.all_gather(shapes, local)
    shapes = [tuple(s.tolist()) for s in shapes]
    failed = [rank for rank, found in enumerate(shapes) if found == FAILED]
    if failed:
        raise ValueError(
            f"Data-parallel fit: rank(s) {failed} failed before training (their own "
            "error says why), so this rank stops too."
        )
    if len(set(shapes)) > 1:
        raise ValueError(
            f"Data-parallel fit: every rank must pass the same X, but the ranks passed "
            f"shapes {shapes} (rank order). Pass distributed=False to fit each rank on "
            "its own data."
        )


#: The shape a rank that failed before the shape check sends to it.
FAILED = (-1, -1)

#: Per thread, whether the fit running there has reached the shape check.
_reached = threading.local()


@contextlib.contextmanager
def failing_together(setting, device):
    """Run a fit so that an error a rank raises before the ranks' first
    collective call (:func:`check_same_shape`), such as a refusal of its X,
    joins that call with a sentinel: the other ranks then raise too, where
    they had waited for the rank that was gone. Alone (no shard), nothing.
    ``setting`` and ``device`` are the estimator's parameters."""
    outer, _reached.check = getattr(_reached, "check", True), False
    try:
        yield
    except Exception:
        if not _reached.check:
            with contextlib.suppress(Exception):  # this rank's own error is the one to say
                device = resolve_device(device)
                shard = current_shard(setting, device)
                if shard is not None:
                    check_same_shape(None, shard, rank_device(device))
        raise
    finally:
        _reached.check = outer


def shared_seed(seed, device):
    """Rank 0's ``seed`` (an int below 2**62) on every rank."""
    value = torch.tensor(seed, dtype=torch.int64, device=device)
    torch.distributed.broadcast(value, src=0)
    return int(value.item())


def same_on_ranks(shape, seeds, setting, device, *, share_seeds):
    """For a fit of estimators with ``distributed=setting`` on ``device``
    (the detector's inner models): on the data-parallel ranks it joins
    (:func:`current_shard`), X's ``shape`` checked to agree on every rank
    (the first collective call, which :func:`failing_together` joins), and
    ``seeds`` (ints below 2**62) as rank 0 drew them where ``share_seeds``;
    alone, ``seeds`` as they are."""
    device = resolve_device(device)
    shard = current_shard(setting, device)
    if shard is None:
        return seeds
    device = rank_device(device)  # each rank's own GPU, as training's collectives use
    check_same_shape(shape, shard, device)
    return [shared_seed(seed, device) for seed in seeds] if share_seeds else seeds
