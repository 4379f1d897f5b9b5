"""A Slurm job array for notebook 04's self-comparison: one array task per (variant, seed).

    python -m handpose_lib.slurm --profile paper --dataset nyu --data-root ROOT --run-dir RUN \\
        [--seeds N] [--variants plain,attention] [--partition P] [--account A] \\
        [--time HH:MM:SS] [--cpus-per-task N] [--notebook03] [--out selfcomp.sbatch]
    sbatch selfcomp.sbatch
    python -m handpose_lib.reproduce --profile paper --dataset nyu --data-root ROOT \\
        --retrain all --output RUN        # notebook 04 reuses the finished runs

Each task trains the run notebook 04's `ablation.train_or_reuse` would train. Its config is
built by the notebook's own code (`notebook.Session.run_config`, then
`ablation.variant_config`): the profile's recipe, the data root, and the validation centres
notebook 02 wrote into RUN (the CoM where it has not run yet: they steer only the per-epoch
validation and best.pt, not the last epoch's weights notebook 04 evaluates). It is written to
RUN/slurm/configs/<variant>_seed<k>.json and passed with --config, so the task cannot train
anything else; the run goes into RUN/selfcomp/<variant>_seed<k>, the folder notebook 04 looks
in, on the task's one GPU (--gres=gpu:1, --device cuda). --resume: a requeued task, or the
script submitted again after a time limit, continues its run from the last epoch's checkpoint;
a finished run is loaded, not trained again. Logs: RUN/slurm/logs/<job name>_<job id>_<task>.out.

`--notebook03` trains attention seed 0 into RUN/pose_attention instead, notebook 03's folder:
notebook 03 then loads it rather than training it, and notebook 04 reuses it as notebook 03's
run; without it the runner trains that run again in notebook 03.

The runner must be given the same profile, dataset, run folder and data root, and run the same
handpose_lib sources and torch version (`training.provenance`: a finished run made by other
code is moved aside and trained again). The data root is part of the config
`ablation.reuse_problem` compares; it is written as an absolute path with symbolic links
resolved (as `python -m handpose_lib.train --data-root` writes it), which the script's header
prints in the runner's command.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from handpose_lib import ablation, notebook
from handpose_lib.ablation_verdict import PAPER_ORDER, check_variant
from handpose_lib.paths import CENTERS_FILE, ENV_CROP_CACHE_DIR
from handpose_lib.profiles import DATA_CHOICES, Profile, get_profile
from handpose_lib.reproduce import default_run_dir
from handpose_lib.training.config import RunConfig, config_differences

DEFAULT_TIME = "24:00:00"
DEFAULT_GRES = "gpu:1"
# Slurm's --time as this module accepts it: [days-]hours:minutes:seconds.
TIME_FORMAT = re.compile(r"^(\d+-)?\d+:[0-5]\d:[0-5]\d$")
SLURM_DIR = "slurm"  # RUN/slurm/: the tasks' configs and logs
NOTEBOOK03_RUN = "pose_attention"  # notebook 03's run folder (`notebook.Session.pose_model`)
# Where the array tasks share their crop caches: the runner's folder (`reproduce.reproduce`).
CROP_CACHE = "crop-cache"


@dataclass(frozen=True)
class Task:
    """One array task: the run it trains, the config file that fixes it, its command."""

    index: int
    variant: str
    seed: int
    run_dir: Path
    config: RunConfig
    config_path: Path
    command: tuple[str, ...]


@dataclass(frozen=True)
class SbatchOptions:
    """The #SBATCH lines of the script. cpus_per_task None: the profile's DataLoader workers
    and two (the training process and the pin-memory thread); partition, account and mem
    None: the cluster's defaults; max_running: tasks at once (None: as Slurm allows)."""

    job_name: str
    time: str = DEFAULT_TIME
    cpus_per_task: int | None = None
    gres: str = DEFAULT_GRES
    partition: str | None = None
    account: str | None = None
    mem: str | None = None
    max_running: int | None = None

    def __post_init__(self) -> None:
        if not TIME_FORMAT.match(self.time):
            raise ValueError(f"--time {self.time!r}: expected HH:MM:SS or D-HH:MM:SS")
        for name in ("cpus_per_task", "max_running"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value}")


