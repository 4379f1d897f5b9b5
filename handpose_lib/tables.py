"""Table 1 of the paper and the extended leaderboard, as pandas DataFrames.

The comparison rows are recomputed from the published predictions with the metrics of
this package; the paper's printed values sit beside them so a reader sees that they agree.
The paper's own row ("Ours") is shown as printed until a model of this package has been
evaluated on the real test set.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from handpose_lib import conventions, published
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


def table1_methods(dataset: str) -> list[str]:
    """The comparison methods of Table 1 for `dataset`, in the paper's row order."""
    return [name for name, _, _ in PAPER_TABLE1[dataset]]


def _reference(entry: published.PublishedFile) -> str:
    return f"{entry.venue} {entry.year}"


def table1(
    results: dict[str, list[MethodResult]],
    ours: dict[str, MethodResult] | None = None,
) -> pd.DataFrame:
    """Table 1 rows for each dataset in `results` (comparison methods, then "Ours").

    `results[dataset]` must hold a result for every comparison method of that dataset.
    `ours[dataset]`, if given, adds a row with this package's model beside the printed one.
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
            rows.append(
                {
                    "dataset": DATASET_LABELS[dataset],
                    "method": "Ours (this package)",
                    "reference": r.file,
                    "frames": r.frames,
                    "recomputed (mm)": round(r.mean_error_mm, 3),
                    "paper (mm)": PAPER_OURS_MM[dataset],
                    "difference (mm)": round(r.mean_error_mm - PAPER_OURS_MM[dataset], 3),
                    "source": "this package's model",
                }
            )
    return pd.DataFrame(rows)


def leaderboard(dataset: str, results: list[MethodResult]) -> pd.DataFrame:
    """Every evaluated method of `dataset`, best first.

    Methods evaluated on a subset (ICVL DeepPrior files: test_seq_1 only) are marked, since
    their numbers are not comparable one to one with full-test-set numbers. One column per
    test subset (ICVL test_seq_1 / test_seq_2, NYU subject_1 / subject_2) gives the mean error
    on that subset; empty where a method's file does not cover it.
    """
    subsets = [name for name in conventions.test_subsets(dataset) if name != "all"]
    rows = []
    for r in results:
        by_subset = {s.subset: round(s.mean_error_mm, 3) for s in subset_results(r)}
        try:
            entry = published.find_prediction(dataset, r.name)
            reference = _reference(entry)
        except KeyError:
            reference = r.file
        rows.append(
            {
                "method": r.name,
                "reference": reference,
                "frames": r.frames,
                "test subset": r.subset,
                "mean error (mm)": round(r.mean_error_mm, 3),
                **{f"{name} (mm)": by_subset.get(name) for name in subsets},
                "note": "" if r.subset == "all" else f"evaluated on {r.subset} only",
            }
        )
    table = pd.DataFrame(rows).sort_values("mean error (mm)", kind="stable")
    table.insert(0, "rank", range(1, len(table) + 1))
    return table.reset_index(drop=True)


def write_table(table: pd.DataFrame, out_dir: str | os.PathLike, stem: str) -> list[Path]:
    """Write `table` as `<stem>.csv` and `<stem>.md` under `out_dir`; returns both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / f"{stem}.csv"
    md_path = out_dir / f"{stem}.md"
    table.to_csv(csv_path, index=False)
    md_path.write_text(table.to_markdown(index=False, floatfmt=".3f", missingval="—") + "\n")
    return [csv_path, md_path]
