"""Self-comparison logic: seeds per profile, aggregation over seeds, the ordering verdict
(hand-made results), run reuse, and one tiny training run end to end."""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from handpose_lib import ablation, ablation_verdict, published, uvd_format
from handpose_lib.ablation import (
    PAPER_ORDER,
    AblationRun,
    compare_pairs,
    holm,
    ordering_verdict,
    pool_seeds,
    seeds_for_profile,
    success_auc,
    summary_table,
    variant_config,
)
from handpose_lib.datasets.synthetic import SyntheticSource
from handpose_lib.evaluate import MethodResult
from handpose_lib.profiles import make_run_config
from handpose_lib.training.config import (
    ConfigError,
    RunConfig,
    SourceSpec,
    config_differences,
    weight_differences,
)


def result(mean_mm: float, frames: int = 10, joints: int = 16, name: str = "r") -> MethodResult:
    """Errors spread around `mean_mm` (exact mean) with a per-joint pattern."""
    rng = np.random.default_rng(int(mean_mm * 1000))
    errors = mean_mm + rng.uniform(-1, 1, (frames, joints))
    errors += mean_mm - errors.mean()
    return MethodResult(name=name, file="", dataset="icvl", subset="all", errors_mm=errors)


def results(**means: list[float]) -> dict[str, list[MethodResult]]:
    return {v: [result(m) for m in ms] for v, ms in means.items()}


def tiny_base():
    """The smoke attention config cut to one epoch of 4 frames (seconds per training)."""
    return make_run_config("smoke", "attention").with_overrides(
        {
            "train.epochs": 1,
            "train.lr_milestones": [1],
            "train.batch_size": 2,
            "data.train.num_frames": 4,
            "data.val.num_frames": 3,
        }
    )


def test_seeds_for_profile():
    assert seeds_for_profile("smoke") == (0, 1)
    assert seeds_for_profile("cpu") == (0,)
    assert seeds_for_profile("paper") == (0, 1, 2)
    with pytest.raises(ValueError, match="unknown profile 'gpu'"):
        seeds_for_profile("gpu")


def test_names_and_unknown_variant():
    assert ablation.run_name("two_branch", 1) == "two_branch_seed1"
    assert ablation.predictions_name("direct", 0) == "direct_seed0.txt"  # last epoch
    assert ablation.predictions_name("direct", 0, "best") == "direct_seed0_best.txt"
    with pytest.raises(ValueError, match="unknown checkpoint 'final'"):
        ablation.predictions_name("direct", 0, "final")
    with pytest.raises(ValueError, match="unknown variant 'ours'"):
        ablation.run_name("ours", 0)


def test_success_auc_limits_and_step():
    assert success_auc(np.zeros((3, 4))) == 1.0
    assert success_auc(np.full((3, 4), 100.0)) == 0.0
    # Success from 40 mm on (<=): the trapezoid rises over 39..40, area 40.5 of 80.
    assert success_auc(np.full((3, 4), 40.0)) == pytest.approx(40.5 / 80)
    with pytest.raises(ValueError, match="increasing"):
        success_auc(np.zeros((1, 1)), thresholds_mm=np.array([5.0, 1.0]))
    with pytest.raises(ValueError, match="unknown curve"):
        success_auc(np.zeros((1, 1)), kind="median")


def test_pool_seeds_averages_per_joint_means():
    a, b = result(8.0), result(12.0)
    pooled = pool_seeds([a, b], "pooled")
    assert pooled.frames == 20
    np.testing.assert_allclose(pooled.per_joint_mm, (a.per_joint_mm + b.per_joint_mm) / 2)
    assert pooled.mean_error_mm == pytest.approx(10.0)
    with pytest.raises(ValueError, match="share frames"):
        pool_seeds([a, result(9.0, frames=5)], "x")
    with pytest.raises(ValueError, match="at least one"):
        pool_seeds([], "x")


