"""The PettingZoo env through the clients users bring: PettingZoo's own test module, TorchRL and SuperSuit + SB3.

PettingZoo's tests sample random actions, with which robots seldom reach their goals; here the
scenario's heuristic drives instead (``HeuristicPilot``), so that every test runs over full episodes
in which agents arrive and leave, and some are truncated at the time limit. RLlib runs in
``test_rllib.py`` (in its own virtual environment).
"""
import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test, render_test, seed_test, state_test
from pettingzoo.utils.conversions import parallel_to_aec

import entropy_engine as ee
from entropy_engine.envs.parallel import SwarmParallelEnv

from test_readme import _block_after


class HeuristicPilot(SwarmParallelEnv):
    """The PettingZoo env with the scenario's heuristic at the wheel: the actions that a test gives
    live agents are replaced by the heuristic's (actions for agents that have left pass through, to
    be ignored). Counts arrivals and time-limit truncations so that tests can assert agents left."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.arrivals = self.time_limits = 0
        self._last: dict = {}

    def reset(self, seed=None, options=None):
        obs, infos = super().reset(seed=seed, options=options)
        self._last = obs
        return obs, infos

    def step(self, actions):
        given = {a: (self.scenario.heuristic(self._last[a]) if a in self.agents else act) for a, act in actions.items()}
        obs, rew, term, trunc, info = super().step(given)
        self._last.update(obs)
        self.arrivals += sum(term.values())
        self.time_limits += sum(trunc.values())
        return obs, rew, term, trunc, info


def pilot(**kwargs) -> HeuristicPilot:
    """6 robots, 40-step episodes: some arrive and leave, the others are truncated."""
    return HeuristicPilot(**{"n_agents": 6, "seed": 0, "max_steps": 40, **kwargs})


@pytest.fixture
def no_pettingzoo_warnings():
    """PettingZoo's tests report many problems as warnings only: fail on any of them (except "State
    numpy array is all zeros", which ``state_test`` says once everyone has left, as documented)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    ours = [w for w in caught if "pettingzoo" in w.filename and "State numpy array is all zeros" not in str(w.message)]
    assert not ours, [f"{w.filename}:{w.lineno}: {w.message}" for w in ours]


def test_api_test_full_episodes(no_pettingzoo_warnings):
    env = pilot()
    api_test(parallel_to_aec(env), num_cycles=1000)  # stops when every agent has left
    assert env.arrivals >= 2 and env.time_limits >= 1, (env.arrivals, env.time_limits)


def test_parallel_api_test_full_episodes(no_pettingzoo_warnings):
    env = pilot()
    parallel_api_test(env, num_cycles=1000)  # two full episodes
    assert env.arrivals >= 3 and env.time_limits >= 6, (env.arrivals, env.time_limits)


def test_seed_tests_and_full_episodes_repeat():
    seed_test(lambda: parallel_to_aec(pilot()), num_cycles=200)
    parallel_seed_test(pilot, num_cycles=200)

    def episode(env):  # PettingZoo's seed tests stop at the first done: also compare whole episodes
        obs, _ = env.reset(seed=5)
        steps = [obs]
        while env.agents:
            steps.append(env.step({a: np.zeros(2, np.float32) for a in env.agents}))
        return steps

    a, b = episode(pilot()), episode(pilot(seed=123))
    assert len(a) == len(b) > 2
    assert all(data_equivalence(x, y) for x, y in zip(a, b))


def test_state_test(no_pettingzoo_warnings):
    state_test(parallel_to_aec(pilot()), pilot(), num_cycles=200)
    env = pilot()
    env.reset()
    while env.agents:
        left = set(env.possible_agents) - set(env.agents)
        state = env.state().reshape(env.n_agents, -1)
        assert env.state_space.contains(env.state())
        for a in env.possible_agents:
            i = env.possible_agents.index(a)
            if a in left:  # rows of agents that have left are zeros, as documented
                assert not state[i].any(), a
            else:
                assert np.array_equal(state[i], env.scenario.obs[0, i])
        env.step({a: np.zeros(2) for a in env.agents})
    assert not env.state().any()  # everyone has left once the episode is over


