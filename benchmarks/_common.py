"""Helpers shared by the benchmark scripts: hardware and versions, timing with
medians, data loading, peak memory in a subprocess, and writing results as
JSON plus a Markdown table.

Every number a script writes comes from the run that wrote it.
"""

import argparse
import datetime
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
#: MNIST's file: $SKAE_MNIST when set (the GPU check sends a copy with the
#: checkout), else the project's shared data folder.
DEFAULT_MNIST = Path(
    os.environ.get("SKAE_MNIST", REPO_ROOT.parent / "shared" / "data" / "mnist_trainval.npz")
)

if str(REPO_ROOT) not in sys.path:  # run as `python benchmarks/x.py` from a checkout
    sys.path.insert(0, str(REPO_ROOT))


# ----------------------------------------------------------------- hardware


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware_info():
    """CPU, cores, library versions, date and the command line of this run."""
    import sklearn
    import torch

    import skae

    info = {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_num_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "skae": skae.__version__,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "loadavg_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
    }
    try:  # the skae code measured: commit and whether skae/ had uncommitted edits
        head = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "skae"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        info["git_commit"] = head or None
        info["skae_uncommitted_changes"] = bool(dirty)
    except (OSError, subprocess.SubprocessError):
        pass
    if torch.cuda.is_available():
        info["cuda_devices"] = [
            torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())
        ]
        info["cuda_version"] = torch.version.cuda
    try:
        import skorch

        info["skorch"] = skorch.__version__
    except ImportError:
        pass
    try:
        info["memory_gb"] = round(
            os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1
        )
    except (ValueError, OSError):
        pass
    return info


# ------------------------------------------------------------------- timing


def timed(fn):
    """Seconds one call of ``fn()`` takes, and its return value."""
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def median_time(fn, repeats=5, warmup=1):
    """Median seconds of ``repeats`` calls of ``fn()`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    return float(np.median([timed(fn)[0] for _ in range(repeats)]))


def synchronize(device):
    """Wait for the work queued on ``device`` (a no-op on the CPU): timers
    around CUDA work measure it, not its launch."""
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak_flops(sizes=(1024, 2048, 3072), repeats=5, device="cpu"):
    """Measured float32 ``torch.mm`` throughput on square matrices (FLOP/s):
    the best median over ``sizes``, with the figure per size."""
    import torch

    per_size = {}
    for n in sizes:
        a = torch.randn(n, n, device=device)
        b = torch.randn(n, n, device=device)

        def mm(a=a, b=b):
            torch.mm(a, b)
            synchronize(device)

        t = median_time(mm, repeats=repeats, warmup=2)
        per_size[n] = 2 * n**3 / t
    return max(per_size.values()), {str(k): v for k, v in per_size.items()}


# --------------------------------------------------------------------- data


def load_mnist(path=DEFAULT_MNIST):
    """MNIST as float32 in [0, 1]: X_train (50000), y_train, X_valid (10000), y_valid.

    Reads the project's ``mnist_trainval.npz``; falls back to OpenML's
    ``mnist_784`` (first 50000 rows train, next 10000 valid) only when the
    file is missing.
    """
    path = Path(path)
    if path.exists():
        with np.load(path) as d:
            X_train, y_train = d["X_train"], d["y_train"]
            X_valid, y_valid = d["X_valid"], d["y_valid"]
        source = str(path)
    else:
        from sklearn.datasets import fetch_openml

        X, y = fetch_openml("mnist_784", return_X_y=True, as_frame=False)
        y = y.astype(np.int64)
        X_train, y_train, X_valid, y_valid = X[:50000], y[:50000], X[50000:60000], y[50000:60000]
        source = "openml:mnist_784"
    scale = np.float32(1 / 255)
    return {
        "X_train": X_train.astype(np.float32) * scale,
        "y_train": np.asarray(y_train),
        "X_valid": X_valid.astype(np.float32) * scale,
        "y_valid": np.asarray(y_valid),
        "source": source,
    }


def load_digits_split(random_state=0, test_size=0.25):
    """scikit-learn's digits scaled by 1/16 (float32), split into a training
    part and a held-out part that training never sees (stratified)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    X_train, X_valid, y_train, y_valid = train_test_split(
        X, y, test_size=test_size, random_state=random_state, stratify=y
    )
    return {
        "X_train": X_train,
        "y_train": y_train,
        "X_valid": X_valid,
        "y_valid": y_valid,
        "source": "sklearn.datasets.load_digits",
    }


def standardised_split(X, y, test_size, *, stratify=True, random_state=0):
    """``X_train``, ``y_train``, ``X_valid``, ``y_valid``: rows held out
    (stratified by ``y`` when asked), both parts standardised with a
    ``StandardScaler`` fitted on the training part alone."""
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X_train, X_valid, y_train, y_valid = train_test_split(
        X, y, test_size=test_size, random_state=random_state, stratify=y if stratify else None
    )
    scaler = StandardScaler().fit(X_train)
    return {
        "X_train": scaler.transform(X_train),
        "y_train": y_train,
        "X_valid": scaler.transform(X_valid),
        "y_valid": y_valid,
    }


