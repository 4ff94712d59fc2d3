"""Process-wide torch settings that overlapping callers share: the CPU thread
count for small steps and torch's deterministic algorithms. Torch only: the
engine, the estimators' inference and the progress display use them.
"""

import os
import threading
from contextlib import contextmanager, nullcontext

import torch

#: Below this many floating-point operations per training step (about
#: 6 x batch size x parameters), the CPU trains on one thread: at that size the
#: step is dominated by dispatch, and a second OpenMP thread only adds
#: synchronisation (measured on 2 cores: no gain at 2e6-5e7 FLOPs per step, and
#: 3-17x slower when another process holds a core).
SMALL_STEP_FLOPS = 5e7


def step_flops(module, n_rows, *, training=True):
    """Rough floating-point operations of one step on ``n_rows`` rows: 2 per
    parameter and row forward, 6 with the backward pass."""
    n_params = sum(p.numel() for p in module.parameters())
    return (6 if training else 2) * n_rows * n_params


def cpu_threads_for(flops, device):
    """Run steps of fewer than ``SMALL_STEP_FLOPS`` on one CPU thread,
    restoring torch's setting after (a context manager).

    The thread count is partly per thread (OpenMP) and partly process-wide
    (what new threads start with): each caller sets and restores its own
    thread, and overlapping callers all restore the value the first of them
    found, so that none restores another's temporary 1. (Even a one-row step
    needs it: MKL threads a 1 x 64 x 256 matmul, and a second thread held by
    another process made it 10x slower, measured under load.)
    """
    if flops >= SMALL_STEP_FLOPS or torch.device(device).type != "cpu":
        return nullcontext()
    return _OneThread()


class _OneThread:
    """:func:`cpu_threads_for`'s one thread (a class, not a generator: a
    one-row ``transform`` spends much of its time entering contexts)."""

    def __enter__(self):
        self._previous = _thread_count.enter()
        torch.set_num_threads(1)

    def __exit__(self, *exc_info):
        try:
            torch.set_num_threads(self._previous)
        finally:
            _thread_count.leave()


class SharedSetting:
    """A process-wide setting that overlapping users share: the first to
    enter applies it, the last to leave puts back what was there before.

    Saving and restoring per call would go wrong when calls from several
    threads overlap (A enters, B enters and saves A's value, A leaves, B
    leaves and restores A's value for good).

    Parameters
    ----------
    apply : callable
        ``apply() -> previous``: switch the setting on; returns what to restore.
    restore : callable
        ``restore(previous)``.
    """

    def __init__(self, apply, restore):
        self._apply, self._restore = apply, restore
        self._lock = threading.Lock()
        self._users = 0
        self._previous = None

    @contextmanager
    def __call__(self):
        """Yields what the first user's ``apply`` returned."""
        previous = self.enter()
        try:
            yield previous
        finally:
            self.leave()

    def enter(self):
        """Become a user; returns what the first user's ``apply`` returned."""
        with self._lock:
            if self._users == 0:
                self._previous = self._apply()
            self._users += 1
            return self._previous

    def leave(self):
        """Stop being a user (each :meth:`enter` needs one)."""
        with self._lock:
            self._users -= 1
            if self._users == 0:
                self._restore(self._previous)
                self._previous = None


def _deterministic_on():
    cudnn = torch.backends.cudnn
    previous = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        cudnn.deterministic,
        cudnn.benchmark,
    )
    torch.use_deterministic_algorithms(True)
    cudnn.deterministic, cudnn.benchmark = True, False
    return previous


def _deterministic_restore(previous):
    enabled, warn_only, cudnn_deterministic, cudnn_benchmark = previous
    torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
    torch.backends.cudnn.deterministic = cudnn_deterministic
    torch.backends.cudnn.benchmark = cudnn_benchmark


_deterministic = SharedSetting(_deterministic_on, _deterministic_restore)

#: the thread count found by the first of overlapping callers of cpu_threads_for
_thread_count = SharedSetting(torch.get_num_threads, lambda previous: None)


def deterministic_algorithms(enabled, device="cpu"):
    """torch's deterministic algorithms and deterministic cuDNN while the block
    runs, when ``enabled`` (a context manager, that does nothing otherwise);
    the previous settings come back when the last overlapping block ends.

    They are process-wide settings, so other threads running torch meanwhile
    get them too. On CUDA, cuBLAS needs ``CUBLAS_WORKSPACE_CONFIG`` for
    deterministic matmuls: it is set to ``:4096:8`` when unset, which works
    only if cuBLAS has not been initialised in this process yet.
    """
    return _deterministic_algorithms(device) if enabled else nullcontext()


@contextmanager
def _deterministic_algorithms(device):
    if not str(device).startswith("cpu") and torch.cuda.is_available():
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    with _deterministic():
        yield


def _float32_default():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    return previous


#: torch's default dtype at float32 while skae builds or trains its networks
#: (float32 whatever the caller's default: a float64 one made float64 layers
#: that float32 batches could not pass)
float32_default = SharedSetting(_float32_default, torch.set_default_dtype)


@contextmanager
def training(deterministic, device, distributed=False):
    """What ``fit`` and ``partial_fit`` run under, whatever the caller's torch
    state: gradients on and inference mode off (a fit within ``torch.no_grad()``
    or ``torch.inference_mode()`` trains), :data:`float32_default`, and
    :func:`deterministic_algorithms` when ``deterministic``. The default dtype
    is process-wide, as the deterministic flags: other threads creating tensors
    while a fit runs get float32 (a change only where the caller set float64).
    Data-parallel ranks fail together (``distributed``, the estimator's
    parameter: :func:`skae._distributed.failing_together`)."""
    from ._distributed import failing_together  # it imports the engine, which imports this

    with torch.inference_mode(False), torch.enable_grad(), float32_default():
        with deterministic_algorithms(deterministic, device), failing_together(distributed, device):
            yield