def test_render_test():
    pytest.importorskip("pygame")
    render_test(lambda render_mode=None: parallel_to_aec(pilot(render_mode=render_mode)))


def _arrival_on_last_step() -> tuple[SwarmParallelEnv, str]:
    """An env whose ``max_steps`` is the step at which its first robot reaches its goal (heuristic)."""
    def run(max_steps):
        env = pilot(max_steps=max_steps)
        obs, _ = env.reset()
        while env.agents:
            obs, _, term, _, _ = env.step({a: np.zeros(2) for a in env.agents})
            arrived = [a for a, t in term.items() if t]
            if arrived:
                return env.t, arrived[0]
        raise AssertionError("nobody arrived")

    t, agent = run(500)
    env = pilot(max_steps=t)
    env.reset()
    return env, agent


def test_time_limit_truncates_every_live_agent_including_arrivals():
    env, arriving = _arrival_on_last_step()
    for _ in range(env.scenario.max_steps - 1):
        _, _, term, trunc, _ = env.step({a: np.zeros(2) for a in env.agents})
        assert not any(trunc.values())
    live = list(env.agents)
    obs, rew, term, trunc, info = env.step({a: np.zeros(2) for a in env.agents})
    assert set(obs) == set(rew) == set(term) == set(trunc) == set(info) == set(live)
    assert term[arriving] and trunc[arriving] and info[arriving]["reached_goal"]  # Gymnasium's TimeLimit
    assert all(trunc.values())  # what RLlib's ParallelPettingZooEnv reads as the end (__all__)
    assert env.agents == []
    # a step after the end is harmless: empty dicts, nothing changes, any known agent's action accepted
    pos = env.scenario.world.pos.copy()
    assert env.step({}) == ({}, {}, {}, {}, {})
    assert env.step({a: np.zeros(2) for a in env.possible_agents}) == ({}, {}, {}, {}, {})
    assert np.array_equal(pos, env.scenario.world.pos)
    with pytest.raises(ValueError, match="unknown agents"):
        env.step({"robot_99": np.zeros(2)})


def test_actions_of_departed_agents_are_ignored():
    env = pilot(max_steps=500)
    ref = pilot(max_steps=500)
    obs, _ = env.reset()
    ref.reset()
    departed: set = set()
    while env.agents:
        # every agent gets an action, as TorchRL's masked mode sends; departed ones get garbage
        act = {a: (np.full(2, np.nan) if a in departed else np.zeros(2)) for a in env.possible_agents}
        out = env.step(act)
        out_ref = ref.step({a: np.zeros(2) for a in ref.agents})
        assert data_equivalence(out, out_ref)
        departed |= {a for a, t in out[2].items() if t}
    assert departed
    with pytest.raises(ValueError, match="unknown agents"):
        env.reset()
        env.step({**{a: np.zeros(2) for a in env.agents}, "robot_6": np.zeros(2)})
    with pytest.raises(ValueError, match="missing actions"):
        env.step({"robot_0": np.zeros(2)})


def test_a_copy_is_a_fresh_env_with_the_same_settings():
    """pickle / deepcopy (SuperSuit copies the env) give an env that, once reset, steps exactly like
    the original: the arrays that share memory underneath are rebuilt, not split (the copy used to
    see zero observations and rewards)."""
    import copy
    import pickle

    env = ee.parallel_env(n_agents=3, seed=0, max_steps=40)
    env.reset(seed=1)
    for clone in (pickle.loads(pickle.dumps(env)), copy.deepcopy(env)):
        with pytest.raises(RuntimeError, match="reset"):
            clone.step({a: np.ones(2, np.float32) for a in env.possible_agents})
        clone.reset(seed=1)
        env.reset(seed=1)
        for _ in range(5):
            acts = {a: np.array([1.0, 0.6], np.float32) for a in env.agents}
            a, b = env.step(acts), clone.step(acts)
            assert data_equivalence(a, b)
        assert np.abs(b[0]["robot_0"]).sum() > 0 and any(b[1].values())


def test_step_before_reset_is_refused():
    with pytest.raises(RuntimeError, match="reset"):
        ee.parallel_env(n_agents=2).step({})


