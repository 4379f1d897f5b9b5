"""The seeds' statistics of the self-comparisons and the verdict on the paper's ordering.

The paper's four PoseNet variants, worst to best in mean error (Fig. 3 a-b, Section 4.1):

    plain > two_branch > direct > attention

`summary_table` aggregates each variant's per-seed results; `ordering_verdict` tests every
pair the paper orders on the shared test frames: the per-frame difference of the two variants'
seed-averaged errors, a 95 % bootstrap interval over the frames, Holm's correction over the
pairs tested together, and the seeds (a pair holds only when every seed of one variant also
beats every seed of the other). With one seed nothing is resolved: a single training run
cannot tell a real difference from the luck of initialization and data order. The verdict is
for the budget and data of the runs, no more. Training and reusing the runs is `ablation`'s.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from handpose_lib import metrics, tables
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
    "attention": "nothing (Eq. 3: depth reads shallow features masked by the detection features)",
}
VERDICTS = ("holds", "reversed", "unresolved")
_PHRASES = {"holds": "HOLDS", "reversed": "is REVERSED", "unresolved": "is UNRESOLVED"}


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
# The paper's ordering: a paired bootstrap over test frames, seeds, and Holm's correction

BOOTSTRAP_RESAMPLES = 2000
FAMILY_LEVEL = 0.05  # family-wise error rate over the pairs tested (Holm)


def frame_errors(results: Sequence[MethodResult]) -> np.ndarray:
    """(N,) mean joint error of each test frame, averaged over the seeds' results."""
    return np.mean([r.errors_mm.mean(axis=1) for r in results], axis=0)


