import numpy as np
import pytest

from handpose_lib.camera import ICVL, NYU, Camera, camera_for


@pytest.mark.parametrize("camera", [ICVL, NYU], ids=["icvl", "nyu"])
def test_uvd_xyz_round_trip(camera):
    rng = np.random.default_rng(0)
    uvd = np.stack(
        [
            rng.uniform(0, camera.width, (50, 16)),
            rng.uniform(0, camera.height, (50, 16)),
            rng.uniform(200, 1500, (50, 16)),
        ],
        axis=-1,
    )
    back = camera.xyz_to_uvd(camera.uvd_to_xyz(uvd))
    np.testing.assert_allclose(back, uvd, rtol=0, atol=1e-9)


def test_principal_point_maps_to_optical_axis():
    xyz = ICVL.uvd_to_xyz(np.array([160.0, 120.0, 400.0]))
    np.testing.assert_allclose(xyz, [0.0, 0.0, 400.0])


def test_known_icvl_value():
    # one focal length to the right at 500 mm depth is 500 mm to the right
    xyz = ICVL.uvd_to_xyz(np.array([160.0 + 241.42, 120.0, 500.0]))
    np.testing.assert_allclose(xyz, [500.0, 0.0, 500.0])


# Off-axis points whose xyz follow from the published intrinsics by hand (pinhole model):
# x = (u - cx) d / fx, y = (v - cy) d / fy for ICVL (y down), y = (cy - v) d / fy for NYU (y up).
# ICVL: fx = fy = 241.42, cx = 160, cy = 120.
#   u = 160 + 241.42 / 4 = 220.355, v = 120 - 241.42 / 8 = 89.8225, d = 400 -> (100, -50, 400)
# NYU: fx = 588.03, fy = 587.07, cx = 320, cy = 240.
#   u = 320 + 588.03 * 60 / 800 = 364.10225, v = 240 - 587.07 * 80 / 800 = 181.293, d = 800
#   -> (60, 80, 800): 58.707 px above the centre row is 80 mm UP; with fx for fy it would be
#   79.869 mm, with y down -80 mm.
HAND_COMPUTED = [
    ("icvl", [220.355, 89.8225, 400.0], [100.0, -50.0, 400.0]),
    ("icvl", [111.716, 144.142, 500.0], [-100.0, 50.0, 500.0]),  # 241.42 / 5, 241.42 / 10
    ("nyu", [364.10225, 181.293, 800.0], [60.0, 80.0, 800.0]),
    ("nyu", [296.4788, 310.4484, 1000.0], [-40.0, -120.0, 1000.0]),  # 23.5212, 70.4484 px
]


@pytest.mark.parametrize(("dataset", "uvd", "xyz"), HAND_COMPUTED)
def test_off_axis_points_computed_by_hand(dataset, uvd, xyz):
    camera = camera_for(dataset)
    np.testing.assert_allclose(camera.uvd_to_xyz(np.array(uvd)), xyz, rtol=0, atol=1e-9)
    np.testing.assert_allclose(camera.xyz_to_uvd(np.array(xyz)), uvd, rtol=0, atol=1e-9)


def test_nyu_y_axis_points_up():
    above_centre = NYU.uvd_to_xyz(np.array([320.0, 100.0, 800.0]))
    assert above_centre[1] > 0
    flipped = Camera(NYU.fx, NYU.fy, NYU.cx, NYU.cy, NYU.width, NYU.height, y_up=False)
    assert flipped.uvd_to_xyz(np.array([320.0, 100.0, 800.0]))[1] == pytest.approx(-above_centre[1])


def test_xyz_to_uvd_rejects_non_positive_depth():
    with pytest.raises(ValueError, match="positive depth"):
        ICVL.xyz_to_uvd(np.array([[0.0, 0.0, 0.0]]))


def test_camera_for_names_the_choices():
    assert camera_for("ICVL") is ICVL
    with pytest.raises(ValueError, match=r"msra.*expected one of"):
        camera_for("msra")
