"""Renderer pixels, GIF round trips, learning curves and ``entropy play`` (headless, SDL dummy driver)."""
from __future__ import annotations

import os
import sys
from types import SimpleNamespace

os.environ["SDL_VIDEODRIVER"] = "dummy"   # before pygame is first imported: no display needed

import numpy as np
import pytest

pytest.importorskip("pygame")
pytest.importorskip("imageio")

from entropy_engine.render import renderer as rmod  # noqa: E402
from entropy_engine.policies import FunctionPolicy, HeuristicPolicy, RandomPolicy, as_policy  # noqa: E402
from entropy_engine.render.episode import run_episode  # noqa: E402
from entropy_engine.render.gif import read_gif, record_episode, side_by_side, write_gif, write_run_videos  # noqa: E402
from entropy_engine.render.renderer import (BACKGROUND, COLLISION_COLOR, WALL_COLOR, Renderer,  # noqa: E402
                                            agent_color)
from entropy_engine.scenarios import Navigation  # noqa: E402
from entropy_engine.scenarios import navigation_kernels as nk  # noqa: E402

ARENA = 10.0


def fake_scenario(n_agents: int = 4) -> SimpleNamespace:
    """A scenario-shaped object with a hand-placed world (no numba, no randomness)."""
    a = ARENA
    border = np.array([[0, 0, a, 0], [a, 0, a, a], [a, a, 0, a], [0, a, 0, 0]], np.float32)
    world = SimpleNamespace(
        num_worlds=1, n_agents=n_agents, arena=a, radius=0.2,
        config=SimpleNamespace(lidar_range=3.0),
        pos=np.zeros((1, n_agents, 2), np.float32),
        theta=np.zeros((1, n_agents), np.float32),
        active=np.ones((1, n_agents), np.bool_),
        contact=np.zeros((1, n_agents), np.bool_),
        walls=np.concatenate([border, [[5, 2, 5, 4]]]).astype(np.float32)[None],   # [1, 5, 4]
        n_walls=np.array([5], np.int32),
        lidar=np.ones((1, n_agents, 8), np.float32),
        ray_cs=np.stack([np.cos(np.arange(8) * np.pi / 4), np.sin(np.arange(8) * np.pi / 4)], 1),
    )
    world.pos[0, :4] = [[2.0, 2.0], [8.0, 2.0], [2.0, 8.0], [8.0, 8.0]][:n_agents]
    goals = world.pos + np.float32(1.0)
    params = np.zeros((1, nk.N_PARAMS), np.float64)
    params[0, nk.P_GOAL_R] = 0.3                       # each world's goal radius (a curriculum setting)
    sc = SimpleNamespace(world=world, goals=goals, config=SimpleNamespace(goal_radius=0.3), _params=params)
    sc.draw = lambda canvas, wi: Navigation.draw(sc, canvas, wi)     # navigation's own drawing hook
    return sc


def pixel(frame: np.ndarray, r: Renderer, xy) -> tuple[int, ...]:
    col, row = r.world_to_pixel(xy)
    return tuple(int(v) for v in frame[row, col])


def test_agents_are_drawn_where_they_are():
    sc = fake_scenario()
    sc.world.contact[0, 1] = True          # agent 1 collided: red
    sc.world.active[0, 2] = False          # agent 2 has left: not drawn
    r = Renderer(sc, size=256)
    frame = r.render()
    assert frame.shape == (256, 256, 3) and frame.dtype == np.uint8
    assert pixel(frame, r, (2.0, 2.0)) == agent_color(0)
    assert pixel(frame, r, (8.0, 2.0)) == COLLISION_COLOR
    assert pixel(frame, r, (2.0, 8.0)) == BACKGROUND
    assert pixel(frame, r, (8.0, 8.0)) == agent_color(3)
    assert pixel(frame, r, (4.0, 6.0)) == BACKGROUND   # empty floor
    assert pixel(frame, r, (5.0, 3.0)) == WALL_COLOR   # interior wall
    # goal rings in the agent's colour: a pixel on the ring, the ring's centre is empty
    ring = r.world_to_pixel((3.0, 3.0)) + [max(3, round(0.3 * r.scale)) - 1, 0]
    assert tuple(frame[ring[1], ring[0]]) == agent_color(0)
    assert pixel(frame, r, (3.0, 3.0)) == BACKGROUND
    # the agent moves: the picture follows
    sc.world.pos[0, 0] = [4.0, 6.0]
    frame = r.render()
    assert pixel(frame, r, (4.0, 6.0)) == agent_color(0)
    assert pixel(frame, r, (2.0, 2.0)) == BACKGROUND
    r.close()


