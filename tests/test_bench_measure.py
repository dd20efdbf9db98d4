"""``measure_env``: a stall inside the timed window (a kernel compiled mid-run) does not become the
reported speed. Driven by a fake clock, so nothing here depends on the machine's speed."""
from __future__ import annotations

import numpy as np

from entropy_engine import bench_measure


class FakeClockEnv:
    """An env whose every step takes 1 ms of a fake clock, except one step that stalls 10 s."""

    num_slots = 10
    act_dim = 2

    def __init__(self, stall_at: int):
        self.now = 0.0
        self.calls = 0
        self.stall_at = stall_at

    def reset(self):
        pass

    def step(self, actions):
        assert actions.shape == (self.num_slots, self.act_dim)
        self.calls += 1
        self.now += 10.0 if self.calls == self.stall_at else 0.001


def _measure(monkeypatch, stall_at: int, **kw):
    env = FakeClockEnv(stall_at)
    monkeypatch.setattr(bench_measure.time, "perf_counter", lambda: env.now)
    return env, bench_measure.measure_env(env, seconds=1.0, **kw)


def test_a_stall_in_the_window_does_not_set_the_rate(monkeypatch):
    # warm-up: 1 call + 0.5 s (500 calls); the stall falls in the timed window's second stretch
    env, r = _measure(monkeypatch, stall_at=800)
    assert np.isclose(r["agent_steps_per_s"], 10 * 1000, rtol=0.01)      # 1 ms per step, 10 slots
    assert min(r["chunk_agent_steps_per_s"]) < 10 * 10                    # the stalled stretch, kept visible
    assert r["mean_agent_steps_per_s"] < 0.2 * r["agent_steps_per_s"]    # the plain mean would have lied
    assert r["steps"] > 900 and env.calls == r["steps"] + 501


def test_the_first_call_compiles_outside_the_window(monkeypatch):
    env, r = _measure(monkeypatch, stall_at=1)
    assert all(np.isclose(c, 10 * 1000, rtol=0.01) for c in r["chunk_agent_steps_per_s"])
    assert np.isclose(r["mean_agent_steps_per_s"], 10 * 1000, rtol=0.01)
