"""Shipped weights: networks trained by this package, verified by sha256 like the published files.

The checkout's `pretrained/` holds sets of finished runs (the set "long": the long-budget
self-comparison of Fig. 3 a-b and its localization net; `pretrained/README.md` is the model
card). Every file is listed with its sha256 and size in `pretrained_registry.tsv`, shipped with
the package, and `fetch` reads it the way `published.fetch` reads the published files: from a
local copy (HANDPOSE_PRETRAINED_DIR, else the checkout's `pretrained/`), else from the download
cache, filled from HANDPOSE_PRETRAINED_URL + the file's path. The sha256 is verified either way.

A shipped run `<set>/<name>/` (name: "locnet" or "<variant>_seed<k>") holds

    config.json   the RunConfig it was trained with
    metrics.csv   its per-epoch history (training loss, validation error, time)
    weights.pt    its last epoch's weights: a float16 state dict, the config, the epoch count

and `<set>/predictions/<name>.txt` its test predictions (community uvd format), cropped at the
LocNet centres in `<set>/centers/val_locnet.txt` (uvd, one test frame per line). `materialize`
turns a shipped run into a run folder that `training.inference.load_model`, `ablation` and the
notebooks read like one trained here.

    python -m handpose_lib.pretrained export --runs RUN_DIR --set long  # pretrained/long + registry
    python -m handpose_lib.pretrained verify                            # every listed file
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import pandas as pd
import requests
import torch

from handpose_lib.ablation_verdict import PAPER_ORDER
from handpose_lib.paths import CENTERS_FILE, REPO_ROOT
from handpose_lib.training.atomic import atomic_write_json
from handpose_lib.training.checkpoint import CHECKPOINT_VERSION, load_checkpoint, save_checkpoint
from handpose_lib.training.config import RunConfig
from handpose_lib.verified_files import (
    download,
    failure_reason,
    local_file,
    package_cache_dir,
    sha256_of,
)

ENV_LOCAL_DIR = "HANDPOSE_PRETRAINED_DIR"
ENV_CACHE_DIR = "HANDPOSE_CACHE_DIR"  # shared with `published`: <cache>/pretrained/...
ENV_BASE_URL = "HANDPOSE_PRETRAINED_URL"
ENV_REGISTRY = "HANDPOSE_PRETRAINED_REGISTRY"
CHECKOUT_COPY = REPO_ROOT / "pretrained"
REGISTRY_FILE = "pretrained_registry.tsv"
REGISTRY_COLUMNS = ("path", "sha256", "bytes")
RUN_FILES = ("config.json", "metrics.csv", "weights.pt")
WEIGHTS_VERSION = 1
MATERIALIZED_MARK = "shipped.json"  # in a materialized run folder: where its weights came from


class ShippedUnavailable(OSError):
    """A shipped file has no local copy and could not be downloaded (one-line message)."""


@dataclass(frozen=True)
class ShippedFile:
    """One row of the registry: `path` is relative to the pretrained folder ("long/...")."""

    path: str
    sha256: str
    bytes: int


Registry = Sequence[ShippedFile]


def parse_registry(text: str, origin: str = REGISTRY_FILE) -> tuple[ShippedFile, ...]:
    """The rows of a registry file's text; a ValueError names `origin`, the line and field."""
    lines = text.splitlines()
    if not lines or tuple(lines[0].split("\t")) != REGISTRY_COLUMNS:
        header = "<TAB>".join(REGISTRY_COLUMNS)
        raise ValueError(f"{origin}: line 1 must be the header {header}")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != len(REGISTRY_COLUMNS):
            raise ValueError(f"{origin}:{number}: expected 3 tab-separated fields, got {fields}")
        path, sha, size = fields
        if len(sha) != 64 or not size.isdigit():
            raise ValueError(f"{origin}:{number}: expected a 64-hex sha256 and a byte count")
        rows.append(ShippedFile(path, sha, int(size)))
    return tuple(rows)


