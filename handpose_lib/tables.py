"""Table 1 of the paper and the extended leaderboard, as pandas DataFrames.

The comparison rows are recomputed from the published predictions with the metrics of
this package; the paper's printed values sit beside them so a reader sees that they agree.
The paper's own row ("Ours") is shown as printed until a model of this package has been
evaluated on the real test set.

The leaderboard ranks every registered method of a dataset, with the paper's printed mean
ranked among them (its row marked in the boolean column `paper`). `top_methods` picks the few
methods the top-methods panels draw, and `murauer_reference` / `murauer_paragraph` summarise
the MURAUER rows (synthetic training plus a few real labels, scored on real NYU frames).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from handpose_lib import conventions, metrics, published
from handpose_lib.evaluate import MethodResult, subset_results

# Table 1 as printed: (method, reference number in the paper, average 3D joint error mm).
# Display names follow the published-registry names; the paper spells "Ren-4x6x6" on ICVL.
PAPER_TABLE1: dict[str, list[tuple[str, str, float]]] = {
    "icvl": [
        ("DeepModel", "[19]", 11.547),
        ("REN-4x6x6", "[14]", 7.618),
        ("REN-9x6x6", "[8]", 7.296),
        ("Pose-REN", "[7]", 6.783),
        ("DenseReg", "[15]", 7.232),
        ("V2V-PoseNet", "[3]", 6.276),
    ],
    "nyu": [
        ("DeepPrior", "[4]", 20.750),
        ("Feedback", "[5]", 15.973),
        ("DeepModel", "[19]", 17.036),
        ("REN-4x6x6", "[14]", 13.393),
        ("REN-9x6x6", "[8]", 12.694),
        ("DeepPrior++", "[6]", 12.238),
        ("Pose-REN", "[8]", 11.811),
        ("DenseReg", "[15]", 10.214),
        ("V2V-PoseNet", "[3]", 8.419),
    ],
}
PAPER_OURS_MM: dict[str, float] = {"icvl": 6.092, "nyu": 8.862}
DATASET_LABELS = {"icvl": "ICVL", "nyu": "NYU"}

# The paper's own row on the leaderboard. The paper's text names no venue or year; these are
# the ones the awesome-hand-pose-estimation list gives ("[2018 ICIP]", IEEE Xplore 8451509),
# as in CITATION.cff.
PAPER_ROW = "Ours (paper)"
PAPER_VENUE = "ICIP"
PAPER_YEAR = 2018
PAPER_NOTE = "as printed (no predictions published); venue, year from awesome-hand-pose-estimation"

# Leaderboard shares: frames whose every joint is within the threshold (the paper's "success
# frames", `metrics.success_rate_max`), in percent.
SUCCESS_THRESHOLDS_MM: tuple[float, ...] = (20.0, 40.0)


def within_column(threshold_mm: float) -> str:
    """Leaderboard column of the share of frames with every joint within `threshold_mm`."""
    return f"all joints within {threshold_mm:g} mm (% frames)"


def frames_within_pct(errors_mm: np.ndarray, threshold_mm: float) -> float:
    """Percent of the frames of (N, J) `errors_mm` whose every joint is within `threshold_mm`
    (at most the threshold, as `metrics.success_rate_max` counts)."""
    return 100.0 * float(metrics.success_rate_max(errors_mm, np.array([threshold_mm]))[0])


def table1_methods(dataset: str) -> list[str]:
    """The comparison methods of Table 1 for `dataset`, in the paper's row order."""
    return [name for name, _, _ in PAPER_TABLE1[dataset]]


def _reference(entry: published.PublishedFile) -> str:
    return f"{entry.venue} {entry.year}"


