"""Every profile declared once: network sizes, crops, training recipe, data sizes, seeds and
notebook time limits. Everything else reads a `Profile` from here.

    paper           the paper's network and data on a GPU, with the recipe changes that make
                    it learn (Adam, Eq. 2 summed over pixels, zero-initialised heads, +-30
                    degrees): the route to Table 1
    paper_faithful  what Section 4 states (SGD 0.1, momentum 0.9, weight decay 5e-5, batch 32,
                    lr / 10 twice) and the common choice of 2018 where it is silent
    cpu             the default run: a quarter of the pixels and of the width, inside ~30
                    minutes on a 2-core CPU
    long            the cpu networks at 3x the budget, three seeds: the shipped self-comparison
    smoke           tests and nbval: seconds

Every profile keeps the method (Eq. 1-3, the network's topology, the data and the metric).
Where its recipe differs from what the paper states, or fills in what the paper leaves open,
`Profile.departures` names the setting, the paper's word, ours and the measured reason; a test
checks that every recipe field that differs from `paper_faithful` is named there.
`make_run_config(profile, model, data)` is the run a profile trains; `resolve_profile` applies
$HANDPOSE_PROFILE (tests run everything as "smoke").
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace

from handpose_lib.datasets.scene import LOCALIZATION_SCENE
from handpose_lib.joints import num_joints
from handpose_lib.models import LocNetConfig, PoseNetConfig
from handpose_lib.preprocess import AugmentConfig, CropConfig, required_context
from handpose_lib.training.config import (
    MODELS,
    RENDERED_KINDS,
    DataConfig,
    RunConfig,
    SourceSpec,
    TrainConfig,
)

ENV_PROFILE = "HANDPOSE_PROFILE"
DATA_CHOICES = ("synthetic", "icvl", "nyu")
# Where a notebook's frames come from -> the joint layout and cube of its crops.
_LAYOUT = {"synthetic": "icvl", "rendered": "icvl", "icvl": "icvl", "nyu": "nyu"}


@dataclass(frozen=True)
class Departure:
    """One way a profile's recipe leaves the paper's text, or fills a gap in it.

    setting: the config field(s) (`train.optimizer`, `model.det_reduction`, ...).
    paper:   what Section 4 / Fig. 1 / Eq. 1-3 say ("not stated" where silent).
    ours:    this profile's value.
    reason:  why, with the measurement and where it was made.
    """

    setting: str
    paper: str
    ours: str
    reason: str


@dataclass(frozen=True)
class Profile:
    """One named set of sizes and budgets.

    posenet, locnet:   architecture (PoseNet for ICVL's 16 joints; `run_config` sets the
                       variant and the dataset's joint count).
    input_size:        S, side of every network input crop (pixels); heatmap_size: S / 2.
    heatmap_sigma:     std of the target heatmaps, heatmap pixels.
    train:             optimiser, schedule, epochs, batch, workers.
    train_frames:      procedural training frames of the synthetic default.
    real_train_frames: ICVL / NYU training frames (0: all, n: n evenly spaced).
    val_frames:        validation frames (0: all).
    synthetic_val:     validation source of the synthetic default: "rendered" (the 1596
                       published ICVL test poses rendered) or "synthetic" (val_frames more
                       procedural hands, seed 1).
    crop_cache:        DataConfig.cache_dir of the profile's runs ("run": in the run folder; for
                       the GPU_PROFILES one shared cache per data source and crop setting,
                       `training.data.shared_cache_root`).
    notebook_frames:   frames a notebook measures over (centre errors, previews).
    seeds:             training seeds of the self-comparison (Fig. 3 a-b).
    cell_timeout_s:    per-cell limit of the notebook runner (None: none).
    promises_learning: the notebooks assert that its models learned (beat the constant-pose
                       floor; LocNet beats the CoM). False for `smoke`, whose networks and
                       budget are too small to learn (its runs only exercise the code), and
                       for `paper_faithful`, not shown to learn at paper size.
    cache_data:        which of the `data` choices cache their crops (when crop_cache is set).
    cache_context:     `CropConfig.context` of its crops: how much around the cube a crop
                       cache stores (`preprocess.required_context` of the augmentation keeps
                       every rotated crop whole).
    departures:        its recipe's differences from the paper, with their reasons.
    """

    name: str
    posenet: PoseNetConfig
    locnet: LocNetConfig
    input_size: int
    heatmap_size: int
    heatmap_sigma: float
    train: TrainConfig
    train_frames: int
    real_train_frames: int
    val_frames: int
    synthetic_val: str
    notebook_frames: int
    seeds: tuple[int, ...]
    cell_timeout_s: int | None
    crop_cache: str | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    promises_learning: bool = True
    cache_data: tuple[str, ...] = DATA_CHOICES
    cache_context: float = 1.0
    departures: tuple[Departure, ...] = ()

    def __post_init__(self) -> None:
        sizes = {
            "posenet.input_size": self.posenet.input_size,
            "locnet.input_size": self.locnet.input_size,
        }
        bad = {k: v for k, v in sizes.items() if v != self.input_size}
        if bad or self.posenet.heatmap_size != self.heatmap_size:
            raise ValueError(
                f"profile {self.name!r}: input_size {self.input_size} / heatmap_size "
                f"{self.heatmap_size} disagree with the networks ({sizes}, posenet.heatmap_size "
                f"{self.posenet.heatmap_size})"
            )
        if self.synthetic_val not in ("rendered", "synthetic"):
            raise ValueError(
                f"profile {self.name!r}: synthetic_val must be 'rendered' or 'synthetic', "
                f"got {self.synthetic_val!r}"
            )
        if not self.seeds or self.notebook_frames < 1:
            raise ValueError(f"profile {self.name!r}: needs >= 1 seed and >= 1 notebook frame")

    def crop_config(self, dataset: str = "synthetic") -> CropConfig:
        """The crops training uses for `dataset` ("synthetic", "rendered", "icvl", "nyu"):
        the profile's input / heatmap size and sigma, the dataset's cube."""
        if dataset not in _LAYOUT:
            raise ValueError(f"unknown dataset {dataset!r}: expected one of {tuple(_LAYOUT)}")
        return CropConfig.for_dataset(
            _LAYOUT[dataset],
            input_size=self.input_size,
            heatmap_size=self.heatmap_size,
            heatmap_sigma=self.heatmap_sigma,
            context=self.cache_context,
        )

    def data_config(self, data: str = "synthetic") -> DataConfig:
        """Training / validation sources: "synthetic" trains on procedural hands and validates
        on `synthetic_val`; "icvl" / "nyu" use the dataset files, train split for training,
        test split for validation."""
        cache = self.crop_cache if data in self.cache_data else None
        if data == "synthetic":
            train = SourceSpec("synthetic", num_frames=self.train_frames, seed=0)
            if self.synthetic_val == "synthetic":
                val = SourceSpec("synthetic", num_frames=self.val_frames, seed=1)
            else:
                val = SourceSpec("rendered", num_frames=self.val_frames, seed=0)
            return DataConfig(train=train, val=val, cache_dir=cache)
        if data in ("icvl", "nyu"):
            return DataConfig(
                train=SourceSpec(data, num_frames=self.real_train_frames, split="train"),
                val=SourceSpec(data, num_frames=self.val_frames, split="test"),
                cache_dir=cache,
            )
        raise ValueError(f"unknown data {data!r}: expected one of {DATA_CHOICES}")

    def run_config(self, model: str = "attention", data: str = "synthetic") -> RunConfig:
        """The run this profile trains for a PoseNet variant or "locnet" on `data`."""
        if model not in MODELS:
            raise ValueError(f"unknown model {model!r}: expected one of {MODELS}")
        data_config = self.data_config(data)
        dataset = data_config.train.dataset
        net: PoseNetConfig | LocNetConfig
        if model == "locnet":
            task, net = "locnet", self.locnet
            # Rendered training frames show what real ones do around the hand (a torso or
            # wall behind it, the forearm leaving the frame), which the CoM and the
            # localization net must cope with; validation frames stay those of the pose runs.
            if data_config.train.kind in RENDERED_KINDS:
                scene_train = replace(data_config.train, scene=LOCALIZATION_SCENE)
                data_config = replace(data_config, train=scene_train)
        else:
            task = "pose"
            net = replace(self.posenet, variant=model, num_joints=num_joints(dataset))
            # Pose networks train on crops around the true hand centre, jittered by the
            # augmentation's translation, and are tested on crops around the CoM or the
            # localization net's centre; the localization net trains on CoM crops.
            data_config = replace(data_config, train=replace(data_config.train, centers="joints"))
        return RunConfig(
            task=task,
            model=net,
            crop=self.crop_config(dataset),
            augment=self.augment,
            train=self.train,
            data=data_config,
            profile=self.name,
        )


# ------------------------------------------------------------------------------------------
# Departures from the paper, with their measured reasons (docs/training.md "Profiles" shows them)

_FAITHFUL_CHOICES = (
    Departure(
        "train.epochs, train.lr_milestones",
        "lr divided by 10 twice; no epoch count",
        "20 epochs, lr / 10 after epochs 10 and 15",
        "not stated; the drops at half and three quarters of the run is the common shape",
    ),
    Departure(
        "heatmap_sigma",
        "not stated",
        "1 heatmap pixel at 64 x 64",
        "the stacked-hourglass paper's choice at 64 x 64 (Newell et al. 2016, the paper's [11])",
    ),
    Departure(
        "model.det_reduction",
        'Eq. 2: "the L2 distance" of the heatmaps, sum or mean over pixels not stated',
        "PyTorch's MSELoss(): the mean over pixels and joints",
        "the common loss of 2018's PyTorch hourglass code. Summed over pixels SGD 0.1 "
        "diverges at step 4 (width 16, 64 px), and the pixel mean summed over joints at step 9 "
        "(paper size; benchmarks/paper_plateau.py, issue 16)",
    ),
    Departure(
        "model.zero_init_heads",
        "not stated",
        "PyTorch's default initialisation",
        "what an unstated initialisation meant in 2018",
    ),
    Departure(
        "augment.rotation_deg",
        "no augmentation stated",
        "+-180 degrees in-plane rotation, scale 0.9-1.1, shift 10 %",
        "DeepPrior++'s augmentation (Oberweger and Lepetit 2017, the paper's [6])",
    ),
    Departure(
        "train.amp, train.amp_dtype",
        "float32 on a GTX 1070",
        "bfloat16 autocast on CUDA",
        "same method at about twice the speed on current GPUs; its effect on accuracy is "
        "not measured here",
    ),
)

_LEARNS_ON_GPU = (
    Departure(
        "train.optimizer, train.lr",
        "SGD, lr 0.1, momentum 0.9",
        "Adam, lr 1e-3 (its first moment, beta1 0.9, as the momentum)",
        "SGD 0.1 stays on the all-zero-heatmap plateau: last-stack L_det 0.988 of the all-zero "
        "value after 200 steps, 0.75 with the pixel sum and gradient clipping, 0.60 with Adam "
        '(width 16, 64 px, issue 16\'s table); at paper size see docs/training.md "Profiles"',
    ),
    Departure(
        "model.det_reduction",
        'Eq. 2: "the L2 distance" of the heatmaps',
        "sum over pixels (the squared L2 distance as written)",
        "with the pixel mean L_det is 4096x weaker than L_reg at 64 x 64 and the heatmaps stay "
        'faint: 19.06 -> 15.04 mm at the cpu size (docs/training.md "Recipe")',
    ),
    Departure(
        "model.zero_init_heads",
        "not stated",
        "heatmap heads start at weight 0, bias 0",
        "random heads start with a pixel-summed L_det ~10x the all-zero one: 12.79 -> 9.14 mm "
        "at the cpu size (benchmarks/recipe_study.py)",
    ),
    Departure(
        "heatmap_sigma",
        "not stated",
        "2 heatmap pixels at 64 x 64",
        "leaves the plateau sooner: after 100 steps at width 32 and 128 px, L_det ratio 0.79 "
        "and validation 2D error 13.06 mm with sigma 1, 0.60 and 10.57 mm with sigma 2 "
        "(oracle floor 15.4 mm; benchmarks/paper_plateau.py --width 32 [--sigma 2])",
    ),
    Departure(
        "augment.rotation_deg",
        "no augmentation stated",
        "+-30 degrees (with the renderer's own +-90 roll on synthetic hands)",
        "+-180 spends most steps on upside-down hands that ICVL's and NYU's captures rarely "
        'show: 15.04 -> 12.18 mm at the cpu size (docs/training.md "Recipe")',
    ),
    Departure(
        "train.epochs, train.lr_milestones",
        "lr divided by 10 twice; no epoch count",
        "20 epochs, lr / 10 after epochs 10 and 15",
        "not stated; the drops at half and three quarters of the run is the common shape",
    ),
    _FAITHFUL_CHOICES[-1],
)

_CPU_SIZE = (
    Departure(
        "size: model.*, input_size, heatmap_size",
        "128 px input, 128 channels (Fig. 1)",
        "64 px input, 32 channels, same topology",
        "a 2-core CPU trains five networks inside the 30-minute default run",
    ),
    Departure(
        "train.epochs, train.lr_milestones, train_frames",
        "lr divided by 10 twice; ~300K frames",
        "6 epochs of 4096 frames (768 steps), lr / 10 after epoch 5",
        "the 30-minute CPU budget",
    ),
    Departure(
        "heatmap_sigma",
        "not stated",
        "2 heatmap pixels at 32 x 32",
        "enough positive pixels per target to leave the zero plateau on the coarse maps",
    ),
    Departure(
        "augment (crop cache context 1)",
        "no augmentation stated",
        "rotated crops re-sampled from a cache holding exactly the cube",
        "corners of a rotated crop outside the cube read as background; kept so that the "
        "shipped cpu / long numbers reproduce (the paper profiles store 1.7x the cube)",
    ),
)


_SMOKE = (
    Departure(
        "sizes, data and the whole recipe: model.*, train.*",
        "the paper's network, data and recipe",
        "16-channel networks on 32 px crops, 16 frames, 2 epochs of batch 4, SGD lr 0.01",
        "exercises every code path in seconds; learns nothing (promises_learning False)",
    ),
)


def _whole_crops(augment: AugmentConfig) -> float:
    """`required_context(augment)` rounded up to 0.01: a crop cache that keeps every
    augmented crop whole."""
    return math.ceil(required_context(augment) * 100) / 100


# The paper's network (Fig. 1 caption): 128x128 input, hourglass at 64x64, 128 channels, 2 stacks.
_PAPER_POSENET = PoseNetConfig()

_FAITHFUL = Profile(
    name="paper_faithful",
    # What Section 4 states, and the common choice of 2018 where it is silent (DEPARTURES).
    posenet=replace(_PAPER_POSENET, det_reduction="mse"),
    locnet=LocNetConfig(),
    input_size=128,
    heatmap_size=64,
    heatmap_sigma=1.0,
    # Section 4: SGD 0.1, momentum 0.9, weight decay 5e-5, batch 32, lr / 10 twice. 20 epochs
    # of ~300K frames with drops after 10 and 15: our choice, the paper gives no epoch count.
    train=TrainConfig(
        epochs=20,
        lr_milestones=(10, 15),
        num_workers=8,
        channels_last=True,
        fused_optimizer=True,
        amp_dtype="bfloat16",
    ),
    train_frames=300_000,
    real_train_frames=0,
    val_frames=0,
    synthetic_val="rendered",
    notebook_frames=1000,
    seeds=(0, 1, 2),
    cell_timeout_s=None,
    # NYU's PNG decoding is the slowest data work (~80 items/s per worker): crop once.
    crop_cache="run",
    cache_data=("nyu",),
    cache_context=_whole_crops(AugmentConfig()),
    departures=_FAITHFUL_CHOICES,
    # Not shown to learn at paper size (docs/training.md "Profiles"): its notebooks report the
    # margins over the floors without asserting them.
    promises_learning=False,
)

PROFILES: dict[str, Profile] = {
    # The paper's network, data and schedule shape with the changes that make it learn
    # (DEPARTURES): Eq. 2 summed over pixels, zero-initialised heads, sigma 2, Adam with its
    # first moment as the momentum, +-30 degrees.
    "paper": replace(
        _FAITHFUL,
        name="paper",
        posenet=replace(_PAPER_POSENET, det_reduction="sum", zero_init_heads=True),
        heatmap_sigma=2.0,
        train=replace(_FAITHFUL.train, optimizer="adam", lr=1e-3),
        augment=AugmentConfig(rotation_deg=30.0),
        cache_context=_whole_crops(AugmentConfig(rotation_deg=30.0)),
        departures=_LEARNS_ON_GPU,
        promises_learning=True,
    ),
    "paper_faithful": _FAITHFUL,
    "cpu": Profile(
        name="cpu",
        # Trainable on a 2-core CPU inside the 30-minute default run: a quarter of the pixels,
        # a quarter of the width, same topology (2 stacks of SE-ResBlock hourglasses).
        posenet=PoseNetConfig(
            input_size=64,
            heatmap_size=32,
            channels=32,
            num_stacks=2,
            hourglass_depth=3,
            se_reduction=8,
            reg_channels=32,
            reg_blocks=3,
            reg_hidden=128,
            # Eq. 2 as written: the L2 distance of the heatmaps, summed over their pixels. With
            # the pixel mean, L_det is ~1000x weaker than L_reg and the heatmaps stay faint:
            # 19.06 -> 15.04 mm (768 steps, true-centroid crops; measured with the equivalent
            # reg_weight 0.001, see docs/training.md "Recipe").
            det_reduction="sum",
            # Heatmap heads start at weight 0, bias 0: every stack starts at the all-zero
            # heatmaps instead of random maps whose pixel-summed L_det is ~10x larger and
            # swamps the first epochs: 12.79 -> 9.14 mm (768 steps, true-centroid crops;
            # `benchmarks/recipe_study.py`, docs/training.md "Recipe").
            zero_init_heads=True,
        ),
        locnet=LocNetConfig(
            input_size=64, stem_channels=16, stage_channels=(32, 64, 128), hidden=256
        ),
        input_size=64,
        heatmap_size=32,
        # Wider than the paper's on the coarse 32x32 maps, so that each target has enough
        # positive pixels to leave the zero plateau.
        heatmap_sigma=2.0,
        # A 2-core CPU inside the 30-minute default run (four pose variants + the localization
        # net): 768 steps per network. Adam instead of the paper's SGD: with so few steps SGD
        # stays on the plateau where every heatmap is predicted as zero (measured: L_det stuck
        # at the all-zero value 0.0475 per stack for 8 epochs at lr 0.01 and 0.1).
        train=TrainConfig(
            epochs=6,
            optimizer="adam",
            lr=1e-3,
            lr_milestones=(5,),
            num_workers=0,
            val_every=3,
            # 8-16% faster steps at 2 threads in two runs of bench_throughput.py (docs/training.md).
            channels_last=True,
        ),
        train_frames=4096,
        real_train_frames=4096,
        val_frames=0,
        synthetic_val="rendered",
        crop_cache="run",
        notebook_frames=200,
        # The 30-minute CPU budget holds one run per variant.
        seeds=(0,),
        cell_timeout_s=3600,
        # The renderer already rolls the hand over +-90 degrees; another +-180 in the crop
        # spends most steps on upside-down hands, which ICVL's and NYU's capture (a person
        # facing the camera) rarely shows. +-30 keeps +-120 in all: 15.04 -> 12.18 mm
        # (768 steps, true-centroid crops, with the pixel-sum Eq. 2).
        augment=AugmentConfig(rotation_deg=30.0),
        departures=_CPU_SIZE
        + tuple(
            d
            for d in _LEARNS_ON_GPU
            if d.setting.split(",")[0] not in ("heatmap_sigma", "train.epochs", "train.amp")
        ),
    ),
    "smoke": Profile(
        name="smoke",
        # Unit tests: runs in milliseconds.
        posenet=PoseNetConfig(
            input_size=32,
            heatmap_size=16,
            channels=16,
            num_stacks=2,
            hourglass_depth=2,
            se_reduction=4,
            reg_channels=16,
            reg_blocks=2,
            reg_hidden=32,
        ),
        locnet=LocNetConfig(
            input_size=32, stem_channels=8, stage_channels=(16, 16), hidden=32, se_reduction=4
        ),
        input_size=32,
        heatmap_size=16,
        heatmap_sigma=1.0,
        train=TrainConfig(
            epochs=2, batch_size=4, lr=0.01, lr_milestones=(1, 2), progress=False, amp=False
        ),
        train_frames=16,
        real_train_frames=16,
        val_frames=8,
        synthetic_val="synthetic",
        notebook_frames=20,
        seeds=(0, 1),
        cell_timeout_s=600,
        promises_learning=False,
        departures=_SMOKE,
    ),
}


# The long budget of the self-comparison (Fig. 3 a-b): the cpu profile's networks and recipe,
# 3x the steps on twice the distinct frames, three seeds, validated every epoch (the
# validation-by-step figure); estimated 3.5 hours at 100 GFLOP/s with two trainings at once
# (`python -m handpose_lib.reproduce --profile long --jobs 2 --output DIR`), resumable.
PROFILES["long"] = replace(
    PROFILES["cpu"],
    name="long",
    train=replace(PROFILES["cpu"].train, epochs=9, lr_milestones=(8,), val_every=1),
    train_frames=8192,
    real_train_frames=8192,
    seeds=(0, 1, 2),
    cell_timeout_s=None,
)


# ------------------------------------------------------------------------------------------
# Rehearsals: a profile's every code path at a few steps (`handpose_lib.rehearsal`)

# The GPU route: these profiles refuse a CPU unless the device is named (`training.preflight`).
GPU_PROFILES = ("paper", "paper_faithful")
REHEARSAL_SUFFIX = "-rehearsal"
CPU_SUFFIX = "-cpu"


@dataclass(frozen=True)
class RehearsalSize:
    """What a rehearsal shrinks, and nothing else (`REHEARSAL_DIFFERENCES` names the fields).

    steps:        optimizer steps of each training (one epoch).
    cpu_batch:    the batch on a CPU (paper size costs ~1 s a sample at 100 GFLOP/s); 2 per
                  process under torchrun with 2 processes, as BatchNorm needs 2. On a GPU the
                  profile's own batch.
    train_frames: training frames read (the crop cache and the CoM are built over these only).
    val_frames:   validation / test frames evaluated per pass, and the notebooks' frames.
    """

    steps: int = 3
    cpu_batch: int = 4
    train_frames: int = 64
    val_frames: int = 16


REHEARSAL = RehearsalSize()
# Every RunConfig field a rehearsal training may differ in from the profile's own run
# (tests/test_rehearsal.py compares the saved configs): steps, epochs, frames, batch, seeds.
REHEARSAL_DIFFERENCES = (
    "train.epochs",
    "train.steps_per_epoch",
    "train.batch_size",
    "train.seed",
    "data.train.num_frames",
    "data.val.num_frames",
)


def rehearsal_name(base: str, cpu: bool) -> str:
    """The name of `base`'s rehearsal: "paper-rehearsal" (GPU: the profile's batch), or on a
    CPU "paper-rehearsal-cpu"."""
    get_profile(base)
    return base + REHEARSAL_SUFFIX + (CPU_SUFFIX if cpu else "")


def parse_rehearsal(name: str) -> tuple[str, bool] | None:
    """(base profile, on a CPU) of a rehearsal profile's name, or None for any other name."""
    stem, cpu = (name[: -len(CPU_SUFFIX)], True) if name.endswith(CPU_SUFFIX) else (name, False)
    if not stem.endswith(REHEARSAL_SUFFIX):
        return None
    base = stem[: -len(REHEARSAL_SUFFIX)]
    return (base, cpu) if base in PROFILES else None