def test_summary_table_statistics_and_order():
    table = summary_table(results(attention=[6.0, 7.0, 8.0], plain=[10.0, 12.0, 14.0]))
    assert table["variant"].tolist() == ["plain", "attention"]  # paper order, not input order
    plain = table.iloc[0]
    assert plain["seeds"] == 3
    assert plain["mean error (mm)"] == pytest.approx(12.0)
    assert plain["mean error std (mm)"] == pytest.approx(2.0)  # ddof=1
    assert (plain["mean error min (mm)"], plain["mean error max (mm)"]) == (10.0, 14.0)
    assert plain["vs attention (mm)"] == pytest.approx(5.0)
    assert plain["per-seed mean error (mm)"] == "10.000, 12.000, 14.000"
    assert plain["AUC max min"] <= plain["AUC max"] <= plain["AUC max max"]
    # Lower error, larger area under the success curve.
    assert table.iloc[1]["AUC max"] > plain["AUC max"]


def test_summary_table_one_seed_has_no_std():
    table = summary_table(results(direct=[9.0]))
    assert np.isnan(table.iloc[0]["mean error std (mm)"])
    assert np.isnan(table.iloc[0]["vs attention (mm)"])  # no attention row to compare with


def test_summary_table_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown variant"):
        summary_table(results(ours=[1.0]))
    with pytest.raises(ValueError, match="no results"):
        summary_table({"plain": []})
    diverged = MethodResult("nan", "", "icvl", "all", np.full((2, 16), np.nan))
    with pytest.raises(ValueError, match="non-finite"):
        summary_table({"plain": [diverged]})


def test_holm_adjusts_step_down():
    # Hand-computed: sorted 0.01, 0.02, 0.04 -> 3 x 0.01, max(0.03, 2 x 0.02), max(0.04, 0.04).
    np.testing.assert_allclose(holm([0.04, 0.01, 0.02]), [0.04, 0.03, 0.04])
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0])  # capped at 1


def test_bootstrap_interval_covers_a_known_mean_difference():
    # Per-frame differences with mean 1.0 and sd 2 over 400 frames: the mean's standard error is
    # 0.1, so the 95 % interval is about 1.0 +- 0.2.
    rng = np.random.default_rng(0)
    diff = rng.normal(0, 2, 400)
    diff += 1.0 - diff.mean()
    means = ablation_verdict.bootstrap_means(diff[None], 2000, seed=1)[0]
    low, high = np.percentile(means, [2.5, 97.5])
    assert 0.75 < low < 0.85
    assert 1.15 < high < 1.25
    assert ablation_verdict.bootstrap_p_value(means) == pytest.approx(2 / 2001)
    same = ablation_verdict.bootstrap_means(diff[None], 2000, seed=1)
    np.testing.assert_array_equal(same[0], means)  # the seed fixes the draws


def frames_result(frame_means: np.ndarray, joints: int = 16) -> MethodResult:
    errors = np.repeat(np.asarray(frame_means, float)[:, None], joints, axis=1)
    return MethodResult(name="r", file="", dataset="icvl", subset="all", errors_mm=errors)


def test_pair_needs_frames_and_seeds_to_agree():
    rng = np.random.default_rng(3)
    base = rng.uniform(5, 15, 200)
    # Attention 1.1 mm better on every frame (seed averages), seeds separated: holds.
    separated = {
        "direct": [frames_result(base + 1.0 + s) for s in (0.0, 0.1)],
        "attention": [frames_result(base + s) for s in (-0.1, 0.0)],
    }
    (pair,) = compare_pairs(separated, [("direct", "attention")])
    assert (pair.status, pair.seeds) == ("holds", "paper")
    assert pair.difference_mm == pytest.approx(1.1)
    assert pair.low_mm == pytest.approx(1.1)
    assert pair.high_mm == pytest.approx(1.1)
    # The same frame means, but the seed ranges overlap: unresolved however clear the frames.
    overlapping = {
        "direct": [frames_result(base + d) for d in (0.0, 2.0)],
        "attention": [frames_result(base + d) for d in (-0.5, 0.5)],
    }
    (pair,) = compare_pairs(overlapping, [("direct", "attention")])
    assert (pair.status, pair.seeds) == ("unresolved", "overlap")
    assert "seed ranges overlap" in pair.reason
    # Frames that go both ways (differences +-3 mm around 0.1): the interval spans 0.
    noisy = {
        "direct": [frames_result(base + 0.1 + rng.choice([-3.0, 3.0], 200)) for _ in range(2)],
        "attention": [frames_result(base + d) for d in (-0.01, 0.01)],
    }
    (pair,) = compare_pairs(noisy, [("direct", "attention")])
    assert pair.low_mm < 0 < pair.high_mm
    assert pair.status == "unresolved"
    assert "do not separate" in pair.reason
    # Reversed: attention worse on every frame and every seed.
    (pair,) = compare_pairs(
        {"direct": separated["attention"], "attention": separated["direct"]},
        [("direct", "attention")],
    )
    assert pair.status == "reversed"
    assert pair.difference_mm == pytest.approx(-1.1)
    with pytest.raises(ValueError, match="differ in number"):
        compare_pairs(
            {"direct": [frames_result(base)], "attention": [frames_result(base[:10])]},
            [("direct", "attention")],
        )


