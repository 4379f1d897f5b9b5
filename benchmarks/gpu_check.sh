#!/usr/bin/env bash
# The prepared paper-route check for a session that is lent a GPU (issue 16): one call that
# ends inside ~9.5 minutes on one GPU (DEADLINE, of the device's 10 minutes per command;
# run it with timeout_s 600).
#
#   here, once:  bash benchmarks/gpu_wheels.sh      # .whl/: wheels + the published ICVL files
#   there:       OUT=/tmp/gpu bash benchmarks/gpu_check.sh     (device run, carry [".whl"])
#
# Every result line goes to $OUT/summary.txt (tee -a) the moment it is measured, so a step
# cut off by its timeout keeps what it had printed. Scratch data lives under $WORK, not $OUT
# (at most 8 files come back): summary.txt, rehearsal.{log,md,csv}, rehearsal_run.tar.gz
# (executed notebooks and stage logs), plateau.log, paper_recipe_gpu.{md,png}.
#
# 0. the device, the driver and both torch versions (the image's may differ from the pin);
#    the carried wheels installed (--target, PYTHONPATH), a `python3` Jupyter kernel on this
#    python3 with that PYTHONPATH (papermill runs kernel "python3"), the package importable
#    from the checkout (PYTHONPATH=$PWD), the published files (HANDPOSE_PUBLISHED_DIR)
# 1. the rehearsal of the paper route, first, capped at 240 s: a small ICVL-format dataset
#    written by the package's writers, then every stage on it (notebooks 01-05: LocNet, the
#    pose network with validation, Table 1, the self-comparison; torchrun; --resume; predict;
#    evaluate), its stage table (rehearsal.md / .csv)
# 2. engine.train throughput at paper size (benchmarks/gpu_train_bench.py): ICVL-format PNGs,
#    then the crop cache (samples/s, data samples/s per worker, peak memory, GPU busy via NVML,
#    host syncs over the timed steps)
# 3. the zero-plateau study at full width (`paper` profile, up to 2000 steps in its budget),
#    then its report; last, if time is left, the throughput with torch.compile
set -u
OUT=${OUT:-gpu_check}
WORK=${WORK:-/tmp/gpu_check_work}
PYTHON=${PYTHON:-python3}
DEADLINE=${DEADLINE:-560}  # seconds after the start by which every step has ended (+5 s)
mkdir -p "$OUT" "$WORK"
OUT=$(cd "$OUT" && pwd)
SUMMARY="$OUT/summary.txt"
export PYTHONUNBUFFERED=1  # every print reaches the log at once
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # the package, from this checkout
log() { echo "== $* [${SECONDS} s]" | tee -a "$SUMMARY"; }
to_summary() { tee -a "$SUMMARY"; }

# A step's timeout: CAP seconds, or less so that RESERVE seconds are left after it.
budget() {
  local b=$((DEADLINE - SECONDS - $2))
  echo $((b < $1 ? b : $1))
}

# Kill what a step left behind (a CLI stage or kernel in a session of its own outlives the
# timeout that killed its parent): the processes whose environment carries GPU_CHECK_STEP=$1.
reap() {
  local file pid
  for file in $(grep -lsz "^GPU_CHECK_STEP=$1\$" /proc/[0-9]*/environ); do
    pid=${file#/proc/}
    pid=${pid%/environ}
    [ "$pid" != "$$" ] && kill -9 "$pid" 2>/dev/null
  done
  return 0
}

# step NAME CAP RESERVE SINK COMMAND...: COMMAND (stdout and stderr) through the function
# SINK, under a timeout of `budget CAP RESERVE`; skipped when under 20 s would be left.
step() {
  local name=$1 cap=$2 reserve=$3 sink=$4 limit rc
  shift 4
  limit=$(budget "$cap" "$reserve")
  if ((limit < 20)); then
    log "$name: skipped, ${limit} s would be left for it (DEADLINE ${DEADLINE} s)"
    return 0
  fi
  log "$name (timeout ${limit} s)"
  GPU_CHECK_STEP=$name timeout -k 5 "$limit" "$@" 2>&1 | "$sink"
  rc=${PIPESTATUS[0]}
  reap "$name"
  case $rc in
    0) ;;
    124 | 137) log "$name: stopped by its ${limit} s timeout (rows above were measured)" ;;
    *) log "$name: exit status $rc" ;;
  esac
  return 0
}

log "device"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | to_summary
$PYTHON -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
torch.cuda.get_device_name())" 2>&1 | to_summary
grep -m1 '^torch==' requirements/lock-linux-x86_64.txt | sed 's/^/pinned /' | to_summary

log "environment"
if compgen -G ".whl/*.whl" >/dev/null; then
  $PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$WORK/site" .whl/*.whl 2>&1 | tail -3 | to_summary
  if [ "${PIPESTATUS[0]}" = 0 ]; then
    echo "installed $(ls .whl/*.whl | wc -l) carried wheels into $WORK/site" | to_summary
  else
    echo "pip install of the carried wheels FAILED (all or nothing): see above" | to_summary
  fi
  export PYTHONPATH="$PYTHONPATH:$WORK/site"
