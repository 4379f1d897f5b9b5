"""The set-up of a numbered notebook in one call, and what every notebook does with it.

    nb = notebook.start(PROFILE, DATASET, DATA_ROOT, RUN_DIR, OUTPUT_DIR, HEADLESS)

returns a `Session`: the profile (`profiles.resolve_profile`: $HANDPOSE_PROFILE overrides the
parameter), the dataset's joint layout, the run folder (created when missing: later notebooks
read what earlier ones wrote there), the figures folder, and `nb.run_config(model)`, the run
a notebook trains: the profile's, on the chosen data, validated at notebook 02's LocNet
centres once they exist.
`nb.save(fig, name)` writes a figure as PNG + PDF and remembers it; `nb.explore(...)` offers
an ipywidgets explorer, or draws one static view when the notebook runs headless.

Headless is the notebook parameter `HEADLESS` (the runner passes `HEADLESS=True`) or the
environment variable $HANDPOSE_HEADLESS (set by the test suite): a kernel that no front end
listens to can stall on creating widgets (seen with papermill), and nothing could use them.
"""

from __future__ import annotations

import inspect
import os
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import ipywidgets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import PIL.Image
from IPython.display import Image, Markdown, display
from matplotlib.figure import Figure

from handpose_lib import (
    ablation,
    evaluate,
    floors,
    machine,
    metrics,
    paths,
    plots,
    pretrained,
    reproduce,
    uvd_format,
)
from handpose_lib.camera import camera_for
from handpose_lib.center_files import CenterFile
from handpose_lib.evaluate import MethodResult
from handpose_lib.preprocess import CropConfig
from handpose_lib.profiles import DATA_CHOICES, Profile, resolve_profile
from handpose_lib.training import preflight
from handpose_lib.training.config import RunConfig, SourceSpec
from handpose_lib.training.data import (
    centers_option,
    community_center_file,
    read_centers,
    registry_split,
)
from handpose_lib.training.engine import TrainResult, train
from handpose_lib.training.inference import evaluate_run

# The crop centres every pose result is evaluated at -> prediction subfolder: three always, a
# community centre file (the CENTERS parameter) where one is given.
LOCNET, COM, ORACLE = "LocNet centre", "plain CoM", "true joint centroid (oracle)"
CENTRE_FILE = "centre file"
CENTRE_FOLDERS = {
    LOCNET: "",
    CENTRE_FILE: "file_centers",
    COM: "com_centers",
    ORACLE: "oracle_centers",
}
VALIDATION_NAMES = {
    "rendered": "rendered ICVL test poses",
    "synthetic": "procedural synthetic frames",
    "icvl": "ICVL test set",
    "nyu": "NYU test set",
}


def is_headless(flag: bool = False) -> bool:
    """True when the notebook parameter says so or $HANDPOSE_HEADLESS is set (non-empty)."""
    return bool(flag) or bool(os.environ.get(paths.ENV_HEADLESS))


def redraw_on_release(controls: Mapping[str, ipywidgets.Widget]) -> None:
    """Sliders and text boxes report their value only when released / committed: one redraw
    per choice, not one per step (a redraw may run a network)."""
    for widget in controls.values():
        if hasattr(widget, "continuous_update"):
            widget.continuous_update = False


def explore(
    view: Callable[..., None],
    defaults: Mapping[str, object],
    controls: Callable[[], Mapping[str, ipywidgets.Widget]] | None = None,
    *,
    headless: bool = False,
) -> None:
    """An ipywidgets explorer over `view`, or one static call `view(**defaults)` headless.

    `controls()` builds the widgets (keyword -> widget); it is only called in an interactive
    session, so a headless run never creates one.
    """
    if is_headless(headless) or controls is None:
        view(**defaults)
        return
    widgets = dict(controls())
    redraw_on_release(widgets)
    ipywidgets.interact(view, **widgets)


def _validation_spec(config: RunConfig) -> SourceSpec:
    """The run's validation data (every profile's run config has some)."""
    if config.data.val is None:
        raise ValueError(f"the {config.name} run config has no validation data (data.val)")
    return config.data.val


