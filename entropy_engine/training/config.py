"""Training configuration: ``TrainConfig`` (frozen, one help text per field), presets, file loading.

``resolve_config(preset, file, overrides)`` layers, in order: the named preset, a TOML/YAML file
(flat keys, or keys under a ``[train]`` table), then command-line overrides. An unknown key is an
error at every layer (``entropy_engine.config.build_config``).

Scenario settings: ``max_episode_steps`` (every scenario's ``max_steps``), ``backend`` and
``pymunk_lidar`` (every scenario's world) are fields of their own; every other key of the scenario's
config class goes into the ``env`` table (``[train.env]`` in a file, ``--env KEY=VALUE`` on the
command line; the layers merge key by key). ``env`` is checked against the scenario's config class
when the config is built, so an unknown key is an error and ``config.yaml`` fully describes the
scenario of a run. ``TrainConfig.env_kwargs`` is the one path from a run's config to its scenario's
config: training, evaluation, ``entropy play``, GIFs and the SB3 path all use it.

Presets:

- ``default``: tuned to learn navigation (10 agents per world, interior walls) fast on 2 CPU cores
  with the native trainer: a small MLP + LSTM that also sees each observation's change
  (``obs_delta``), many short rollouts, 4 epochs per update.
- ``seed``: exactly the original's settings: 8 worlds x 10 agents, MlpLstmPolicy with 256 LSTM
  units (separate actor and critic LSTMs, 64-64 heads, as sb3-contrib's default), lr 3e-4,
  n_steps 512, batch 4096, 1,000,000 steps and SB3's PPO defaults for everything else.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, Optional

from ..config import ConfigError, build_config, field, require


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; written to ``config.yaml`` in the run folder."""

    # --- environment
    scenario: str = field("navigation", "Scenario name.")
    num_worlds: int = field(8, "Worlds simulated side by side (E).")
    n_agents: int = field(10, "Agents per world (N); the policy sees E*N slots.")
    max_episode_steps: int = field(500, "Episode length limit of the scenario (its max_steps).")
    shaping_warmup: float = field(
        0.0, "Curriculum: the scenario's shaping terms (e.g. navigation's collision_onset_penalty, "
             "approach_penalty, proximity_penalty) grow linearly from 0 to their full value over this fraction of total_steps "
             "(0 = full from the start).")
    curriculum: dict[str, Any] = dataclasses.field(default_factory=dict, metadata={"help": (
        "Curriculum: stages or levels of the scenario's changeable settings (training/curriculum.py; README: "
        "Curricula); in a file a [curriculum] table, on the command line JSON. Empty = none.")})
    seed: int = field(0, "Seed of the environment, the network initialisation and the sampling.")
    backend: str = field(
        "numba", "Physics: 'numba' (compiled kernels, threads), 'pymunk' (the original's Chipmunk2D) or 'cuda' "
                 "(an NVIDIA GPU; with device 'cuda' the scenario's env runs wholly on the GPU: gpu/README.md).")
    pymunk_lidar: Literal["compiled", "pymunk"] = field(
        "compiled", "pymunk backend: lidar by the compiled ray kernels or by pymunk segment queries.")
    workers: int = field(
        0, "Processes stepping the worlds over shared memory (0 or 1 = in this process; for pymunk: "
           "the original used 8; numba uses threads and needs none).")
    env: dict[str, Any] = dataclasses.field(default_factory=dict, metadata={"help": (
        "The scenario's config keys (e.g. n_obstacles, goal_reward, arena_size); from the CLI as repeated "
        "--env KEY=VALUE, in a file as an [env] table. Checked against the scenario's config class.")})
    # --- algorithm
    algo: Literal["native", "sb3"] = field("native", "Trainer: 'native' (fast recurrent PPO) or 'sb3' (RecurrentPPO).")
    total_steps: int = field(1_000_000, "Agent-steps to train for (one step of one agent counts 1).")
    n_steps: int = field(512, "Rollout length per slot before each update.")
    batch_size: int = field(4096, "Minibatch size in agent-steps.")
    n_epochs: int = field(10, "Passes over each rollout.")
    seq_len: int = field(32, "Native: truncated-BPTT sequence length (must divide n_steps).")
    learning_rate: float = field(3e-4, "Adam learning rate.")
    lr_schedule: Literal["constant", "linear"] = field("constant", "Learning-rate schedule over the run.")
    gamma: float = field(0.99, "Discount factor.")
    gae_lambda: float = field(0.95, "GAE lambda.")
    clip_range: float = field(0.2, "PPO ratio clip.")
    clip_range_vf: float = field(0.0, "Value clip around the old value (0 = no value clipping).")
    ent_coef: float = field(0.0, "Entropy bonus coefficient.")
    vf_coef: float = field(0.5, "Value-loss coefficient.")
    max_grad_norm: float = field(0.5, "Gradient-norm clip.")
    normalize_advantage: bool = field(True, "Normalise advantages per minibatch.")
    target_kl: float = field(0.0, "Stop the epoch loop when approx_kl exceeds this (0 = never).")
    # --- network
    lstm_hidden_size: int = field(256, "LSTM units.")
    shared_lstm: bool = field(False, "One LSTM for actor and critic (False: separate critic LSTM, as SB3).")
    net_arch: int = field(64, "Width of the two hidden layers of the actor and critic heads.")
    encoder_size: int = field(0, "Width of an MLP layer before the LSTM (0 = observations go straight in, as SB3).")
    log_std_init: float = field(0.0, "Initial log standard deviation of the Gaussian.")
    obs_delta: float = field(
        0.0, "Native: the network also sees the change of each agent's observation since its previous step, "
             "times this factor (0 = off; zero on an episode's first step): approach rates are inputs.")
    # --- runtime
    device: str = field("cpu", "Torch device: 'cpu', 'cuda' or 'auto'.")
    update_dtype: Literal["auto", "float32", "bfloat16"] = field(
        "auto", "Native: precision of the update's forward pass. 'bfloat16' autocast is 1.4-1.8x faster on "
                "CPUs with native bf16 (AVX512-BF16, AMX); 'auto' picks it there and on CUDA GPUs that "
                "support it, else 'float32'.")
    threads: int = field(
        0, "Simulation threads (numba): 0 = automatic, re-chosen every 0.25 s from the cores other processes "
           "leave free (README: Benchmark); N = exactly N, and N torch threads unless torch_threads is set.")
    torch_threads: int = field(
        0, "torch.set_num_threads (0 = automatic: threads if set, else the simulation's automatic count, at most "
           "cores/2 on machines with more than 2 cores, re-chosen before every rollout).")
    update_threads: int = field(
        1, "Native: split each minibatch over this many threads that run forward and backward side by side "
           "(data parallel on CPU cores; 1 or 2 give deterministic results). Experimental: on the 2-core "
           "reference machine 2 threads were faster in-process but not in a full run (README of training/).")
    ray_workers: int = field(
        0, "Native: train on this many processes under Ray (0 = this process), each with num_worlds/K worlds, "
           "batch_size/K samples per minibatch and a policy replica; gradients are averaged every minibatch "
           "(torch.distributed, gloo). A run resumes with the same count.")
    ray_address: Optional[str] = field(
        None, "ray_workers: the Ray cluster to run them on (HOST:PORT or 'auto'; None = a local Ray on this machine).")
    time_limit_s: float = field(0.0, "Stop training after this many seconds of wall-clock time (0 = no limit).")
    log_every: int = field(1, "Log metrics every this many updates.")
    checkpoint_every: int = field(50_000, "Rolling checkpoint interval in agent-steps (0 = off).")
    prev_model: Optional[str] = field(
        None, "Base model to start from when the run has no checkpoint (a run folder or model file; "
              "native: .pt, sb3: .zip).")
    videos: bool = field(True, "Write GIFs of one world to videos/: untrained at start, trained at the end, side by side.")
    video_steps: int = field(200, "Steps per GIF episode, at most max_episode_steps (0 = max_episode_steps).")
    video_size: int = field(256, "GIF frame size in pixels.")
    video_frame_skip: int = field(2, "GIF: keep every k-th step.")
    video_fps: float = field(15.0, "GIF frames per second.")
    tensorboard: bool = field(True, "Write TensorBoard events.")
    wandb: bool = field(False, "Log to Weights & Biases.")

    def __post_init__(self) -> None:
        for name in ("num_worlds", "n_agents", "total_steps", "n_steps", "batch_size", "n_epochs", "seq_len",
                     "lstm_hidden_size", "net_arch", "max_episode_steps", "log_every"):
            require(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)!r}")
        require(self.n_steps % self.seq_len == 0,
                f"seq_len ({self.seq_len}) must divide n_steps ({self.n_steps})")
        # settings that can only produce NaN or inf are refused here, before a run starts
        for name, lo, hi, lo_open in _NUMERIC_RANGES:
            v = getattr(self, name)
            ok = isinstance(v, (int, float)) and math.isfinite(v) and (v > lo if lo_open else v >= lo) and v <= hi
            require(ok, f"{name} must be a finite number in {'(' if lo_open else '['}{lo:g}, {hi:g}], got {v!r}")
        require(self.encoder_size >= 0, f"encoder_size must be >= 0, got {self.encoder_size!r}")
        require(self.workers >= 0, f"workers must be >= 0, got {self.workers!r}")
        require(not (self.backend == "cuda" and self.workers > 1),
                f"backend 'cuda' steps every world on one GPU in this process: workers must be 0 or 1, got {self.workers}")
        require(self.threads >= 0 and self.torch_threads >= 0,
                f"threads and torch_threads must be >= 0 (0 = automatic), got {self.threads!r} and "
                f"{self.torch_threads!r}")
        require(self.update_threads >= 1, f"update_threads must be >= 1, got {self.update_threads!r}")
        require(self.ray_workers >= 0, f"ray_workers must be >= 0, got {self.ray_workers!r}")
        if self.ray_workers > 0:
            require(self.num_worlds % self.ray_workers == 0 and self.batch_size % self.ray_workers == 0,
                    f"ray_workers ({self.ray_workers}) must divide num_worlds ({self.num_worlds}) and batch_size "
                    f"({self.batch_size}): each worker takes an equal share")
            require(self.algo == "native", "ray_workers needs algo 'native'")
        require(0.0 <= self.shaping_warmup <= 1.0, f"shaping_warmup must be in [0, 1], got {self.shaping_warmup!r}")
        require(self.video_steps >= 0 and self.video_size >= 16 and self.video_frame_skip >= 1
                and 0 < self.video_fps < math.inf,
                "need video_steps >= 0, video_size >= 16, video_frame_skip >= 1 and 0 < video_fps < inf")
        object.__setattr__(self, "env", _check_env(self))
        object.__setattr__(self, "curriculum", _check_curriculum(self))

    @property
    def num_slots(self) -> int:
        """E * N: agents stepped together."""
        return self.num_worlds * self.n_agents

    def shaping_scale(self, steps: int) -> float:
        """Scale of the scenario's shaping terms after ``steps`` agent-steps (``shaping_warmup``)."""
        if self.shaping_warmup <= 0:
            return 1.0
        return min(1.0, steps / (self.shaping_warmup * self.total_steps))

    @property
    def curriculum_config(self):
        """The curriculum as a typed ``training.curriculum.CurriculumConfig``, or None."""
        from .curriculum import parse_curriculum

        return parse_curriculum(self.curriculum)

    @property
    def curriculum_spec(self):
        """What the training env runs (``envs.curriculum.CurriculumSpec``), or None without a curriculum."""
        from .curriculum import build_spec

        cur = self.curriculum_config
        return None if cur is None else build_spec(cur, self.scenario, self.scenario_config, self.workers)

    @property
    def scenario_config(self):
        """The scenario's resolved config object of this run."""
        from ..scenarios import scenario_class

        return build_config(scenario_class(self.scenario).Config, self.env_kwargs)

    @property
    def eval_env_kwargs(self) -> dict[str, Any]:
        """``env_kwargs`` at full difficulty (GIFs): with stages, the last stage's overrides on top."""
        from .curriculum import hardest_env

        return {**self.env_kwargs, **hardest_env(self.curriculum_config)}

    @property
    def rollout_size(self) -> int:
        """Agent-steps per rollout (n_steps * E * N)."""
        return self.n_steps * self.num_slots

    @property
    def env_kwargs(self) -> dict[str, Any]:
        """The scenario's config keys of this run (passed to ``BatchEnv``, ``vec_env``, ``parallel_env``)."""
        kw: dict[str, Any] = dict(self.env)
        kw.update(max_steps=self.max_episode_steps, backend=self.backend, pymunk_lidar=self.pymunk_lidar)
        return kw