def low_rank_data(n_samples, n_features, rank=8, noise=0.05, random_state=0):
    """Synthetic float32 rows near a rank-``rank`` subspace, made in chunks so
    no float64 copy of the whole array is ever held."""
    rng = np.random.default_rng(random_state)
    basis = rng.standard_normal((rank, n_features)).astype(np.float32) / np.sqrt(rank)
    X = np.empty((n_samples, n_features), dtype=np.float32)
    chunk = 65536
    for start in range(0, n_samples, chunk):
        stop = min(start + chunk, n_samples)
        z = rng.standard_normal((stop - start, rank), dtype=np.float32)
        X[start:stop] = z @ basis
        X[start:stop] += noise * rng.standard_normal((stop - start, n_features), dtype=np.float32)
    return X


# ------------------------------------------------------------------- memory


def rss_bytes():
    """Current resident set size of this process."""
    try:
        import psutil

        return psutil.Process().memory_info().rss
    except ImportError:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def reset_peak_rss():
    """Reset this process's peak RSS to its current RSS (Linux >= 4.0, via
    ``/proc/self/clear_refs``); return whether it worked. Without it the peak
    is the process's lifetime peak."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes():
    """Peak resident set size of this process (``VmHWM`` since the last
    :func:`reset_peak_rss`, else ``ru_maxrss``)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def run_worker(script, args, timeout=1800):
    """Run ``python script --worker ARGS_JSON`` in a fresh process and return
    the JSON object it prints on its last stdout line: each case gets its own
    peak RSS."""
    cmd = [sys.executable, str(script), "--worker", json.dumps(args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------- command line


def parse_args(doc, add_arguments=None, *, worker=None, quick_help="small run for CI", argv=None):
    """The command line every benchmark shares, plus its own arguments.

    ``--quick`` (a small run for CI, results under results/quick/),
    ``--results-dir`` (write the results there instead), and, for a script
    that measures in fresh processes, the hidden ``--worker SPEC``: then
    ``worker(json.loads(SPEC))`` runs and None is returned, so that ``main``
    returns at once. ``add_arguments(parser)`` adds the script's own.
    """
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--results-dir", default=None, help="write the results here instead")
    if worker is not None:
        parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    if worker is not None and args.worker:
        worker(json.loads(args.worker))
        return None
    return args


def start():
    """The hardware and versions of this run, printed; the dict for the results."""
    hardware = hardware_info()
    print(hardware, flush=True)
    return hardware


# ------------------------------------------------------------------ results


def results_dir(quick, folder=None):
    """results/, results/quick/ with ``quick``, or ``folder`` when given."""
    d = Path(folder) if folder else BENCH_DIR / "results" / ("quick" if quick else "")
    d.mkdir(parents=True, exist_ok=True)
    return d


def fmt(value, digits=3):
    if value is None:
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return str(value)
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.{digits}g}"
        return f"{value:.{digits}f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def markdown_table(rows, columns, headers=None):
    """A Markdown table of ``rows`` (dicts) over ``columns`` (keys)."""
    headers = headers or columns
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(fmt(row.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def hardware_markdown(info):
    keys = [
        "cpu_model",
        "cpu_count",
        "torch_num_threads",
        "memory_gb",
        "loadavg_1_5_15",
        "torch",
        "sklearn",
        "numpy",
        "skae",
        "git_commit",
        "skae_uncommitted_changes",
        "skorch",
        "cuda_devices",
        "cuda_version",
        "python",
        "date",
        "command",
    ]
    return "\n".join(f"- {k}: `{info[k]}`" for k in keys if k in info)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, float) and not np.isfinite(obj):
        return str(obj)
    return obj


def write_results(name, quick, payload, sections, hardware, folder=None):
    """Write ``<name>.json`` (hardware + payload) and ``<name>.md`` (title,
    hardware, then each ``(heading, markdown)`` section) under results/,
    results/quick/ or ``folder``; return the directory."""
    d = results_dir(quick, folder)
    doc = {"benchmark": name, "quick": quick, "hardware": hardware, **payload}
    (d / f"{name}.json").write_text(json.dumps(_jsonable(doc), indent=2) + "\n")
    parts = [f"# {name}{' (quick mode)' if quick else ''}", "", hardware_markdown(hardware), ""]
    for heading, body in sections:
        parts += [f"## {heading}", "", body, ""]
    (d / f"{name}.md").write_text("\n".join(parts))
    print(f"wrote {d / (name + '.json')} and {d / (name + '.md')}")
    return d


def plot_path(name, quick):
    return results_dir(quick) / f"{name}.png"
