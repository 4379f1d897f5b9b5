"""Shipped weights: export of finished runs, the sha256 registry, materializing a shipped run
and evaluating it afresh in the self-comparison, and the refusals (other networks, corrupt
files, no copy and no address). The runs are tiny smoke trainings made here, so the tests mean
the same whatever `pretrained/` of the checkout holds."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import papermill
import pytest
import torch

from handpose_lib import ablation, notebook, pretrained, uvd_format
from handpose_lib.ablation import PAPER_ORDER
from handpose_lib.camera import ICVL
from handpose_lib.evaluate import evaluate_uvd
from handpose_lib.paths import CENTERS_FILE, REPO_ROOT
from handpose_lib.profiles import make_run_config
from handpose_lib.training.data import build_dataset, read_centers, with_run_cache
from handpose_lib.training.engine import train
from handpose_lib.training.inference import load_model, predict, write_predictions
from handpose_lib.verified_files import ChecksumError, sha256_of

TINY = {
    "train.epochs": 1,
    "train.lr_milestones": [1],
    "train.batch_size": 2,
    "data.train.num_frames": 4,
    "data.val.num_frames": 3,
}


@pytest.fixture(scope="module")
def long_output(tmp_path_factory) -> tuple[Path, dict]:
    """A miniature `reproduce --profile long` output: LocNet, four variants x seed 0, their
    predictions; and the runs' results as trained."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks; restored below, not left to the later tests
    try:
        root = tmp_path_factory.mktemp("long")
        locnet = make_run_config("smoke", "locnet").with_overrides(TINY)
        train(locnet, root / "locnet")
        base = make_run_config("smoke", "attention").with_overrides(TINY)
        trained = {
            v: ablation.train_or_reuse(base, v, 0, root / "selfcomp", root / "predictions")
            for v in PAPER_ORDER
        }
        # Notebook 02's output: the LocNet's centres of the test frames.
        model, config = load_model(root / "locnet")
        frames = build_dataset(with_run_cache(config, root / "locnet"), "val", base.data.val)
        write_predictions(root / CENTERS_FILE, predict(model, frames))
    finally:
        torch.set_num_threads(threads)
    return root, trained


@pytest.fixture
def shipped(long_output, tmp_path, monkeypatch) -> tuple[tuple[pretrained.ShippedFile, ...], Path]:
    """The miniature output exported as a shipped set, its registry parsed back, and the
    export folder configured as the local copy."""
    root, _ = long_output
    out = tmp_path / "pretrained"
    rows = pretrained.export_set(root, "long", [0], out_root=out)
    entries = pretrained.parse_registry(pretrained.format_registry(rows))
    monkeypatch.setenv(pretrained.ENV_LOCAL_DIR, str(out))
    return entries, out


def base_config():
    return make_run_config("smoke", "attention").with_overrides(TINY)


def test_export_lists_every_file_with_its_checksum(shipped):
    entries, out = shipped
    paths = {e.path for e in entries}
    for name in ["locnet", *(f"{v}_seed0" for v in PAPER_ORDER)]:
        for file in pretrained.RUN_FILES:
            assert f"long/{name}/{file}" in paths
    assert {f"long/predictions/{v}_seed0.txt" for v in PAPER_ORDER} <= paths
    assert f"long/{CENTERS_FILE.as_posix()}" in paths
    for entry in entries:
        assert sha256_of(out / entry.path) == entry.sha256
        assert (out / entry.path).stat().st_size == entry.bytes
    assert pretrained.run_names("long", entries) == sorted(
        ["locnet", *(f"{v}_seed0" for v in PAPER_ORDER)]
    )
    assert ablation.shipped_seeds("direct", entries) == (0,)


