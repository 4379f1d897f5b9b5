""" "What to notice" after a notebook's results: short sentences computed from the numbers the
cell printed, so the text never disagrees with them (on any profile, dataset or seed).

Each function takes the results a notebook already holds and returns markdown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from handpose_lib.evaluate import MethodResult
from handpose_lib.floors import Floor
from handpose_lib.notebook import COM, ORACLE


def _fraction(value: float, reference: float) -> str:
    return f"{value / reference:.0%}" if reference > 0 else "n/a"


def training_curve(history: pd.DataFrame) -> str:
    """What the validation error and the learning-rate drops did over a run's epochs."""
    measured = history.dropna(subset=["val_mean_error_mm"])
    if measured.empty:
        return "**Notice.** This run validated at no epoch: there is no curve to read."
    first, last = measured.iloc[0], measured.iloc[-1]
    text = (
        f"**Notice.** The validation error went from {first['val_mean_error_mm']:.2f} mm "
        f"(epoch {int(first['epoch'])}) to {last['val_mean_error_mm']:.2f} mm (epoch "
        f"{int(last['epoch'])})"
    )
    if "lr" in history and history["lr"].nunique() > 1:
        drops = history.index[history["lr"].diff() < 0]
        epochs = [int(history.loc[i, "epoch"]) for i in drops]
        before = measured[measured["epoch"] < epochs[0]]
        after = measured[measured["epoch"] >= epochs[0]]
        if not before.empty and not after.empty:
            text += (
                f"; the learning rate dropped at epoch {epochs[0]}, and the last validation "
                f"before it ({before['val_mean_error_mm'].iloc[-1]:.2f} mm) compares with the "
                f"first after it ({after['val_mean_error_mm'].iloc[0]:.2f} mm)"
            )
    return text + "."


def pose_errors(
    at_centres: Mapping[str, tuple[MethodResult, Mapping[str, float]]], floors: Sequence[Floor]
) -> str:
    """Notebook 03's error table read out: the model against the lowest floor, what each
    crop centre costs, and which part (2D or depth) dominates the error."""
    lowest = min(floors, key=lambda f: f.mean_error_mm)
    first_label, (first, parts) = next(iter(at_centres.items()))
    lines = [
        f"**Notice.** At the {first_label} the model's mean error is "
        f"{first.mean_error_mm:.2f} mm, {_fraction(first.mean_error_mm, lowest.mean_error_mm)} "
        f"of the lowest constant-pose floor ({lowest.mean_error_mm:.2f} mm, "
        f"{lowest.name}): "
        + (
            "it reads the pose from the image."
            if first.mean_error_mm < lowest.mean_error_mm
            else "it does **not** beat a constant pose, so it has not learnt the task yet."
        )
    ]
    if ORACLE in at_centres and COM in at_centres:
        oracle = at_centres[ORACLE][0].mean_error_mm
        com = at_centres[COM][0].mean_error_mm
        lines.append(
            f"Cropping at the true centroid gives {oracle:.2f} mm, at the plain CoM "
            f"{com:.2f} mm. The CoM column is out of the training distribution: training crops "
            "sit at the centroid with small random shifts, while CoM centres lie several "
            "centimetres off, so it mixes centre error with a train/test mismatch."
        )
    share = parts["2D error (mm)"] / max(parts["2D error (mm)"] + parts["depth error (mm)"], 1e-9)
    bigger = "2D (u, v)" if share > 0.5 else "depth"
    lines.append(
        f"Of the two parts, the {bigger} part is larger: {parts['2D error (mm)']:.2f} mm in the "
        f"image plane against {parts['depth error (mm)']:.2f} mm in depth."
    )
    return " ".join(lines)