@dataclass(frozen=True)
class PoseModel:
    """The attention model a notebook looks at: trained here or the shipped one.

    run_dir: its run folder; config: the config its budget and data are read from (the
    shipped run's training frames when shipped); history: its metrics.csv; name: "attention"
    or "attention (shipped)"; predictions: the stem of its prediction files; suffix: "" or
    "_shipped" for figure names; budget: `Session.budget` of it; origin: one sentence on which
    model this is and why its numbers differ from the default run's figures/; committed: the
    (validation spec, prediction file) shipped with the weights when this run crops its test
    frames at the very centres those predictions were made at (scored instead of predicted).
    """

    run_dir: Path
    config: RunConfig
    history: pd.DataFrame
    name: str
    predictions: str
    suffix: str
    budget: str
    origin: str
    committed: tuple[SourceSpec, Path] | None = None


@dataclass
class Session:
    """What a notebook's set-up cell gives the rest of the notebook.

    profile:     the profile in effect ($HANDPOSE_PROFILE overrides the parameter).
    dataset:     synthetic | icvl | nyu; layout is its joint layout ("synthetic" uses ICVL's).
    data_root:   root of the real dataset, or None for synthetic data.
    run_dir:     where trained runs and prediction files are handed between notebooks.
    figures_dir: where figures and tables go.
    headless:    no widgets (runner, tests).
    centers:     a community centre file of the validation frames (x y z mm or `invalid` per
                 line, e.g. V2V-PoseNet's center_test_refined.txt), "registry:SOURCE" for a
                 registered one, or "" for none.
    device:      where its trainings run: "auto", "cuda" or "cpu" (`train.device`).
    written:     every file the notebook wrote, in order (`report()` lists them).
    """

    profile: Profile
    dataset: str
    data_root: str | None
    run_dir: Path
    figures_dir: Path
    headless: bool
    centers: str = ""
    device: str = "auto"
    written: list[Path] = field(default_factory=list)

    @property
    def layout(self) -> str:
        return "icvl" if self.dataset == "synthetic" else self.dataset

    @property
    def crop_config(self) -> CropConfig:
        """The crops training uses on this data (the profile's size and heatmap sigma)."""
        return self.profile.crop_config(self.dataset)

    @property
    def centers_file(self) -> Path:
        """Refined centres of the validation frames, written by notebook 02."""
        return self.run_dir / paths.CENTERS_FILE

    @property
    def val_centers(self) -> str:
        """Where validation crops centre: notebook 02's LocNet centres, else the CoM."""
        return str(self.centers_file) if self.centers_file.is_file() else "com"

    def run_config(self, model: str = "attention") -> RunConfig:
        """The profile's run of `model` (a PoseNet variant or "locnet") on this data. Pose
        runs train on crops at the joint centroid (jittered by augmentation) and validate at
        `val_centers`; LocNet trains and validates on CoM crops."""
        config = self.profile.run_config(model, self.dataset)
        overrides: dict[str, object] = {}
        if self.device != "auto":
            overrides["train.device"] = self.device
        if self.dataset != "synthetic":
            overrides.update({"data.train.root": self.data_root, "data.val.root": self.data_root})
        if model != "locnet":
            overrides["data.val.centers"] = self.val_centers
        return config.with_overrides(overrides) if overrides else config

    def centre_sources(self, val: SourceSpec) -> tuple[dict[str, CenterFile], str]:
        """Community centre files for the validation frames `val`, label -> CenterFile, and a
        line saying what was included: V2V-PoseNet's registered centres where the frames are
        an ICVL / NYU split or the rendered ICVL test poses (the same frames as the published
        ICVL test set), and CENTERS when given. Each file covers its whole split: pick the
        validation frames' lines with their indices (`compare_center_sources`)."""
        found: dict[str, CenterFile] = {}
        try:
            dataset, split = registry_split(val)
        except ValueError:
            said = f"no registered centre file for {val.kind!r} validation frames"
        else:
            v2v = community_center_file(replace(val, centers="registry:v2v"))
            found[f"V2V-PoseNet centres ({dataset} {split}, registry)"] = v2v
            said = f"registered centres: {v2v.path}"
        if self.centers:
            given = community_center_file(replace(val, centers=centers_option(self.centers)))
            found[f"CENTERS ({self.centers})"] = given
        return found, said

    def centre_specs(self, config: RunConfig) -> dict[str, SourceSpec]:
        """The run's validation frames cropped at each of the three centres (LocNet only
        once notebook 02 wrote its centres)."""
        val = _validation_spec(config)
        specs = {}
        if self.centers_file.is_file():
            specs[LOCNET] = replace(val, centers=str(self.centers_file))
        if self.centers:
            specs[CENTRE_FILE] = replace(val, centers=centers_option(self.centers))
        specs[COM] = replace(val, centers="com")
        specs[ORACLE] = replace(val, centers="joints")
        return specs

    def evaluate_at_centres(
        self,
        run_dir: str | os.PathLike,
        config: RunConfig,
        gt_uvd: np.ndarray,
        name: str,
        which: str = "last",
        existing: tuple[SourceSpec, Path] | None = None,
        only: Sequence[str] | None = None,
    ) -> dict[str, tuple[MethodResult, dict[str, float]]]:
        """centre label -> (result, `metrics.error_parts`) of a trained pose run on its
        validation frames cropped at each centre. Predictions are written in the community
        format to run_dir/../predictions/[<centre folder>/]<name>.txt and scored from there by
        `evaluate.evaluate_file`, the code path of Table 1. The crops at each centre are cached
        once in RUN_DIR/eval_cache for every run evaluated with the same crop settings.
        `existing` (spec, prediction file): the run's predictions already made at that spec,
        scored instead of predicted again. `only`: these centre labels (default: all)."""
        camera = camera_for(self.layout)
        out = {}
        for label, spec in self.centre_specs(config).items():
            if only is not None and label not in only:
                continue
            if existing is not None and existing[0] == spec:
                path = existing[1]
            else:
                path = self.run_dir / "predictions" / CENTRE_FOLDERS[label] / f"{name}.txt"
                evaluate_run(
                    run_dir,
                    which,
                    source=spec,
                    out_path=path,
                    cache_dir=self.run_dir / "eval_cache",
                )
                self.wrote(path)
            result = evaluate.evaluate_file(path, self.layout, gt_uvd, name=f"{name}, {label}")
            pred = uvd_format.read_uvd(path, gt_uvd.shape[1], expected_frames=len(gt_uvd))
            out[label] = (result, metrics.error_parts(pred, gt_uvd, camera))
        return out

    def constant_pose_floors(self, config: RunConfig, gt_uvd: np.ndarray) -> list[floors.Floor]:
        """The two constant-pose floors (`floors.constant_pose_floors`) for the validation
        labels `gt_uvd` (N, J, 3): the test mean pose (oracle) and the mean pose of the run's
        training labels, both at the true joint centroid."""
        spec = config.data.train
        if spec.kind == "synthetic":
            train_uvd = floors.synthetic_train_uvd(spec.num_frames, spec.seed)
        else:
            train_uvd = ablation.validation_labels(spec)
        return floors.constant_pose_floors(gt_uvd, self.layout, train_uvd)

    def val_name(self, config: RunConfig) -> str:
        """'rendered ICVL test poses' etc.: what the run validates and is tested on."""
        return VALIDATION_NAMES[_validation_spec(config).kind]

    def budget(self, config: RunConfig) -> str:
        """'cpu profile, 768 steps: 6 epochs of 4096 synthetic frames, batch 32': the training
        budget and data, for titles and captions."""
        tc, spec = config.train, config.data.train
        frames = f"{spec.num_frames}" if spec.num_frames else "all"
        data = "synthetic" if spec.kind == "synthetic" else f"{spec.kind.upper()} {spec.split}"
        if spec.scene is not None:  # LocNet's frames: the hand among torso / wall / forearm
            data += " (with scene)"
        steps = (
            f"{tc.epochs * (spec.num_frames // tc.batch_size)} steps: " if spec.num_frames else ""
        )
        profile = config.profile or self.profile.name  # shipped runs name their own
        return (
            f"{profile} profile, {steps}{tc.epochs} epochs of {frames} {data} frames, "
            f"batch {tc.batch_size}"
        )

    def locnet_model(
        self, config: RunConfig, retrain: bool = False, checkpoint: str = "last"
    ) -> PoseModel:
        """Notebook 02's localization network: the shipped one (`pretrained/long/locnet`)
        when `retrain` is False and it fits `config`, else a run trained here into
        RUN_DIR/locnet (resumed, or reused when complete). The runner always trains here."""
        problem = None if retrain else ablation.shipped_locnet_problem(config, checkpoint)
        if not retrain and problem is None:
            run_dir = pretrained.materialize(
                ablation.SHIPPED_SET, ablation.SHIPPED_LOCNET, self.run_dir / "shipped" / "locnet"
            )
            budget = self.budget(RunConfig.load(run_dir))
            origin = (
                f"You are looking at the **shipped** localization network ({budget}, seed 0, "
                "`pretrained/long/locnet`), loaded in seconds. The default run trains one here "
                f"at the {self.profile.name} profile's budget (`figures/loc_*`); `RETRAIN = True` "
                "does that."
            )
            history = pd.read_csv(run_dir / "metrics.csv")
            return PoseModel(
                run_dir, config, history, "LocNet (shipped)", "locnet", "_shipped", budget, origin
            )
        run_dir = self.run_dir / "locnet"
        why = "RETRAIN = True" if retrain else f"the shipped weights do not fit: {problem}"
        result = _train_here(config, run_dir)
        budget = self.budget(config)
        origin = (
            f"You are looking at a localization network **trained here** ({why}): {budget}, "
            f"seed {config.train.seed}."
        )
        return PoseModel(run_dir, config, result.history, "LocNet", "locnet", "", budget, origin)

    def pose_model(
        self, config: RunConfig, retrain: bool = False, checkpoint: str = "last"
    ) -> PoseModel:
        """The attention model of notebook 03: the shipped long-budget weights (seed 0) when
        `retrain` is False and they fit `config`'s networks and data, else a run trained here
        into RUN_DIR/pose_attention (resumed, or reused when complete)."""
        problem = None if retrain else ablation.shipped_problem(config, ["attention"], checkpoint)
        if not retrain and problem is None:
            run_dir = ablation.materialize_shipped("attention", 0, self.run_dir)
            trained = RunConfig.load(run_dir)
            shipped = trained.data.train
            config = config.with_overrides(
                {"data.train.num_frames": shipped.num_frames, "data.train.seed": shipped.seed}
            )
            budget = self.budget(trained)
            origin = (
                f"You are looking at the **shipped** attention model ({budget}, seed 0, "
                "`pretrained/long`), loaded in seconds. The default run (`make reproduce`) "
                f"trains one here at the {self.profile.name} profile's shorter budget instead, "
                "so `figures/pose_*` show a less trained model with a larger error. "
                "`RETRAIN = True` trains that one here."
            )
            history = pd.read_csv(run_dir / "metrics.csv")
            return PoseModel(
                run_dir,
                config,
                history,
                "attention (shipped)",
                "long_attention_seed0",
                "_shipped",
                budget,
                origin,
                self._committed_predictions(config),
            )
        run_dir = self.run_dir / "pose_attention"
        saved = run_dir / "config.json"
        if saved.is_file():
            # Validation centres steer only the per-epoch validation, never the weights: a run
            # started before notebook 02 wrote its centres resumes with its own.
            saved_val, val = RunConfig.load(saved).data.val, config.data.val
            saved_centers = saved_val.centers if saved_val is not None else None
            if val is not None and saved_centers is not None and saved_centers != val.centers:
                print(f"{run_dir} validates with centres {saved_centers!r}; kept for resuming")
                config = config.with_overrides({"data.val.centers": saved_centers})
        why = "RETRAIN = True" if retrain else f"the shipped weights do not fit: {problem}"
        result = _train_here(config, run_dir)
        budget = self.budget(config)
        origin = (
            f"You are looking at an attention model **trained here** ({why}): {budget}, seed "
            f"{config.train.seed}. At the default `cpu` profile this is the model of "
            "`figures/pose_*`."
        )
        return PoseModel(
            run_dir, config, result.history, "attention", "attention_seed0", "", budget, origin
        )

    def _committed_predictions(self, config: RunConfig) -> tuple[SourceSpec, Path] | None:
        """(spec, file) of the shipped attention seed 0's committed predictions when this run's
        LocNet centres are the shipped LocNet's (notebook 02 opened with the shipped network:
        within `ablation.SHIPPED_CENTRE_TOLERANCE_MM` of them), else None."""
        specs = self.centre_specs(config)
        if LOCNET not in specs:
            return None
        shipped_centres = read_centers(pretrained.fetch(ablation.SHIPPED_CENTRES))
        ours = read_centers(self.centers_file)
        if ours.shape != shipped_centres.shape:
            return None
        camera = camera_for(self.layout)
        gaps_mm = np.linalg.norm(
            camera.uvd_to_xyz(ours) - camera.uvd_to_xyz(shipped_centres), axis=1
        )
        if gaps_mm.max() >= ablation.SHIPPED_CENTRE_TOLERANCE_MM:
            return None
        name = f"{ablation.SHIPPED_SET}/predictions/attention_seed0.txt"
        return specs[LOCNET], pretrained.fetch(name)

    def describe(self, config: RunConfig) -> None:
        """Print what a run trains on and where it goes."""
        crop = config.crop
        print(
            f"profile {self.profile.name}: {crop.input_size}x{crop.input_size} crops, "
            f"{crop.heatmap_size}x{crop.heatmap_size} heatmaps (sigma {crop.heatmap_sigma:g}), "
            f"cube {crop.cube_mm:.0f} mm, {config.train.optimizer} lr {config.train.lr:g}"
        )
        print(f"budget: {self.budget(config)}")
        val = config.data.val
        if val is not None:
            print(f"validation: {self.val_name(config)}, crops at {val.centers}")
        print(f"run folder: {self.run_dir} | figures: {self.figures_dir}")

    def time_note(self, notebook: str) -> str:
        """One line on what `notebook` ("03_pose_training.ipynb") cost in the runner's last
        run at this profile (figures/notebook_times.md), scaled to 100 GFLOP/s."""
        row = reproduce.measured_notebook_time(notebook, self.profile.name, self.dataset)
        if row is None:
            return (
                f"time: no run of {notebook} at the {self.profile.name} profile has been timed "
                "yet (the runner writes figures/notebook_times.md)"
            )
        scaled = row[f"seconds at {machine.REFERENCE_GFLOPS:.0f} GFLOP/s"]
        return (
            f"time: {row['seconds']:.0f} s in the runner's last {self.profile.name} run "
            f"(float32 matmul {row['matmul GFLOP/s']:.0f} GFLOP/s), about "
            f"{scaled / 60:.1f} min at {machine.REFERENCE_GFLOPS:.0f} GFLOP/s "
            "(figures/notebook_times.md)"
        )

    def save(self, fig: Figure, name: str, *, show: bool = True) -> None:
        """Write `fig` as <name>.png and <name>.pdf in the figures folder (listed by
        `report`), then show the PNG just written: what the notebook shows is the file, and
        the figure is drawn once for both (the inline backend would draw it again)."""
        paths = plots.save_figure(fig, name, self.figures_dir)
        self.written += paths
        if not show:
            return
        png = next((p for p in paths if p.suffix == ".png"), None)
        if png is None:  # PDF only ($HANDPOSE_FIGURE_FORMATS): let the backend draw it
            plt.show()
            return
        plt.close(fig)
        display(saved_png(png, fig.dpi))

    def wrote(self, *files: str | os.PathLike) -> None:
        """Remember files the notebook wrote by other means (tables, predictions, JSON)."""
        self.written += [Path(f) for f in files]

    def explore(
        self,
        view: Callable[..., None],
        defaults: Mapping[str, object],
        controls: Callable[[], Mapping[str, ipywidgets.Widget]] | None = None,
    ) -> None:
        """`explore` with this session's headless flag."""
        explore(view, defaults, controls, headless=self.headless)

    def report(self) -> None:
        """Print every file written, the last cell of each notebook."""
        print("written:")
        for path in self.written:
            print(" ", path)


