"""The seeds' statistics of the self-comparisons and the verdict on the paper's ordering.

The paper's four PoseNet variants, worst to best in mean error (Fig. 3 a-b, Section 4.1):

    plain > two_branch > direct > attention

`summary_table` aggregates each variant's per-seed results; `ordering_verdict` says whether
the ordering holds, and calls a difference resolved only when it is larger than the spread
over seeds (every seed of one variant beats every seed of the other). With one seed nothing is
resolved: a single training run cannot tell a real difference from the luck of initialization
and data order. Training and reusing the runs is `ablation`'s.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from handpose_lib import metrics
from handpose_lib.evaluate import MethodResult

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
VERDICTS = ("holds", "does not hold", "not resolved")
_PHRASES = {"holds": "HOLDS", "does not hold": "DOES NOT HOLD", "not resolved": "is NOT RESOLVED"}


def check_variant(variant: str) -> None:
    """A ValueError naming the variants unless `variant` is one of the paper's four."""
    if variant not in PAPER_ORDER:
        raise ValueError(f"unknown variant {variant!r}: expected one of {PAPER_ORDER}")


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
        check_variant(variant)
        if not results:
            raise ValueError(f"variant {variant!r} has no results")
        means = [r.mean_error_mm for r in results]
        if not np.all(np.isfinite(means)):
            raise ValueError(f"variant {variant!r} has a non-finite mean error: {means}")
    return [v for v in PAPER_ORDER if v in results_by_variant]


def _stats(values: Sequence[float], prefix: str, unit: str) -> dict[str, float]:
    array = np.asarray(values, dtype=np.float64)
    return {
        f"{prefix}{unit}": float(array.mean()),
        f"{prefix} std{unit}": float(array.std(ddof=1)) if len(array) > 1 else np.nan,
        f"{prefix} min{unit}": float(array.min()),
        f"{prefix} max{unit}": float(array.max()),
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
    worse_a, better_a = np.asarray(worse_mm, float), np.asarray(better_mm, float)
    if len(worse_a) == 0 or len(better_a) == 0:
        raise ValueError(f"compare_pair({worse}, {better}): each variant needs >= 1 seed")
    diff = float(worse_a.mean() - better_a.mean())
    direction = "as the paper says" if diff > 0 else "opposite to the paper"
    if min(len(worse_a), len(better_a)) < 2:
        reason = (
            f"one seed: no spread to compare the {abs(diff):.3f} mm difference with "
            f"(observed direction {direction})"
        )
        return PairComparison(worse, better, diff, "not resolved", reason)
    if better_a.max() < worse_a.min():
        status, reason = "holds", f"every seed of {better} beats every seed of {worse}"
    elif worse_a.max() < better_a.min():
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
    neighbours = list(itertools.pairwise(order))
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