def table1(
    results: dict[str, list[MethodResult]],
    ours: dict[str, MethodResult] | None = None,
    rehearsal_note: str = "",
) -> pd.DataFrame:
    """Table 1 rows for each dataset in `results` (comparison methods, then "Ours").

    `results[dataset]` must hold a result for every comparison method of that dataset.
    `ours[dataset]`, if given, adds a row with this package's model beside the printed one;
    with a `rehearsal_note` that row is a rehearsal's: named by its result, its source is the
    note, and it has no difference from the paper (a few frames after a few steps).
    Columns: dataset, method, reference, frames, recomputed (mm), paper (mm),
    difference (mm) rounded to 3 decimals, source.
    """
    rows: list[dict[str, float | int | str | None]] = []
    for dataset, method_results in results.items():
        by_name = {r.name: r for r in method_results}
        for name, ref, paper_mm in PAPER_TABLE1[dataset]:
            if name not in by_name:
                raise KeyError(f"Table 1 needs {dataset} results for {name!r}")
            r = by_name[name]
            entry = published.find_prediction(dataset, name)
            recomputed = round(r.mean_error_mm, 3)
            rows.append(
                {
                    "dataset": DATASET_LABELS[dataset],
                    "method": name,
                    "reference": f"{ref} {_reference(entry)}",
                    "frames": r.frames if r.subset == "all" else f"{r.frames} ({r.subset})",
                    "recomputed (mm)": recomputed,
                    "paper (mm)": paper_mm,
                    "difference (mm)": round(recomputed - paper_mm, 3),
                    "source": "published predictions",
                }
            )
        rows.append(
            {
                "dataset": DATASET_LABELS[dataset],
                "method": "Ours (paper)",
                "reference": "Liu, Huang, Ye",
                "frames": published.test_frame_count(dataset),
                "recomputed (mm)": None,
                "paper (mm)": PAPER_OURS_MM[dataset],
                "difference (mm)": None,
                "source": "as printed in the paper (no predictions published)",
            }
        )
        if ours and dataset in ours:
            r = ours[dataset]
            difference = round(r.mean_error_mm - PAPER_OURS_MM[dataset], 3)
            rows.append(
                {
                    "dataset": DATASET_LABELS[dataset],
                    "method": r.name if rehearsal_note else "Ours (this package)",
                    "reference": r.file,
                    "frames": r.frames,
                    "recomputed (mm)": round(r.mean_error_mm, 3),
                    "paper (mm)": PAPER_OURS_MM[dataset],
                    "difference (mm)": None if rehearsal_note else difference,
                    "source": rehearsal_note or "this package's model",
                }
            )
    return pd.DataFrame(rows)


def leaderboard(
    dataset: str, results: Sequence[MethodResult], paper_row: bool = True
) -> pd.DataFrame:
    """Every evaluated method of `dataset`, best first, and the paper's printed row.

    Columns: rank, method, paper (True on the paper's own row), venue, year, frames, test
    subset, mean error (mm), the percent of frames whose every joint is within 20 and 40 mm
    (`within_column`), one column per test subset (ICVL test_seq_1 / test_seq_2, NYU
    subject_1 / subject_2: the mean error on that subset, empty where a method's file does not
    cover it), note.

    The paper's row ("Ours (paper)", with `paper_row`) is ranked by its printed mean; it has
    no per-frame data, so its shares and subset columns are empty. Methods evaluated on a
    subset (ICVL DeepPrior files: test_seq_1 only) are marked in `test subset` and `note`,
    since their numbers are not comparable one to one with full-test-set numbers. A result
    that is not in the registry (this package's model) gets venue "this package".
    """
    subsets = [name for name in conventions.test_subsets(dataset) if name != "all"]
    rows: list[dict[str, object]] = []
    for r in results:
        by_subset = {s.subset: round(s.mean_error_mm, 3) for s in subset_results(r)}
        try:
            entry = published.find_prediction(dataset, r.name)
            venue, year, note = entry.venue, entry.year, entry.note
        except KeyError:
            venue, year, note = "this package", None, f"this package's model ({Path(r.file).name})"
        if r.subset != "all":
            note = "; ".join(filter(None, [f"evaluated on {r.subset} only", note]))
        rows.append(
            {
                "method": r.name,
                "paper": False,
                "venue": venue,
                "year": year,
                "frames": r.frames,
                "test subset": r.subset,
                "mean error (mm)": round(r.mean_error_mm, 3),
                **{
                    within_column(t): round(frames_within_pct(r.errors_mm, t), 1)
                    for t in SUCCESS_THRESHOLDS_MM
                },
                **{f"{name} (mm)": by_subset.get(name) for name in subsets},
                "note": note,
            }
        )
    if paper_row:
        rows.append(
            {
                "method": PAPER_ROW,
                "paper": True,
                "venue": PAPER_VENUE,
                "year": PAPER_YEAR,
                "frames": published.test_frame_count(dataset),
                "test subset": "all",
                "mean error (mm)": PAPER_OURS_MM[dataset],
                **{within_column(t): None for t in SUCCESS_THRESHOLDS_MM},
                **{f"{name} (mm)": None for name in subsets},
                "note": PAPER_NOTE,
            }
        )
    table = pd.DataFrame(rows).sort_values("mean error (mm)", kind="stable")
    table.insert(0, "rank", range(1, len(table) + 1))
    table["year"] = table["year"].astype("Int64")
    for column in [*map(within_column, SUCCESS_THRESHOLDS_MM), *(f"{n} (mm)" for n in subsets)]:
        table[column] = table[column].astype("float64")
    return table.reset_index(drop=True)


