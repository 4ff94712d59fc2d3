#!/usr/bin/env bash
# The GPU check: run it whenever a CUDA GPU is available (under 8 minutes on one GPU).
#
#   1. the CUDA tests (pytest -m cuda);
#   2. training speed on the GPU: skae's Autoencoder against the plain torch loop
#      on the same GPU (and its levers, and skorch), with MFU against torch.mm's
#      measured float32 peak on that GPU (bench_speed.py --device cuda);
#   3. transform throughput on the GPU against the plain torch encoder
#      (bench_transform.py --device cuda);
#   4. with more than one GPU visible, a DistributedDataParallel smoke test on
#      nccl: torchrun with 1 and N processes, one GPU each, same global batch
#      (bench_distributed.py --device cuda); skipped with one GPU.
#
# Results (JSON and Markdown, with the GPU named) and the logs go to
# benchmarks/results/gpu/. Each step has a time limit, so that the script ends
# in time even if one step hangs; a failed step is reported and the others run.
#
#   benchmarks/gpu_check.sh            # uses .venv/bin/python
#   PYTHON=python benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
OUT=benchmarks/results/gpu
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if ! "$PYTHON" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
  echo "no CUDA device visible to torch: nothing to check" | tee "$OUT/summary.txt"
  exit 1
fi
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
GPUS=$("$PYTHON" -c "import torch; print(torch.cuda.device_count())")
echo "GPUs visible: $GPUS" | tee "$OUT/summary.txt"

status=0
step() {  # step NAME SECONDS COMMAND...: run with a time limit, log, record the outcome
  local name=$1 limit=$2
  shift 2
  echo "+ $*"
  local start=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  tail -n 25 "$OUT/$name.log"
  echo "$name: exit $rc after $((SECONDS - start)) s (limit $limit s)" | tee -a "$OUT/summary.txt"
  [ "$rc" -eq 0 ] || status=1
}

step pytest_cuda 90 "$PYTHON" -m pytest -m cuda -q -p no:cacheprovider
step bench_speed_cuda 180 "$PYTHON" benchmarks/bench_speed.py --device cuda --regimes mnist \
  --mnist-rows 50000 --rounds 5 --no-compile --results-dir "$OUT"
step bench_transform_cuda 60 "$PYTHON" benchmarks/bench_transform.py --device cuda \
  --skip-memory --repeats 5 --results-dir "$OUT"
if [ "$GPUS" -gt 1 ]; then
  step ddp_nccl 120 "$PYTHON" benchmarks/bench_distributed.py --device cuda \
    --processes "1,$GPUS" --epochs 3 --results-dir "$OUT"
else
  echo "ddp_nccl: skipped (one GPU visible)" | tee -a "$OUT/summary.txt"
fi
exit $status
