"""Data larger than memory: a read-only ``np.memmap`` is trained on and
transformed without a copy of the whole input, and ``partial_fit`` over chunks
read from a file keeps memory flat.

- validation passes float32 and float64 memory maps through uncopied, and the
  engine reads them batch by batch (:class:`skae._rows.ArrayRows`);
- the model is the one the same rows in memory give, bit for bit;
- in a fresh process, fitting and transforming a 400 MB memory map raises the
  peak resident memory by far less than the input (the file's pages are made
  resident first, so the peak counts what fit and transform allocate).
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.utils.validation import validate_data

from skae import Autoencoder, DenoisingAutoencoder, _rows, _validation

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SMALL = dict(n_components=3, hidden_layer_sizes=(8,), batch_size=32, random_state=0, device="cpu")


def memmap_of(X, path, dtype):
    """``X`` saved as ``.npy`` and opened read-only as a memory map."""
    np.save(path, X.astype(dtype))
    return np.load(path, mmap_mode="r")


def weights(est):
    return [t.detach().numpy() for t in est.module_.state_dict().values()]


@pytest.fixture
def digits():
    return load_digits().data[:300] / 16


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_validation_passes_a_memmap_through_and_the_engine_reads_it_in_batches(
    tmp_path, digits, dtype
):
    X = memmap_of(digits, tmp_path / "X.npy", dtype)
    validated = validate_data(Autoencoder(), X, dtype=_validation.FLOAT_DTYPES)
    assert np.shares_memory(validated, X) and not validated.flags.writeable
    rows = _rows.training_rows(validated, torch.device("cpu"))
    assert isinstance(rows, _rows.ArrayRows)
    batch = rows.take(torch.tensor([5, 0, 7]))
    assert batch.dtype == torch.float32
    np.testing.assert_array_equal(batch.numpy(), digits[[5, 0, 7]].astype(np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "cls, params",
    [
        (Autoencoder, {}),
        (Autoencoder, dict(early_stopping=True, shuffle=False)),
        (Autoencoder, dict(pretraining="greedy", hidden_layer_sizes=(16, 8))),
        (DenoisingAutoencoder, {}),
    ],
    ids=["plain", "early-stopping-no-shuffle", "greedy", "denoising"],
)
def test_fit_on_a_memmap_equals_fit_in_memory(tmp_path, digits, dtype, cls, params):
    X = memmap_of(digits, tmp_path / "X.npy", dtype)
    on_disk = cls(**{**SMALL, **params, "max_iter": 3}).fit(X)
    in_memory = cls(**{**SMALL, **params, "max_iter": 3}).fit(np.array(X))
    assert on_disk.loss_curve_ == in_memory.loss_curve_
    for a, b in zip(weights(on_disk), weights(in_memory), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(on_disk.transform(X), in_memory.transform(np.array(X)))


def test_partial_fit_over_file_chunks_equals_in_memory_chunks(tmp_path, digits):
    X = memmap_of(digits, tmp_path / "X.npy", np.float32)
    on_disk, in_memory = Autoencoder(**SMALL), Autoencoder(**SMALL)
    for start in range(0, len(X), 64):
        on_disk.partial_fit(X[start : start + 64])  # a memory-mapped chunk
        in_memory.partial_fit(np.array(X[start : start + 64]))
    assert on_disk.n_iter_ == 5
    for a, b in zip(weights(on_disk), weights(in_memory), strict=True):
        np.testing.assert_array_equal(a, b)


def test_an_array_too_big_to_copy_is_read_in_batches(digits, monkeypatch):
    """float64 input is trained in float32; when that copy would take more
    than MAX_COPY_FRACTION of the available memory, batches are converted one
    by one instead, with the same result."""
    copied = Autoencoder(**SMALL, max_iter=2).fit(digits)
    monkeypatch.setattr(_rows, "available_memory", lambda: 1000)
    assert isinstance(_rows.training_rows(digits, torch.device("cpu")), _rows.ArrayRows)
    in_batches = Autoencoder(**SMALL, max_iter=2).fit(digits)
    for a, b in zip(weights(copied), weights(in_batches), strict=True):
        np.testing.assert_array_equal(a, b)
    # float32, C-contiguous and writeable: shared, never copied, whatever the size
    shared = _rows.training_rows(digits.astype(np.float32), torch.device("cpu"))
    assert isinstance(shared, _rows.TensorRows)


def test_an_array_too_big_to_copy_gets_its_pca_start_block_by_block(digits, monkeypatch):
    """The PCA start of an in-memory array that training reads in batches
    (its copy would not fit) reads it block by block, as a memory map's (it
    was copied whole in float64, twice the float32 copy training had
    refused: 134 MB peak against 17 MB for the same rows memory-mapped,
    40,000 x 400)."""
    from skae import _pca_start

    calls = []
    blockwise = _pca_start._incremental_pca
    monkeypatch.setattr(_pca_start, "MAX_WHOLE_VALUES", 1000)  # digits is past it
    monkeypatch.setattr(
        _pca_start, "_incremental_pca", lambda *a, **k: calls.append(1) or blockwise(*a, **k)
    )
    Autoencoder(**SMALL, max_iter=1).fit(digits)
    assert calls == []  # an array that fits is the PCA a user would fit
    monkeypatch.setattr(_rows, "available_memory", lambda: 1000)
    est = Autoencoder(**SMALL, max_iter=1).fit(digits)
    assert calls == [1]
    assert np.isfinite(est.transform(digits)).all()
    # float32 that training shares whatever the memory: the PCA a user would
    # fit, as training decides (a rule of the start's own had made two fits
    # of one array differ by up to 4 with the free memory)
    Autoencoder(**SMALL, max_iter=1).fit(digits.astype(np.float32))
    assert calls == [1]


MEMMAP_SCRIPT = """
    import ctypes, gc, json, sys, warnings
    import numpy as np
    warnings.simplefilter("ignore")
    from skae import Autoencoder

    path, n_rows, n_features = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_rows, n_features))
    rng = np.random.default_rng(0)
    for start in range(0, n_rows, 8192):
        X[start : start + 8192] = rng.random((min(8192, n_rows - start), n_features), np.float32)
    X.flush()
    del X
    X = np.load(path, mmap_mode="r")

    def status(key):
        with open("/proc/self/status") as f:
            line = next(line for line in f if line.startswith(key + ":"))
        return int(line.split()[1]) * 1024  # kB

    def reset_peak():
        gc.collect()
        ctypes.CDLL(None).malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return status("VmRSS")

    def est():
        # without early stopping: its validation pass adds its inference
        # blocks (bounded, about 60 MB at this width), not a copy of X
        return Autoencoder(n_components=2, hidden_layer_sizes=(), batch_size=1024,
                           max_iter=1, early_stopping=False, random_state=0, device="cpu")

    float(X.sum(dtype=np.float64))  # the file's pages resident: the peak then counts allocations
    model = est().fit(np.array(X[:4096]))  # one-off allocations (threads, kernels) first,
    est().fit(X[:16384])  # and those of a memory map's (the PCA start's IncrementalPCA)
    model.transform(X[:4096])
    out = {"input": X.nbytes}
    before = reset_peak()
    model = est().fit(X)
    out["fit"] = status("VmHWM") - before
    before = reset_peak()
    Z = model.transform(X)
    out["transform"] = status("VmHWM") - before
    out["output"] = Z.nbytes
    before = reset_peak()
    chunk, peaks = 8192, []
    with open(path, "rb") as f:
        f.seek(X.offset)  # past the .npy header
        for start in range(0, n_rows, chunk):  # chunks read from the file into memory
            rows = min(chunk, n_rows - start)
            block = np.fromfile(f, dtype=np.float32, count=rows * n_features)
            model.partial_fit(block.reshape(rows, n_features))
            peaks.append(status("VmHWM") - before)
    out["partial_fit"] = peaks
    out["chunk"] = chunk * n_features * 4
    print(json.dumps(out))