def base_profile_name(name: str) -> str:
    """The profile a name stands for: "paper" for "paper", "paper-rehearsal-cpu", ..."""
    parsed = parse_rehearsal(name)
    return parsed[0] if parsed else name


def rehearsal_profile(base: Profile, cpu: bool, size: RehearsalSize = REHEARSAL) -> Profile:
    """`base` with the same networks, crops, recipe, memory format, optimizer, workers, crop
    cache and mixed precision, and only fewer steps and frames (and, on a CPU, a smaller
    batch): one epoch of `size.steps` steps, one seed. It promises no learning."""
    batch = min(size.cpu_batch, base.train.batch_size) if cpu else base.train.batch_size
    frames = max(size.train_frames, batch * size.steps)
    return replace(
        base,
        name=base.name + REHEARSAL_SUFFIX + (CPU_SUFFIX if cpu else ""),
        train=replace(base.train, epochs=1, steps_per_epoch=size.steps, batch_size=batch),
        train_frames=frames,
        real_train_frames=frames,
        val_frames=size.val_frames,
        notebook_frames=size.val_frames,
        seeds=base.seeds[:1],
        # A hang shows as a failed cell, not as a rehearsal that never ends.
        cell_timeout_s=1800,
        promises_learning=False,
    )


def get_profile(name: str) -> Profile:
    """The profile called `name` (a rehearsal's too, e.g. "paper-rehearsal-cpu"); a
    ValueError lists the known ones."""
    parsed = parse_rehearsal(name)
    if parsed is not None:
        return rehearsal_profile(PROFILES[parsed[0]], parsed[1])
    if name not in PROFILES:
        raise ValueError(
            f"unknown profile {name!r}: expected one of {tuple(PROFILES)} (or a rehearsal of "
            f"one, e.g. paper{REHEARSAL_SUFFIX}, paper{REHEARSAL_SUFFIX}{CPU_SUFFIX})"
        )
    return PROFILES[name]


