#!/usr/bin/env bash
# The acceptance check of issues 9 and 28: a clean clone with nothing beside it gets the published
# files from a loopback server standing in for the upstream and passes `make test` twice: once
# with the mirror serving both manifests at its root (the registry is compared with them), once
# with a mirror of only the registry's files, as data/README.md lays one out (that comparison is
# skipped with its reason; every file downloads again into an empty cache). Then it passes
# `make reproduce PROFILE=smoke`, and again with the server gone (no network; the cache is
# enough). figures/ must be untouched by the smoke runs.
#
#   .ci/check_clean_clone.sh [--worktree] [--skip-test]
#
# --worktree  copy the working tree (tracked + untracked, not ignored) instead of `git clone`
#             of HEAD, to check changes before they are committed.
# --skip-test run only the two reproduce steps.
# PUBLISHED=DIR  the copy the server serves from (default: ../shared/published).
set -euo pipefail
SRC="$(cd "$(dirname "$0")/.." && pwd)"
PUBLISHED="${PUBLISHED:-$SRC/../shared/published}"
MODE=clone RUN_TESTS=1
for arg in "$@"; do
  case "$arg" in
    --worktree) MODE=worktree ;;
    --skip-test) RUN_TESTS=0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done
[ -f "$PUBLISHED/MANIFEST.tsv" ] || { echo "no $PUBLISHED/MANIFEST.tsv to serve" >&2; exit 2; }

WORK="$(mktemp -d /tmp/handpose-clean.XXXXXX)"  # nothing named shared/ beside the clone
CLONE="$WORK/handpose"
echo "work folder: $WORK"
if [ "$MODE" = clone ]; then
  git clone --quiet "$SRC" "$CLONE"
else
  mkdir -p "$CLONE"
  (cd "$SRC" && git ls-files -z --cached --others --exclude-standard \
     | xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' \
     | tar --null -T - -cf -) | tar -xf - -C "$CLONE"
fi

# The mirror's layout, that of raw.githubusercontent.com: every file under
# <owner>/<repo>/<commit>/<path in that repository>, from the manifests (not from the registry
# under test). MANIFEST.tsv's files are the evaluation kit's, at its pinned commit (README.md of
# the copy); MORE_MANIFEST.tsv gives each file's full address, in several repositories.
UPSTREAM="$WORK/upstream"
python3 - "$PUBLISHED" "$UPSTREAM" <<'PY'
import csv, shutil, sys
from pathlib import Path
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
RAW = "https://raw.githubusercontent.com/"
KIT = "xinghaochen/awesome-hand-pose-estimation/e297a6ea7fd557bd5701c97a3437c551c4b4fbce/"
def serve(path, mirror_path):
    target = dst / mirror_path
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / path, target)
with open(src / "MANIFEST.tsv") as f:
    for row in csv.DictReader(f, delimiter="\t"):
        serve(row["path"], KIT + row["upstream_path"])
with open(src / "MORE_MANIFEST.tsv") as f:
    for row in csv.DictReader(f, delimiter="\t"):
        assert row["url"].startswith(RAW), row["url"]
        serve(row["path"], row["url"][len(RAW):])
# A mirror serves the manifest too (tests/test_published.py compares the registry with it).
shutil.copy(src / "MANIFEST.tsv", dst / "MANIFEST.tsv")
shutil.copy(src / "MORE_MANIFEST.tsv", dst / "MORE_MANIFEST.tsv")
files = [p for p in dst.rglob("*") if p.is_file() and p.parent != dst]
print(f"mirror: {len(files)} files from {len({p.relative_to(dst).parts[:3] for p in files})} "
      "repository commits")
PY
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# Bounded: the server stops by itself after 3 hours even if this script is killed.
timeout 10800 python3 -m http.server "$PORT" --bind 127.0.0.1 --directory "$UPSTREAM" \
  >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
stop_server() { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }
trap stop_server EXIT
sleep 1

export HANDPOSE_PUBLISHED_URL="http://127.0.0.1:$PORT/"
unset HANDPOSE_PUBLISHED_DIR HANDPOSE_CACHE_DIR HANDPOSE_FIGURES_DIR HANDPOSE_RUN_DIR \
  HANDPOSE_PROFILE HANDPOSE_HEADLESS
cd "$CLONE"
figures_state() { find figures -type f -exec sha256sum {} + 2>/dev/null | sort; }
BEFORE="$(figures_state)"

if [ "$RUN_TESTS" = 1 ]; then
  echo "== make test (files from $HANDPOSE_PUBLISHED_URL, manifests served)"
  time make test 2>&1 | tee "$WORK/test-with-manifests.log"
  # The same mirror without its manifests, and an empty cache: everything downloads again.
  mkdir "$WORK/manifests-aside"
  mv "$UPSTREAM/MANIFEST.tsv" "$UPSTREAM/MORE_MANIFEST.tsv" "$WORK/manifests-aside/"
  echo "== make test (files from $HANDPOSE_PUBLISHED_URL, no manifest served, empty cache)"
  HANDPOSE_CACHE_DIR="$WORK/cache-no-manifests" make test 2>&1 \
    | tee "$WORK/test-without-manifests.log"
  grep -q "SKIPPED.*serves no manifest" "$WORK/test-without-manifests.log" \
    || { echo "FAIL: the manifest comparison was not skipped for its reason" >&2; exit 1; }
  mv "$WORK/manifests-aside/"* "$UPSTREAM/"
  echo "summary, manifests served:    $(grep -E '^=+ .*(passed|failed)' "$WORK/test-with-manifests.log" | tail -1)"
  echo "summary, no manifest served: $(grep -E '^=+ .*(passed|failed)' "$WORK/test-without-manifests.log" | tail -1)"
fi
echo "== make reproduce PROFILE=smoke (online)"
time make reproduce PROFILE=smoke
echo "requests served: $(grep -c '"GET ' "$WORK/server.log" || true)"

stop_server
echo "== make reproduce PROFILE=smoke (server stopped: no network, cache only)"
if command -v unshare >/dev/null && command -v ip >/dev/null && unshare -n true 2>/dev/null; then
  # A network namespace with only loopback up (the kernels talk to the runner over it).
  unshare -n sh -c 'ip link set lo up && make reproduce PROFILE=smoke'
else
  make reproduce PROFILE=smoke
fi

[ "$BEFORE" = "$(figures_state)" ] || { echo "FAIL: figures/ changed" >&2; exit 1; }
ls outputs/smoke-synthetic/figures >/dev/null
echo "OK: clean clone passed (work folder $WORK; remove it when done)"