# (field, low, high, low excluded?): finite numbers in these ranges; outside them an update can only
# produce NaN or inf (an infinite or huge learning rate, obs_delta or log_std_init), or the setting
# means nothing (a clip range beyond 1, a discount above 1)
_NUMERIC_RANGES = (
    ("learning_rate", 0.0, 1.0, True),
    ("gamma", 0.0, 1.0, True),
    ("gae_lambda", 0.0, 1.0, False),
    ("clip_range", 0.0, 1.0, True),
    ("clip_range_vf", 0.0, 1e6, False),
    ("ent_coef", 0.0, 1e3, False),
    ("vf_coef", 0.0, 1e3, False),
    ("max_grad_norm", 0.0, 1e6, True),
    ("target_kl", 0.0, 1e3, False),
    ("log_std_init", -20.0, 20.0, False),
    ("obs_delta", 0.0, 1e3, False),
    ("time_limit_s", 0.0, 1e9, False),
)

# scenario keys that have a TrainConfig field of their own
_OWN_FIELDS = {"max_steps": "max_episode_steps", "backend": "backend", "pymunk_lidar": "pymunk_lidar"}
# former TrainConfig fields that are scenario keys now (configs of the previous release)
_MOVED_TO_ENV = ("n_obstacles", "collision_penalty")


