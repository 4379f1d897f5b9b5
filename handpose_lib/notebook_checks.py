"""The key facts each notebook asserts in its last cell, so that nbval (and the runner) check
results, not only that cells ran.

Every function raises `NotebookCheckFailed` naming the fact that does not hold, and
otherwise returns the list of facts it checked (printed by the notebook). Facts that need a
trained model (it beats a floor, LocNet beats the CoM) are asserted only where the profile
promises learning (`Profile.promises_learning`: every profile but `smoke`, whose networks are
too small and too briefly trained to learn, and `paper_faithful`, the paper's recipe as
written, which is not shown to learn at paper size).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from handpose_lib import tables
from handpose_lib.evaluate import MethodResult
from handpose_lib.floors import Floor
from handpose_lib.profiles import Profile


class NotebookCheckFailed(AssertionError):
    """A fact a notebook's results must show does not hold."""


class _Facts:
    def __init__(self) -> None:
        self.checked: list[str] = []

    def require(self, holds: bool, fact: str, detail: str = "") -> None:
        if not holds:
            raise NotebookCheckFailed(f"{fact}: does not hold{f' ({detail})' if detail else ''}")
        self.checked.append(fact)


def _finite_frame(frame: pd.DataFrame, columns: Iterable[str]) -> bool:
    values = frame[[c for c in columns if c in frame]].to_numpy(dtype=float)
    return values.size > 0 and bool(np.isfinite(values).all())


def _loss_columns(history: pd.DataFrame) -> list[str]:
    return [c for c in history.columns if "loss" in c]


def data_preparation(
    item: Mapping[str, object],
    walkthrough: Mapping[str, np.ndarray],
    input_size: int,
    heatmap_size: int,
    num_joints: int,
    round_trip_px: float,
    com_error_mm: float,
) -> list[str]:
    """Notebook 01: the dataset's training item (as the training loader gets it) equals the
    walkthrough's crop, augmentation and targets; shapes; the crop round trip; the CoM error.

    item: `dataset[FRAME]` (torch tensors); walkthrough: the same draw built step by step.
    """
    facts = _Facts()
    differing = [
        key
        for key, value in walkthrough.items()
        if not np.array_equal(_as_numpy(item[key]), np.asarray(value))
    ]
    facts.require(
        not differing and set(walkthrough) <= set(item),
        "the training tensors of build_dataset equal the walkthrough's, key for key",
        f"differ: {differing}",
    )
    image, heatmaps = _as_numpy(item["image"]), _as_numpy(item["heatmaps"])
    facts.require(
        image.shape == (1, input_size, input_size),
        f"the input crop is (1, {input_size}, {input_size})",
        f"got {image.shape}",
    )
    facts.require(
        heatmaps.shape == (num_joints, heatmap_size, heatmap_size),
        f"the heatmap targets are ({num_joints}, {heatmap_size}, {heatmap_size})",
        f"got {heatmaps.shape}",
    )
    facts.require(float(np.abs(image).max()) <= 1.0 + 1e-6, "crop depths are normalised to [-1, 1]")
    facts.require(
        round_trip_px < 1e-3,
        "crop -> image coordinates round trip within 0.001 px",
        f"{round_trip_px}",
    )
    facts.require(
        np.isfinite(com_error_mm) and com_error_mm > 0,
        "the CoM error is a finite positive distance",
        f"{com_error_mm}",
    )
    return facts.checked


def hand_localization(
    profile: Profile,
    history: pd.DataFrame,
    errors_mm: Mapping[str, np.ndarray],
    com_label: str,
    refined_label: str,
    round_trip: float,
) -> list[str]:
    """Notebook 02: finite losses and centre errors, the centre file round trip, and where the
    profile promises learning, LocNet's refined centres beat the CoM on average."""
    facts = _Facts()
    facts.require(_finite_frame(history, _loss_columns(history)), "every logged loss is finite")
    facts.require(
        all(np.isfinite(e).all() for e in errors_mm.values()), "every centre error is finite"
    )
    facts.require(round_trip < 1e-3, "the centre file round trip is exact to 0.001")
    com, refined = float(np.mean(errors_mm[com_label])), float(np.mean(errors_mm[refined_label]))
    if profile.promises_learning:
        facts.require(
            refined < com,
            f"LocNet's centres beat the CoM ({refined:.2f} < {com:.2f} mm)",
            f"profile {profile.name} promises learning",
        )
    return facts.checked


