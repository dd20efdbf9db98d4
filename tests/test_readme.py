"""The README's code examples run as written."""
import re
from pathlib import Path


README = Path(__file__).resolve().parents[1] / "README.md"


def _block_after(heading: str) -> str:
    text = README.read_text()
    section = text[text.index(heading):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_adding_a_scenario_example_runs():
    """The README's scenario passes PettingZoo's API test, and its heuristic beats random actions on
    its own metric through ``entropy eval``'s code path."""
    from pettingzoo.test import parallel_api_test

    from entropy_engine.policies import RandomPolicy
    from entropy_engine.training.config import TrainConfig
    from entropy_engine.training.evaluate import evaluate

    ns: dict = {}
    exec(compile(_block_after("## Adding a scenario"), "README:Adding a scenario", "exec"), ns)
    env = ns["env"]
    parallel_api_test(env, num_cycles=100)
    cfg = TrainConfig(scenario="rally", n_agents=4, max_episode_steps=200)
    heuristic = evaluate("heuristic", episodes=10, cfg=cfg)
    rand = evaluate(RandomPolicy(env.action_space("robot_0"), 0), episodes=10, cfg=cfg)
    assert heuristic["arrival_rate"] > rand["arrival_rate"] + 0.3, (heuristic, rand)


def test_adding_a_world_backend_example_runs():
    """The README's backend plugs in by name, builds its own world class under a scenario and moves
    the robots by its rule (a robot driving straight ahead moves ``max_speed * dt`` with no collisions)."""
    from entropy_engine.core import backends

    ns: dict = {}
    try:
        exec(compile(_block_after("### Adding a world backend"), "README:Adding a world backend", "exec"), ns)
        env, GlideWorld = ns["env"], ns["GlideWorld"]
        w = env.scenario.world
        assert type(w) is GlideWorld and env.config.backend == "glide"
        assert ns["obs"].shape == (24, env.obs_dim) and ns["obs"].dtype == ns["np"].float32
        before = w.pos.copy()
        act = ns["np"].ones((4, 6, 2), ns["np"].float32)
        w.step(act)
        moved = ns["np"].linalg.norm(w.pos - before, axis=-1)[w.active]
        step = w.config.max_speed * w.config.dt
        inside = moved > 0.99 * step - 1e-6
        assert inside.mean() > 0.5 and (moved <= step + 1e-5).all()   # robots at the border are clipped
    finally:
        backends.BACKENDS.pop("glide", None)