def _check_moved(values: Mapping[str, Any], where: str) -> None:
    for key in _MOVED_TO_ENV:
        if key in values:
            raise ConfigError(f"{where}: {key!r} is a scenario key: put it in the env table "
                              f"([train.env] in a file, --env {key}=VALUE on the command line)")


def _check_env(cfg: TrainConfig) -> dict[str, Any]:
    """``cfg.env`` validated against the scenario's config class, values converted to its types."""
    if not isinstance(cfg.env, Mapping):
        raise ConfigError(f"env must be a table of scenario config keys, got {cfg.env!r}")
    for key in cfg.env:
        if key in _OWN_FIELDS:
            raise ConfigError(f"env key {key!r} has a config field of its own: set {_OWN_FIELDS[key]!r} instead")
    from ..scenarios import scenario_class

    cls = scenario_class(cfg.scenario)
    try:
        resolved = build_config(cls.Config, cfg.env_kwargs)
    except ConfigError as exc:
        raise ConfigError(f"scenario {cfg.scenario!r}: {exc}") from None
    return {k: getattr(resolved, k) for k in cfg.env}


def _check_curriculum(cfg: TrainConfig) -> dict[str, Any]:
    """``cfg.curriculum`` parsed and checked against the scenario; returned as plain data ({} = none)."""
    from .curriculum import build_spec, curriculum_dict, parse_curriculum

    cur = parse_curriculum(cfg.curriculum)
    if cur is not None:
        build_spec(cur, cfg.scenario, cfg.scenario_config, cfg.workers)
    return curriculum_dict(cur)


