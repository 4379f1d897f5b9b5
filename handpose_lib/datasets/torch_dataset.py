"""PyTorch Dataset over any FrameSource: crops, targets and augmentation, optionally cached.

Every source (synthetic, rendered ICVL poses, ICVL, NYU) gives the same item layout:

    image          (1, S, S)  float32  depth crop normalized to [-1, 1], background 1
    heatmaps       (J, Hh, Hh) float32 Gaussian of peak 1 at each joint, Hh = S / 2
    depth          (J,)       float32  (d - center_d) / (cube_mm / 2)
    uvd_crop       (J, 3)     float32  u, v in [-1, 1] across the crop, d as `depth`
    uvd            (J, 3)     float64  full-image ground truth (pixels, mm)
    center_uvd     (3,)       float64  crop centre in the image and the cube's centre depth
    crop_transform (3, 3)     float64  image pixels -> crop pixels
    cube_mm        ()         float64  cube side; with the two above and S,
                                       `preprocess.crop_to_image` maps predictions back
    index          ()         int64

Augmentation draws from numpy's Generator seeded by (seed, epoch, index), so a given seed
gives the same items whatever the worker count or order; call `set_epoch` each epoch. The
epoch is held in shared memory, so persistent DataLoader workers (which keep their own copy of
the dataset between epochs) see `set_epoch` too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from handpose_lib.datasets.frame import FrameSource
from handpose_lib.preprocess import (
    AugmentConfig,
    CropCache,
    CropConfig,
    augment_crop,
    build_cache,
    crop_depth,
    make_crop,
    resolve_centers,
    sample_targets,
)


class HandPoseDataset(Dataset):
    """Items of the package's layout (module docstring) from a FrameSource.

    config:    crop config; default: the paper-size config of the source's dataset
               (synthetic sources use "icvl").
    centers:   "com" (hand segmentation + centre of mass, the default), "joints" (centroid
               of the labelled joints) or an (N, 3) uvd array (localization net, a file).
    augment:   AugmentConfig for training, None for evaluation.
    seed:      seeds the augmentation together with the epoch and the index.
    cache_dir: if given, crops come from a memory-mapped cache there, built on first use
               and rebuilt when stale (`preprocess.build_cache`) by `cache_workers`
               processes, with a progress bar if `cache_progress`. Augmenting a cached crop
               re-samples the stored crop: what lies outside the config's `context` is
               background (`augment.required_context` says how much a rotation needs).
    cache_lock: build the cache under a lock beside its folder (`build_cache(lock=True)`),
               where other processes may ask for the same cache at once.
    """

    def __init__(
        self,
        source: FrameSource,
        config: CropConfig | None = None,
        *,
        centers: str | np.ndarray = "com",
        augment: AugmentConfig | None = None,
        seed: int = 0,
        cache_dir: str | Path | None = None,
        cache_dtype: str = "float16",
        cache_workers: int = 1,
        cache_progress: bool = False,
        cache_lock: bool = False,
    ) -> None:
        self.source = source
        dataset = source.dataset if source.dataset in ("icvl", "nyu") else "icvl"
        self.config = config if config is not None else CropConfig.for_dataset(dataset)
        self.augment = augment
        self.seed = int(seed)
        # One shared int64: set_epoch in the main process reaches persistent workers.
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self._center_of = resolve_centers(source, centers, self.config)
        self.cache: CropCache | None = None
        if cache_dir is not None:
            self.cache = build_cache(
                source,
                cache_dir,
                self.config,
                centers,
                cache_dtype,
                progress=cache_progress,
                workers=cache_workers,
                lock=cache_lock,
            )

    def __len__(self) -> int:
        return len(self.source)

    @property
    def epoch(self) -> int:
        return int(self._epoch.numpy())  # a CPU shared-memory int, never a device value

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of `epoch` (same epoch -> same items). Call it before
        iterating the loader of that epoch (persistent workers read it per item)."""
        self._epoch.fill_(int(epoch))

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index])

    def sample(self, index: int) -> dict[str, np.ndarray]:
        """The item as numpy arrays (what `__getitem__` wraps in tensors)."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} frames")
        params = self.augment.sample(self.rng(index)) if self.augment is not None else None
        if self.cache is not None:
            # Re-sampled from the stored crop, which may hold more context than the cube so
            # that a rotated crop does not run past its edge.
            crop = self.cache.crop(index)
            if params is not None:
                crop = augment_crop(crop, params)
            image = self.cache.image_for(index, crop)
            return sample_targets(image, self.cache.uvd(index), crop, self.config)
        frame = self.source[index]
        crop = make_crop(
            self._center_of(index, frame),
            frame.camera,
            self.config.cube_mm,
            self.config.input_size,
        )
        if params is not None:
            crop = augment_crop(crop, params)
        return sample_targets(crop_depth(frame.depth_mm, crop), frame.uvd, crop, self.config)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = {name: torch.from_numpy(np.asarray(v)) for name, v in self.sample(index).items()}
        item["index"] = torch.tensor(index, dtype=torch.int64)
        return item