def registry() -> tuple[ShippedFile, ...]:
    """Every shipped file, as listed in the package's pretrained_registry.tsv, or in the
    registry file named by HANDPOSE_PRETRAINED_REGISTRY (a set of your own, exported with
    `export`; give its folder as HANDPOSE_PRETRAINED_DIR)."""
    return _registry_at(os.environ.get(ENV_REGISTRY) or None)


@cache
def _registry_at(path: str | None) -> tuple[ShippedFile, ...]:
    if path is None:
        return parse_registry(resources.files("handpose_lib").joinpath(REGISTRY_FILE).read_text())
    if not Path(path).is_file():
        raise FileNotFoundError(f"{ENV_REGISTRY}={path}: no such registry file")
    return parse_registry(Path(path).read_text(), path)


def lookup(path: str, entries: Registry | None = None) -> ShippedFile:
    for entry in registry() if entries is None else entries:
        if entry.path == path:
            return entry
    raise KeyError(f"{path!r} is not in the shipped-weights registry ({REGISTRY_FILE})")


def resolve_local_dir(local_dir: str | os.PathLike | None = None) -> Path | None:
    """The argument, else HANDPOSE_PRETRAINED_DIR, else the checkout's pretrained/ (when it has
    the registry's first file); None: read from the download cache."""
    if local_dir is not None:
        return Path(local_dir)
    env = os.environ.get(ENV_LOCAL_DIR)
    if env:
        return Path(env)
    entries = registry()
    if entries and (CHECKOUT_COPY / entries[0].path).is_file():
        return CHECKOUT_COPY
    return None


def default_cache_dir() -> Path:
    """$HANDPOSE_CACHE_DIR/pretrained, else `verified_files.package_cache_dir` (as published)."""
    env = os.environ.get(ENV_CACHE_DIR)
    return Path(env) / "pretrained" if env else package_cache_dir("pretrained")


def fetch(
    entry: ShippedFile | str,
    local_dir: str | os.PathLike | None = None,
    entries: Registry | None = None,
) -> Path:
    """Path of a verified copy of a shipped file (see the module docstring for where from).

    ChecksumError for a copy whose sha256 differs, FileNotFoundError for a file missing from a
    local copy, ShippedUnavailable when there is none and no download succeeds.
    """
    if isinstance(entry, str):
        entry = lookup(entry, entries)
    local = resolve_local_dir(local_dir)
    if local is not None:
        return local_file(local, entry.path, entry.sha256, f"shipped weights at {local}")
    cache_dir = default_cache_dir()
    base = os.environ.get(ENV_BASE_URL, "")
    if not base:
        raise ShippedUnavailable(
            f"shipped file {entry.path} is not available: no local copy (the checkout's "
            f"pretrained/ or {ENV_LOCAL_DIR}) and no {ENV_BASE_URL} to download it from"
        )
    url = base.rstrip("/") + "/" + entry.path
    try:
        return download(url, entry.sha256, entry.path, cache_dir)
    except requests.exceptions.RequestException as err:
        raise ShippedUnavailable(
            f"shipped file {entry.path} is not available: download from {url} failed "
            f"({failure_reason(err)}). Set {ENV_LOCAL_DIR} to a folder holding {entry.path}"
        ) from None


def run_names(set_name: str, entries: Registry | None = None) -> list[str]:
    """Names of the runs the registry lists under `set_name` (those with weights)."""
    names = []
    for entry in registry() if entries is None else entries:
        parts = entry.path.split("/")
        if len(parts) == 3 and parts[0] == set_name and parts[2] == "weights.pt":
            names.append(parts[1])
    return sorted(names)


def shipped_config(set_name: str, name: str, entries: Registry | None = None) -> RunConfig:
    """The RunConfig a shipped run was trained with (reads only its config.json)."""
    return RunConfig.load(fetch(f"{set_name}/{name}/config.json", entries=entries))


