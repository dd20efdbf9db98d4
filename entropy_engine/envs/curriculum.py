"""Curricula inside the episode engine: which settings each world runs with, and how that changes.

One mechanism for every kind of curriculum. A ``CurriculumSpec`` is a table of *levels*: rows of
values of some of the scenario's changeable settings (``Scenario.settings``: obstacle count,
goal distance, reward weights, ...; never anything that sizes an array). Every world runs on one
level (``levels[w]``); ``Curriculum`` writes each world's row into the scenario's settings
(``Scenario.write_settings``), which its kernels read per world.

- ``kind="none"``: one level, the configured values. Only the shaping ramp acts.
- ``kind="stages"``: the levels are stages, every world is on the current stage. The stage is
  promoted when the mean of the metric's episode statistic over the last ``windows[s]`` finished
  agent-episodes of this stage reaches ``thresholds[s]`` (``>=``, or ``<=`` with
  ``at_least=False``) after at least ``min_steps[s]`` agent-steps in the stage, or unconditionally
  after ``max_steps[s]`` (> 0) agent-steps. New values apply at once (reward weights) or from
  each world's next reset (layouts).
- ``kind="levels"``: each world draws its level when it resets, from the curriculum's own random
  stream, with probability ``(1 - u) * L_l / sum(L) + u / n_levels``: ``u = uniform_share`` and
  ``L_l = p_l (1 - p_l)`` the learnability of level ``l``, ``p_l`` its success estimate
  ``(s_l + 0.5) / (n_l + 1)`` from exponentially decayed counts of its finished agent-episodes
  (``n_l``) and their summed statistic (``s_l``, clipped to [0, 1]); each episode decays the older
  counts of its level by ``1 - 1 / stats_window``. A level never seen has p = 0.5, the largest
  learnability, so every level is tried early. With ``top_k = k > 0`` (JaxNav's buffer of the most
  learnable levels) ``L_l`` counts only for the levels whose learnability is among the k largest
  (ties included), the others get only the uniform share. With ``target_share = t > 0`` a share t
  of the draws goes to ``target_level``, the full task (the run's ``env`` values: what is
  evaluated), and the learnability part is ``1 - u - t``.

The shaping ramp (``TrainConfig.shaping_warmup``) is a scale on the ``shaping_terms`` columns of
whatever level a world is on: ``set_scale`` rewrites every world's values.

The state (stage, steps in it, the promotion window, per-level counts, every world's level and the
random stream) is plain data (``state()`` / ``load_state()``) and travels in checkpoints.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numba import njit

from ..core.rng import uniform

Kind = Literal["none", "stages", "levels"]


@dataclass(frozen=True)
class CurriculumSpec:
    """A resolved curriculum: the level table and its rules (built by ``training.curriculum``)."""

    kind: Kind
    names: tuple[str, ...]                 # setting names, the table's columns
    table: tuple[tuple[float, ...], ...]   # [L][K] each level's values
    stat: str | None = None                # episode statistic of the metric (promotion, learnability)
    metric: str | None = None              # the metric's name, for logs
    at_least: bool = True                  # stages: promote when the window mean >= threshold (else <=)
    thresholds: tuple[float, ...] = ()     # [L] stages: nan = no threshold
    windows: tuple[int, ...] = ()          # [L] stages: episodes in the promotion window
    min_steps: tuple[int, ...] = ()        # [L] stages
    max_steps: tuple[int, ...] = ()        # [L] stages: 0 = none
    uniform_share: float = 0.2             # levels
    stats_window: int = 200                # levels
    top_k: int = 0                         # levels: learnability only for the k most learnable (0 = all)
    target_share: float = 0.0              # levels: share of draws on level target_level (the full task)
    target_level: int = -1                 # levels: the full task's row (-1: none)

    @property
    def n_levels(self) -> int:
        return len(self.table)

    def label(self, level: int) -> str:
        """``name=value ...`` of one level."""
        return " ".join(f"{n}={v:g}" for n, v in zip(self.names, self.table[level]))


@njit(cache=True)
def draw_levels(state, cdf, mask, levels):
    """levels[w] = the level whose cumulative probability ``cdf`` [L] first exceeds a uniform draw
    from ``state[0]``, for every world with mask[w] (in world order)."""
    n_levels = cdf.shape[0]
    for w in range(mask.shape[0]):
        if mask[w]:
            u = uniform(state, 0) * cdf[n_levels - 1]
            k = 0
            while k < n_levels - 1 and cdf[k] <= u:
                k += 1
            levels[w] = k


def curriculum_seed(seed: int | None) -> np.ndarray:
    """The curriculum's random stream (uint64 [1]) for an env seed: apart from every world's stream."""
    ss = np.random.SeedSequence(None if seed is None else [int(seed), 0x6375]).generate_state(1, np.uint64)
    return ss.astype(np.uint64)


class Curriculum:
    """Each world's level and the rules that change it, over one scenario (``BatchEnv.curriculum``)."""

    def __init__(self, spec: CurriculumSpec, scenario: Any, seed: int | None):
        self.spec = spec
        self.scenario = scenario
        E = scenario.world.num_worlds
        L, K = spec.n_levels, len(spec.names)
        self.columns = scenario.setting_columns(spec.names)                       # [K]
        self.table = np.array(spec.table, np.float64).reshape(L, K)               # [L, K]
        self.ramped = np.array([n in scenario.shaping_terms for n in spec.names], np.bool_)   # [K]
        self.scale = 1.0
        self.levels = np.zeros(E, np.int64)          # [E] each world's level (stage)
        self.rng = curriculum_seed(seed)             # [1] the curriculum's own stream
        self.stage = 0
        self.stage_steps = 0                         # agent-steps since the stage began
        W = max(spec.windows, default=1)
        self.window = np.zeros(W, np.float64)        # [W] ring of the stage's last episode values
        self.filled = 0
        self.pos = 0
        self.count = np.zeros(L, np.float64)         # [L] decayed episode counts
        self.total = np.zeros(L, np.float64)         # [L] decayed sums of the statistic
        self.episodes = np.zeros(L, np.int64)        # [L] episodes finished on each level (all time)
        self._restored: dict[str, Any] | None = None   # a loaded state, applied again at the next reset
        self._values = np.zeros((E, K), np.float64)  # [E, K] scratch: what each world runs with

    @property
    def active(self) -> bool:
        """True for stages and levels (episodes are recorded), False for ``none``."""
        return self.spec.kind != "none"

    # ------------------------------------------------------------------ settings
    def apply(self) -> None:
        """Write every world's values (its level's row, shaping columns times the scale)."""
        v = self._values
        np.take(self.table, self.levels, axis=0, out=v)
        if self.scale != 1.0:
            v[:, self.ramped] *= self.scale
        self.scenario.write_settings(self.columns, v)

    def set_scale(self, scale: float) -> None:
        """The shaping ramp: ``shaping_terms`` columns times ``scale`` in every world from now on."""
        self.scale = float(scale)
        self.apply()

    def seed(self, seed: int | None) -> None:
        self.rng[:] = curriculum_seed(seed)

    def on_reset(self, mask: np.ndarray) -> None:
        """Worlds ``mask`` [E] are about to reset: levels draw their level (from the stream), then
        every world's values are written."""
        if self._restored is not None:     # the first reset after load_state (maybe after a reseed) keeps it
            self._set_state(self._restored)
            self._restored = None
        elif self.spec.kind == "levels":
            draw_levels(self.rng, np.cumsum(self.probabilities()), np.asarray(mask, np.bool_), self.levels)
        self.apply()

    # ------------------------------------------------------------------ statistics and rules
    def probabilities(self) -> np.ndarray:
        """levels: the sampling probability of each level [L] (learnability mixed with uniform)."""
        L = self.spec.n_levels
        p = (self.total + 0.5) / (self.count + 1.0)
        learn = p * (1.0 - p)
        k = self.spec.top_k
        if 0 < k < L:     # only the k most learnable levels (ties at the k-th value included)
            learn = np.where(learn >= np.partition(learn, L - k)[L - k], learn, 0.0)
        u, t = self.spec.uniform_share, self.spec.target_share
        s = learn.sum()
        prob = np.full(L, (1.0 - t) / L) if s <= 0 else (1.0 - u - t) * learn / s + u / L
        if t > 0:
            prob[self.spec.target_level] += t
        return prob

    def success_estimates(self) -> np.ndarray:
        """levels: each level's success estimate p_l [L]."""
        return (self.total + 0.5) / (self.count + 1.0)

    def record(self, worlds: np.ndarray, values: np.ndarray) -> None:
        """Agent-episodes that just ended in worlds ``worlds`` [n] with statistic ``values`` [n]."""
        if not self.active or len(worlds) == 0:
            return
        values = np.asarray(values, np.float64)
        if self.spec.kind == "levels":
            lv = self.levels[worlds]
            L = self.spec.n_levels
            k = np.bincount(lv, minlength=L)
            s = np.bincount(lv, weights=np.clip(values, 0.0, 1.0), minlength=L)
            keep = (1.0 - 1.0 / self.spec.stats_window) ** k
            self.count = self.count * keep + k
            self.total = self.total * keep + s
            self.episodes += k
            return
        W = self.spec.windows[self.stage] if self.spec.windows else 1
        n = min(len(values), W)
        idx = (self.pos + np.arange(n)) % W
        self.window[idx] = values[-n:]
        self.pos = int((self.pos + n) % W)
        self.filled = min(self.filled + n, W)
        self.episodes[self.stage] += len(values)

    def window_mean(self) -> float:
        """stages: mean of the current promotion window (nan while it is not full)."""
        W = self.spec.windows[self.stage] if self.spec.windows else 1
        return float(self.window[:W].mean()) if self.filled >= W else math.nan

    def advance(self, agent_steps: int) -> bool:
        """stages: ``agent_steps`` more in the current stage; promote if the rule says so. Returns
        True when it promoted."""
        if self.spec.kind != "stages":
            return False
        s = self.stage
        self.stage_steps += agent_steps
        if s >= self.spec.n_levels - 1:
            return False
        mx = self.spec.max_steps[s]
        promote = mx > 0 and self.stage_steps >= mx
        if not promote and self.stage_steps >= self.spec.min_steps[s] and not math.isnan(self.spec.thresholds[s]):
            m = self.window_mean()
            if not math.isnan(m):
                t = self.spec.thresholds[s]
                promote = m >= t if self.spec.at_least else m <= t
        if promote:
            self.stage = s + 1
            self.stage_steps = 0
            self.filled = 0
            self.pos = 0
            self.levels[:] = self.stage
            self.apply()
        return promote

    def metrics(self) -> dict[str, float]:
        """What the logs show: ``curriculum/stage`` (stages), the level distribution (levels: the
        share of worlds on each level now, each level's success estimate and sampling probability,
        and the mean over worlds of every setting)."""
        sp = self.spec
        if sp.kind == "stages":
            return {"curriculum/stage": float(self.stage), "curriculum/stage_window_mean": self.window_mean()}
        if sp.kind != "levels":
            return {}
        out: dict[str, float] = {}
        share = np.bincount(self.levels, minlength=sp.n_levels) / len(self.levels)
        prob, est = self.probabilities(), self.success_estimates()
        for k, name in enumerate(sp.names):
            out[f"curriculum/mean_{name}"] = float(self.table[self.levels, k].mean())
        for lv in range(sp.n_levels):
            out[f"curriculum/level{lv}_share"] = float(share[lv])
            out[f"curriculum/level{lv}_p"] = float(est[lv])
            out[f"curriculum/level{lv}_prob"] = float(prob[lv])
        return out

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict[str, Any]:
        """Plain data (ints, floats, lists): everything needed to continue exactly."""
        return {"kind": self.spec.kind, "n_levels": self.spec.n_levels, "stage": int(self.stage),
                "stage_steps": int(self.stage_steps), "filled": int(self.filled), "pos": int(self.pos),
                "window": [float(x) for x in self.window], "count": [float(x) for x in self.count],
                "total": [float(x) for x in self.total], "episodes": [int(x) for x in self.episodes],
                "levels": [int(x) for x in self.levels], "rng": int(self.rng[0]), "scale": float(self.scale)}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore ``state()``; ValueError (nothing changed) if it belongs to another curriculum. The
        next reset keeps the restored levels and random stream (it would otherwise draw new levels,
        and a reset with a seed would restart the stream): the run continues where it was."""
        sp = self.spec
        if (state.get("kind"), state.get("n_levels"), len(state.get("levels", ())), len(state.get("window", ()))) != \
                (sp.kind, sp.n_levels, len(self.levels), len(self.window)):
            raise ValueError(f"the checkpoint's curriculum ({state.get('kind')}, {state.get('n_levels')} levels) "
                             f"is not this run's ({sp.kind}, {sp.n_levels} levels)")
        levels = np.asarray(state["levels"], np.int64)
        if levels.min(initial=0) < 0 or levels.max(initial=0) >= sp.n_levels:
            raise ValueError("the checkpoint's curriculum names a level this run does not have")
        self._set_state(state)
        self._restored = dict(state)

    def _set_state(self, state: dict[str, Any]) -> None:
        self.stage, self.stage_steps = int(state["stage"]), int(state["stage_steps"])
        self.filled, self.pos = int(state["filled"]), int(state["pos"])
        self.window[:] = state["window"]
        self.count[:] = state["count"]
        self.total[:] = state["total"]
        self.episodes[:] = state["episodes"]
        self.levels[:] = state["levels"]
        self.rng[0] = np.uint64(int(state["rng"]))
        self.scale = float(state["scale"])
        self.apply()


def trivial_spec(scenario: Any) -> CurriculumSpec:
    """No curriculum: one level holding the configured values of the scenario's shaping terms."""
    names = tuple(scenario.shaping_terms)
    return CurriculumSpec("none", names, (tuple(float(getattr(scenario.config, n)) for n in names),))