PRESETS: dict[str, dict[str, Any]] = {
    # the original's train_multicore.py, everything else at SB3's PPO defaults
    "seed": dict(num_worlds=8, n_agents=10, lstm_hidden_size=256, shared_lstm=False, net_arch=64,
                 learning_rate=3e-4, n_steps=512, batch_size=4096, n_epochs=10, total_steps=1_000_000,
                 gamma=0.99, gae_lambda=0.95, clip_range=0.2, ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5,
                 seq_len=32, encoder_size=0),
    # tuned for the native trainer on 2 CPU cores (see README: "What to expect"): the observation's
    # change is an input (approach rates), and 4 epochs instead of 8 buy 9.5M steps in ~4.5 minutes
    "default": dict(num_worlds=16, n_agents=10, lstm_hidden_size=64, shared_lstm=True, net_arch=64,
                    encoder_size=64, obs_delta=10.0, learning_rate=1e-3, lr_schedule="linear", n_steps=128,
                    seq_len=32, batch_size=2560, n_epochs=4, total_steps=9_500_000, gamma=0.99, gae_lambda=0.95,
                    clip_range=0.2, ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5,
                    # collision avoidance: a collision costs as much as reaching the goal earns, and
                    # driving at a lidar hit closer than 0.8 m is penalised; both grow over the first
                    # 40 % of the run (README: "What to expect")
                    shaping_warmup=0.4, env=dict(collision_penalty=2.0, goal_reward=20.0, collision_onset_penalty=20.0,
                                                 approach_penalty=2.0, proximity_distance=0.8)),
    # the flocking scenario with the default preset's network and update (README: "Scenarios")
    "flocking": dict(scenario="flocking", num_worlds=16, n_agents=10, max_episode_steps=500, lstm_hidden_size=64,
                     shared_lstm=True, net_arch=64, encoder_size=64, obs_delta=10.0, learning_rate=5e-4,
                     lr_schedule="linear", n_steps=128, seq_len=32, batch_size=2560, n_epochs=4,
                     total_steps=12_000_000, time_limit_s=570.0, gamma=0.99, gae_lambda=0.95, clip_range=0.2,
                     target_kl=0.03, ent_coef=0.001, vf_coef=0.5, max_grad_norm=0.5),
    # the formation scenario: the flocking preset's network, navigation's learning rate, no entropy bonus
    # and a narrower initial action noise (std 0.6) for precise slot keeping (README: "Scenarios")
    "formation": dict(scenario="formation", num_worlds=16, n_agents=10, max_episode_steps=500, lstm_hidden_size=64,
                      shared_lstm=True, net_arch=64, encoder_size=64, obs_delta=10.0, learning_rate=1e-3,
                      lr_schedule="linear", n_steps=128, seq_len=32, batch_size=2560, n_epochs=4,
                      total_steps=16_000_000, time_limit_s=570.0, gamma=0.99, gae_lambda=0.95, clip_range=0.2,
                      target_kl=0.03, ent_coef=0.0, log_std_init=-0.5, vf_coef=0.5, max_grad_norm=0.5),
    # the aggregation scenario with the flocking preset's network and update (README: "Scenarios")
    "aggregation": dict(scenario="aggregation", num_worlds=16, n_agents=10, max_episode_steps=500,
                        lstm_hidden_size=64, shared_lstm=True, net_arch=64, encoder_size=64, obs_delta=10.0,
                        learning_rate=5e-4, lr_schedule="linear", n_steps=128, seq_len=32, batch_size=2560,
                        n_epochs=4, total_steps=10_000_000, time_limit_s=570.0, gamma=0.99, gae_lambda=0.95,
                        clip_range=0.2, target_kl=0.03, ent_coef=0.001, vf_coef=0.5, max_grad_norm=0.5),
    # the coverage scenario with the flocking preset's network and update (README: "Scenarios")
    "coverage": dict(scenario="coverage", num_worlds=16, n_agents=10, max_episode_steps=200, lstm_hidden_size=64,
                     shared_lstm=True, net_arch=64, encoder_size=64, obs_delta=10.0, learning_rate=5e-4,
                     lr_schedule="linear", n_steps=128, seq_len=32, batch_size=2560, n_epochs=4,
                     total_steps=20_000_000, time_limit_s=570.0, gamma=0.99, gae_lambda=0.95, clip_range=0.2,
                     target_kl=0.03, ent_coef=0.001, vf_coef=0.5, max_grad_norm=0.5),
    # the transport scenario with the flocking preset's network and update (README: "Scenarios")
    "transport": dict(scenario="transport", num_worlds=16, n_agents=10, max_episode_steps=300, lstm_hidden_size=64,
                      shared_lstm=True, net_arch=64, encoder_size=64, obs_delta=10.0, learning_rate=5e-4,
                      lr_schedule="linear", n_steps=128, seq_len=32, batch_size=2560, n_epochs=4,
                      total_steps=20_000_000, time_limit_s=290.0, gamma=0.99, gae_lambda=0.95, clip_range=0.2,
                      target_kl=0.03, ent_coef=0.001, vf_coef=0.5, max_grad_norm=0.5),
    # the foraging scenario with the flocking preset's network and update (README: "Scenarios")
    "foraging": dict(scenario="foraging", num_worlds=16, n_agents=10, max_episode_steps=500, lstm_hidden_size=64,
                     shared_lstm=True, net_arch=64, encoder_size=64, obs_delta=10.0, learning_rate=5e-4,
                     lr_schedule="linear", n_steps=128, seq_len=32, batch_size=2560, n_epochs=4,
                     total_steps=16_000_000, time_limit_s=570.0, gamma=0.99, gae_lambda=0.95, clip_range=0.2,
                     target_kl=0.03, ent_coef=0.001, vf_coef=0.5, max_grad_norm=0.5),
    # the pursuit scenario (10 pursuers, 3 scripted evaders): the flocking preset's network, a lower learning
    # rate and a larger entropy bonus (5e-4 / 0.001 reached 2.12 captures per episode, this 3.03; README)
    "pursuit": dict(scenario="pursuit", num_worlds=16, n_agents=10, max_episode_steps=300, lstm_hidden_size=64,
                    shared_lstm=True, net_arch=64, encoder_size=64, obs_delta=10.0, learning_rate=3e-4,
                    lr_schedule="linear", n_steps=128, seq_len=32, batch_size=2560, n_epochs=4,
                    total_steps=20_000_000, time_limit_s=290.0, gamma=0.99, gae_lambda=0.95, clip_range=0.2,
                    target_kl=0.03, ent_coef=0.003, vf_coef=0.5, max_grad_norm=0.5),
    # the rendezvous scenario (one robot sees the goal; the channel is on: 3 values, 5 m, nearest 4 senders)
    # with the flocking preset's network and update, 32 worlds x 5 robots (README: "Scenarios",
    # "Communication channels")
    "rendezvous": dict(scenario="rendezvous", num_worlds=32, n_agents=5, max_episode_steps=200,
                       lstm_hidden_size=64, shared_lstm=True, net_arch=64, encoder_size=64, obs_delta=10.0,
                       learning_rate=5e-4, lr_schedule="linear", n_steps=128, seq_len=32, batch_size=2560,
                       n_epochs=4, total_steps=10_000_000, time_limit_s=570.0, gamma=0.99, gae_lambda=0.95,
                       clip_range=0.2, target_kl=0.03, ent_coef=0.001, vf_coef=0.5, max_grad_norm=0.5,
                       env=dict(comm_dim=3, comm_range=5.0, comm_combine="nearest")),
}
# a navigation task that training from scratch finds hard (README: "Curricula"): 20 robots per world among
# 12 interior walls of up to 4 m, goals at least 6 m away; the default preset's network, update and rewards
_HARD_NAV = dict(PRESETS["default"], num_worlds=8, n_agents=20, total_steps=4_000_000, max_episode_steps=400,
                 env=dict(PRESETS["default"]["env"], n_obstacles=12, obstacle_max_length=4.0, min_goal_distance=6.0))
