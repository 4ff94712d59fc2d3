#!/usr/bin/env bash
# Every benchmark in its quick mode (CI runs this after the README's commands).
# Results go to benchmarks/results/quick/, never over the published full results.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -c constraints.txt -e ".[bench,onnx]"
for script in bench_speed bench_transform bench_scaling bench_quality bench_penalty_weights bench_outliers bench_onnx bench_memory bench_distributed bench_sparse bench_defaults bench_impute bench_fit_cost; do
  echo "+ .venv/bin/python benchmarks/$script.py --quick"
  .venv/bin/python "benchmarks/$script.py" --quick
done
# the --seeds path too (means over seeds), on the smallest data set
echo "+ .venv/bin/python benchmarks/bench_defaults.py --quick --datasets wine --ks 2 --estimators Autoencoder --seeds 0,1 --name bench_defaults_seeds"
.venv/bin/python benchmarks/bench_defaults.py --quick --datasets wine --ks 2 --estimators Autoencoder --seeds 0,1 --name bench_defaults_seeds
# the GPU check's steps and argument lists on the CPU with tiny sizes, so that an
# import or argument error fails here and not on the GPU (benchmarks/gpu_check.sh)
echo "+ GPU_CHECK_DRY_RUN=1 PYTHON=.venv/bin/python benchmarks/gpu_check.sh"
GPU_CHECK_DRY_RUN=1 PYTHON=.venv/bin/python benchmarks/gpu_check.sh
