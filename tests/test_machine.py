import pytest
import torch

from handpose_lib import machine


class Clock:
    """A stand-in for time.perf_counter: each matmul appears to take the next given duration
    (seconds), so the rate the function reports is known exactly."""

    def __init__(self, durations: list[float]) -> None:
        self.durations = iter(durations)
        self.now = 1000.0
        self.started = False

    def __call__(self) -> float:
        if self.started:  # the call that ends a timed matmul
            self.now += next(self.durations)
        self.started = not self.started
        return self.now


@pytest.fixture
def small_matmuls(monkeypatch):
    """torch.randn returns small matrices (the timed matmul becomes trivial) and records the
    size it was asked for, so the test checks n without paying for a 2048 x 2048 matmul."""
    asked = []
    real_randn = torch.randn

    def randn(*size, **kwargs):
        asked.append(size)
        return real_randn(2, 2, **{k: v for k, v in kwargs.items() if k != "device"})

    monkeypatch.setattr(machine.torch, "randn", randn)
    return asked


def test_rate_is_2_n_cubed_over_the_best_time(monkeypatch, small_matmuls):
    # Three matmuls of 2.0, 0.5 and 1.0 s: the best is 0.5 s, n = 2048 on a CPU.
    monkeypatch.setattr(machine.time, "perf_counter", Clock([2.0, 0.5, 1.0]))
    rate = machine.matmul_gflops("cpu", repeats=3)
    assert small_matmuls == [(2048, 2048), (2048, 2048)]
    assert rate == 2 * 2048**3 / 0.5 / 1e9  # 34.359738368 GFLOP/s
    assert rate == pytest.approx(34.359738368, abs=1e-9)


def test_rate_uses_every_repeat_and_at_least_one(monkeypatch, small_matmuls):
    # The best of five is the last one: a loop that stopped early would report 0.8 s.
    monkeypatch.setattr(machine.time, "perf_counter", Clock([0.8, 0.9, 0.8, 0.7, 0.25]))
    assert machine.matmul_gflops(repeats=5) == pytest.approx(2 * 2048**3 / 0.25 / 1e9)
    # repeats=0 still times one matmul (of 4.0 s) instead of dividing by infinity.
    monkeypatch.setattr(machine.time, "perf_counter", Clock([4.0]))
    assert machine.matmul_gflops(repeats=0) == pytest.approx(2 * 2048**3 / 4.0 / 1e9)


def test_scaling_to_the_reference_machine_is_proportional_to_the_rate():
    assert machine.REFERENCE_GFLOPS == 100.0
    # 600 s on a machine twice as fast as the reference would take 1200 s on the reference.
    assert machine.at_reference_rate(600.0, 200.0) == 1200.0
    assert machine.at_reference_rate(600.0, 50.0) == 300.0
    assert machine.at_reference_rate(600.0, machine.REFERENCE_GFLOPS) == 600.0
    assert machine.at_reference_rate(0.0, 300.0) == 0.0