def bootstrap_means(differences: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """(P, resamples) means of (P, N) per-frame differences over the same resampled frames
    (one draw of N frames with replacement serves every pair: the pairs stay paired)."""
    differences = np.asarray(differences, dtype=np.float64)
    frames = differences.shape[1]
    rng = np.random.default_rng(seed)
    out = np.empty((len(differences), resamples))
    for start in range(0, resamples, 250):  # bounded memory: 250 x N indices at a time
        picks = rng.integers(0, frames, size=(min(250, resamples - start), frames))
        out[:, start : start + len(picks)] = differences[:, picks].mean(axis=2)
    return out


def bootstrap_p_value(means: np.ndarray) -> float:
    """Two-sided p-value of "mean difference = 0" from bootstrap means: twice the smaller tail
    (add-one so that no resample count gives exactly 0)."""
    below = (np.sum(means <= 0) + 1) / (len(means) + 1)
    above = (np.sum(means >= 0) + 1) / (len(means) + 1)
    return float(min(1.0, 2 * min(below, above)))


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (reject where adjusted < family level)."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    scaled = (len(p) - np.arange(len(p))) * p[order]
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return adjusted


def seed_separation(worse_mm: Sequence[float], better_mm: Sequence[float]) -> str:
    """ "paper" when every seed of `better` beats every seed of `worse`, "reversed" for the
    opposite, "overlap" when the seed ranges overlap, "one seed" when either has one."""
    worse_a, better_a = np.asarray(worse_mm, float), np.asarray(better_mm, float)
    if len(worse_a) == 0 or len(better_a) == 0:
        raise ValueError("seed_separation: each variant needs >= 1 seed")
    if min(len(worse_a), len(better_a)) < 2:
        return "one seed"
    if better_a.max() < worse_a.min():
        return "paper"
    if worse_a.max() < better_a.min():
        return "reversed"
    return "overlap"


@dataclass(frozen=True)
class PairComparison:
    """The paper says `worse` has a larger mean error than `better`.

    difference_mm: mean over test frames of (seed-averaged error of `worse` - that of
    `better`), > 0 agrees with the paper; [low_mm, high_mm] its 95 % bootstrap interval over
    the frames. p_value: the bootstrap's two-sided p; p_holm: Holm-adjusted over the pairs
    tested together. seeds: `seed_separation`. status: "holds" when p_holm < the family level,
    the difference is > 0 and the seeds separate in the paper's direction; "reversed" the same
    the other way; else "unresolved".
    """

    worse: str
    better: str
    difference_mm: float
    low_mm: float
    high_mm: float
    p_value: float
    p_holm: float
    seeds: str
    status: str
    reason: str


def _pair_status(diff: float, p_holm: float, seeds: str, level: float) -> tuple[str, str]:
    direction = "as the paper says" if diff > 0 else "opposite to the paper"
    if p_holm >= level:
        return "unresolved", (
            f"the frames do not separate them (Holm-adjusted p {p_holm:.3f} >= {level}; "
            f"observed direction {direction})"
        )
    if seeds == "one seed":
        return "unresolved", (
            f"frames separate them {direction}, but one seed cannot show the spread between "
            "trainings"
        )
    agrees = (diff > 0 and seeds == "paper") or (diff < 0 and seeds == "reversed")
    if not agrees:
        return "unresolved", f"frames separate them {direction}, but the seed ranges overlap"
    if diff > 0:
        return "holds", "the frames and every seed agree with the paper"
    return "reversed", "the frames and every seed go against the paper"


def compare_pairs(
    results_by_variant: Mapping[str, Sequence[MethodResult]],
    pairs: Sequence[tuple[str, str]],
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
    level: float = FAMILY_LEVEL,
) -> tuple[PairComparison, ...]:
    """Test each (worse, better) pair on the shared test frames: per-frame differences of the
    seed-averaged errors, a bootstrap over frames (`resamples`, `seed`), Holm's correction
    over `pairs` at family-wise `level`, and the seeds' separation."""
    frames = {v: frame_errors(results_by_variant[v]) for v in {v for p in pairs for v in p}}
    sizes = {v: len(e) for v, e in frames.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"compare_pairs: the variants' test frames differ in number: {sizes}")
    differences = np.stack([frames[w] - frames[b] for w, b in pairs])
    means = bootstrap_means(differences, resamples, seed)
    p_values = [bootstrap_p_value(m) for m in means]
    adjusted = holm(p_values)
    out = []
    for (worse, better), diff_frames, boot, p, p_adj in zip(
        pairs, differences, means, p_values, adjusted, strict=True
    ):
        diff = float(diff_frames.mean())
        per_seed = [[r.mean_error_mm for r in results_by_variant[v]] for v in (worse, better)]
        seeds = seed_separation(*per_seed)
        status, reason = _pair_status(diff, float(p_adj), seeds, level)
        low, high = np.percentile(boot, [2.5, 97.5])
        out.append(
            PairComparison(
                worse, better, diff, float(low), float(high), p, float(p_adj), seeds, status, reason
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class OrderingVerdict:
    """Whether plain > two_branch > direct > attention (mean error) holds on this data.

    status: "holds" (every neighbouring pair holds), "reversed" (some neighbouring pair is
    reversed) or "unresolved". `variants`: those compared, paper order; `pairs`: every pair
    of them, the neighbouring ones first, tested together (Holm); `observed_order`: the
    variants by seed-averaged mean error, worst first; `seeds`: the fewest seeds of any
    variant; `frames`: the shared test frames; `resamples`: bootstrap resamples.
    """

    status: str
    variants: tuple[str, ...]
    pairs: tuple[PairComparison, ...]
    observed_order: tuple[str, ...]
    seeds: int
    frames: int
    resamples: int

    @property
    def text(self) -> str:
        same = "the same as" if self.observed_order == self.variants else "unlike"
        counts = {s: sum(p.status == s for p in self.pairs) for s in VERDICTS}
        return (
            f"The paper's ordering (worst to best mean error) {' > '.join(self.variants)} "
            f"{_PHRASES[self.status]} at this budget, on these {self.frames} test frames. "
            f"Observed: {' > '.join(self.observed_order)}, {same} the paper's. "
            f"{len(self.pairs)} pairs tested together: per-frame differences of the "
            f"seed-averaged errors, a 95 % interval from {self.resamples} bootstrap resamples of "
            f"the frames, Holm's correction at a family-wise {FAMILY_LEVEL:.0%}, and a pair "
            f"counts only when every one of the {self.seeds} seed(s) of one variant also beats "
            f"every seed of the other ({counts['holds']} hold, {counts['reversed']} reversed, "
            f"{counts['unresolved']} unresolved). The bootstrap is over test frames: it does "
            "not cover another training's luck, which only the seeds show."
        )

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "paper: worse": p.worse,
                "paper: better": p.better,
                "difference (mm)": p.difference_mm,
                "interval low (mm)": p.low_mm,
                "interval high (mm)": p.high_mm,
                "p (bootstrap)": p.p_value,
                "p (Holm)": p.p_holm,
                "seeds": p.seeds,
                "status": p.status,
                "reason": p.reason,
            }
            for p in self.pairs
        )


def ordering_verdict(
    results_by_variant: Mapping[str, Sequence[MethodResult]],
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> OrderingVerdict:
    """Test the paper's ordering on per-seed results (shared test frames) of at least two
    variants; `seed` fixes the bootstrap draws."""
    order = _ordered(results_by_variant)
    if len(order) < 2:
        raise ValueError(f"an ordering needs at least two variants, got {order}")
    neighbours = list(itertools.pairwise(order))
    others = [(a, b) for i, a in enumerate(order) for b in order[i + 2 :]]
    pairs = compare_pairs(results_by_variant, neighbours + others, resamples, seed)
    adjacent = [p.status for p in pairs[: len(neighbours)]]
    if all(s == "holds" for s in adjacent):
        status = "holds"
    elif any(s == "reversed" for s in adjacent):
        status = "reversed"
    else:
        status = "unresolved"
    per_seed = {v: np.mean([r.mean_error_mm for r in results_by_variant[v]]) for v in order}
    observed = tuple(sorted(order, key=lambda v: -per_seed[v]))
    seeds = min(len(results_by_variant[v]) for v in order)
    frames = len(frame_errors(results_by_variant[order[0]]))
    return OrderingVerdict(status, tuple(order), pairs, observed, seeds, frames, resamples)


def write_self_comparison(
    summary: pd.DataFrame, verdict: OrderingVerdict, out_dir: str | os.PathLike, stem: str
) -> list[Path]:
    """`<stem>.csv` (the summary over seeds), `<stem>_pairs.csv` (the pair tests) and
    `<stem>.md` (the verdict's text, then both tables): one computation for the notebook, the
    files and the README."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.csv", out_dir / f"{stem}_pairs.csv", out_dir / f"{stem}.md"]
    summary.to_csv(paths[0], index=False)
    pairs = verdict.table()
    pairs.to_csv(paths[1], index=False)
    paths[2].write_text(
        f"**Verdict.** {verdict.text}\n\n**Each variant over its seeds**\n\n"
        f"{tables.markdown_table(summary)}\n**Each pair the paper orders**\n\n"
        f"{tables.markdown_table(pairs)}"
    )
    return paths