def test_world_to_pixel_flips_y():
    r = Renderer(fake_scenario(), size=200)
    (c0, r0), (c1, r1) = r.world_to_pixel([(0.0, 0.0), (ARENA, ARENA)])
    assert c0 == r.margin and r1 == r.margin          # world origin bottom-left, image origin top-left
    assert c1 == r0 and abs(c1 - (200 - r.margin)) <= 1


def test_heading_lidar_and_trails_change_the_picture():
    sc = fake_scenario()
    plain = Renderer(sc, size=256).render()
    sc.world.lidar[0, 0, 0] = 0.5
    fancy = Renderer(sc, size=256, show_lidar=True, trails=5)
    fancy.render()
    sc.world.pos[0, 0, 0] += 0.5
    frame = fancy.render(text="step 1")
    assert (frame != plain).any(axis=-1).sum() > 500
    # the ray along the heading (+x) of agent 0 is drawn between the agent and its hit point
    assert pixel(frame, fancy, (3.1, 2.0)) != BACKGROUND
    # heading mark: dark pixel in front of the centre, agent colour behind it
    r = Renderer(fake_scenario(), size=512)
    f = r.render()
    assert pixel(f, r, (2.15, 2.0)) == rmod.HEADING_COLOR
    assert pixel(f, r, (1.88, 2.0)) == agent_color(0)


def test_human_mode_with_dummy_display():
    r = Renderer(fake_scenario(), render_mode="human", size=128, fps=0)
    assert r.render() is None
    r.close()


def test_bad_arguments():
    with pytest.raises(ValueError, match="render_mode"):
        Renderer(fake_scenario(), render_mode="ansi")
    with pytest.raises(ValueError, match="world_index"):
        Renderer(fake_scenario(), world_index=3)


def test_missing_pygame_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pygame", None)
    with pytest.raises(ImportError, match=r"entropy-engine\[render\]"):
        Renderer(fake_scenario())


def test_gif_round_trip(tmp_path):
    frames = []
    for t in range(6):
        f = np.full((48, 64, 3), BACKGROUND, np.uint8)
        f[10:20, 5 + 8 * t:13 + 8 * t] = agent_color(0)        # a block moving right
        frames.append(f)
    path = write_gif(tmp_path / "sub" / "a.gif", frames, fps=10)
    back = read_gif(path)
    assert back.shape == (6, 48, 64, 3)
    np.testing.assert_array_equal(back, np.stack(frames))    # few colours: the palette is exact


def test_side_by_side_and_run_videos(tmp_path):
    a = [np.full((40, 40, 3), 10 * t, np.uint8) for t in range(3)]
    b = [np.full((30, 50, 3), 200, np.uint8) for _ in range(5)]
    out = side_by_side(a, b, labels=("untrained", "trained"), gap=4)
    assert len(out) == 5
    label_h = out[0].shape[0] - 40
    assert out[0].shape == (label_h + 40, 40 + 4 + 50, 3) and label_h > 0
    assert (out[4][label_h:, :40] == 20).all()                 # a holds its last frame
    assert (out[0][label_h:label_h + 30, 44:] == 200).all()
    assert (out[0][:label_h] != BACKGROUND).any()              # label text drawn
    paths = write_run_videos(tmp_path / "videos", a, b)
    assert sorted(p.name for p in paths.values()) == ["comparison.gif", "end.gif", "start.gif"]
    assert read_gif(paths["comparison"]).shape[1:] == side_by_side(a, b)[0].shape


class Counter:
    """A 'recurrent' policy whose state counts the steps."""

    def __init__(self):
        self.seen = []

    def initial_state(self, n):
        return np.zeros(n)

    def act(self, obs, state, deterministic=True):
        self.seen.append(state.copy())
        return np.zeros((len(obs), 2)), state + 1


def test_as_policy():
    p = Counter()
    assert as_policy(p) is p
    assert isinstance(as_policy(lambda obs: obs[:, :2]), FunctionPolicy)
    with pytest.raises(TypeError):
        as_policy(42)


@pytest.fixture(scope="module")
def env():
    from entropy_engine.render.episode import episode_env

    return episode_env("navigation", 6, seed=3, max_steps=40, n_obstacles=2)