# --------------------------------------------------------------------------------------------
# What the array trains


def parse_variants(text: str) -> tuple[str, ...]:
    """ "plain, attention" -> ("plain", "attention"); an unknown variant names the known ones,
    a repeated one is refused (its tasks would train one folder twice at once)."""
    variants = tuple(v.strip() for v in text.split(",") if v.strip())
    if not variants:
        raise ValueError(f"--variants {text!r}: expected at least one of {PAPER_ORDER}")
    for variant in variants:
        check_variant(variant)
    repeated = sorted({v for v in variants if variants.count(v) > 1})
    if repeated:
        raise ValueError(f"--variants {text!r}: {repeated} named more than once")
    return variants


def task_seeds(profile: Profile, count: int | None) -> tuple[int, ...]:
    """Seeds 0 .. count-1, as notebook 04's SEEDS; None: the profile's seeds."""
    if count is None:
        return profile.seeds
    if count < 1:
        raise ValueError(f"--seeds {count}: expected at least one seed per variant")
    return tuple(range(count))


def resolve_data_root(dataset: str, data_root: str | None) -> str | None:
    """The data root as the train CLI writes it into a config (absolute, links resolved);
    None for synthetic data, which reads none (the train CLI would refuse one)."""
    if dataset not in DATA_CHOICES:
        raise ValueError(f"--dataset {dataset!r}: expected one of {DATA_CHOICES}")
    if dataset == "synthetic":
        if data_root:
            raise ValueError("--data-root: synthetic data reads no dataset files")
        return None
    if not data_root:
        raise ValueError(f"--dataset {dataset} needs --data-root (the downloaded dataset)")
    return str(Path(data_root).expanduser().resolve())


def base_config(
    profile: str, dataset: str, data_root: str | None, run_dir: str | Path
) -> RunConfig:
    """Notebook 04's base config (`nb.run_config("attention")`) for these parameters, on
    CUDA: the notebook's own `Session`, built without `notebook.start`'s checks and folders
    (this machine, a cluster's login node, need not have a GPU)."""
    run_dir = Path(run_dir)
    session = notebook.Session(
        profile=get_profile(profile),
        dataset=dataset,
        data_root=data_root,
        run_dir=run_dir,
        figures_dir=run_dir / "figures",
        headless=True,
        device="cuda",
    )
    return session.run_config("attention")


def task_run_dir(run_dir: Path, variant: str, seed: int, notebook03: bool = False) -> Path:
    """Where a task trains: RUN/selfcomp/<variant>_seed<k> (notebook 04's folder), or with
    `notebook03` for attention seed 0 RUN/pose_attention (notebook 03's)."""
    if notebook03 and (variant, seed) == ("attention", 0):
        return run_dir / NOTEBOOK03_RUN
    return run_dir / "selfcomp" / ablation.run_name(variant, seed)


def train_command(
    python: str,
    dataset: str,
    data_root: str | None,
    task_config: Path,
    run_dir: Path,
    config: RunConfig,
) -> tuple[str, ...]:
    """`python -m handpose_lib.train` of one task. The config file decides the run; --profile,
    --model, --data, --data-root and train.seed say the same (the train CLI takes the file's
    values and would resolve --data-root to the file's root) so the line reads on its own."""
    command = [python, "-m", "handpose_lib.train", "--profile", config.profile]
    command += ["--model", config.name, "--data", dataset]
    command += ["--data-root", data_root] if data_root else []
    command += ["--config", str(task_config), "--run-dir", str(run_dir)]
    command += ["--resume", "--device", "cuda", "--no-progress"]
    return (*command, "--set", f"train.seed={config.train.seed}")


def plan_tasks(
    base: RunConfig,
    variants: Sequence[str],
    seeds: Sequence[int],
    run_dir: Path,
    dataset: str,
    data_root: str | None,
    python: str = sys.executable,
    notebook03: bool = False,
) -> list[Task]:
    """One task per variant and seed, in notebook 04's order (variants, then seeds)."""
    if notebook03:
        _check_notebook03(base, variants, seeds)
    config_dir = run_dir / SLURM_DIR / "configs"
    tasks = []
    for index, (variant, seed) in enumerate((v, s) for v in variants for s in seeds):
        config = ablation.variant_config(base, variant, seed)
        folder = task_run_dir(run_dir, variant, seed, notebook03)
        config_path = config_dir / f"{ablation.run_name(variant, seed)}.json"
        command = train_command(python, dataset, data_root, config_path, folder, config)
        tasks.append(Task(index, variant, seed, folder, config, config_path, command))
    return tasks


