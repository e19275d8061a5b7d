#!/usr/bin/env bash
# The GPU round of bench_train.py, as run on a lent GPU machine with no TensorFlow and no network
# (benchmarks/README.md, "GPU"). Keras runs on its JAX backend there; what that machine lacks
# travels as wheels in .whl/ (keras, its small dependencies, and this project built with
# `pip wheel --no-deps . -w .whl`), and MNIST in .gpu/data/mnist (a copy of ../shared/data/mnist).
# Figures go to $OUT (or benchmarks/results/ when OUT is unset).
set -euo pipefail
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3
out=${OUT:-benchmarks/results}
budget=${BUDGET_S:-300}
nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv | tee "$out/gpu_machine.txt"
nproc | sed 's/^/CPU cores: /' | tee -a "$out/gpu_machine.txt"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site KERAS_BACKEND=jax
python3 -c "import jax, keras; print('python', __import__('sys').version.split()[0], 'keras', keras.__version__,
'jax', jax.__version__, jax.devices())" | tee -a "$out/gpu_machine.txt"
# 12 epochs (the canonical run), 3 seeds, RUNS consecutive times: bare Keras (float32, Keras'
# defaults: XLA on JAX) vs the harness's defaults (on a GPU: float32, XLA, 8 steps per execution),
# plus VARIANTS (e.g. bf16, fp32); the test set scored after every epoch for the time to 99 %.
for run in $(seq "${FIRST_RUN:-1}" "${LAST_RUN:-1}"); do
    python3 benchmarks/bench_train.py --backend jax --data-dir .gpu/data/mnist --epochs 12 --seeds 3 \
        --variants "${VARIANTS:-bare,harness}" --time-to 0.99 --budget-s "$budget" \
        --json "$out/bench_train_gpu_12ep_run$run.json" 2>&1 | tee "$out/bench_train_gpu_12ep_run$run.txt"
done