def test_reset_infos_have_the_step_keys():
    env = ee.parallel_env(n_agents=3, seed=0)
    _, reset_infos = env.reset()
    *_, step_infos = env.step({a: np.zeros(2) for a in env.agents})
    assert set(reset_infos) == set(step_infos) == set(env.agents)
    for a in env.agents:
        assert reset_infos[a].keys() == step_infos[a].keys() == {"reached_goal", "collided"}
        assert reset_infos[a] == {"reached_goal": False, "collided": False}


def test_torchrl_pettingzoo_wrapper_masked_episode():
    """README's TorchRL example: check_env_specs, then a full episode with the heuristic in masked mode
    (every agent's action sent each step, departed ones ignored; the episode ends when all are done)."""
    pytest.importorskip("torchrl")
    ns: dict = {}
    exec(compile(_block_after("### From TorchRL"), "README:From TorchRL", "exec"), ns)
    env, td, pz = ns["env"], ns["td"], ns["pz"]
    n = pz.n_agents
    mask = td["next", "robot", "mask"].numpy()             # [T, N] live after the step
    reached = td["next", "robot", "info", "reached_goal"].numpy().astype(bool)
    obs = td["next", "robot", "observation"].numpy()
    assert td["next", "done"][-1].item() and not td["next", "done"][:-1].any()  # one whole episode
    steps = len(td)
    arrived = reached.any(0)
    assert reached.sum(0).max() == 1 and arrived.sum() >= 3      # robots arrived (each at most once) ...
    arrival = np.where(arrived, reached.argmax(0), steps - 1)
    assert len(set(arrival[arrived].tolist())) >= 2              # ... at different times
    for i in range(n):                                          # ... and were masked out from then on
        assert mask[:arrival[i], i].all() and not mask[arrival[i]:, i].any(), i
    if not arrived.all():                                       # the others were truncated at the limit
        assert steps == pz.scenario.max_steps and td["next", "truncated"][-1].item()
        assert td["next", "robot", "truncated"][-1, ~arrived].all()
    space = pz.observation_space("robot_0")
    assert ((obs >= space.low) & (obs <= space.high)).all()
    state = td["next", "state"].numpy().reshape(len(td), n, -1)
    assert not state[~mask].any() and np.array_equal(state[mask], obs[mask])
    env.close()


def test_supersuit_sb3_ppo():
    """SuperSuit's documented PettingZoo -> SB3 path (black death for agents that leave, one vector slot
    per agent, SB3's VecEnv), over full episodes in which robots arrive and leave, then a short PPO run."""
    ss = pytest.importorskip("supersuit")
    from stable_baselines3 import PPO

    pz = pilot()   # 6 robots; concat_vec_envs_v1 runs two copies of it (a copy is a fresh env, see envs/parallel.py)
    venv = ss.concat_vec_envs_v1(ss.pettingzoo_env_to_vec_env_v1(ss.black_death_v3(pz)), 2, num_cpus=0,
                                 base_class="stable_baselines3")
    assert venv.num_envs == 12
    assert venv.observation_space == pz.observation_space("robot_0")
    assert venv.action_space == pz.action_space("robot_0")
    obs = venv.reset()
    space = pz.observation_space("robot_0")
    dones = reached = 0
    for _ in range(100):   # 2.5 episodes of 40 steps; the heuristic drives
        obs, rew, done, info = venv.step(np.zeros((12, 2), np.float32))
        assert obs.shape == (12, 36) and np.isfinite(rew).all()
        assert ((obs >= space.low) & (obs <= space.high)).all()
        assert all({"reached_goal", "collided"} <= set(i) for i in info if i)   # black death: {} for departed
        dones += done.sum()
        reached += sum(bool(i.get("reached_goal")) for i in info)
    assert reached >= 3 and dones >= 24   # robots arrived, and every slot's episode ended at least twice
    # SuperSuit's ConcatVecEnv has no seed(), which SB3 calls for PPO(seed=...): seed through the env instead
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=64, n_epochs=1, device="cpu")
    model.learn(512)
    assert model.num_timesteps >= 512
    act, _ = model.predict(venv.reset(), deterministic=True)
    assert act.shape == (12, 2) and np.isfinite(act).all()
    venv.close()