"""

#: What fit, transform and partial_fit may allocate beyond their output:
#: batches, the module, torch's workspace. A copy of the input would be 400 MB.
ALLOWED = 100 * 2**20
#: fit's and partial_fit's allowance adds the PCA start's, bounded whatever
#: the file's size: PCA of at most 2^23 values (fit reads a subsample of a
#: memory map in small blocks; the first partial_fit chunk is PCA'd whole,
#: with its float32 copies and SVD factors). Measured 16-30 MB above
#: init="random"'s fit at this width, and partial_fit peaks up to 183 MB
#: (within 2 chunks + ALLOWED + 13 MB); a copy of the file would add 400 MB.
FIT_ALLOWED = ALLOWED + 64 * 2**20


@pytest.mark.slow  # writes a 400 MB file and fits on it in another process
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_fit_transform_and_partial_fit_on_a_400_mb_file_do_not_copy_it(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(MEMMAP_SCRIPT), str(tmp_path / "X.npy"), "100000"]
        + ["1000"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["input"] == 400_000_000
    assert out["fit"] < FIT_ALLOWED, out
    assert out["transform"] < out["output"] + ALLOWED, out
    peaks = out["partial_fit"]
    assert len(peaks) == 13 and peaks[-1] < 2 * out["chunk"] + FIT_ALLOWED, out
    # flat after the first calls: the heap may settle a chunk or so higher
    # once, where keeping each call's input would add 13 chunks (426 MB)
    assert peaks[-1] - peaks[2] < 2 * out["chunk"], out


def _fake_root(tmp_path, files):
    """A file system root holding ``files`` (path -> text)."""
    for path, text in files.items():
        target = tmp_path / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return str(tmp_path)


MEMINFO = {"/proc/meminfo": "MemTotal: 32000000 kB\nMemAvailable: 20000000 kB\n"}


@pytest.mark.parametrize(
    "files, expected",
    [
        ({}, None),
        (MEMINFO, 20_000_000 * 1024),
        (  # a container (cgroup v2): its limit less its usage, below MemAvailable
            {
                **MEMINFO,
                "/proc/self/cgroup": "0::/\n",
                "/sys/fs/cgroup/memory.max": "1000000000\n",
                "/sys/fs/cgroup/memory.current": "250000000\n",
            },
            750_000_000,
        ),
        (  # no limit
            {
                **MEMINFO,
                "/proc/self/cgroup": "0::/\n",
                "/sys/fs/cgroup/memory.max": "max\n",
                "/sys/fs/cgroup/memory.current": "250000000\n",
            },
            20_000_000 * 1024,
        ),
        (  # cgroup v1, the process's own group
            {
                **MEMINFO,
                "/proc/self/cgroup": "4:memory:/docker/abc\n0::/\n",
                "/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "2000000000\n",
                "/sys/fs/cgroup/memory/docker/abc/memory.usage_in_bytes": "500000000\n",
            },
            1_500_000_000,
        ),
        (  # cgroup v1 without a limit: a page-rounded 2**63
            {
                **MEMINFO,
                "/proc/self/cgroup": "4:memory:/\n",
                "/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
                "/sys/fs/cgroup/memory/memory.usage_in_bytes": "500000000\n",
            },
            20_000_000 * 1024,
        ),
    ],
    ids=["nothing", "meminfo", "v2-limit", "v2-max", "v1-limit", "v1-unlimited"],
)
def test_available_memory_sees_a_containers_limit(tmp_path, files, expected):
    """MemAvailable is the machine's; a container's memory limit (its control
    group's) is what a copy must fit in."""
    assert _rows.available_memory(_fake_root(tmp_path, files)) == expected
