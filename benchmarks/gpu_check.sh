#!/usr/bin/env bash
# The GPU check: run it whenever a CUDA GPU is available. Every step has its
# own time limit: 360 s in all on one GPU, 450 s with several (plus the import
# check of each CUDA test file, a few seconds each), well inside 8 minutes.
#
#   1. the CUDA tests (the test files that hold `pytest.mark.cuda` tests, run
#      with -m cuda; a file whose imports are missing here is skipped with a note);
#   2. training speed on the GPU: skae's Autoencoder against the plain torch loop
#      on the same GPU (and its levers, and skorch when installed), with MFU
#      against torch.mm's measured float32 peak on that GPU (bench_speed.py);
#   3. transform throughput on the GPU against the plain torch encoder
#      (bench_transform.py);
#   4. with more than one GPU visible, a DistributedDataParallel smoke test on
#      nccl: torchrun with 1 and N processes, one GPU each, same global batch
#      (bench_distributed.py); skipped with one GPU.
#
# It needs only a checkout and a python with torch, scikit-learn, scipy,
# safetensors and tqdm (no virtualenv, no network, no ../shared): skae is taken
# from the checkout (PYTHONPATH), MNIST from $SKAE_MNIST, and pytest, if that
# python lacks it, from gpu_data/site. Prepare both on a machine with the
# project's virtualenv and ../shared, then send the ignored folder gpu_data/
# (about 20 MB) with the checkout:
#
#   benchmarks/gpu_check.sh --prepare           # fills gpu_data/ (run here)
#   PYTHON=python3 benchmarks/gpu_check.sh      # on the GPU machine
#   GPU_CHECK_DRY_RUN=1 benchmarks/gpu_check.sh # CI: the same steps and arguments
#       on the CPU with tiny sizes and a tiny synthetic MNIST, so that an import
#       or argument error fails CI instead of the GPU's one chance
#
# Results (JSON and Markdown, with the GPU named) and the logs go to
# benchmarks/results/gpu/ (the dry run's to $TMPDIR/skae_gpu_check_dry_run/;
# GPU_CHECK_OUT chooses another folder). A failed step
# is reported and the others run; the exit status is 1 if any step failed.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
DRY=${GPU_CHECK_DRY_RUN:-0}
SITE=gpu_data/site

if [ "${1:-}" = "--prepare" ]; then
  set -e
  mkdir -p gpu_data
  cp ../shared/data/mnist_trainval.npz gpu_data/mnist_trainval.npz
  # pytest and its dependencies are pure Python: the same files work on the
  # GPU machine's python, which finds them only if it has no pytest of its own
  "$PYTHON" -m pip install -q --no-deps --target "$SITE" -c constraints.txt \
    pytest pluggy iniconfig packaging pygments
  du -sh gpu_data
  exit 0
fi

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PYTHON" -c "import pytest" 2> /dev/null && [ -d "$SITE" ]; then
  export PYTHONPATH="$PYTHONPATH:$PWD/$SITE"
fi

if [ "$DRY" = 1 ]; then
  # the same steps and arguments on the CPU, with tiny sizes
  OUT=${GPU_CHECK_OUT:-${TMPDIR:-/tmp}/skae_gpu_check_dry_run}
  DEVICE=cpu GPUS=2 SPEED_ROWS=256 ROUNDS=1 REPEATS=1 DDP_ROWS=512 DDP_EPOCHS=1
  # a loaded 2-core CI machine is slower than the GPU machine at the same
  # steps (torchrun launches, torch.mm's peak, imports): three times the limits
  LIMIT_FACTOR=${GPU_CHECK_LIMIT_FACTOR:-3}
  mkdir -p "$OUT"
  SKAE_MNIST=$OUT/tiny_mnist.npz
  "$PYTHON" -c "
import sys, numpy as np
rng = np.random.default_rng(0)
X = lambda n: rng.integers(0, 256, size=(n, 784), dtype=np.uint8)
y = lambda n: rng.integers(0, 10, size=n)
np.savez(sys.argv[1], X_train=X(1000), y_train=y(1000), X_valid=X(200), y_valid=y(200))
" "$SKAE_MNIST" || exit 1
  echo "dry run on the CPU with tiny sizes (GPU_CHECK_DRY_RUN=1)" | tee "$OUT/summary.txt"
