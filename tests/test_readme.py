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
