"""The backend seam: every world backend is a ``core.state.WorldState`` and adds only its own scratch;
a backend defined here (not shipped) plugs in with ``register_backend`` and runs a scenario."""
import numpy as np
import pytest

from entropy_engine import BatchEnv
from entropy_engine.core import backends
from entropy_engine.core.backends import make_world, register_backend
from entropy_engine.core.params import WorldConfig
from entropy_engine.core.state import WorldState
from entropy_engine.core.world import World


class GlideWorld(WorldState):
    """A kinematic backend: an active robot turns by ``(a_r - a_l) * max_angular_speed * dt`` and
    then moves ``(a_l + a_r) / 2 * max_speed * dt`` along its heading, kept inside the arena; no
    collisions. It keeps no scratch and no copy of the state, so ``sync`` is the base's."""

    def step(self, actions):
        c, dt = self.config, self.config.dt
        a = actions.astype(np.float64)
        on = self.active
        om = (a[..., 1] - a[..., 0]) * c.max_angular_speed
        th = (self.theta + om * dt + np.pi) % (2 * np.pi) - np.pi
        v = 0.5 * (a[..., 0] + a[..., 1]) * c.max_speed
        vel = np.stack([v * np.cos(th), v * np.sin(th)], -1)
        pos = np.clip(self.pos + vel * dt, self.radius, self.arena - self.radius)
        self.theta[on], self.omega[on], self.vel[on], self.pos[on] = th[on], om[on], vel[on], pos[on]
        self.contact[:] = False
        self.refresh_lidar()


@pytest.fixture
def glide():
    register_backend("test_glide", GlideWorld)
    yield "test_glide"
    backends.BACKENDS.pop("test_glide")


def test_backends_share_the_state_and_pymunk_holds_no_numba_scratch():
    pytest.importorskip("pymunk")
    from entropy_engine.core.pymunk_world import PymunkWorld

    cfg = WorldConfig()
    shared = set(vars(WorldState(cfg, 2, 3, 4)))
    numba = make_world(cfg, 2, 3, 4)
    pm = make_world(WorldConfig(backend="pymunk"), 2, 3, 4)
    assert isinstance(numba, World) and isinstance(pm, PymunkWorld) and not isinstance(pm, World)
    assert shared <= set(vars(numba)) and shared <= set(vars(pm))
    numba_only = set(vars(numba)) - shared
    assert {"_start", "_moved", "_tmp"} <= numba_only
    assert not numba_only & set(vars(pm)), numba_only & set(vars(pm))


def test_the_base_state_has_no_physics_of_its_own():
    w = WorldState(WorldConfig(), 1, 2, 4)
    with pytest.raises(NotImplementedError, match="WorldState must implement step"):
        w.step(np.zeros((1, 2, 2), np.float32))


def test_a_registered_backend_steps_by_its_own_rule(glide):
    w = make_world(WorldConfig(backend=glide, arena_size=10.0), 2, 3, 4)
    assert type(w) is GlideWorld
    w.pos[:] = 5.0
    w.theta[:, 0] = 0.0
    w.theta[:, 1] = np.pi / 2
    w.active[:] = True
    w.active[1, 2] = False
    act = np.zeros((2, 3, 2), np.float32)
    act[:, :2] = 1.0           # straight ahead at full power
    act[:, 2] = (-1.0, 1.0)    # turn left on the spot
    w.step(act)
    step = w.config.max_speed * w.config.dt
    np.testing.assert_allclose(w.pos[:, 0], [[5.0 + step, 5.0]] * 2, atol=1e-6)
    np.testing.assert_allclose(w.pos[:, 1], [[5.0, 5.0 + step]] * 2, atol=1e-6)
    assert w.theta[0, 2] == pytest.approx(2 * w.config.max_angular_speed * w.config.dt)
    assert w.theta[1, 2] == 0.0 and (w.pos[1, 2] == 5.0).all()   # an inactive robot stays put
    ref = w.lidar.copy()
    assert (ref[:, :2] < 1.0).any()              # the robots see each other (shared compiled casts)
    w.lidar[:] = -1.0
    w.refresh_lidar()
    np.testing.assert_array_equal(w.lidar, ref)
    assert ((ref >= 0.0) & (ref <= 1.0)).all()


def test_a_registered_backend_runs_the_navigation_episode_engine(glide):
    env = BatchEnv(num_worlds=3, n_agents=6, seed=1, max_steps=30, backend=glide)
    assert type(env.scenario.world) is GlideWorld
    obs = env.reset()
    first = obs.copy()
    ended = 0
    for _ in range(60):
        obs, reward, terminated, truncated, info = env.step(env.heuristic_actions())
        assert np.isfinite(obs).all() and np.isfinite(reward).all()
        ended += int((terminated | truncated).sum())
    assert ended >= 2 * 18                      # every slot ended at least twice (max_steps 30)
    assert not np.array_equal(obs, first)
    # the same seed gives the same trajectory on this backend too
    again = BatchEnv(num_worlds=3, n_agents=6, seed=1, max_steps=30, backend=glide)
    again.reset()
    for _ in range(60):
        again.step(again.heuristic_actions())
    np.testing.assert_array_equal(again.obs, obs)