def pose_training(
    profile: Profile,
    history: pd.DataFrame,
    result: MethodResult,
    floors: Sequence[Floor],
    num_joints: int,
) -> list[str]:
    """Notebook 03: finite losses, one prediction per validation frame and joint, and where the
    profile promises learning, a mean error under the lowest constant-pose floor."""
    facts = _Facts()
    facts.require(_finite_frame(history, _loss_columns(history)), "every logged loss is finite")
    facts.require(
        result.errors_mm.shape[1:] == (num_joints,) and bool(np.isfinite(result.errors_mm).all()),
        f"finite errors for every frame and each of the {num_joints} joints",
        f"shape {result.errors_mm.shape}",
    )
    if profile.promises_learning:
        floor = min(floors, key=lambda f: f.mean_error_mm)
        facts.require(
            result.mean_error_mm < floor.mean_error_mm,
            f"the model beats the {floor.name} ({result.mean_error_mm:.2f} < "
            f"{floor.mean_error_mm:.2f} mm)",
            f"profile {profile.name} promises learning",
        )
    return facts.checked


def self_comparison(
    profile: Profile,
    by_variant: Mapping[str, Sequence[MethodResult]],
    floors: Sequence[Floor],
) -> list[str]:
    """Notebook 04: every variant has the same number of seeds, finite results, all on the
    same frames; where the profile promises learning, every variant's mean over its seeds
    beats the lowest floor."""
    facts = _Facts()
    counts = {v: len(r) for v, r in by_variant.items()}
    facts.require(
        len(set(counts.values())) == 1 and min(counts.values(), default=0) >= 1,
        "every variant has the same number (>= 1) of seeds",
        f"{counts}",
    )
    frames = {r.errors_mm.shape for results in by_variant.values() for r in results}
    facts.require(len(frames) == 1, "every run is scored on the same frames", f"{frames}")
    facts.require(
        all(np.isfinite(r.mean_error_mm) for rs in by_variant.values() for r in rs),
        "every run's mean error is finite",
    )
    if profile.promises_learning:
        floor = min(floors, key=lambda f: f.mean_error_mm)
        means = {v: float(np.mean([r.mean_error_mm for r in rs])) for v, rs in by_variant.items()}
        worst = max(means, key=lambda v: means[v])
        facts.require(
            means[worst] < floor.mean_error_mm,
            f"every variant beats the {floor.name} (worst: {worst} {means[worst]:.2f} < "
            f"{floor.mean_error_mm:.2f} mm)",
            f"profile {profile.name} promises learning",
        )
    return facts.checked


def table1_rows(table1: pd.DataFrame, datasets: Sequence[str]) -> list[str]:
    """Notebook 05: each of Table 1's comparison rows, recomputed from the published
    predictions, equals the paper's printed value to its three decimals."""
    facts = _Facts()
    expected = sum(len(tables.PAPER_TABLE1[ds]) for ds in datasets)
    compared = table1[table1["source"] == "published predictions"]
    facts.require(
        len(compared) == expected,
        f"Table 1 has the paper's {expected} comparison rows",
        f"got {len(compared)}",
    )
    off = _rows_off(compared)
    facts.require(not off, f"all {expected} rows equal the paper to 3 decimals", f"{off}")
    return facts.checked


def _rows_off(compared: pd.DataFrame) -> list[str]:
    return [
        f"{row['method']}: {row['recomputed (mm)']:.3f} vs {row['paper (mm)']:.3f}"
        for _, row in compared.iterrows()
        if f"{row['recomputed (mm)']:.3f}" != f"{row['paper (mm)']:.3f}"
    ]


def _as_numpy(value: object) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def report(checked: list[str]) -> None:
    """Print the facts a notebook checked, one per line."""
    print(f"{len(checked)} facts checked:")
    for fact in checked:
        print(f"  - {fact}")