def _check_notebook03(base: RunConfig, variants: Sequence[str], seeds: Sequence[int]) -> None:
    """--notebook03 needs attention seed 0 among the tasks, and notebook 03's run (the base
    config) to be that run."""
    if "attention" not in variants or 0 not in seeds:
        raise ValueError("--notebook03: attention seed 0 is not among the tasks")
    differ = config_differences(base, ablation.variant_config(base, "attention", 0))
    if differ:
        raise ValueError(
            f"--notebook03: notebook 03's run differs from attention seed 0 in {differ}"
        )


def write_configs(tasks: Sequence[Task]) -> None:
    """Each task's config file (without provenance: the training records its own)."""
    for task in tasks:
        task.config_path.parent.mkdir(parents=True, exist_ok=True)
        task.config_path.write_text(json.dumps(task.config.to_dict(), indent=2) + "\n")


# --------------------------------------------------------------------------------------------
# The script


def cpus_per_task(config: RunConfig, options: SbatchOptions) -> int:
    """--cpus-per-task: the option, else the run's DataLoader workers and two."""
    return options.cpus_per_task or config.train.num_workers + 2


def sbatch_lines(tasks: Sequence[Task], options: SbatchOptions, log_dir: Path) -> list[str]:
    """The #SBATCH lines: one array task per training, one GPU each, a log per task
    appended to on requeue."""
    limit = f"%{options.max_running}" if options.max_running else ""
    chosen = {
        "job-name": options.job_name,
        "array": f"0-{len(tasks) - 1}{limit}",
        "gres": options.gres,
        "cpus-per-task": str(cpus_per_task(tasks[0].config, options)),
        "time": options.time,
        "output": str(log_dir / f"{options.job_name}_%A_%a.out"),
        "open-mode": "append",
        "partition": options.partition,
        "account": options.account,
        "mem": options.mem,
    }
    lines = [f"#SBATCH --{name}={value}" for name, value in chosen.items() if value]
    return [*lines, "#SBATCH --requeue"]


def sbatch_script(
    tasks: Sequence[Task], options: SbatchOptions, run_dir: Path, header: Sequence[str] = ()
) -> str:
    """The sbatch script: `header` as comments, the #SBATCH lines, the shared crop cache,
    then one `case` line per task running its command."""
    if not tasks:
        raise ValueError("no tasks: expected at least one variant and one seed")
    cache = shlex.quote(str(run_dir / CROP_CACHE))
    lines = ["#!/bin/bash", *(f"# {line}".rstrip() for line in header)]
    lines += sbatch_lines(tasks, options, run_dir / SLURM_DIR / "logs")
    lines += [
        "set -euo pipefail",
        "# The tasks crop each dataset once, into the runner's shared cache (a lock file",
        "# beside it: flock, which the cluster file system must support; or set",
        f"# {ENV_CROP_CACHE_DIR} to node-local scratch and each task crops its own).",
        f'export {ENV_CROP_CACHE_DIR}="${{{ENV_CROP_CACHE_DIR}:-{cache}}}"',
        'case "${SLURM_ARRAY_TASK_ID:?run this script with sbatch}" in',
    ]
    lines += [f"  {task.index}) exec {shlex.join(task.command)} ;;" for task in tasks]
    lines += ['  *) echo "no task ${SLURM_ARRAY_TASK_ID}" >&2; exit 2 ;;', "esac", ""]
    return "\n".join(lines)


def runner_command(
    profile: str,
    dataset: str,
    data_root: str | None,
    run_dir: Path,
    seeds: int | None,
    variants: str | None,
) -> str:
    """The runner's command that reuses the array's runs (RETRAIN=all)."""
    command = ["python", "-m", "handpose_lib.reproduce", "--profile", profile]
    command += ["--dataset", dataset, *(["--data-root", data_root] if data_root else [])]
    command += ["--retrain", "all", "--output", str(run_dir)]
    command += ["--seeds", str(seeds)] if seeds is not None else []
    command += ["--variants", variants] if variants is not None else []
    return shlex.join(command)


