"""Self-comparisons of Section 4.1 (Fig. 3 a-b): the paper's model against three baselines.

The four PoseNet variants, in the order the paper reports them, worst to best in mean error:

    plain > two_branch > direct > attention

Each variant is trained with the same data and budget for the profile's seeds
(`profiles.Profile.seeds`), predicts the same validation frames, and is evaluated from its
community-format prediction file by `evaluate.evaluate_file`, the code path of Table 1.
`summary_table` aggregates over seeds; `ordering_verdict` says whether the paper's ordering
holds, and calls a difference resolved only when it is larger than the spread over seeds (every
seed of one variant beats every seed of the other). With one seed nothing is resolved: a single
training run cannot tell a real difference from the luck of initialization and data order.

A finished run is reused only when its config (`training.config.weight_differences`) and its
code (`training.provenance`) match; otherwise `train_or_reuse` says why and trains again.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from handpose_lib import evaluate, metrics
from handpose_lib.datasets.frame import FrameSource
from handpose_lib.evaluate import MethodResult
from handpose_lib.profiles import get_profile
from handpose_lib.training import provenance
from handpose_lib.training.config import (
    ConfigError,
    RunConfig,
    SourceSpec,
    load_provenance,
    resume_differences,
    validation_differences,
    validation_fields,
    weight_differences,
)
from handpose_lib.training.data import EvenSubset, build_source
from handpose_lib.training.engine import EpochCallback, train
from handpose_lib.training.inference import evaluate_run

# The paper's ordering, worst to best (Fig. 3 a-b, Section 4.1).
PAPER_ORDER = ("plain", "two_branch", "direct", "attention")
VARIANT_LABELS = {
    "plain": "Plain (one-task 3D regression)",
    "two_branch": "Two-branch (depth from raw shallow features)",
    "direct": "Direct (depth from detection outputs)",
    "attention": "Attention (the paper's model)",
}
# What each variant takes away from the paper's model.
VARIANT_REMOVES = {
    "plain": "the 2D detection task: no heatmaps, u, v and d all regressed",
    "two_branch": "any 2D information in the depth branch",
    "direct": "the attention: depth reads the detection features themselves",
    "attention": "nothing (Eq. 3: depth reads shallow features masked by the heatmaps)",
}
CHECKPOINTS = ("last", "best")
# Largest difference (mm) between evaluating the run in memory and its 3-decimal file.
FILE_ROUNDING_TOLERANCE_MM = 0.01
VERDICTS = ("holds", "does not hold", "not resolved")
_PHRASES = {"holds": "HOLDS", "does not hold": "DOES NOT HOLD", "not resolved": "is NOT RESOLVED"}
# Suffix of the folder a run made by other code is moved to before training again.
STALE_SUFFIX = ".stale"


def seeds_for_profile(profile: str) -> tuple[int, ...]:
    """Training seeds of a profile (`Profile.seeds`): smoke (0, 1), cpu (0,), paper (0, 1, 2)."""
    return get_profile(profile).seeds


def run_name(variant: str, seed: int) -> str:
    """Name of a run's folder under RUN_DIR/selfcomp/ and its predictions' stem."""
    _check_variant(variant)
    return f"{variant}_seed{seed}"


def predictions_name(variant: str, seed: int, which: str = "last") -> str:
    """File name of a run's predictions: "<variant>_seed<k>.txt" for the last epoch's weights
    (as notebook 03 writes attention_seed0.txt), "<variant>_seed<k>_best.txt" for best.pt."""
    _check_checkpoint(which)
    return f"{run_name(variant, seed)}{'' if which == 'last' else '_' + which}.txt"


def _check_checkpoint(which: str) -> None:
    if which not in CHECKPOINTS:
        raise ValueError(f"unknown checkpoint {which!r}: expected one of {CHECKPOINTS}")


def _check_variant(variant: str) -> None:
    if variant not in PAPER_ORDER:
        raise ValueError(f"unknown variant {variant!r}: expected one of {PAPER_ORDER}")


# --------------------------------------------------------------------------------------------
# Configs and runs


def variant_config(base: RunConfig, variant: str, seed: int) -> RunConfig:
    """`base` (a pose run config) with `model.variant` and `train.seed` replaced: same data,
    crop, augmentation and budget for every variant."""
    _check_variant(variant)
    if base.task != "pose":
        raise ValueError(f"variant_config needs a pose run config, got task {base.task!r}")
    return base.with_overrides({"model.variant": variant, "train.seed": seed})


def reuse_problem(
    run_dir: str | os.PathLike,
    config: RunConfig,
    which: str = "last",
    reuse_other_code: bool = False,
) -> str | None:
    """Why `run_dir` cannot stand in for training `config` (None: it can). It can when it
    holds a finished run (summary.json with all epochs) whose `which` checkpoint is what
    training `config` would give (`weight_differences` empty), made by this code
    (`provenance.code_difference`; skipped with `reuse_other_code`)."""
    _check_checkpoint(which)
    run_dir = Path(run_dir)
    summary = run_dir / "summary.json"
    if not (run_dir / "config.json").is_file():
        return "it holds no run"
    if not summary.is_file():
        return "the run there is not finished"
    differ = weight_differences(RunConfig.load(run_dir), config, which)
    if differ:
        return f"its config differs in {differ}"
    try:
        epochs = json.loads(summary.read_text())["epochs"]
    except (json.JSONDecodeError, KeyError) as err:
        raise ConfigError(f"{summary}: no readable 'epochs' field ({err})") from None
    if epochs != config.train.epochs:
        return f"it trained {epochs} of {config.train.epochs} epochs"
    if not reuse_other_code:
        return provenance.code_difference(load_provenance(run_dir), provenance.current())
    return None


def reusable_run(
    run_dir: str | os.PathLike,
    config: RunConfig,
    which: str = "last",
    reuse_other_code: bool = False,
) -> bool:
    """True when `reuse_problem` finds none."""
    return reuse_problem(run_dir, config, which, reuse_other_code) is None


def _with_validation_of(config: RunConfig, saved: RunConfig) -> RunConfig:
    """`config` with the validation settings of `saved`, so that a run started with other
    validation data (e.g. before notebook 02 wrote its centres) can be resumed."""
    saved_dict = saved.to_dict()
    return config.with_overrides({f: _get(saved_dict, f) for f in validation_fields()})


def _get(data: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        data = data[part]
    return data


def validation_labels(spec: SourceSpec) -> np.ndarray:
    """(N, J, 3) uvd ground truth of a validation source, in its frame order.

    Rendered ICVL test poses and full ICVL / NYU test splits give the published test labels
    (the Table 1 ground truth); other sources give their frames' labels.
    """
    source = build_source(spec)
    uvd = _labels_of(source)
    if uvd is None:  # procedural frames: labels exist only by rendering them
        uvd = np.stack([source[i].uvd for i in range(len(source))])
    return np.asarray(uvd, dtype=np.float64)


def _labels_of(source: FrameSource) -> np.ndarray | None:
    if isinstance(source, EvenSubset):
        inner = _labels_of(source.source)
        return None if inner is None else inner[source.indices]
    return getattr(source, "uvd", None)


@dataclass(frozen=True)
class AblationRun:
    """One trained variant / seed and its evaluation on the validation frames.

    origin: "trained" (trained, or an interrupted run continued, in `run_dir`), "loaded
    (finished earlier)" or "reused <folder>" (the same run finished elsewhere, e.g. notebook
    03's attention run).
    """

    variant: str
    seed: int
    run_dir: Path
    predictions: Path
    result: MethodResult
    origin: str


def train_or_reuse(
    base: RunConfig,
    variant: str,
    seed: int,
    run_root: str | os.PathLike,
    predictions_dir: str | os.PathLike,
    labels: np.ndarray | None = None,
    reuse: Sequence[str | os.PathLike] = (),
    which: str = "last",
    on_epoch_end: EpochCallback | None = None,
    reuse_other_code: bool = False,
    report: Callable[[str], None] = print,
) -> AblationRun:
    """Train `variant_config(base, variant, seed)` into run_root/<variant>_seed<k>/, unless a
    `reuse` folder or that folder holds the run finished (`reuse_problem`); an interrupted run
    continues (resume=True). Then write the `which` checkpoint's predictions on base's
    validation frames to predictions_dir/`predictions_name(...)` and evaluate that file with
    `evaluate.evaluate_file` against `labels` (default `validation_labels(base.data.val)`).

    With which="last", a run that validated on other frames or centres during training still
    counts (only best.pt depends on them); with "best" the validation settings must match.

    A run in run_root made by other code (or before provenance was recorded) is never
    continued or reused: `report` says so, the folder is moved to "<name>.stale" and the run
    trained again. `reuse_other_code=True` accepts finished runs of other code (the config
    must still match). A finished run of another config in run_root is refused (ValueError
    naming the fields); `reuse` folders that do not fit are reported and skipped.
    """
    config = variant_config(base, variant, seed)
    spec = config.data.val
    if spec is None:
        raise ValueError("the base config has no validation data (data.val is None)")
    own_dir = Path(run_root) / run_name(variant, seed)
    run_dir = None
    for folder in map(Path, reuse):
        problem = reuse_problem(folder, config, which, reuse_other_code)
        if problem is None:
            run_dir, origin = folder, f"reused {folder}"
            break
        report(f"not reusing {folder}: {problem}")
    if run_dir is None and reusable_run(own_dir, config, which, reuse_other_code):
        run_dir, origin = own_dir, "loaded (finished earlier)"
    if run_dir is None:
        train_config = _resumable_config(config, own_dir, which, reuse_other_code, report)
        # A run of another config in own_dir is refused by the trainer, naming the fields.
        train(train_config, own_dir, resume=True, on_epoch_end=on_epoch_end)
        run_dir, origin = own_dir, "trained"
    out_path = Path(predictions_dir) / predictions_name(variant, seed, which)
    in_memory = evaluate_run(run_dir, which=which, source=spec, out_path=out_path)
    labels = validation_labels(spec) if labels is None else labels
    name = f"{VARIANT_LABELS[variant]}, seed {seed}"
    result = evaluate.evaluate_file(out_path, spec.dataset, labels, name=name)
    if abs(result.mean_error_mm - in_memory.mean_error_mm) > FILE_ROUNDING_TOLERANCE_MM:
        raise ValueError(
            f"{out_path}: evaluates to {result.mean_error_mm:.4f} mm against the given labels, "
            f"but the run's own frames give {in_memory.mean_error_mm:.4f} mm; the labels do not "
            "belong to the validation frames (or are in another order)"
        )
    return AblationRun(variant, seed, run_dir, out_path, result, origin)


def _resumable_config(
    config: RunConfig,
    own_dir: Path,
    which: str,
    reuse_other_code: bool,
    report: Callable[[str], None],
) -> RunConfig:
    """The config to train (or continue) `config` with in `own_dir`: with the saved run's
    validation settings (which="last"); a run there made by other code is moved aside."""
    if not (own_dir / "config.json").is_file():
        return config
    saved = RunConfig.load(own_dir)
    if which == "best" and validation_differences(saved, config):
        raise ValueError(
            f"{own_dir}: best.pt was chosen with other validation settings "
            f"({validation_differences(saved, config)}); evaluate which='last' or "
            "train into another run_root"
        )
    train_config = _with_validation_of(config, saved) if which == "last" else config
    if resume_differences(saved, train_config):
        return train_config  # the trainer refuses it, naming the fields
    code = provenance.code_difference(load_provenance(own_dir), provenance.current())
    if code is None or reuse_other_code:
        return train_config
    stale = own_dir.with_name(own_dir.name + STALE_SUFFIX)
    report(f"{own_dir}: not reused, {code}; moved to {stale.name}, training again")
    shutil.rmtree(stale, ignore_errors=True)
    own_dir.rename(stale)
    return config


# --------------------------------------------------------------------------------------------
# Aggregation over seeds


def success_auc(
    errors_mm: np.ndarray,
    kind: str = "max",
    thresholds_mm: np.ndarray = metrics.DEFAULT_THRESHOLDS_MM,
) -> float:
    """Area under a success curve of (N, J) errors, normalized by the threshold range, so
    1.0 = every frame within 0 mm and 0.0 = none within the largest threshold."""
    thresholds_mm = np.asarray(thresholds_mm, dtype=np.float64)
    if thresholds_mm.ndim != 1 or len(thresholds_mm) < 2 or np.any(np.diff(thresholds_mm) <= 0):
        raise ValueError("thresholds_mm must be at least two increasing values")
    if kind not in metrics.SUCCESS_CURVES:
        raise ValueError(f"unknown curve {kind!r}: expected one of {list(metrics.SUCCESS_CURVES)}")
    curve = metrics.SUCCESS_CURVES[kind](errors_mm, thresholds_mm)
    return float(np.trapezoid(curve, thresholds_mm) / (thresholds_mm[-1] - thresholds_mm[0]))


def pool_seeds(results: Sequence[MethodResult], name: str) -> MethodResult:
    """One result whose (S*N, J) errors stack S seeds' results on the same N frames: its
    per-joint means and success curves are the averages over seeds."""
    if not results:
        raise ValueError("pool_seeds needs at least one result")
    shapes = {r.errors_mm.shape for r in results}
    datasets = {(r.dataset, r.subset) for r in results}
    if len(shapes) != 1 or len(datasets) != 1:
        raise ValueError(
            f"pool_seeds: results must share frames and dataset, got shapes {sorted(shapes)} "
            f"and datasets {sorted(datasets)}"
        )
    dataset, subset = datasets.pop()
    errors = np.concatenate([r.errors_mm for r in results])
    files = ", ".join(r.file for r in results)
    return MethodResult(name=name, file=files, dataset=dataset, subset=subset, errors_mm=errors)


def _ordered(results_by_variant: Mapping[str, Sequence[MethodResult]]) -> list[str]:
    for variant, results in results_by_variant.items():
        _check_variant(variant)
        if not results:
            raise ValueError(f"variant {variant!r} has no results")
        means = [r.mean_error_mm for r in results]
        if not np.all(np.isfinite(means)):
            raise ValueError(f"variant {variant!r} has a non-finite mean error: {means}")
    return [v for v in PAPER_ORDER if v in results_by_variant]


def _stats(values: Sequence[float], prefix: str, unit: str) -> dict[str, float]:
    values = np.asarray(values, dtype=np.float64)
    return {
        f"{prefix}{unit}": float(values.mean()),
        f"{prefix} std{unit}": float(values.std(ddof=1)) if len(values) > 1 else np.nan,
        f"{prefix} min{unit}": float(values.min()),
        f"{prefix} max{unit}": float(values.max()),
    }


def summary_table(
    results_by_variant: Mapping[str, Sequence[MethodResult]], kind: str = "max"
) -> pd.DataFrame:
    """One row per variant (paper order): seeds; mean error over seeds with its std (NaN for
    one seed) and min / max; the same for the AUC of the `kind` success curve (0-80 mm);
    difference of the mean error to the attention model; the per-seed mean errors."""
    rows = []
    order = _ordered(results_by_variant)
    reference = results_by_variant.get("attention")
    ref_mm = np.mean([r.mean_error_mm for r in reference]) if reference else np.nan
    for variant in order:
        results = results_by_variant[variant]
        errors = [r.mean_error_mm for r in results]
        row = {"variant": variant, "removes": VARIANT_REMOVES[variant], "seeds": len(results)}
        row.update(_stats(errors, "mean error", " (mm)"))
        row.update(_stats([success_auc(r.errors_mm, kind) for r in results], f"AUC {kind}", ""))
        row["vs attention (mm)"] = float(np.mean(errors) - ref_mm)
        row["per-seed mean error (mm)"] = ", ".join(f"{e:.3f}" for e in errors)
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# The paper's ordering


@dataclass(frozen=True)
class PairComparison:
    """The paper says `worse` has a larger mean error than `better`.

    difference_mm: seed-averaged mean error of `worse` minus that of `better` (> 0 agrees
    with the paper). status: "holds" (every seed of `better` beats every seed of `worse`),
    "does not hold" (the reverse) or "not resolved" (seed ranges overlap, or one seed).
    """

    worse: str
    better: str
    difference_mm: float
    status: str
    reason: str


def compare_pair(
    worse: str, worse_mm: Sequence[float], better: str, better_mm: Sequence[float]
) -> PairComparison:
    """Compare two variants' per-seed mean errors (mm) against the paper's claim that
    `worse` is worse than `better`."""
    worse_mm, better_mm = np.asarray(worse_mm, float), np.asarray(better_mm, float)
    if len(worse_mm) == 0 or len(better_mm) == 0:
        raise ValueError(f"compare_pair({worse}, {better}): each variant needs >= 1 seed")
    diff = float(worse_mm.mean() - better_mm.mean())
    direction = "as the paper says" if diff > 0 else "opposite to the paper"
    if min(len(worse_mm), len(better_mm)) < 2:
        reason = (
            f"one seed: no spread to compare the {abs(diff):.3f} mm difference with "
            f"(observed direction {direction})"
        )
        return PairComparison(worse, better, diff, "not resolved", reason)
    if better_mm.max() < worse_mm.min():
        status, reason = "holds", f"every seed of {better} beats every seed of {worse}"
    elif worse_mm.max() < better_mm.min():
        status, reason = "does not hold", f"every seed of {worse} beats every seed of {better}"
    else:
        status = "not resolved"
        reason = f"the {abs(diff):.3f} mm difference ({direction}) is within the seed spread"
    return PairComparison(worse, better, diff, status, reason)


@dataclass(frozen=True)
class OrderingVerdict:
    """Whether plain > two_branch > direct > attention (mean error) holds on this data.

    status: "holds" (every neighbouring pair holds), "does not hold" (some neighbouring pair
    is resolved the other way) or "not resolved". `variants`: those compared, paper order;
    `pairs`: every pair of them, the neighbouring ones first; `observed_order`: the variants by
    seed-averaged mean error, worst first; `seeds`: the fewest seeds of any variant.
    """

    status: str
    variants: tuple[str, ...]
    pairs: tuple[PairComparison, ...]
    observed_order: tuple[str, ...]
    seeds: int

    @property
    def text(self) -> str:
        same = "the same as" if self.observed_order == self.variants else "unlike"
        line = (
            f"The paper's ordering (worst to best mean error) {' > '.join(self.variants)} "
            f"{_PHRASES[self.status]} on this data. Observed: {' > '.join(self.observed_order)}, "
            f"{same} the paper's."
        )
        if self.seeds < 2:
            return (
                f"{line} One seed per variant: no difference can be claimed as a finding, "
                "only judged for plausibility."
            )
        return (
            f"{line} {self.seeds} seeds per variant; a difference counts only when every seed "
            "of one variant beats every seed of the other."
        )

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "paper: worse": p.worse,
                "paper: better": p.better,
                "difference (mm)": p.difference_mm,
                "status": p.status,
                "reason": p.reason,
            }
            for p in self.pairs
        )


def ordering_verdict(results_by_variant: Mapping[str, Sequence[MethodResult]]) -> OrderingVerdict:
    """Check the paper's ordering on per-seed results of at least two variants."""
    order = _ordered(results_by_variant)
    if len(order) < 2:
        raise ValueError(f"an ordering needs at least two variants, got {order}")
    per_seed = {v: [r.mean_error_mm for r in results_by_variant[v]] for v in order}
    neighbours = list(zip(order, order[1:], strict=False))
    others = [(a, b) for i, a in enumerate(order) for b in order[i + 2 :]]
    pairs = tuple(compare_pair(a, per_seed[a], b, per_seed[b]) for a, b in neighbours + others)
    adjacent = [p.status for p in pairs[: len(neighbours)]]
    if all(s == "holds" for s in adjacent):
        status = "holds"
    elif any(s == "does not hold" for s in adjacent):
        status = "does not hold"
    else:
        status = "not resolved"
    observed = tuple(sorted(order, key=lambda v: -np.mean(per_seed[v])))
    seeds = min(len(s) for s in per_seed.values())
    return OrderingVerdict(status, tuple(order), pairs, observed, seeds)
