#!/usr/bin/env bash
# The prepared paper-route check for a session that is lent a GPU (issue 16): one call, under
# 10 minutes on one GPU. Writes everything under $OUT (default: gpu_check/), prints a summary.
#
#   OUT=/tmp/gpu bash benchmarks/gpu_check.sh
#
# 1. the device, the driver and both torch versions (the device image's may differ from the pin)
# 2. engine.train throughput at paper size: ICVL-format PNGs, then the crop cache, then the cache
#    with torch.compile (samples/s, data samples/s per worker, peak memory, GPU busy, syncs)
# 3. the zero-plateau study at full width: the `paper` profile for 2000 steps, then its report
set -u
OUT=${OUT:-gpu_check}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
log() { echo "== $*" | tee -a "$OUT/summary.txt"; }

log "device"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee -a "$OUT/summary.txt"
$PYTHON -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
torch.cuda.get_device_name())" | tee -a "$OUT/summary.txt"
grep -m1 '^torch==' requirements/lock-linux-x86_64.txt | sed 's/^/pinned /' | tee -a "$OUT/summary.txt"

DATA="$OUT/icvl_split"
for mode in png cache compile; do
  case $mode in
    png) extra=() ;;
    cache) extra=(--cache) ;;
    compile) extra=(--cache --compile) ;;
  esac
  log "gpu_train_bench ($mode)"
  timeout 110 $PYTHON benchmarks/gpu_train_bench.py --device cuda --dataset icvl --frames 4096 \
    --steps 100 --workers 16 --data-root "$DATA" "${extra[@]}" 2>&1 | tail -12 \
    | tee -a "$OUT/summary.txt"
done

log "paper_plateau (paper, full width, 2000 steps)"
timeout 200 $PYTHON benchmarks/paper_plateau.py --profile paper --device cuda --steps 2000 \
  --workers 8 --val-every 100 --checkpoint-every 200 --run-root "$OUT/plateau" \
  > "$OUT/plateau.log" 2>&1
grep -E "val|->" "$OUT/plateau.log" | tail -25 | tee -a "$OUT/summary.txt"
timeout 40 $PYTHON benchmarks/paper_plateau.py --report "$OUT/plateau" --out "$OUT/paper_recipe_gpu" \
  2>&1 | tee -a "$OUT/summary.txt"