# --------------------------------------------------------------------------------------------
# Command line


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m handpose_lib.slurm",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--profile", required=True, help="a profile, e.g. paper (profiles.py)")
    parser.add_argument("--dataset", choices=DATA_CHOICES, default="synthetic")
    parser.add_argument("--data-root", help="root of the downloaded ICVL or NYU dataset")
    parser.add_argument(
        "--run-dir", help="the runner's run folder (--output; default outputs/<profile>-<dataset>)"
    )
    parser.add_argument("--seeds", type=int, help="seeds per variant (default: the profile's)")
    parser.add_argument("--variants", help=f"comma-separated (default: {','.join(PAPER_ORDER)})")
    parser.add_argument(
        "--notebook03",
        action="store_true",
        help="train attention seed 0 into RUN/pose_attention, notebook 03's run folder",
    )
    parser.add_argument("--partition", help="#SBATCH --partition (default: the cluster's)")
    parser.add_argument("--account", help="#SBATCH --account (default: the cluster's)")
    parser.add_argument("--time", default=DEFAULT_TIME, help=f"per task (default {DEFAULT_TIME})")
    parser.add_argument(
        "--cpus-per-task", type=int, help="default: the profile's loader workers + 2"
    )
    parser.add_argument("--mem", help="#SBATCH --mem, e.g. 64G (default: the cluster's)")
    parser.add_argument("--gres", default=DEFAULT_GRES, help=f"default {DEFAULT_GRES}")
    parser.add_argument("--max-running", type=int, help="tasks at once (#SBATCH --array=...%%N)")
    parser.add_argument("--python", default=sys.executable, help="the tasks' interpreter")
    parser.add_argument("--out", help="write the script here (default: standard output)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Write the configs and the script; say on stderr what it trains and what comes next."""
    args = _parse_args(argv)
    try:
        profile = get_profile(args.profile)
        data_root = resolve_data_root(args.dataset, args.data_root)
        run_dir = Path(args.run_dir or default_run_dir(profile.name, args.dataset)).resolve()
        variants = parse_variants(args.variants) if args.variants is not None else PAPER_ORDER
        seeds = task_seeds(profile, args.seeds)
        options = SbatchOptions(
            job_name=f"selfcomp-{profile.name}-{args.dataset}",
            time=args.time,
            cpus_per_task=args.cpus_per_task,
            gres=args.gres,
            partition=args.partition,
            account=args.account,
            mem=args.mem,
            max_running=args.max_running,
        )
        base = base_config(profile.name, args.dataset, data_root, run_dir)
        tasks = plan_tasks(
            base, variants, seeds, run_dir, args.dataset, data_root, args.python, args.notebook03
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    runner = runner_command(
        profile.name, args.dataset, data_root, run_dir, args.seeds, args.variants
    )
    given = sys.argv[1:] if argv is None else list(argv)
    header = [
        f"Notebook 04's self-comparison, profile {profile.name} on {args.dataset}: "
        f"{len(variants)} variants x seeds {list(seeds)}, one array task each.",
        f"Written by: python -m handpose_lib.slurm {shlex.join(given)}",
        "Submit it again after a time limit: unfinished runs continue, finished ones are kept.",
        f"Afterwards, to reuse these runs: {runner}",
        "(from this checkout and environment: a run is reused only by the code and torch that",
        "made it, `training.provenance`; other code moves it aside and trains it again)",
    ]
    write_configs(tasks)
    (run_dir / SLURM_DIR / "logs").mkdir(parents=True, exist_ok=True)  # sbatch creates none
    script = sbatch_script(tasks, options, run_dir, header)
    if args.out:
        Path(args.out).write_text(script)
    else:
        sys.stdout.write(script)
    centres = base.data.val.centers if base.data.val is not None else "none"
    if not (run_dir / CENTERS_FILE).is_file():
        centres += f" (notebook 02 has not written {CENTERS_FILE} yet)"
    print(
        f"{len(tasks)} tasks, configs in {tasks[0].config_path.parent}, validated at {centres}"
        f"\nafterwards: {runner}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