def test_holm_can_leave_a_pair_unresolved_that_alone_would_pass():
    # Six pairs each at p = 0.02 pass alone; Holm scales the smallest by 6 and stops there.
    assert (holm([0.02] * 6) > ablation_verdict.FAMILY_LEVEL).all()
    # The bootstrap's smallest two-sided p with 2000 resamples, 2/2001, survives x6.
    assert (holm([2 / 2001] * 6) < ablation_verdict.FAMILY_LEVEL).all()


def test_ordering_verdict_holds_with_separated_seeds():
    verdict = ordering_verdict(
        results(plain=[14.0, 15.0], two_branch=[11.0, 12.0], direct=[9.0, 10.0], attention=[7, 8])
    )
    assert verdict.status == "holds"
    assert verdict.variants == verdict.observed_order == PAPER_ORDER
    assert len(verdict.pairs) == 6  # every pair, the three neighbouring ones first
    assert [(p.worse, p.better) for p in verdict.pairs[:3]] == list(itertools.pairwise(PAPER_ORDER))
    assert "HOLDS" in verdict.text
    assert "6 pairs tested together" in verdict.text
    assert "2 seed(s)" in verdict.text
    assert verdict.table()["status"].tolist() == ["holds"] * 6
    assert (verdict.table()["interval low (mm)"] > 0).all()


def test_self_comparison_files_hold_the_verdict_and_both_tables(tmp_path):
    by_variant = results(direct=[9.0, 10.0], attention=[7.0, 8.0])
    verdict = ordering_verdict(by_variant)
    paths = ablation_verdict.write_self_comparison(
        summary_table(by_variant), verdict, tmp_path, "self_comparison"
    )
    assert [p.name for p in paths] == [
        "self_comparison.csv",
        "self_comparison_pairs.csv",
        "self_comparison.md",
    ]
    md = paths[2].read_text()
    assert md.startswith(f"**Verdict.** {verdict.text}")
    assert "| direct " in md
    assert "| holds " in md
    pairs = pd.read_csv(paths[1])
    assert pairs["status"].tolist() == ["holds"]
    assert pairs["interval low (mm)"][0] > 0


def test_ordering_verdict_one_reversed_pair_is_reversed():
    verdict = ordering_verdict(
        results(plain=[14.0, 15.0], two_branch=[11.0, 12.0], direct=[6.0, 6.5], attention=[8, 9])
    )
    assert verdict.status == "reversed"
    assert verdict.observed_order == ("plain", "two_branch", "attention", "direct")
    assert "unlike the paper's" in verdict.text


def test_ordering_verdict_overlap_or_one_seed_is_unresolved():
    overlap = ordering_verdict(results(direct=[9.0, 10.0], attention=[8.5, 9.5]))
    assert overlap.status == "unresolved"
    # One seed, differences in the paper's direction: plausible, never "holds".
    one = ordering_verdict(results(plain=[15.0], two_branch=[12.0], direct=[10.0], attention=[8.0]))
    assert one.status == "unresolved"
    assert one.observed_order == PAPER_ORDER
    assert all("one seed cannot" in p.reason for p in one.pairs)
    assert "the same as the paper's" in one.text
    assert one.status in ablation.VERDICTS
    with pytest.raises(ValueError, match="at least two variants"):
        ordering_verdict(results(plain=[15.0]))