PRESETS["hard_navigation"] = _HARD_NAV
# the same task with a staged curriculum: first an open arena, near goals and no collision shaping (the
# robots learn to reach goals), then 6 walls with half the collision shaping, then the full task; each
# stage is left when 50 % of its last 400 agent-episodes reached their goal, or after 1.2M agent-steps
PRESETS["hard_navigation_staged"] = dict(_HARD_NAV, curriculum=dict(stages=[
    dict(env=dict(n_obstacles=0, min_goal_distance=1.0, collision_onset_penalty=0.0, approach_penalty=0.0),
         threshold=0.5, window=400, max_steps=1_200_000),
    dict(env=dict(n_obstacles=6, min_goal_distance=3.0, collision_onset_penalty=10.0, approach_penalty=1.0),
         threshold=0.5, window=400, max_steps=1_200_000),
    dict(env=dict()),
]))
# the same task with automatic level sampling over 12 levels (walls 0/6/12 x goal distance 1/6 m x collision
# penalty 0/20): by learnability p(1-p) of success among the 3 most learnable levels, 20 % uniform
PRESETS["hard_navigation_levels"] = dict(_HARD_NAV, curriculum=dict(levels=dict(
    grid=dict(n_obstacles=[0, 6, 12], min_goal_distance=[1.0, 6.0], collision_onset_penalty=[0.0, 20.0]),
    uniform_share=0.2, stats_window=200, top_k=3)))
