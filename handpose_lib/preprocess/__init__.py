"""The paper's input pipeline, by stage: hand centre, 3D cube crop, targets, augmentation, cache.

- `segmentation`: closest-object mask, centre of mass, refinement in the cube, joint centroid.
- `crop`:         CropConfig, the cube crop as an affine map, warping, depth normalization.
- `targets`:      Gaussian heatmaps and the network input / targets of one sample.
- `augment`:      random rotation, scale and translation of a crop.
- `cache`:        memory-mapped crops of a whole source, rebuilt when stale.

Everything public is re-exported here, so `from handpose_lib.preprocess import X` works for
every stage. The coordinate conventions are documented in `crop`.
"""

from handpose_lib.preprocess.augment import (
    AugmentConfig,
    AugmentParams,
    augment_crop,
    required_context,
)
from handpose_lib.preprocess.cache import (
    CACHE_VERSION,
    CropCache,
    build_cache,
    cache_key,
    resolve_centers,
)
from handpose_lib.preprocess.crop import (
    BACKGROUND,
    CUBE_MM,
    Crop,
    CropConfig,
    context_crop,
    context_pad,
    crop_depth,
    crop_to_image,
    image_to_crop,
    make_crop,
    normalize_depth,
    projected_box,
    recrop_normalized,
    warp_nearest,
)
from handpose_lib.preprocess.segmentation import (
    center_of_mass,
    closest_object_mask,
    depth_band_mask,
    hand_center,
    joints_center,
    refine_center,
)
from handpose_lib.preprocess.targets import gaussian_heatmaps, prepare_sample, sample_targets

__all__ = [
    "BACKGROUND",
    "CACHE_VERSION",
    "CUBE_MM",
    "AugmentConfig",
    "AugmentParams",
    "Crop",
    "CropCache",
    "CropConfig",
    "augment_crop",
    "build_cache",
    "cache_key",
    "center_of_mass",
    "closest_object_mask",
    "context_crop",
    "context_pad",
    "crop_depth",
    "crop_to_image",
    "depth_band_mask",
    "gaussian_heatmaps",
    "hand_center",
    "image_to_crop",
    "joints_center",
    "make_crop",
    "normalize_depth",
    "prepare_sample",
    "projected_box",
    "recrop_normalized",
    "refine_center",
    "required_context",
    "resolve_centers",
    "sample_targets",
    "warp_nearest",
]
