#!/usr/bin/env bash
# What a lent GPU machine lacks for benchmarks/gpu_check.sh, fetched HERE (it has no network)
# into .whl/ (ignored by git), to carry with the device call (`carry: [".whl"]`):
#
#   bash benchmarks/gpu_wheels.sh            # then, there: OUT=... bash benchmarks/gpu_check.sh
#
# 1. wheels for the GPU image's python3 (Python 3.12, manylinux x86_64) of the packages the
#    rehearsal's notebook runner (papermill with a python3 Jupyter kernel) and the notebooks
#    import and the image does not hold, at the versions of requirements/lock-linux-x86_64.txt.
#    The image already has torch, numpy, pandas, scipy, matplotlib, pillow, tqdm, requests,
#    tabulate, pyyaml, psutil, packaging, pygments, attrs, python-dateutil, jinja2,
#    typing-extensions and nvidia-ml-py (pynvml, for "GPU busy"); those are not carried.
#    Left out although pip lists them as requirements, since nothing imports them when a
#    notebook runs: debugpy (ipykernel's debugger, optional), jedi and parso (IPython's tab
#    completion, imported on first use), widgetsnbextension and jupyterlab_widgets (the
#    browser side of ipywidgets). They were 12.8 MB of the 17.7.
# 2. published.tar.gz: DATASET's published files (labels, predictions, centres; ICVL: 15 MB,
#    6 MB packed): the rehearsal's notebooks read them and the machine cannot download them.
#    From the local copy or the download cache (handpose_lib.published.fetch_all).
#
# It checks that the working tree plus .whl/ stays under LIMIT_MIB (default 56) of the device
# call's 64 MiB, and prints the sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
PY_VERSION=${PY_VERSION:-3.12}  # the GPU image's python3 is 3.12.3
DATASET=${DATASET:-icvl}
DEST=${DEST:-.whl}
LIMIT_MIB=${LIMIT_MIB:-56}
LOCK=requirements/lock-linux-x86_64.txt

# The packages (names as the lock spells them; tests/test_benchmarks.py checks each is there).
WHEELS=(
  papermill nbclient nbformat ipykernel jupyter_client jupyter_core pyzmq tornado traitlets
  ipywidgets comm pooch platformdirs ipython ipython_pygments_lexers prompt_toolkit wcwidth
  matplotlib-inline nest-asyncio2 pexpect ptyprocess stack-data asttokens executing pure_eval
  fastjsonschema jsonschema jsonschema-specifications referencing rpds-py tenacity entrypoints
)

pins=()
for name in "${WHEELS[@]}"; do
  # the lock's line NAME==VERSION, names compared as PEP 503 does
  pin=$(awk -F'==' -v want="$name" 'BEGIN {want = tolower(want); gsub(/[-_.]+/, "-", want)}
    !/^#/ && NF == 2 {n = tolower($1); gsub(/[-_.]+/, "-", n); if (n == want) print}' "$LOCK")
  if [ -z "$pin" ]; then
    echo "error: $name is not in $LOCK" >&2
    exit 1
  fi
  pins+=("$pin")
done

mkdir -p "$DEST"
rm -f "$DEST"/*.whl  # one version of each: two stop the whole install there
platforms=()
for tag in manylinux_2_28 manylinux_2_27 manylinux_2_26 manylinux_2_17 manylinux2014 manylinux1; do
  platforms+=(--platform "${tag}_x86_64")
done
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$PY_VERSION" \
  --implementation cp "${platforms[@]}" -d "$DEST" "${pins[@]}"
count=$(find "$DEST" -maxdepth 1 -type f -name '*.whl' | wc -l)
if [ "$count" -ne "${#pins[@]}" ]; then
  echo "error: $count wheels in $DEST for ${#pins[@]} packages" >&2
  exit 1
fi

# DATASET's published files, laid out by registry path (HANDPOSE_PUBLISHED_DIR there).
folder=$("$PYTHON" - "$DATASET" "$DEST/published.list" <<'EOF'
import sys
from pathlib import Path

from handpose_lib import published

dataset, listing = sys.argv[1], Path(sys.argv[2])
entries = [e for e in published.registry() if e.dataset == dataset]
folder = published.fetch_all(entries)  # verified against the registry's sha256
listing.write_text("".join(e.path + "\n" for e in entries))
print(folder)
EOF
)
tar -czf "$DEST/published.tar.gz" -C "$folder" -T "$DEST/published.list"
rm "$DEST/published.list"

mib() { awk '{s += $1} END {printf "%.1f", s / 1048576}'; }
wheels=$(find "$DEST" -maxdepth 1 -type f -name '*.whl' -printf '%s\n' | mib)
files=$(stat -c %s "$DEST/published.tar.gz" | mib)
tree=$( {
  git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s 2>/dev/null || true
  if [ -d shared ]; then find shared -type f -printf '%s\n'; fi
} | mib)
total=$(echo "$tree $wheels $files" | awk '{printf "%.1f", $1 + $2 + $3}')
echo "$DEST: $count wheels ($wheels MiB, Python $PY_VERSION manylinux x86_64) and" \
  "published.tar.gz ($DATASET, $files MiB); working tree $tree MiB; carried in all $total MiB" \
  "of the device call's 64 MiB"
if awk -v t="$total" -v l="$LIMIT_MIB" 'BEGIN {exit !(t > l)}'; then
  echo "error: $total MiB carried is over LIMIT_MIB=$LIMIT_MIB (64 MiB in all, keep spare)" >&2
  exit 1
fi