DEFAULT_PRESET = "default"


def preset(name: str) -> TrainConfig:
    """The named preset as a TrainConfig."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; available: {sorted(PRESETS)}")
    return build_config(TrainConfig, PRESETS[name])


def load_file(path: str | Path) -> dict[str, Any]:
    """Read a flat mapping from a TOML (``.toml``) or YAML (``.yaml``/``.yml``) file."""
    path = Path(path)
    text = path.read_text()
    if path.suffix == ".toml":
        import tomllib

        data = tomllib.loads(text)
    elif path.suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text) or {}
    else:
        raise ConfigError(f"config file {path} must end in .toml, .yaml or .yml")
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping")
    if "train" in data and isinstance(data["train"], dict):
        rest = {k: v for k, v in data.items() if k != "train"}
        if rest:
            raise ConfigError(f"config file {path}: keys outside [train]: {sorted(rest)}")
        data = data["train"]
    return data


def resolve_config(preset_name: str | None = None, file: str | Path | None = None,
                   overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """Preset, then file, then overrides (None values in overrides are ignored). A layer that
    switches to another scenario starts that scenario's ``env`` table afresh (the keys below it
    belong to the scenario it replaces)."""
    cfg = preset(preset_name or DEFAULT_PRESET)
    if file is not None:
        cfg = _layer(cfg, load_file(file), f"config file {file}")
    if overrides:
        cfg = _layer(cfg, {k: v for k, v in overrides.items() if v is not None})
    return cfg


def _layer(base: TrainConfig, values: Mapping[str, Any], where: str = "config") -> TrainConfig:
    """``values`` on top of ``base``; an ``env`` table is merged key by key with the base's."""
    _check_moved(values, where)
    values = dict(values)
    if "scenario" in values and values["scenario"] != base.scenario:
        # the base's scenario keys belong to another scenario (e.g. a preset's navigation keys)
        base = (dataclasses.replace(base, scenario=values["scenario"], env={}, curriculum={})
                if _known(values["scenario"]) else base)
    if isinstance(values.get("env"), Mapping):
        values["env"] = {**base.env, **values["env"]}
    return build_config(TrainConfig, values, base=base)