def shipped_history(set_name: str, name: str, entries: Registry | None = None) -> pd.DataFrame:
    """A shipped run's per-epoch history (metrics.csv)."""
    return pd.read_csv(fetch(f"{set_name}/{name}/metrics.csv", entries=entries))


def materialize(
    set_name: str,
    name: str,
    run_dir: str | os.PathLike,
    entries: Registry | None = None,
    local_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """A run folder at `run_dir` holding the shipped run `set_name/name`: config.json,
    metrics.csv, checkpoint.pt (the weights in float32), summary.json and shipped.json (the
    sha256 of the weights it came from). Kept when it already holds these weights.

    `cache_dir` (default: the run's own folder) becomes the run's data.cache_dir, so that
    shipped runs evaluated on the same frames can share the rendered crops."""
    run_dir = Path(run_dir)
    listed = {f: lookup(f"{set_name}/{name}/{f}", entries) for f in RUN_FILES}
    mark = run_dir / MATERIALIZED_MARK
    record = {
        "set": set_name,
        "name": name,
        "sha256": {f: entry.sha256 for f, entry in listed.items()},
        "checkpoint_version": CHECKPOINT_VERSION,
        "cache_dir": None if cache_dir is None else str(cache_dir),
    }
    if mark.is_file() and json.loads(mark.read_text()) == record:
        return run_dir
    if (run_dir / "config.json").is_file() and not mark.is_file():
        raise FileExistsError(
            f"{run_dir}: holds a run that was not materialized from shipped weights; "
            "refusing to replace it"
        )
    files = {f: fetch(entry, local_dir, entries) for f, entry in listed.items()}
    shipped = torch.load(files["weights.pt"], map_location="cpu", weights_only=True)
    if shipped.get("version") != WEIGHTS_VERSION:
        raise ValueError(
            f"{files['weights.pt']}: weights format {shipped.get('version')}, "
            f"expected {WEIGHTS_VERSION}"
        )
    config = RunConfig.load(files["config.json"])
    # As configs, not as dicts: fields added to the code since get their defaults in both.
    if RunConfig.from_dict(shipped["config"]) != config:
        raise ValueError(f"{files['weights.pt']}: its config differs from {files['config.json']}")
    if cache_dir is not None:
        config = config.with_overrides({"data.cache_dir": str(cache_dir)})
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    # The training provenance (code commit, source digest) travels with the config.
    trained_by = json.loads(files["config.json"].read_text()).get("provenance")
    config.save(run_dir / "config.json", trained_by)
    shutil.copyfile(files["metrics.csv"], run_dir / "metrics.csv")
    model = {k: v.float() if v.is_floating_point() else v for k, v in shipped["model"].items()}
    state = {"version": CHECKPOINT_VERSION, "config": config.to_dict(), "model": model}
    save_checkpoint(run_dir / "checkpoint.pt", state | {"epoch": shipped["epochs"]})
    atomic_write_json(run_dir / "summary.json", {"name": config.name, "epochs": shipped["epochs"]})
    atomic_write_json(mark, record)
    return run_dir


def is_materialized(run_dir: str | os.PathLike) -> bool:
    return (Path(run_dir) / MATERIALIZED_MARK).is_file()


# --- export (maintainers: turning finished runs into a shipped set) --------------------------


def export_run(run_dir: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Write a finished run's config.json, metrics.csv and weights.pt (float16) to out_dir."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    summary = run_dir / "summary.json"
    if not summary.is_file():
        raise FileNotFoundError(f"{summary}: missing; only finished runs are shipped")
    state = load_checkpoint(run_dir / "checkpoint.pt")
    config = RunConfig.load(run_dir)
    epochs = int(json.loads(summary.read_text())["epochs"])
    if epochs != config.train.epochs:
        raise ValueError(f"{run_dir}: trained {epochs} of {config.train.epochs} epochs")
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = {k: v.half() if v.is_floating_point() else v for k, v in state["model"].items()}
    payload = {
        "version": WEIGHTS_VERSION,
        "config": config.to_dict(),
        "model": weights,
        "epochs": epochs,
    }
    torch.save(payload, out_dir / "weights.pt")
    shutil.copyfile(run_dir / "config.json", out_dir / "config.json")
    shutil.copyfile(run_dir / "metrics.csv", out_dir / "metrics.csv")
    return out_dir


def long_run_folders(runs: str | os.PathLike, seeds: Iterable[int]) -> dict[str, Path]:
    """The run folders of a `reproduce --profile long` output: name -> folder. Attention seed
    0 may be notebook 03's run (pose_attention), which notebook 04 reuses."""
    runs = Path(runs)
    folders = {"locnet": runs / "locnet"}
    for variant in PAPER_ORDER:
        for seed in seeds:
            name = f"{variant}_seed{seed}"
            own = runs / "selfcomp" / name
            if not (own / "summary.json").is_file() and name == "attention_seed0":
                own = runs / "pose_attention"
            folders[name] = own
    return folders


def export_set(
    runs: str | os.PathLike, set_name: str, seeds: Iterable[int], out_root: Path = CHECKOUT_COPY
) -> list[ShippedFile]:
    """Export every run of a long-budget output, its predictions and its LocNet centres to
    out_root/set_name, replacing what was there only once the whole set is written (so only
    this export's files are registered, and a failed export keeps the previous set)."""
    runs, target = Path(runs), out_root / set_name
    partial = out_root / f".{set_name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        for name, folder in long_run_folders(runs, seeds).items():
            export_run(folder, partial / name)
            if name == "locnet":
                continue
            prediction = runs / "predictions" / f"{name}.txt"
            if not prediction.is_file():
                raise FileNotFoundError(f"{prediction}: missing; run notebook 04 first")
            (partial / "predictions").mkdir(exist_ok=True)
            shutil.copyfile(prediction, partial / "predictions" / prediction.name)
        centers = runs / CENTERS_FILE
        if not centers.is_file():
            raise FileNotFoundError(f"{centers}: missing; run notebook 02 first")
        (partial / CENTERS_FILE).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(centers, partial / CENTERS_FILE)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return [
        ShippedFile(path.relative_to(out_root).as_posix(), sha256_of(path), path.stat().st_size)
        for path in sorted(target.rglob("*"))
        if path.is_file() and path.name != "README.md"
    ]


def format_registry(rows: Iterable[ShippedFile]) -> str:
    lines = ["\t".join(REGISTRY_COLUMNS)]
    lines += [f"{r.path}\t{r.sha256}\t{r.bytes}" for r in sorted(rows, key=lambda r: r.path)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    export = sub.add_parser("export", help="export finished long-budget runs to pretrained/")
    export.add_argument("--runs", required=True, type=Path, help="the runner's output folder")
    export.add_argument("--set", default="long", dest="set_name")
    export.add_argument("--seeds", default="0,1,2")
    export.add_argument("--out", type=Path, default=CHECKOUT_COPY)
    export.add_argument(
        "--registry",
        type=Path,
        default=Path(str(resources.files("handpose_lib").joinpath(REGISTRY_FILE))),
    )
    sub.add_parser("verify", help="check every registered file's sha256")
    args = parser.parse_args(argv)
    if args.command == "export":
        seeds = [int(s) for s in args.seeds.split(",")]
        rows = export_set(args.runs, args.set_name, seeds, args.out)
        listed = parse_registry(args.registry.read_text(), str(args.registry))
        kept = [r for r in listed if not r.path.startswith(args.set_name + "/")]
        args.registry.write_text(format_registry(kept + rows))
        _registry_at.cache_clear()
        print(f"{len(rows)} files of set {args.set_name!r} written to {args.out}; {args.registry}")
        return 0
    for entry in registry():
        print(f"{fetch(entry)}  ok")
    print(f"{len(registry())} shipped files verified", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
