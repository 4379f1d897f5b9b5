from handpose_lib import machine


def test_matmul_rate_is_positive_and_scaling_is_proportional():
    assert machine.matmul_gflops(repeats=1) > 0
    assert machine.at_reference_rate(600.0, 200.0) == 1200.0
    assert machine.at_reference_rate(600.0, machine.REFERENCE_GFLOPS) == 600.0
