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
    with pytest.raises(ValueError, match="msra.*expected one of"):
        camera_for("msra")