def _train_here(config: RunConfig, run_dir: Path) -> TrainResult:
    """Train (or resume, or only load a finished) run into `run_dir` and say in one line how
    long this session spent and where the best epoch was."""
    started = time.perf_counter()
    result = train(config, run_dir, resume=True)
    print(
        f"{len(result.history)} epochs in {run_dir} "
        f"({time.perf_counter() - started:.0f} s in this session); "
        f"best epoch {result.best_epoch}: {result.best_metric:.2f} mm"
    )
    return result


def methods_explorer_controls(
    methods_of: Mapping[str, Sequence[str]], defaults_of: Mapping[str, Sequence[str]]
) -> dict[str, ipywidgets.Widget]:
    """Widgets of notebook 05's explorer: a dataset picker, a success-curve picker and a
    method list that follows the dataset (its `defaults_of` methods selected).

    methods_of: dataset -> method names; defaults_of: dataset -> the preselected ones."""
    datasets = list(methods_of)
    dataset_picker = ipywidgets.Dropdown(options=datasets, description="dataset")
    method_picker = ipywidgets.SelectMultiple(
        options=list(methods_of[datasets[0]]),
        value=tuple(defaults_of[datasets[0]]),
        rows=8,
        description="methods",
    )

    def show_dataset(change: Any) -> None:
        method_picker.options = list(methods_of[change.new])
        method_picker.value = tuple(defaults_of[change.new])

    dataset_picker.observe(show_dataset, names="value")
    curve_picker = ipywidgets.ToggleButtons(
        options=["max", "mean", "joints"], description="curve", style={"button_width": "6em"}
    )
    return {"dataset": dataset_picker, "kind": curve_picker, "methods": method_picker}


