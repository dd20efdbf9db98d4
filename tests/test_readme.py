"""The README's code examples run as written."""
import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def _block_after(heading: str) -> str:
    text = README.read_text()
    section = text[text.index(heading):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_adding_a_scenario_example_runs():
    ns: dict = {}
    exec(compile(_block_after("## Adding a scenario"), "README:Adding a scenario", "exec"), ns)
    import entropy_engine as ee

    env, base = ns["env"], ee.parallel_env("navigation", n_agents=4)
    for e in (env, base):
        e.reset(seed=0)
    for _ in range(5):
        act = {a: np.ones(2, np.float32) for a in env.agents}
        obs, rew, *_ = env.step(act)
        _, rew_base, *_ = base.step(act)
    for a in rew:  # the patrol reward is the navigation reward plus the forward-speed bonus
        bonus = 0.1 * np.clip(obs[a][32], 0, 1)
        assert bonus > 0.01
        assert abs(rew[a] - rew_base[a] - bonus) < 1e-5