def resolve_profile(name: str) -> Profile:
    """The profile `name`, unless $HANDPOSE_PROFILE is set: then that one (tests set "smoke")."""
    chosen = os.environ.get(ENV_PROFILE) or name
    try:
        return get_profile(chosen)
    except ValueError:
        origin = f"${ENV_PROFILE}" if os.environ.get(ENV_PROFILE) else "PROFILE"
        raise ValueError(f"{origin}={chosen!r}: expected one of {tuple(PROFILES)}") from None


def make_run_config(
    profile: str = "cpu", model: str = "attention", data: str = "synthetic"
) -> RunConfig:
    """`get_profile(profile).run_config(model, data)`: the named profile's run of a PoseNet
    variant or "locnet"."""
    return get_profile(profile).run_config(model, data)


# The fields that make a recipe (sizes and budgets aside): `recipe_differences` compares them.
RECIPE_FIELDS = (
    "heatmap_sigma",
    "model.det_reduction",
    "model.zero_init_heads",
    "model.reg_weight",
    "model.reg_loss",
    "train.optimizer",
    "train.lr",
    "train.momentum",
    "train.weight_decay",
    "train.batch_size",
    "train.lr_schedule",
    "train.grad_clip_norm",
    "train.amp",
    "augment.rotation_deg",
    "augment.scale",
    "augment.translate",
)


def _recipe(profile: Profile) -> dict[str, object]:
    values: dict[str, object] = {"heatmap_sigma": profile.heatmap_sigma}
    parts = {"model": profile.posenet, "train": profile.train, "augment": profile.augment}
    for name in RECIPE_FIELDS[1:]:
        part, field_name = name.split(".")
        values[name] = getattr(parts[part], field_name)
    return values


def recipe_differences(profile: str | Profile) -> dict[str, tuple[object, object]]:
    """Recipe field -> (paper_faithful's value, this profile's) where they differ."""
    chosen = get_profile(profile) if isinstance(profile, str) else profile
    faithful, own = _recipe(PROFILES["paper_faithful"]), _recipe(chosen)
    return {k: (faithful[k], own[k]) for k in RECIPE_FIELDS if faithful[k] != own[k]}


def departures_table(profile: str | Profile) -> list[dict[str, str]]:
    """The profile's departures from the paper as rows (setting, paper, ours, reason)."""
    chosen = get_profile(profile) if isinstance(profile, str) else profile
    return [
        {"setting": d.setting, "paper": d.paper, "ours": d.ours, "reason": d.reason}
        for d in chosen.departures
    ]
