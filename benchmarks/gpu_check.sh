#!/usr/bin/env bash
# The engine's GPU check, one command on a CUDA machine (no streamlit/plotly/internet needed):
#   bash benchmarks/gpu_check.sh
# 1. the GPU tests and the sync and graph tests  → $OUT/tests.log
# 2. benchmarks/bench_gpu.py (the table)          → $OUT/bench.log
# Each step runs under its own time limit and a failure does not stop the next one; the whole
# stays under 5 minutes. The exit status is the first non-zero one. Without $OUT the logs go
# to ./gpu_check_out. On a CPU it runs too: CUDA tests skip, the bench prints its CPU rows.
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu_check_out}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
status=0

{
    date -u
    "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'device', torch.cuda.get_device_name() if torch.cuda.is_available() else 'none')"
    nvidia-smi --query-gpu=name,memory.used,memory.total,utilization.gpu --format=csv || true
} 2>&1 | tee "$OUT/env.log"

# -p no:cacheprovider: the checkout may be read-only
timeout 110 "$PY" -m pytest -q -p no:cacheprovider -rs \
    tests/test_gpu.py tests/test_graphs.py tests/test_syncs.py 2>&1 | tee "$OUT/tests.log"
rc=${PIPESTATUS[0]}
echo "pytest exit status: $rc" | tee -a "$OUT/tests.log"
[ "$status" -eq 0 ] && status=$rc

timeout 170 "$PY" -u benchmarks/bench_gpu.py 2>&1 | tee "$OUT/bench.log"
rc=${PIPESTATUS[0]}
echo "bench_gpu exit status: $rc (124: cut by its time limit, rows above are complete)" \
    | tee -a "$OUT/bench.log"
[ "$status" -eq 0 ] && status=$rc
exit "$status"