else
  OUT=${GPU_CHECK_OUT:-benchmarks/results/gpu}
  DEVICE=cuda SPEED_ROWS=50000 ROUNDS=5 REPEATS=5 DDP_ROWS=50000 DDP_EPOCHS=3
  LIMIT_FACTOR=${GPU_CHECK_LIMIT_FACTOR:-1}
  SKAE_MNIST=${SKAE_MNIST:-gpu_data/mnist_trainval.npz}
  mkdir -p "$OUT"
  if ! "$PYTHON" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
    echo "no CUDA device visible to torch: nothing to check" | tee "$OUT/summary.txt"
    exit 1
  fi
  nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
  GPUS=$("$PYTHON" -c "import torch; print(torch.cuda.device_count())")
  echo "GPUs visible: $GPUS" | tee "$OUT/summary.txt"
fi
export SKAE_MNIST
if [ ! -f "$SKAE_MNIST" ]; then
  echo "MNIST not found at SKAE_MNIST=$SKAE_MNIST: run benchmarks/gpu_check.sh --prepare" \
    | tee -a "$OUT/summary.txt"
  exit 1
fi
"$PYTHON" -c "import sys, torch, sklearn, skae; print('python', sys.version.split()[0], \
'torch', torch.__version__, 'scikit-learn', sklearn.__version__, 'skae', skae.__version__)" \
  | tee -a "$OUT/summary.txt"

status=0
note() { echo "$*" | tee -a "$OUT/summary.txt"; }
step() {  # step NAME SECONDS COMMAND...: run with a time limit, log, record the outcome
  local name=$1 limit=$(($2 * LIMIT_FACTOR))
  shift 2
  echo "+ $*"
  local start=$SECONDS
  timeout -k 10 "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  tail -n 25 "$OUT/$name.log"
  note "$name: exit $rc after $((SECONDS - start)) s (limit $limit s)"
  [ "$rc" -eq 0 ] || status=1
}

# 1. the CUDA tests, file by file: a file that cannot be imported for want of
#    an optional package (not of skae) is skipped with a note
cuda_files=()
if ! "$PYTHON" -c "import pytest" 2> /dev/null; then
  note "pytest_cuda: skipped (no pytest: run benchmarks/gpu_check.sh --prepare)"
else
  for file in $(grep -l "pytest.mark.cuda" tests/test_*.py); do
    missing=$(timeout 60 "$PYTHON" -m pytest --collect-only -q -o addopts= -p no:cacheprovider \
      "$file" 2>&1 | grep -o "No module named '[^']*'" | grep -v "'skae" | head -n 1)
    if [ -n "$missing" ]; then note "pytest_cuda: $file skipped ($missing)"; else cuda_files+=("$file"); fi
  done
  if [ "${#cuda_files[@]}" -eq 0 ]; then
    note "pytest_cuda: skipped (no test file could be imported)"
    status=1
  else
    step pytest_cuda 120 "$PYTHON" -m pytest -m cuda -o addopts= -ra -q -p no:cacheprovider \
      "${cuda_files[@]}"
  fi
fi

# 2. and 3. the benchmarks (skorch is a peer only where it is installed)
"$PYTHON" -c "import skorch" 2> /dev/null || note "bench_speed: skorch not installed, its row is skipped"
step bench_speed 150 "$PYTHON" benchmarks/bench_speed.py --device "$DEVICE" --regimes mnist \
  --mnist "$SKAE_MNIST" --mnist-rows "$SPEED_ROWS" --rounds "$ROUNDS" --no-compile \
  --results-dir "$OUT"
step bench_transform 90 "$PYTHON" benchmarks/bench_transform.py --device "$DEVICE" \
  --mnist "$SKAE_MNIST" --skip-memory --repeats "$REPEATS" --results-dir "$OUT"

# 4. DDP, one GPU per process (the dry run launches two CPU processes on gloo)
if [ "$GPUS" -gt 1 ]; then
  step ddp 90 "$PYTHON" benchmarks/bench_distributed.py --device "$DEVICE" \
    --mnist "$SKAE_MNIST" --rows "$DDP_ROWS" --processes "1,$GPUS" --epochs "$DDP_EPOCHS" \
    --results-dir "$OUT"
else
  note "ddp: skipped (one GPU visible)"
fi
note "GPU check finished after $SECONDS s with status $status"
exit $status