def test_record_episode_renders_real_world(env, tmp_path):
    frames, res = record_episode(env, HeuristicPolicy(env), steps=12, size=96,
                                 trails=4, show_lidar=True, frame_skip=3, hold=2, return_result=True)
    assert res.steps == 12 and res.n_agents == 6
    assert set(res.metrics) == {"success_rate", "collisions_per_agent"}
    assert len(frames) == 1 + 4 + 2 and frames[0].shape == (96, 96, 3)
    r = Renderer(env, size=96)
    frame = r.render()
    w = env.scenario.world
    for i in np.flatnonzero(w.active[0]):
        want = rmod.COLLISION_COLOR if w.contact[0, i] else agent_color(i)
        assert pixel(frame, r, w.pos[0, i]) == want
    assert read_gif(write_gif(tmp_path / "ep.gif", frames)).shape[1:] == (96, 96, 3)


def test_run_episode_with_recurrent_policy(env):
    p = Counter()
    res = run_episode(env, p, max_steps=5)
    assert res.steps == 5 and [int(s[0]) for s in p.seen] == [0, 1, 2, 3, 4]
    res = run_episode(env, RandomPolicy(env.action_space, 0), max_steps=5)
    assert res.steps == 5
    with pytest.raises(ValueError, match="NaN"):
        run_episode(env, lambda obs: np.full((len(obs), 2), np.nan), max_steps=2)


def test_run_episode_ends_when_every_agent_has_left(env):
    res = run_episode(env, HeuristicPolicy(env))
    assert res.ended == env.n_agents and res.steps <= env.max_steps
    assert env.over or res.steps == env.max_steps
    assert 0.0 <= res.metrics["success_rate"] <= 1.0


def test_learning_curves_png(tmp_path):
    pytest.importorskip("matplotlib")
    from entropy_engine.render.curves import plot_learning_curves, series

    rows = [{"step": 1000 * i, "env/success_rate": i / 10, "rollout/ep_rew_mean": i - 3.0,
             "env/collisions_per_agent": "" if i == 2 else 1 / (i + 1)} for i in range(10)]
    csv_path = tmp_path / "metrics.csv"
    csv_path.write_text("step,env/success_rate,rollout/ep_rew_mean,env/collisions_per_agent\n"
                        + "".join(f"{r['step']},{r['env/success_rate']},{r['rollout/ep_rew_mean']},"
                                  f"{r['env/collisions_per_agent']}\n" for r in rows))
    x, y = series(rows, "env/collisions_per_agent")
    assert len(x) == 9 and 2000 not in x
    import imageio.v3 as iio

    for src in (rows, csv_path, [{"step": 1}]):
        png = plot_learning_curves(src, tmp_path / "plots" / "curves.png", title="test")
        img = iio.imread(png)
        assert img.ndim == 3 and img.shape[0] > 300 and img.shape[1] > 300
        assert (img[..., :3] < 128).any()            # something dark (axes, text) was drawn


def test_play_writes_gif(tmp_path, capsys):
    from entropy_engine.cli import main

    out = tmp_path / "play.gif"
    assert main(["play", "--heuristic", "--gif", str(out), "--n-agents", "4", "--max-steps", "8",
                 "--size", "96", "--lidar", "--trails", "3"]) == 0
    assert read_gif(out).shape[1:] == (96, 96, 3)
    assert "wrote" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="MODEL"):
        main(["play", "--gif", str(out)])


def test_smoothed_curve_is_the_episode_weighted_rate():
    from entropy_engine.render.curves import smoothed

    # iteration 2 ends 90 failed episodes at once (truncation), the others 10 successful ones
    rows = [{"step": 100 * i, "env/success_rate": 0.0 if i == 2 else 1.0,
             "env/episodes": 90 if i == 2 else 10} for i in range(5)]
    x, y = smoothed(rows, "env/success_rate", window=3)
    assert list(x) == [0, 100, 200, 300, 400]
    assert y[0] == 1.0 and y[1] == 1.0
    assert y[2] == pytest.approx(20 / 110)           # (10 + 10 + 0) / (10 + 10 + 90)
    assert y[4] == pytest.approx(20 / 110)           # rows 2-4
    _, plain = smoothed([{k: v for k, v in r.items() if k != "env/episodes"} for r in rows],
                        "env/success_rate", window=2)
    assert plain[3] == pytest.approx(0.5)            # unweighted without an episodes column