def saved_png(path: Path, screen_dpi: float) -> Image:
    """The PNG at `path` (written at `plots.figure_dpi()`) for display at the size the inline
    backend shows a figure of `screen_dpi`, so that a saved figure looks as an unsaved one
    does, only sharper."""
    try:
        with PIL.Image.open(path) as png:  # reads the header only
            kind, width_px = png.format, png.width
    except PIL.UnidentifiedImageError:
        kind = None
    if kind != "PNG":
        raise ValueError(f"{path}: not a PNG file")
    return Image(filename=str(path), width=round(width_px * screen_dpi / plots.figure_dpi()))


def show_source(*objects: object) -> None:
    """Display the source code of functions, methods or classes as a code block: what the
    notebook explains is the code that runs, read from the module, so it cannot go stale."""
    for obj in objects:
        where = f"{obj.__module__}.{obj.__qualname__}"  # type: ignore[attr-defined]
        code = textwrap.dedent(inspect.getsource(obj))  # type: ignore[arg-type]
        display(Markdown(f"`{where}`\n\n```python\n{code}```"))


def error_table(
    at_centres: dict[str, dict[str, tuple[MethodResult, dict[str, float]]]],
    floor_list: list[floors.Floor],
) -> pd.DataFrame:
    """One row per model and crop centre (model -> `Session.evaluate_at_centres`), then one
    per constant-pose floor, marked as such: mean 3D error and its 2D / depth parts."""
    rows = []
    for model, by_centre in at_centres.items():
        for label, (result, parts) in by_centre.items():
            rows.append({"prediction": model, "crop centre": label, **_parts(result, parts)})
    for floor in floor_list:
        row = {"prediction": floor.name, "crop centre": "true joint centroid (oracle)"}
        rows.append({**row, **_parts(floor.result, floor.parts)})
    return pd.DataFrame(rows)