def _known(scenario: Any) -> bool:
    from ..scenarios import SCENARIOS

    return isinstance(scenario, str) and scenario in SCENARIOS


def stored_config(stored: Mapping[str, Any] | None, **overrides: Any) -> TrainConfig:
    """A run's ``TrainConfig`` from its stored form (a model's config, or ``config.yaml``; None or {}:
    the field defaults), with ``overrides`` layered on top (None values are ignored; an ``env``
    table merges key by key). A run trained on the ``cuda`` backend is replayed on ``numba`` where
    there is no GPU. Evaluation, ``entropy play`` and GIFs reach the scenario through this
    and ``TrainConfig.env_kwargs``, as training does."""
    cfg = build_config(TrainConfig, dict(stored or {}))
    values = {k: v for k, v in overrides.items() if v is not None}
    if cfg.backend == "cuda" and "backend" not in values:
        from ..gpu.target import available

        if not available():   # a model trained on a GPU runs anywhere: the backends simulate the same physics
            values["backend"] = "numba"
    return _layer(cfg, values, "override") if values else cfg


def config_dict(cfg: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def save_yaml(cfg: TrainConfig, path: str | Path) -> None:
    import yaml

    Path(path).write_text(yaml.safe_dump(config_dict(cfg), sort_keys=False))