# --------------------------------------------------------------------------------------------
# Configs, reuse and one real run


def test_variant_config_changes_only_variant_and_seed():
    base = make_run_config("smoke", "attention")
    config = variant_config(base, "two_branch", 3)
    assert (config.model.variant, config.train.seed) == ("two_branch", 3)
    assert config_differences(base, config) == ["model.variant", "train.seed"]
    # The same as asking the trainer for the variant directly.
    assert variant_config(base, "plain", 0) == make_run_config("smoke", "plain")
    with pytest.raises(ValueError, match="pose run config"):
        variant_config(make_run_config("smoke", "locnet"), "plain", 0)


def test_config_differences_ignores_bookkeeping_only():
    base = make_run_config("smoke", "attention")
    cosmetic = base.with_overrides({"train.progress": True, "train.num_workers": 2})
    assert config_differences(base, cosmetic) == []
    assert config_differences(base, base.with_overrides({"train.epochs": 5})) == ["train.epochs"]


def test_weight_differences_ignore_validation_for_last_weights():
    base = make_run_config("smoke", "attention")
    other_val = base.with_overrides({"data.val.centers": "joints", "data.val.num_frames": 4})
    assert weight_differences(base, other_val, "last") == []
    assert weight_differences(base, other_val, "best") == [
        "data.val.centers",
        "data.val.num_frames",
    ]
    no_val = base.with_overrides({"data.val": None, "train.lr": 0.5})
    assert weight_differences(base, no_val, "last") == ["train.lr"]