else
  echo "no .whl/*.whl: run 'bash benchmarks/gpu_wheels.sh' where pip works and carry .whl" \
    | to_summary
fi
if [ -f .whl/published.tar.gz ]; then
  mkdir -p "$WORK/published"
  tar -xzf .whl/published.tar.gz -C "$WORK/published"
  export HANDPOSE_PUBLISHED_DIR="$WORK/published"
  echo "published files: $(find "$WORK/published" -type f | wc -l) in $WORK/published" \
    | to_summary
fi
# papermill starts kernel "python3": this python3, with the PYTHONPATH above.
export JUPYTER_PATH="$WORK/jupyter/share/jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}"
export JUPYTER_RUNTIME_DIR="$WORK/jupyter/runtime" JUPYTER_PLATFORM_DIRS=1
$PYTHON -m ipykernel install --prefix "$WORK/jupyter" --name python3 \
  --display-name "Python 3 (gpu_check)" --env PYTHONPATH "$PYTHONPATH" >/dev/null 2>&1
$PYTHON - <<'EOF' 2>&1 | to_summary
import importlib

for name in ("papermill", "nbclient", "nbformat", "ipykernel", "jupyter_client", "zmq",
             "tornado", "traitlets", "IPython", "ipywidgets", "pooch", "pandas",
             "matplotlib", "scipy", "PIL", "tqdm", "pynvml", "handpose_lib"):
    try:
        module = importlib.import_module(name)
        print(f"{name} {getattr(module, '__version__', '')}".rstrip(), end="; ")
    except Exception as err:
        print(f"{name} MISSING ({type(err).__name__})", end="; ")
print()
try:
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    print("kernel python3:", " ".join(spec.argv), "PYTHONPATH", spec.env.get("PYTHONPATH"))
except Exception as err:
    print("kernel python3 MISSING:", err)
EOF

# 1. The rehearsal of the paper route.
DATA="$WORK/icvl_rehearsal"
RUN="$WORK/paper-icvl-rehearsal"
rm -rf "${WORK:?}/icvl_rehearsal" "${WORK:?}/paper-icvl-rehearsal"  # a rerun starts afresh
to_rehearsal_log() { tee -a "$OUT/rehearsal.log" | to_summary; }
step write-data 60 420 to_rehearsal_log \
  $PYTHON -m handpose_lib.rehearsal write-data --dataset icvl --root "$DATA" \
  --train-frames 96 --test-frames 64
step rehearsal 240 170 to_rehearsal_log \
  $PYTHON -m handpose_lib.reproduce --rehearse --profile paper --dataset icvl \
  --data-root "$DATA" --device cuda --output "$RUN"
for file in rehearsal.md rehearsal.csv; do
  if [ -f "$RUN/$file" ]; then cp "$RUN/$file" "$OUT/"; else log "no $RUN/$file"; fi
done
if [ -d "$RUN" ]; then  # executed notebooks (tracebacks) and stage logs, no weights or caches
  (cd "$RUN" && find . -type f \( -name '*.ipynb' -o -name '*.log' -o -name '*.json' \
    -o -name '*.csv' -o -name '*.md' \) -size -4M -not -path '*cache*' -print0 \
    | tar -czf "$OUT/rehearsal_run.tar.gz" --null -T -)
  if [ "$(stat -c %s "$OUT/rehearsal_run.tar.gz")" -gt 15000000 ]; then
    rm "$OUT/rehearsal_run.tar.gz"
    log "rehearsal_run.tar.gz over 15 MB: not kept"
  fi
fi

# 2. Throughput of engine.train at paper size (rows as they are measured).
BENCH=($PYTHON benchmarks/gpu_train_bench.py --device cuda --dataset icvl --frames 2048
  --steps 60 --workers 16 --data-root "$WORK/icvl_bench")
step bench-png 75 150 to_summary "${BENCH[@]}"
step bench-cache 60 110 to_summary "${BENCH[@]}" --cache

# 3. The zero-plateau study (resumable: history.csv every 50 steps), then its report.
to_plateau_log() {
  tee -a "$OUT/plateau.log" | grep --line-buffered -E "==|val|->|resuming|diverged|Error" \
    | to_summary
}
step plateau 170 45 to_plateau_log \
  $PYTHON benchmarks/paper_plateau.py --profile paper --device cuda --steps 2000 \
  --workers 8 --val-every 100 --checkpoint-every 50 --run-root "$WORK/plateau"
step plateau-report 30 5 to_summary \
  $PYTHON benchmarks/paper_plateau.py --report "$WORK/plateau" --out "$OUT/paper_recipe_gpu"

# Last, where 90 s are left: the cache path with torch.compile (its compile is warm-up).
if ((DEADLINE - SECONDS >= 90)); then
  step bench-compile 120 5 to_summary "${BENCH[@]}" --cache --compile
else
  log "bench-compile: skipped, $((DEADLINE - SECONDS)) s left before the deadline"
fi
log "done"