def scored_rows(board: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard rows scored here on the full test set: not the paper's printed row, not
    a method evaluated on a subset."""
    return board[~board["paper"].astype(bool) & (board["test subset"] == "all")]


def method_family(name: str) -> str:
    """The method a registered variant belongs to: its name before a parenthesis
    ("Virtual View Selection (15 views)" -> "Virtual View Selection")."""
    return name.split(" (", 1)[0]


def top_methods(
    dataset: str, board: pd.DataFrame, max_curves: int = 5, always: Sequence[str] = ()
) -> list[str]:
    """The methods of the top-methods panels, in leaderboard order: the best Table 1 method
    of `dataset`, the methods in `always` (e.g. this package's model), and the best-ranked
    other methods, one variant per method family, up to `max_curves` in all.

    Only rows with per-frame data on the full test set qualify: not the paper's printed row,
    not a method evaluated on a subset.
    """
    eligible = scored_rows(board)
    names = list(eligible["method"])
    unknown = [name for name in always if name not in names]
    if unknown:
        raise KeyError(f"not on the {dataset} leaderboard (full test set): {unknown}")
    table1_names = set(table1_methods(dataset))
    chosen = [name for name in names if name in table1_names][:1] + list(always)
    if len(chosen) > max_curves:
        raise ValueError(f"{chosen}: more than max_curves={max_curves} methods")
    families = {method_family(name) for name in chosen}
    for name in names:
        if len(chosen) == max_curves:
            break
        if name not in chosen and method_family(name) not in families:
            chosen.append(name)
            families.add(method_family(name))
    return sorted(chosen, key=names.index)


# MURAUER's registered files name the number of labelled real frames they were trained with
# ("..._murauer_n1000_...": 1000; n72757 is NYU's whole training set).
_MURAUER_LABELS = re.compile(r"murauer_n(\d+)", re.IGNORECASE)


def murauer_reference(board: pd.DataFrame) -> pd.DataFrame:
    """MURAUER's NYU rows by number of labelled real training frames, beside the leaderboard's
    best method and the paper's printed row.

    `board` is the NYU leaderboard (`leaderboard("nyu", ...)`, paper row included). Columns:
    method, role ("MURAUER", "best method", "paper (as printed)"), real labelled frames (the
    labelled real frames a model trained with: MURAUER's count from its file name; NYU's whole
    training set for the others), rank, mean error (mm), the two success shares.
    """
    all_real = conventions.split_frames("nyu", "train")
    rows = []
    for _, row in board.iterrows():
        if row["paper"]:
            continue
        try:
            entry = published.find_prediction("nyu", row["method"])
        except KeyError:
            continue
        match = _MURAUER_LABELS.search(entry.upstream_path)
        if match:
            rows.append(_reference_row(row, "MURAUER", int(match[1])))
    if not rows:
        raise KeyError("no MURAUER rows on the leaderboard: is it the NYU leaderboard?")
    rows.sort(key=lambda r: int(str(r["real labelled frames"])))
    best = scored_rows(board).iloc[0]
    paper = board[board["paper"].astype(bool)]
    rows.append(_reference_row(best, "best method", all_real))
    if len(paper):
        rows.append(_reference_row(paper.iloc[0], "paper (as printed)", all_real))
    return pd.DataFrame(rows)


def _reference_row(row: pd.Series, role: str, labelled: int) -> dict[str, object]:
    shares = {within_column(t): row[within_column(t)] for t in SUCCESS_THRESHOLDS_MM}
    return {
        "method": row["method"],
        "role": role,
        "real labelled frames": labelled,
        "rank": int(row["rank"]),
        "mean error (mm)": float(row["mean error (mm)"]),
        **shares,
    }


def murauer_paragraph(reference: pd.DataFrame, board_size: int) -> str:
    """A Markdown paragraph of `murauer_reference`'s numbers, every number computed: MURAUER's
    mean error by number of labelled real frames (rank among `board_size` leaderboard rows),
    beside the best method and the paper."""
    murauer = reference[reference["role"] == "MURAUER"]
    all_real = conventions.split_frames("nyu", "train")
    few = murauer[murauer["real labelled frames"] < all_real]
    full = murauer[murauer["real labelled frames"] >= all_real]
    best = reference[reference["role"] == "best method"].iloc[0]
    paper = reference[reference["role"] == "paper (as printed)"]
    if few.empty:
        raise ValueError("murauer_paragraph: no MURAUER row trained with part of the real labels")
    steps = [
        f"**{r['mean error (mm)']:.2f} mm** with {r['real labelled frames']:,} (rank {r['rank']})"
        for _, r in few.iterrows()
    ]
    text = (
        f"On NYU's {published.test_frame_count('nyu'):,} real test frames, MURAUER reaches "
        f"{', '.join(steps)} labelled real frames (ranks among the {board_size} rows of the "
        "leaderboard above)"
    )
    if len(full):
        r = full.iloc[0]
        text += (
            f"; with all {r['real labelled frames']:,} real training frames labelled, "
            f"{r['mean error (mm)']:.2f} mm (rank {r['rank']})"
        )
    fewest, most = few.iloc[0], few.iloc[-1]
    text += (
        f". The best registered method, {best['method']}, reaches {best['mean error (mm)']:.2f} mm"
    )
    if len(paper):
        printed = float(paper.iloc[0]["mean error (mm)"])
        gaps = ", ".join(
            f"{r['mean error (mm)'] - printed:+.2f} mm with {r['real labelled frames']:,}"
            for r in (most, fewest)
        )
        text += (
            f"; the paper prints {printed:.2f} mm (rank {paper.iloc[0]['rank']}). MURAUER's "
            f"error minus the paper's: {gaps} real labels"
        )
    twenty = within_column(SUCCESS_THRESHOLDS_MM[0])
    text += (
        f". Frames with every joint within {SUCCESS_THRESHOLDS_MM[0]:g} mm: "
        f"{fewest[twenty]:.1f} % with {fewest['real labelled frames']:,} real labels, "
        f"{most[twenty]:.1f} % with {most['real labelled frames']:,}, "
        f"{best[twenty]:.1f} % for {best['method']}."
    )
    return text


def markdown_table(table: pd.DataFrame) -> str:
    """`table` as a markdown table: empty cells as "—" (tabulate does not count a float NaN as
    missing); shares in percent with one decimal, everything else (mm) with three."""
    cells = table.astype(object).where(table.notna(), None)
    floatfmt = [".1f" if "%" in str(column) else ".3f" for column in table.columns]
    return cells.to_markdown(index=False, floatfmt=floatfmt, missingval="—") + "\n"


def write_table(table: pd.DataFrame, out_dir: str | os.PathLike, stem: str) -> list[Path]:
    """Write `table` as `<stem>.csv` and `<stem>.md` under `out_dir`; returns both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / f"{stem}.csv"
    md_path = out_dir / f"{stem}.md"
    table.to_csv(csv_path, index=False)
    md_path.write_text(markdown_table(table))
    return [csv_path, md_path]