def test_shipped_run_loads_with_float16_weights_and_evaluates_like_the_trained_one(
    shipped, long_output, tmp_path, one_torch_thread
):
    entries, _ = shipped
    _, trained = long_output
    base = base_config()
    assert ablation.shipped_problem(base, PAPER_ORDER, entries=entries) is None
    run = ablation.load_shipped(base, "attention", 0, tmp_path, tmp_path / "pred", entries=entries)
    assert run.origin == "shipped (pretrained/long)"
    assert run.predictions == tmp_path / "pred" / "long_attention_seed0.txt"
    original, _ = load_model(trained["attention"].run_dir)
    loaded, config = load_model(run.run_dir)
    # The trained config, but the shipped runs share one crop cache.
    shared = {"data.cache_dir": str(tmp_path / "shipped" / "cache")}
    assert run.run_dir == tmp_path / "shipped" / "attention_seed0"
    assert config == ablation.variant_config(base, "attention", 0).with_overrides(shared)
    for (name, a), b in zip(
        original.state_dict().items(), loaded.state_dict().values(), strict=True
    ):
        # float16 keeps ~3 significant digits: close to the original, not bit-equal.
        torch.testing.assert_close(b, a, rtol=2e-3, atol=1e-4, msg=name)
    errors, reference = run.result.errors_mm, trained["attention"].result.errors_mm
    assert np.abs(errors.mean() - reference.mean()) < 0.05 * reference.mean()
    # Materialized once: a second load keeps the folder as it is.
    stamp = (run.run_dir / "checkpoint.pt").stat().st_mtime_ns
    ablation.load_shipped(base, "attention", 0, tmp_path, tmp_path / "pred", entries=entries)
    assert (run.run_dir / "checkpoint.pt").stat().st_mtime_ns == stamp


def test_shipped_weights_refused_for_other_networks_or_checkpoints(shipped):
    entries, _ = shipped
    base = base_config()
    wider = base.with_overrides({"model.channels": 32})
    assert "['model']" in ablation.shipped_problem(wider, PAPER_ORDER, entries=entries)
    other_crop = base.with_overrides({"crop.heatmap_sigma": 3.0})
    assert "['crop']" in ablation.shipped_problem(other_crop, PAPER_ORDER, entries=entries)
    assert "last epoch" in ablation.shipped_problem(base, PAPER_ORDER, "best", entries)
    assert "no shipped weights for" in ablation.shipped_problem(base, PAPER_ORDER, entries=())
    # The budget is what the shipped set changes: a longer run of the same networks fits.
    longer = base.with_overrides({"train.epochs": 3, "train.lr_milestones": [2]})
    assert ablation.shipped_problem(longer, PAPER_ORDER, entries=entries) is None


def test_corrupt_shipped_file_is_refused_naming_it(shipped, tmp_path):
    entries, out = shipped
    weights = out / "long" / "plain_seed0" / "weights.pt"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=r"plain_seed0/weights.pt: sha256 is"):
        pretrained.materialize("long", "plain_seed0", tmp_path / "run", entries)


def test_no_copy_and_no_address_is_one_clear_error(shipped, tmp_path, monkeypatch):
    entries, _ = shipped
    monkeypatch.delenv(pretrained.ENV_LOCAL_DIR)
    monkeypatch.delenv(pretrained.ENV_BASE_URL, raising=False)
    monkeypatch.setattr(pretrained, "CHECKOUT_COPY", tmp_path / "none")
    monkeypatch.setenv(pretrained.ENV_CACHE_DIR, str(tmp_path / "cache"))
    with pytest.raises(pretrained.ShippedUnavailable, match="HANDPOSE_PRETRAINED_URL"):
        pretrained.fetch("long/locnet/config.json", entries=entries)