def test_reusable_run_needs_same_config_and_all_epochs(tmp_path):
    config = make_run_config("smoke", "attention")
    assert not ablation.reusable_run(tmp_path / "missing", config)
    config.save(tmp_path / "config.json")
    assert not ablation.reusable_run(tmp_path, config)  # not finished: no summary.json
    (tmp_path / "summary.json").write_text(json.dumps({"epochs": config.train.epochs}))
    assert ablation.reusable_run(tmp_path, config)
    assert not ablation.reusable_run(tmp_path, config.with_overrides({"train.seed": 1}))
    other_val = config.with_overrides({"data.val.centers": "joints"})
    assert ablation.reusable_run(tmp_path, other_val, "last")
    assert not ablation.reusable_run(tmp_path, other_val, "best")
    (tmp_path / "summary.json").write_text(json.dumps({"epochs": config.train.epochs - 1}))
    assert not ablation.reusable_run(tmp_path, config)  # interrupted
    (tmp_path / "summary.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"summary.json"):
        ablation.reusable_run(tmp_path, config)


def test_validation_labels(published_dir):
    rendered = ablation.validation_labels(SourceSpec("rendered"))
    np.testing.assert_array_equal(rendered, published.load_labels("icvl"))
    synthetic = SourceSpec("synthetic", num_frames=2, seed=1)

    expected = np.stack([f.uvd for f in (SyntheticSource(2, seed=1)[i] for i in range(2))])
    np.testing.assert_array_equal(ablation.validation_labels(synthetic), expected)


@pytest.mark.slow  # trains
def test_train_or_reuse_end_to_end(tmp_path, one_torch_thread):
    base = tiny_base()
    run = ablation.train_or_reuse(base, "plain", 1, tmp_path / "selfcomp", tmp_path / "pred")
    assert run.run_dir == tmp_path / "selfcomp" / "plain_seed1"
    assert run.origin == "trained"
    assert run.predictions == tmp_path / "pred" / "plain_seed1.txt"
    assert uvd_format.read_uvd(run.predictions, 16).shape == (3, 16, 3)
    assert run.result.frames == 3
    assert np.isfinite(run.result.mean_error_mm)
    assert run.result.name == "Plain (one-task 3D regression), seed 1"

    # Again: the finished run is loaded, not retrained, and evaluates identically.
    mtime = (run.run_dir / "checkpoint.pt").stat().st_mtime_ns
    again = ablation.train_or_reuse(base, "plain", 1, tmp_path / "selfcomp", tmp_path / "pred")
    assert (run.run_dir / "checkpoint.pt").stat().st_mtime_ns == mtime
    assert again.origin == "loaded (finished earlier)"
    np.testing.assert_array_equal(again.result.errors_mm, run.result.errors_mm)

    # An identical finished run elsewhere stands in; nothing is trained under run_root.
    reused = ablation.train_or_reuse(
        base, "plain", 1, tmp_path / "other", tmp_path / "pred2", reuse=[run.run_dir]
    )
    assert reused.origin == f"reused {run.run_dir}"
    assert not (tmp_path / "other").exists()
    np.testing.assert_array_equal(reused.result.errors_mm, run.result.errors_mm)

    # Other validation centres: the last weights stand, evaluated on the new crops.
    joints_val = base.with_overrides({"data.val.centers": "joints"})
    moved = ablation.train_or_reuse(joints_val, "plain", 1, tmp_path / "selfcomp", tmp_path / "p3")
    assert moved.origin == "loaded (finished earlier)"
    assert not np.array_equal(moved.result.errors_mm, run.result.errors_mm)
    # best.pt was chosen on the old validation crops: that run is no stand-in.
    with pytest.raises(ValueError, match=r"best.pt was chosen with other validation settings"):
        ablation.train_or_reuse(
            joints_val, "plain", 1, tmp_path / "selfcomp", tmp_path / "p3", which="best"
        )

    # A finished run of another config in the folder is refused, never silently used.
    with pytest.raises(ValueError, match="cannot resume with a different config"):
        ablation.train_or_reuse(
            base.with_overrides({"train.lr": 0.02}), "plain", 1, tmp_path / "selfcomp", tmp_path
        )

    # Labels that are not the validation frames' are caught, not silently evaluated.
    wrong = ablation.validation_labels(base.data.val)[::-1].copy()
    with pytest.raises(ValueError, match=r"do not\s+belong|labels do not"):
        ablation.train_or_reuse(
            base, "plain", 1, tmp_path / "selfcomp", tmp_path / "pred", labels=wrong
        )


@pytest.mark.slow  # trains
def test_runs_of_other_code_are_retrained_not_reused(tmp_path, one_torch_thread):
    base = tiny_base()
    roots = (tmp_path / "selfcomp", tmp_path / "pred")
    run = ablation.train_or_reuse(base, "direct", 0, *roots)
    assert ablation.reusable_run(run.run_dir, variant_config(base, "direct", 0))

    # The same run as if made by other code (another source digest and commit).
    path = run.run_dir / "config.json"
    record = json.loads(path.read_text())
    record["provenance"].update(source_sha256="0" * 64, git_commit="f" * 40)
    path.write_text(json.dumps(record))
    said: list[str] = []
    # Asked for explicitly, the finished run of other code is used as it is.
    kept = ablation.train_or_reuse(
        base, "direct", 0, *roots, reuse_other_code=True, report=said.append
    )
    assert kept.origin == "loaded (finished earlier)"
    assert said == []
    # As a stand-in from elsewhere it is skipped, saying why.
    elsewhere = ablation.train_or_reuse(
        base, "direct", 0, tmp_path / "other", roots[1], reuse=[run.run_dir], report=said.append
    )
    assert elsewhere.origin == "trained"
    assert said[0].startswith(f"not reusing {run.run_dir}: it was made by handpose_lib")
    assert "ffffffffff" in said[0]
    # In its own folder it is moved aside and trained again, saying so.
    said.clear()
    again = ablation.train_or_reuse(base, "direct", 0, *roots, report=said.append)
    assert again.origin == "trained"
    assert len(said) == 1
    assert "training again" in said[0]
    stale = run.run_dir.with_name(run.run_dir.name + ablation.STALE_SUFFIX)
    assert json.loads((stale / "config.json").read_text())["provenance"]["git_commit"] == "f" * 40
    assert ablation.reusable_run(run.run_dir, variant_config(base, "direct", 0))
    # Same config, seed and code: the retrained run gives the same numbers.
    np.testing.assert_array_equal(again.result.errors_mm, run.result.errors_mm)


class InProcessPool:
    """ProcessPoolExecutor's interface, each task run here when submitted: `train_all`'s
    bookkeeping of a pool whose runs all succeed, without starting processes (a real pool:
    the test below)."""

    def __init__(self, workers: int, mp_context=None, initializer=None, initargs=()) -> None:
        self.workers = workers
        if initializer is not None:  # `pin_device`: nothing to do for the CPU of these tests
            initializer(*initargs)

    def __enter__(self) -> InProcessPool:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def submit(self, fn, *args) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        future.set_result(fn(*args))
        return future


@pytest.mark.slow  # two small trainings
def test_train_all_labels_the_runs_its_pool_trained(tmp_path, monkeypatch, one_torch_thread):
    monkeypatch.setattr(ablation, "ProcessPoolExecutor", InProcessPool)
    said: list[str] = []
    pair = ["plain", "direct"]
    runs = ablation.train_all(tiny_base(), pair, [0], tmp_path, report=said.append, jobs=2)
    assert [r.origin for r in runs] == ["trained (parallel)"] * 2
    assert "training 2 runs, 2 at a time with 1 thread(s) each" in said
    assert {"plain_seed0: trained", "direct_seed0: trained"} <= set(said)


@pytest.mark.slow  # one pool of two spawned worker processes, each with a DataLoader worker
def test_train_all_in_parallel_matches_one_process_and_names_a_failed_run(
    tmp_path, one_torch_thread
):
    """jobs=2 trains in two worker processes (here 1 thread each, as in the parent) and gives
    the same runs as training one after another; a run that fails is named while the others
    finish. The workers start DataLoader workers (profiles with train.num_workers > 0), which
    multiprocessing.Pool's daemonic workers could not ("daemonic processes are not allowed to
    have children"); the batches do not depend on that (serial runs here load in-process)."""
    base = tiny_base().with_overrides({"train.num_workers": 1})
    # A run of another config already in direct_seed0's folder: the trainer refuses it.
    other = base.with_overrides({"train.lr": 0.02, "train.num_workers": 0})
    ablation.train_or_reuse(other, "direct", 0, tmp_path / "a" / "selfcomp", tmp_path / "p")
    said: list[str] = []
    pair = ["plain", "direct"]
    with pytest.raises(RuntimeError, match=r"1 of 2 trainings failed.*direct_seed0: ConfigError"):
        ablation.train_all(base, pair, [0], tmp_path / "a", report=said.append, jobs=2)
    assert "training 2 runs, 2 at a time with 1 thread(s) each" in said
    assert "plain_seed0: trained" in said
    assert RunConfig.load(tmp_path / "a" / "selfcomp" / "plain_seed0").train.num_workers == 1
    # A finished run is not trained again.
    parallel = ablation.train_all(base, ["plain"], [0], tmp_path / "a", report=said.append, jobs=2)
    assert [r.origin for r in parallel] == ["loaded (finished earlier)"]
    assert said[-2] == "training 0 runs, 1 at a time with 1 thread(s) each"
    serial_base = base.with_overrides({"train.num_workers": 0})
    serial = ablation.train_all(serial_base, ["plain"], [0], tmp_path / "b", report=said.append)
    assert [r.origin for r in serial] == ["trained"]
    for a, b in zip(parallel, serial, strict=True):
        np.testing.assert_array_equal(a.result.errors_mm, b.result.errors_mm)
    with pytest.raises(ValueError, match="jobs must be >= 1"):
        ablation.train_all(base, pair, [0], tmp_path / "a", jobs=0)


# --------------------------------------------------------------------------------------------
# Trainings spread over the GPUs


def test_visible_devices_and_default_jobs(monkeypatch):
    monkeypatch.setattr(ablation.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(ablation.torch.cuda, "device_count", lambda: 3)
    assert ablation.visible_devices() == ["cuda:0", "cuda:1", "cuda:2"]
    assert ablation.visible_devices("cuda") == ["cuda:0", "cuda:1", "cuda:2"]
    assert ablation.visible_devices("cpu") == ["cpu"]
    assert ablation.default_jobs(ablation.visible_devices()) == 3
    monkeypatch.setattr(ablation.torch.cuda, "is_available", lambda: False)
    assert ablation.visible_devices("auto") == ["cpu"]
    assert ablation.default_jobs(["cpu"]) == 1
    with pytest.raises(ValueError, match="device must be auto, cuda or cpu, got 'gpu'"):
        ablation.visible_devices("gpu")
    with pytest.raises(ValueError, match=r"device 'gpu0': expected 'cpu' or 'cuda:<index>'"):
        ablation.default_jobs(["cuda:0", "gpu0"])


def test_pin_device_keeps_the_parents_numbering(monkeypatch):
    """A worker's cuda:i is the parent's: the i-th GPU, or the i-th entry of the
    $CUDA_VISIBLE_DEVICES the parent was given (indices, UUIDs or MIG instances)."""
    monkeypatch.setattr(ablation.torch.version, "cuda", None)  # a CPU build: nothing to check
    monkeypatch.delenv(ablation.CUDA_VISIBLE, raising=False)
    ablation.pin_device("cpu")
    assert ablation.CUDA_VISIBLE not in os.environ
    ablation.pin_device("cuda:1")
    assert os.environ[ablation.CUDA_VISIBLE] == "1"
    monkeypatch.setenv(ablation.CUDA_VISIBLE, "3, GPU-5e1f")
    ablation.pin_device("cuda:1")
    assert os.environ[ablation.CUDA_VISIBLE] == "GPU-5e1f"
    monkeypatch.setenv(ablation.CUDA_VISIBLE, "3")
    with pytest.raises(ValueError, match=r"device 'cuda:1': CUDA_VISIBLE_DEVICES='3' lists 1"):
        ablation.pin_device("cuda:1")
    # A CUDA build must see one GPU after the pin. CUDA initialised before it still sees every
    # GPU: refused, not left on GPU 0; a GPU that is not there: refused, not run on the CPU.
    monkeypatch.setattr(ablation.torch.version, "cuda", "12.4")
    monkeypatch.setattr(ablation.torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv(ablation.CUDA_VISIBLE, "0,1")
    ablation.pin_device("cuda:1")
    for seen in (2, 0):
        monkeypatch.setattr(ablation.torch.cuda, "device_count", lambda seen=seen: seen)
        monkeypatch.setenv(ablation.CUDA_VISIBLE, "0,1")
        with pytest.raises(
            RuntimeError, match=f"cannot pin cuda:1: .*'1' this process sees {seen}"
        ):
            ablation.pin_device("cuda:1")


@pytest.mark.slow  # spawns one worker process (imports torch: ~2 s)
def test_a_slot_worker_is_pinned_before_it_runs_anything(monkeypatch):
    torch = ablation.torch
    if torch.version.cuda is None:  # a CPU build checks no GPU: any list will do
        monkeypatch.setenv(ablation.CUDA_VISIBLE, "3,5")
        device, expected = "cuda:1", "5"
    elif torch.cuda.device_count() > 0:  # the first of the GPUs this process was given
        inherited = os.environ.get(ablation.CUDA_VISIBLE)
        device, expected = "cuda:0", inherited.split(",")[0].strip() if inherited else "0"
    else:
        pytest.skip("a CUDA build of torch without a GPU: the worker refuses any pin")
    with ablation._slot_pool(device) as pool:
        assert pool.submit(os.getenv, ablation.CUDA_VISIBLE).result(timeout=60) == expected


def stub_run(base, variant, seed, run_root, predictions_dir, **kwargs) -> AblationRun:
    """`train_or_reuse` without training or evaluating: `train_all`'s bookkeeping only."""
    folder = Path(run_root) / ablation.run_name(variant, seed)
    return AblationRun(variant, seed, folder, folder / "p.txt", result(10.0), "trained")


@pytest.fixture
def thread_slots(monkeypatch):
    """Each slot of `train_all` a worker thread instead of a spawned process; returns the
    devices the slots' workers were made for, in order."""
    made: list[str] = []

    def slot_pool(device: str) -> concurrent.futures.Executor:
        made.append(device)
        return concurrent.futures.ThreadPoolExecutor(1)

    monkeypatch.setattr(ablation, "_slot_pool", slot_pool)
    monkeypatch.setattr(ablation, "train_or_reuse", stub_run)
    return made


def test_train_all_runs_one_training_per_gpu_and_a_third_waits(
    tmp_path, thread_slots, monkeypatch, one_torch_thread
):
    """Two GPUs, three runs: the first two train at once, one on each GPU; the third starts
    on the GPU that frees first (cuda:1 here: plain holds cuda:0 until the third started)."""
    lock, active, started = threading.Lock(), {}, []
    both_running, third_started = threading.Barrier(2, timeout=10), threading.Event()

    def fake_training(job):
        with lock:
            started.append((job.variant, job.device, dict(active)))
            active[job.device] = job.variant
        if job.variant == "two_branch":
            third_started.set()
        else:
            both_running.wait()  # a BrokenBarrierError unless both run at once
        if job.variant == "plain":
            third_started.wait(timeout=10)
        with lock:
            del active[job.device]
        return ablation.run_name(job.variant, job.seed), None

    monkeypatch.setattr(ablation, "_train_in_process", fake_training)
    base, said = tiny_base(), []
    variants = ["plain", "direct", "two_branch"]
    runs = ablation.train_all(
        base, variants, [0], tmp_path, report=said.append, devices=["cuda:0", "cuda:1"]
    )
    assert started == [
        ("plain", "cuda:0", {}),
        ("direct", "cuda:1", {"cuda:0": "plain"}),
        ("two_branch", "cuda:1", {"cuda:0": "plain"}),
    ]
    assert thread_slots == ["cuda:0", "cuda:1"]
    assert "training 3 runs, 2 at a time with 1 thread(s) each, one per GPU (cuda:0, cuda:1)" in (
        said
    )
    assert [r.origin for r in runs] == ["trained (parallel)"] * 3


def test_train_all_jobs_and_devices_choose_the_slots(
    tmp_path, thread_slots, monkeypatch, one_torch_thread
):
    """The caller's jobs overrides one per GPU (never two runs on a GPU); a job's run keeps
    its config (the device is the worker's); a worker that dies is replaced, and the run it
    held is named among the failures once the others have trained."""
    jobs_seen = []

    def fake_training(job):
        jobs_seen.append(job)
        if job.variant == "plain":
            raise concurrent.futures.process.BrokenProcessPool("its worker died")
        return ablation.run_name(job.variant, job.seed), None

    monkeypatch.setattr(ablation, "_train_in_process", fake_training)
    base = tiny_base().with_overrides({"train.device": "cuda"})
    with pytest.raises(RuntimeError, match=r"1 of 2 trainings failed: \['plain_seed0: Broken"):
        ablation.train_all(
            base, ["plain", "direct"], [0], tmp_path, jobs=2, devices=["cuda:0"], report=print
        )
    assert [(j.variant, j.device) for j in jobs_seen] == [("plain", "cuda:0"), ("direct", "cuda:0")]
    assert thread_slots == ["cuda:0", "cuda:0"]  # a fresh worker after the dead one
    assert all(RunConfig.from_dict(j.base) == base for j in jobs_seen)
    # On a CPU, jobs slots of "cpu"; jobs=1 trains in this process, without workers.
    thread_slots.clear()
    ablation.train_all(base, ["direct"], [0, 1], tmp_path, jobs=2, devices=["cpu"], report=print)
    assert thread_slots == ["cpu", "cpu"]
    thread_slots.clear()
    ablation.train_all(base, ["direct"], [0, 1], tmp_path, devices=["cpu"], report=print)
    assert thread_slots == []