def _parts(result: MethodResult, parts: dict[str, float]) -> dict[str, float]:
    return {
        "mean error (mm)": result.mean_error_mm,
        "2D error (px)": parts["2D error (px)"],
        "2D error (mm)": parts["2D error (mm)"],
        "depth error (mm)": parts["depth error (mm)"],
    }


def start(
    profile: str = "cpu",
    dataset: str = "synthetic",
    data_root: str = "",
    run_dir: str = "",
    output_dir: str = "",
    headless: bool = False,
    centers: str = "",
    device: str | None = None,
) -> Session:
    """The set-up of a notebook from its parameters ("" means: the default).

    run_dir "" -> $HANDPOSE_RUN_DIR, else outputs/interactive-<profile>/; output_dir "" ->
    $HANDPOSE_FIGURES_DIR, else figures/. Both are created when missing. `device` (the
    notebooks that train): the `paper` profiles refuse a CPU unless it is named
    (`training.preflight.check_device`); None: "auto", unchecked (notebooks that train nothing).
    """
    if dataset not in DATA_CHOICES:
        raise ValueError(f"DATASET={dataset!r}: expected one of {DATA_CHOICES}")
    chosen = resolve_profile(profile)
    if device is not None:
        preflight.check_device(chosen.name, device)
    return Session(
        profile=chosen,
        dataset=dataset,
        data_root=data_root or None,
        run_dir=paths.run_dir(run_dir or None, chosen.name).resolve(),
        figures_dir=paths.figures_dir(output_dir or None),
        headless=is_headless(headless),
        centers=centers,
        device=device or "auto",
    )