def test_download_route_verifies_and_caches(shipped, tmp_path, monkeypatch):
    entries, out = shipped
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(out))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.delenv(pretrained.ENV_LOCAL_DIR)
        monkeypatch.setattr(pretrained, "CHECKOUT_COPY", tmp_path / "none")
        monkeypatch.setenv(pretrained.ENV_CACHE_DIR, str(tmp_path / "cache"))
        monkeypatch.setenv(pretrained.ENV_BASE_URL, f"http://127.0.0.1:{server.server_port}/")
        path = pretrained.fetch("long/direct_seed0/weights.pt", entries=entries)
        assert path == tmp_path / "cache" / "pretrained" / "long" / "direct_seed0" / "weights.pt"
        assert (
            sha256_of(path)
            == pretrained.lookup(path.relative_to(path.parents[2]).as_posix(), entries).sha256
        )
        # A registry that expects other bytes refuses the download.
        wrong = [
            e if "locnet/config" not in e.path else e.__class__(e.path, "0" * 64, e.bytes)
            for e in entries
        ]
        with pytest.raises(ChecksumError, match="sha256 differs"):
            pretrained.fetch("long/locnet/config.json", entries=wrong)
    finally:
        server.shutdown()
        server.server_close()


def test_registry_parse_errors_name_the_line():
    with pytest.raises(ValueError, match="line 1 must be the header"):
        pretrained.parse_registry("file\tsha\n", "reg.tsv")
    with pytest.raises(ValueError, match=r"reg.tsv:3: expected 3 tab-separated fields"):
        pretrained.parse_registry(f"path\tsha256\tbytes\na\t{'0' * 64}\t1\nb\t1\n", "reg.tsv")
    with pytest.raises(ValueError, match=r"reg.tsv:2: expected a 64-hex sha256"):
        pretrained.parse_registry("path\tsha256\tbytes\na\tabc\t1\n", "reg.tsv")


def test_package_registry_matches_the_checkout_copy():
    """Every file the package lists is in the checkout's pretrained/ with its sha256."""
    for entry in pretrained.registry():
        path = pretrained.CHECKOUT_COPY / entry.path
        assert path.is_file(), f"{entry.path} is listed in the registry but not in pretrained/"
        assert sha256_of(path) == entry.sha256, entry.path


@pytest.mark.slow
@pytest.mark.notebooks
def test_notebooks_03_and_04_use_a_shipped_set(long_output, tmp_path, monkeypatch):
    """The notebooks' default path: with a shipped set that fits the profile (here a set of
    smoke runs, registered through HANDPOSE_PRETRAINED_REGISTRY) notebook 03 shows the shipped
    attention model and notebook 04 evaluates the shipped variants instead of training."""
    root, _ = long_output
    out = tmp_path / "pretrained"
    rows = pretrained.export_set(root, "long", [0], out_root=out)
    registry_file = tmp_path / "registry.tsv"
    registry_file.write_text(pretrained.format_registry(rows))
    monkeypatch.setenv(pretrained.ENV_REGISTRY, str(registry_file))
    monkeypatch.setenv(pretrained.ENV_LOCAL_DIR, str(out))
    monkeypatch.setenv("HANDPOSE_PROFILE", "smoke")
    run_dir, figures = tmp_path / "run", tmp_path / "figures"
    parameters = {
        "PROFILE": "smoke",
        "RUN_DIR": str(run_dir),
        "OUTPUT_DIR": str(figures),
        "HEADLESS": True,
    }
    for name in ("03_pose_training", "04_self_comparison"):
        papermill.execute_notebook(
            REPO_ROOT / "notebooks" / f"{name}.ipynb",
            tmp_path / f"{name}.ipynb",
            parameters=parameters,
            kernel_name="python3",
            progress_bar=False,
        )
    assert not (run_dir / "pose_attention").exists()  # nothing trained in notebook 03
    assert not (run_dir / "selfcomp").exists()  # nor in notebook 04
    assert pretrained.is_materialized(run_dir / "shipped" / "attention_seed0")
    for variant in PAPER_ORDER:
        assert (run_dir / "predictions" / f"long_{variant}_seed0.txt").is_file()
    text = (tmp_path / "04_self_comparison.ipynb").read_text()
    assert "shipped (pretrained/long)" in text
    assert "comparisons: ['smoke budget, shipped weights']" in text  # none trained here
    assert (figures / "self_comparison_validation_by_step.png").is_file()
    assert (figures / "fig3b_self_comparison_success_frames.png").is_file()
    assert "attention (shipped) mean error" in (tmp_path / "03_pose_training.ipynb").read_text()
    assert (figures / "pose_attention_errors_shipped.png").is_file()  # not the trained one's name
    assert not (figures / "pose_attention_errors.png").exists()