def centre_errors(errors_mm: Mapping[str, np.ndarray], com: str, refined: str) -> str:
    """Notebook 02: how much the localization network moved the centre toward the hand."""
    com_mm, refined_mm = float(np.mean(errors_mm[com])), float(np.mean(errors_mm[refined]))
    closer = float(np.mean(np.asarray(errors_mm[refined]) < np.asarray(errors_mm[com])))
    verb = "closer to" if refined_mm < com_mm else "**farther from**"
    return (
        f"**Notice.** The refined centres are on average {refined_mm:.1f} mm from the hand "
        f"centre against {com_mm:.1f} mm for the CoM ({(refined_mm - com_mm) / com_mm:+.0%}), "
        f"{verb} it; the network improves {closer:.0%} of the frames. Compare the spread "
        "columns of the table too: a constant offset can be learnt away by the pose network, "
        "a scatter cannot (Sec. 3.1)."
    )


def centre_offsets(summary: pd.DataFrame) -> str:
    """Notebook 01: bias and spread of the CoM against the two references.

    summary: one row per (estimate, reference) with columns "estimate", "reference",
    "bias (mm)", "spread (mm)" (`measures.centre_bias_spread`)."""
    parts = [
        f"{row['estimate']} vs {row['reference']}: bias {row['bias (mm)']:.1f} mm, "
        f"spread {row['spread (mm)']:.1f} mm"
        for row in summary.to_dict(orient="records")
    ]
    return (
        "**Notice.** "
        + "; ".join(parts)
        + ". How far the CoM is 'off' depends on the reference: part of the offset is the "
        "choice of point. What matters for the crop is the spread, which moves the hand within "
        "the cube from frame to frame; that is the variance Sec. 3.1 asks a localization "
        "network to remove."
    )


def table1_rows(matches: int, total: int) -> str:
    """Notebook 05: how many Table 1 rows were reproduced to the printed digits."""
    if matches == total:
        return (
            f"**Notice.** All {total} rows of Table 1 come out to the paper's three decimals "
            "from the published prediction files: the metric, the camera and the frame order "
            "here are the paper's."
        )
    return (
        f"**Notice.** {matches} of {total} rows of Table 1 come out to the paper's three "
        "decimals; the others differ (see the table)."
    )


def attention_contrast(images: np.ndarray, masks: np.ndarray, channels: Sequence[int]) -> str:
    """Notebook 03: where the attention masks let shallow features through.

    images (F, S, S) normalized crops (background at 1); masks (F, C, S/2, S/2); the mean
    mask value over hand pixels against background pixels, for the shown `channels` and
    for all channels."""
    images, masks = np.asarray(images), np.asarray(masks)
    step = images.shape[-1] // masks.shape[-1]
    hand = images[:, ::step, ::step] < 1.0  # (F, S/2, S/2): the crop at the masks' resolution
    if not hand.any() or hand.all():
        return "**Notice.** These crops have no hand/background contrast to compare masks over."

    def contrast(chosen: np.ndarray) -> tuple[float, float]:
        on = chosen[np.broadcast_to(hand[:, None], chosen.shape)].mean()
        off = chosen[np.broadcast_to(~hand[:, None], chosen.shape)].mean()
        return float(on), float(off)

    shown_on, shown_off = contrast(masks[:, list(channels)])
    all_on, all_off = contrast(masks)
    return (
        f"**Notice.** Over the hand the shown masks average {shown_on:.2f}, over the background "
        f"{shown_off:.2f}; over all {masks.shape[1]} channels {all_on:.2f} against "
        f"{all_off:.2f}. Eq. 3 multiplies the shallow features by these values: a channel "
        "near 0 on the background hides it from the depth regressor, one near 1 everywhere "
        "passes the feature through unchanged."
    )


def surface_gaps(gaps_mm: Mapping[str, float]) -> str:
    """Notebook 01: the augmentation check read out (label -> median |joint depth - crop depth
    at the joint's pixel| in mm, `measures.surface_gap_mm`)."""
    worst_label = max(gaps_mm, key=lambda k: gaps_mm[k])
    worst = gaps_mm[worst_label]
    verdict = (
        "so image and joints moved together in every crop"
        if worst < 25.0
        else "**larger than a finger's radius: check that crop**"
    )
    return (
        f"**Notice.** The median gap between each joint's depth and the crop's depth at its pixel "
        f"is at most {worst:.1f} mm ({worst_label}), about a finger's radius, {verdict}; a "
        "joint that had moved without the image would land on the forearm or the background, "
        "50-150 mm away."
    )