def test_reexport_registers_only_this_exports_files(long_output, tmp_path):
    root, _ = long_output
    out = tmp_path / "pretrained"
    stray = out / "long" / "attention_seed7" / "weights.pt"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"old weights of an earlier export")
    rows = pretrained.export_set(root, "long", [0], out_root=out)
    assert not stray.exists()
    assert all("seed7" not in r.path for r in rows)


def test_export_refuses_an_incomplete_output_naming_what_is_missing(long_output, tmp_path):
    root, _ = long_output
    partial = tmp_path / "partial"
    shutil.copytree(root, partial)
    (partial / CENTERS_FILE).unlink()
    out = tmp_path / "out"
    earlier = pretrained.export_set(root, "long", [0], out_root=out)
    with pytest.raises(FileNotFoundError, match=r"val_locnet.txt: missing; run notebook 02"):
        pretrained.export_set(partial, "long", [0], out_root=out)
    (partial / "selfcomp" / "direct_seed0" / "summary.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"direct_seed0/summary.json: missing"):
        pretrained.export_set(partial, "long", [0], out_root=out)
    # A failed export keeps the set that was there, file for file.
    assert sorted(p.name for p in out.iterdir()) == ["long"]
    for entry in earlier:
        assert sha256_of(out / entry.path) == entry.sha256


def test_materialize_refreshes_on_any_changed_file_and_never_replaces_a_trained_run(
    shipped, long_output, tmp_path
):
    entries, out = shipped
    run_dir = pretrained.materialize("long", "direct_seed0", tmp_path / "m", entries)
    # The registry now lists other metrics (same weights): the copy is refreshed, not kept.
    metrics = out / "long" / "direct_seed0" / "metrics.csv"
    metrics.write_text(metrics.read_text() + "\n")
    changed = pretrained.parse_registry(
        pretrained.format_registry(
            [
                pretrained.ShippedFile(
                    e.path, sha256_of(out / e.path), (out / e.path).stat().st_size
                )
                for e in entries
            ]
        )
    )
    pretrained.materialize("long", "direct_seed0", run_dir, changed)
    assert (run_dir / "metrics.csv").read_text() == metrics.read_text()
    # A folder holding a run trained here is refused, not wiped.
    _root, trained = long_output
    with pytest.raises(FileExistsError, match="not materialized from shipped weights"):
        pretrained.materialize("long", "direct_seed0", trained["direct"].run_dir, entries)
    assert (trained["direct"].run_dir / "checkpoint.pt").is_file()


def test_listed_but_unreadable_shipped_files_mean_training_not_a_crash(
    shipped, tmp_path, monkeypatch
):
    entries, _ = shipped
    monkeypatch.setenv(pretrained.ENV_LOCAL_DIR, str(tmp_path / "empty"))
    problem = ablation.shipped_problem(base_config(), PAPER_ORDER, entries=entries)
    assert problem.startswith("their files cannot be read")
    assert "config.json" in problem
    real = base_config().with_overrides({"data.train.kind": "icvl", "data.train.root": "/x"})
    assert "trained on synthetic frames" in ablation.shipped_problem(
        real, PAPER_ORDER, entries=entries
    )


def test_shipped_config_of_older_code_still_loads(shipped, tmp_path):
    """A field added to the code since the export (here: one removed from the saved dicts)
    takes its default; the shipped run still materializes."""
    entries, out = shipped
    run = out / "long" / "plain_seed0"
    payload = torch.load(run / "weights.pt", weights_only=True)
    del payload["config"]["train"]["channels_last"]
    torch.save(payload, run / "weights.pt")
    saved = json.loads((run / "config.json").read_text())
    del saved["train"]["channels_last"]
    (run / "config.json").write_text(json.dumps(saved))
    rows = [
        pretrained.ShippedFile(e.path, sha256_of(out / e.path), (out / e.path).stat().st_size)
        for e in entries
    ]
    run_dir = pretrained.materialize("long", "plain_seed0", tmp_path / "old", rows)
    assert pretrained.is_materialized(run_dir)


# --- the committed set (pretrained/long): its weights give its committed files -----------------

SHIPPED_POSE_RUNS = [f"{variant}_seed{seed}" for variant in PAPER_ORDER for seed in (0, 1, 2)]
no_shipped_set = pytest.mark.skipif(
    not pretrained.registry(), reason="the package lists no shipped set"
)
# The rendered test frames are the published ICVL labels, rendered: skipped where those files
# cannot be had (conftest.published_dir; marker `published`).
needs_published = pytest.mark.usefixtures("published_dir")


@no_shipped_set
def test_the_committed_set_is_locnet_and_four_variants_by_three_seeds():
    names = pretrained.run_names(ablation.SHIPPED_SET)
    assert names == sorted(["locnet", *SHIPPED_POSE_RUNS])


def shipped_predictions(name: str, tmp_path: Path, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """A committed pose run, widened from float16, run on `frames` evenly spaced rendered test
    frames cropped at the set's LocNet centres; and its committed predictions of those frames."""
    run_dir = pretrained.materialize(ablation.SHIPPED_SET, name, tmp_path / name)
    model, config = load_model(run_dir)
    centers = pretrained.fetch(pretrained.lookup(f"{ablation.SHIPPED_SET}/{CENTERS_FILE}"))
    assert config.data.val is not None
    spec = replace(config.data.val, num_frames=frames, centers=f"uvd:{centers}")
    dataset = build_dataset(with_run_cache(config, run_dir), "val", spec)
    predicted = predict(model, dataset)
    committed_file = pretrained.fetch(
        pretrained.lookup(f"{ablation.SHIPPED_SET}/predictions/{name}.txt")
    )
    committed = uvd_format.read_uvd(committed_file, predicted.shape[1])[dataset.source.indices]
    return predicted, committed


@no_shipped_set
@pytest.mark.parametrize("name", SHIPPED_POSE_RUNS)
@needs_published
def test_every_committed_pose_run_gives_its_committed_predictions(name, tmp_path, one_torch_thread):
    """Four frames per run (first, last and two between). Tolerance: the committed predictions
    were made with the float32 weights, the committed weights are float16 (~3 significant
    digits), which moves a joint by up to ~1.5 mm where a heatmap's sub-pixel decoding is
    sensitive; on these frames the 12 runs' mean gaps were 0.02-0.20 mm (two_branch_seed0 the
    largest). 0.3 mm still fails any real change: the runs of one variant differ from each
    other by 3-7 mm, and a wrong crop or decoding by more."""
    predicted, committed = shipped_predictions(name, tmp_path, frames=4)
    gap_mm = evaluate_uvd(predicted, committed, "icvl", name=name).mean_error_mm
    assert gap_mm < 0.3, f"{name}: {gap_mm:.3f} mm from its committed predictions"


@no_shipped_set
@needs_published
def test_committed_locnet_gives_the_committed_centres(tmp_path, one_torch_thread):
    """The shipped LocNet on 8 evenly spaced rendered test frames, cropped at their CoM as in
    notebook 02, predicts the centres of pretrained/long/centers/val_locnet.txt. Tolerance
    0.05 mm per frame: the float16 weights move the regressed offset by ~1e-3 of its size (on 48
    frames at most 0.024 mm), the file's three decimals by 0.0005 at most; a different network,
    crop or decoding moves a centre by millimetres (the centres lie 11 mm from the truth)."""
    run_dir = pretrained.materialize(ablation.SHIPPED_SET, "locnet", tmp_path / "locnet")
    model, config = load_model(run_dir)
    assert config.data.val is not None
    assert config.data.val.centers == "com"
    spec = replace(config.data.val, num_frames=8)
    dataset = build_dataset(with_run_cache(config, run_dir), "val", spec)
    predicted = predict(model, dataset)
    centers_file = pretrained.fetch(pretrained.lookup(f"{ablation.SHIPPED_SET}/{CENTERS_FILE}"))
    committed = read_centers(centers_file)[dataset.source.indices]
    assert len(committed) == 8
    assert dataset.source.indices[-1] == 1595
    gaps = ICVL.uvd_to_xyz(predicted) - ICVL.uvd_to_xyz(committed)
    gaps_mm = np.linalg.norm(gaps, axis=1)
    assert gaps_mm.max() < 0.05, f"centre gaps (mm): {np.round(gaps_mm, 4)}"


@pytest.mark.slow
@no_shipped_set
@pytest.mark.parametrize("name", ["attention_seed0", "plain_seed0"])
@needs_published
def test_committed_weights_give_their_committed_predictions(name, tmp_path, one_torch_thread):
    """The committed set is self-consistent: a shipped network, widened from float16 and run on
    evenly spaced rendered test frames cropped at the set's LocNet centres, predicts what its
    committed prediction file says for those frames (heatmap and regression decoding). The same
    check as above on 24 frames of two runs (tolerance: see there)."""
    predicted, committed = shipped_predictions(name, tmp_path, frames=24)
    gap_mm = evaluate_uvd(predicted, committed, "icvl", name=name).mean_error_mm
    assert gap_mm < 0.3, f"{name}: {gap_mm:.3f} mm from its committed predictions"


def test_the_committed_locnet_stands_in_for_the_cpu_profiles_and_only_there(tmp_path, monkeypatch):
    monkeypatch.delenv("HANDPOSE_PROFILE", raising=False)  # conftest's smoke default
    assert ablation.shipped_locnet_problem(make_run_config("cpu", "locnet")) is None
    smoke = ablation.shipped_locnet_problem(make_run_config("smoke", "locnet"))
    assert "['model', 'crop'] differ" in smoke
    assert "last epoch" in ablation.shipped_locnet_problem(make_run_config("cpu", "locnet"), "best")
    nb = notebook.start("cpu", run_dir=str(tmp_path / "run"), output_dir=str(tmp_path / "f"))
    loc = nb.locnet_model(nb.run_config("locnet"))
    assert loc.name == "LocNet (shipped)"
    assert pretrained.is_materialized(loc.run_dir)
    assert "**shipped**" in loc.origin
    assert not (tmp_path / "run" / "locnet").exists()  # nothing trained


def test_the_shipped_attention_model_scores_its_committed_predictions_at_its_own_centres(
    tmp_path, monkeypatch
):
    """Notebook 03 opened after notebook 02 used the shipped LocNet: the LocNet centres are the
    shipped ones, so the committed predictions are scored instead of running the network; at
    other centres nothing is reused."""
    monkeypatch.delenv("HANDPOSE_PROFILE", raising=False)  # conftest's smoke default
    nb = notebook.start("cpu", run_dir=str(tmp_path / "run"), output_dir=str(tmp_path / "f"))
    config = nb.run_config("attention")
    assert nb.pose_model(config).committed is None  # no LocNet centres in this run folder yet
    nb.centers_file.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(pretrained.fetch(ablation.SHIPPED_CENTRES), nb.centers_file)
    pose = nb.pose_model(nb.run_config("attention"))
    spec, path = pose.committed
    assert path == pretrained.fetch("long/predictions/attention_seed0.txt")
    assert spec == nb.centre_specs(nb.run_config("attention"))[notebook.LOCNET]
    # Other centres: the run's own LocNet differs from the shipped one by more than rounding.
    centres = read_centers(nb.centers_file)
    write_predictions(nb.centers_file, centres + 1.0)
    assert nb.pose_model(nb.run_config("attention")).committed is None
