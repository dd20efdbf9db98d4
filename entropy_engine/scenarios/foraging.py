"""Foraging: the robots collect items spread over the arena and bring them to a nest."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from ..config import ConfigError, field, require
from ..core.backends import make_world
from ..core.items import Items
from ..core.landmarks import Landmarks
from . import foraging_kernels as fk
from .base import Scenario, ScenarioConfig


@dataclass(frozen=True)
class ForagingConfig(ScenarioConfig):
    """Foraging scenario settings (plus every physical constant of ``WorldConfig``)."""

    n_items: int = field(10, "Items per world; constant (a delivered item reappears at once somewhere clear).")
    capacity: int = field(1, "Items one robot can carry at once.")
    item_radius: float = field(0.1, "Item radius, metres; a robot picks an item up when their discs touch.")
    n_item_obs: int = field(4, "K: nearest free items in the observation (nearest first, padded and masked).")
    item_sense_range: float = field(4.0, "Item sensing range, metres, centre to centre.")
    item_margin: float = field(0.5, "Items keep this distance from the border, metres.")
    item_spacing: float = field(0.4, "Placed items keep this centre distance from each other, metres.")
    nest_radius: float = field(1.0, "Nest radius, metres; a robot whose centre is inside delivers what it carries.")
    nest_margin: float = field(1.5, "The nest centre keeps this distance from the border, metres.")
    nest_clearance: float = field(0.5, "Placed items keep this distance from the nest's edge, metres.")
    nest_obs_scale: float = field(5.0, "Nest vector divisor in metres; a farther nest keeps direction, norm 1.")
    spawn_spacing: float = field(1.0, "Robots start on random cells of a lattice of this spacing covering the "
                                      "arena, metres.")
    delivery_reward: float = field(10.0, "Reward to the robot per item it delivers.")
    pickup_reward: float = field(1.0, "Reward to the robot per item it picks up.")
    carry_progress_reward: float = field(0.5, "Reward per metre the robot gets closer to the nest while it carries "
                                              "an item (shaping).")
    search_progress_reward: float = field(0.2, "Reward per metre the robot gets closer to the nearest free item it "
                                               "sensed, while it has room (shaping).")
    collision_penalty: float = field(0.1, "Penalty for every step in contact with a wall or robot.")
    collision_onset_penalty: float = field(1.0, "One-off penalty on the first step of each contact (a collision).")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("n_items", "capacity", "n_item_obs"):
            v = getattr(self, name)
            require(isinstance(v, int) and not isinstance(v, bool) and v >= 1,
                    f"{name} must be an integer >= 1, got {v!r}")
        for name in ("item_radius", "item_sense_range", "nest_radius", "nest_obs_scale"):
            v = getattr(self, name)
            require(math.isfinite(v) and v > 0, f"{name} must be a positive number, got {v!r}")
        for name in ("item_spacing", "nest_clearance", "delivery_reward", "pickup_reward", "carry_progress_reward",
                     "search_progress_reward", "collision_penalty", "collision_onset_penalty"):
            v = getattr(self, name)
            require(math.isfinite(v) and v >= 0, f"{name} must be a number >= 0, got {v!r}")
        require(math.isfinite(self.item_margin) and self.item_margin >= self.item_radius,
                f"item_margin must be >= item_radius ({self.item_radius}), got {self.item_margin!r}")
        require(math.isfinite(self.nest_margin) and self.nest_margin >= self.nest_radius,
                f"nest_margin must be >= nest_radius ({self.nest_radius}), got {self.nest_margin!r}")
        require(math.isfinite(self.spawn_spacing) and self.spawn_spacing >= 2 * self.agent_radius + 0.02,
                f"spawn_spacing must be >= 2 * agent_radius + 0.02 ({2 * self.agent_radius + 0.02:.2f} m) so that "
                f"robots start apart, got {self.spawn_spacing!r}")


class Foraging(Scenario):
    """Differential-drive robots collect items spread over the arena and bring them to a nest.

    Every world has one nest (a disc of ``nest_radius`` = 1 m at a random place) and ``n_items``
    (10) items lying on the floor (``core.items``). A robot picks an item up by touching it (at
    most ``capacity`` = 1 at a time), carries it, and delivers it by driving its centre into the
    nest; the delivered item reappears at once at a random clear place, so the number of items is
    constant. Robots drive over items (they are not obstacles and the lidar does not see them).
    No robot's episode ends early: foraging goes on until ``max_steps``.

    ## Observation (float32, 50 values for the default 32 rays and K = 4 items)

    | Index            | Observation                                                   | Range   |
    |------------------|---------------------------------------------------------------|---------|
    | 0 .. R-1         | lidar distance / ``lidar_range`` (R = ``n_rays`` rays, ray 0 along the heading, counter-clockwise; walls and other robots) | [0, 1], 1 = nothing in range |
    | R, R+1           | ego velocity (forward, left) / ``max_speed``                  | [-1, 1] |
    | R+2+3k, R+3+3k   | free item k's centre minus own, ego frame, / ``item_sense_range`` | [-1, 1] |
    | R+4+3k           | item k's mask: 1 = an item, 0 = padding (all three zero)       | {0, 1}  |
    | R+2+3K           | items carried / ``capacity``                                   | [0, 1]  |
    | R+3+3K, R+4+3K   | nest vector, ego frame (forward, left) / max(``nest_obs_scale``, distance) | [-1, 1] |
    | R+5+3K           | 1 if the robot's centre is inside the nest                     | {0, 1}  |

    Items are the ``n_item_obs`` (K = 4) nearest free items (on the floor, not carried) within
    ``item_sense_range`` (4 m), nearest first, for k = 0 .. K-1.

    ## Action (float32, 2 values)

    | Index | Action            | Range   |
    |-------|-------------------|---------|
    | 0     | left wheel power  | [-1, 1] |
    | 1     | right wheel power | [-1, 1] |

    Values outside [-1, 1] are clipped; NaN or inf is an error (drive model: ``core.params``).

    ## Reward (per robot, per step; defaults)

    ``10.0 per item the robot delivers + 1.0 per item it picks up + 0.5 * (metres it got closer to
    the nest, while it carried an item before and after the step and delivered none) + 0.2 *
    (metres it got closer to the nearest free item it sensed at the start of the step, while that
    item is still free and it picked nothing up) - 0.1 while touching a wall or robot - 1.0 on the
    first step of each contact``. The two progress terms are shaping terms, scaled by
    ``set_shaping_scale``.

    ## Episode end

    - Termination: none (``terminated`` is always False).
    - Truncation: ``max_steps`` (500) steps since the world's reset.
    - ``info`` per robot and step: ``collided`` (bool), ``delivered`` (items the robot delivered
      in this step) and ``carrying`` (items it carries after the step).

    ## Metrics (per agent-episode, logged as ``env/<metric>``, printed by ``entropy eval``)

    - ``items_delivered``: items the robot's world delivered during the episode (every robot of
      the world counts each one, so the metric is items per world-episode; the primary metric);
    - ``delivered_per_agent``: items the robot itself delivered during the episode;
    - ``pickups_per_agent``: items the robot picked up during the episode;
    - ``collisions_per_agent``: contact onsets (first step of each contact with a wall or robot).

    ## Start state

    At every reset the nest is placed uniformly at least ``nest_margin`` (1.5 m) from the border,
    the robots on random distinct cells of a lattice of ``spawn_spacing`` (1 m) covering the arena,
    jittered, with uniform headings, and then the items one by one at uniform places at least
    ``item_margin`` from the border, ``nest_clearance`` from the nest's edge, ``item_spacing`` from
    each other and clear of every robot (``core.items``). A robot respawned inside a running world
    (never by this scenario's own rules) first puts what it carries back at clear places, then
    starts at a random point at least ``spawn_spacing`` from every other robot. The arena has its
    four border walls only.

    ## Arguments

    ``Foraging(config, num_worlds, n_agents, seed)``: see ``ForagingConfig`` for every field.
    """

    name = "foraging"
    Config = ForagingConfig
    info_keys = {"collided": "the robot touched a wall or another robot in this step",
                 "delivered": "items the robot delivered to the nest in this step",
                 "carrying": "items the robot carries after this step"}
    episode_stats = {"delivered": "items the robot delivered in the step",
                     "world_delivered": "items the robot's world delivered in the step",
                     "pickups": "items the robot picked up in the step",
                     "collisions": "contacts started (first step of each contact with a wall or robot)"}
    metrics = {"items_delivered": ("world_delivered", "items delivered to the nest per world-episode"),
               "delivered_per_agent": ("delivered", "items a robot delivered per episode"),
               "pickups_per_agent": ("pickups", "items a robot picked up per episode"),
               "collisions_per_agent": ("collisions", "contact onsets per agent-episode")}
    success_stat = None
    # reward weights a curriculum may change during a run, per world (columns of self._params [E, P])
    settings = {"delivery_reward": fk.P_DELIVERY, "pickup_reward": fk.P_PICKUP,
                "carry_progress_reward": fk.P_CARRY, "search_progress_reward": fk.P_SEARCH,
                "collision_penalty": fk.P_COLL, "collision_onset_penalty": fk.P_ONSET}
    shaping_terms = ("carry_progress_reward", "search_progress_reward")
    per_world_settings = True

    @classmethod
    def check_settings(cls, config: ForagingConfig, values: dict[str, float]) -> None:
        """Beyond finite numbers: every reward weight >= 0 (as in ``ForagingConfig``)."""
        super().check_settings(config, values)
        for name, v in values.items():
            if v < 0:
                raise ConfigError(f"setting {name} must be >= 0, got {v!r}")

    def __init__(self, config: ForagingConfig, num_worlds: int, n_agents: int, seed: int | None = None):
        self.config = config
        self.world = w = make_world(config, num_worlds, n_agents, max_walls=4)
        E, N, R, K = w.num_worlds, w.n_agents, config.n_rays, config.n_item_obs
        self._side = int(math.floor(w.arena / config.spawn_spacing))
        self._check_room(w.arena, N)
        self.allocate(R + 6 + 3 * K, seed)                   # obs [E, N, R+6+3K], reward, terminated, stats [4, E, N]
        self.nest = Landmarks(w, 1)                          # one nest disc per world
        self.nest.radius[:] = config.nest_radius
        self.nest.active[:] = True
        self.items = Items(w, config.n_items, config.item_radius, config.capacity, K, config.item_sense_range,
                           config.item_margin, config.item_spacing, config.nest_clearance)
        self.info = {"collided": w.contact, "delivered": self.items.delivered,   # [E, N] each
                     "carrying": self.items.load}
        self.prev_contact = np.zeros((E, N), np.bool_)      # [E, N] contact flags of the last step
        self.prev_load = np.zeros((E, N), np.int32)         # [E, N] items carried before the last step
        self.nest_dist = np.zeros((E, N), np.float64)       # [E, N] distance to the nest centre
        self.target = np.full((E, N), -1, np.int32)         # [E, N] nearest sensed free item, -1 = none
        self.target_dist = np.zeros((E, N), np.float64)     # [E, N] distance to it
        self._order = np.zeros((E, self._side ** 2), np.int64)  # [E, cells] scratch permutation
        p = np.zeros(fk.N_PARAMS, np.float64)
        p[fk.P_ARENA] = w.arena
        p[fk.P_RADIUS] = config.agent_radius
        p[fk.P_SPACING] = config.spawn_spacing
        p[fk.P_VMAX] = config.max_speed
        p[fk.P_NEST_MARGIN] = config.nest_margin
        p[fk.P_NEST_SCALE] = config.nest_obs_scale
        p[fk.P_CAPACITY] = config.capacity
        p[fk.P_DELIVERY] = config.delivery_reward
        p[fk.P_PICKUP] = config.pickup_reward
        p[fk.P_COLL] = config.collision_penalty
        p[fk.P_ONSET] = config.collision_onset_penalty
        self._params = np.repeat(p[None], E, axis=0)         # [E, P] each world's settings (curricula)
        self.set_shaping_scale(1.0)

    # ------------------------------------------------------------------ spec
    def observation_space(self) -> spaces.Box:
        """Lidar [0, 1], ego velocity [-1, 1], K item slots (position [-1, 1], mask [0, 1]), load
        [0, 1], nest vector [-1, 1], inside-nest flag [0, 1]."""
        R, K = self.config.n_rays, self.config.n_item_obs
        slot_lo = np.array([-1, -1, 0], np.float32)
        slot_hi = np.array([1, 1, 1], np.float32)
        low = np.concatenate([np.zeros(R), -np.ones(2), np.tile(slot_lo, K), [0, -1, -1, 0]]).astype(np.float32)
        high = np.concatenate([np.ones(R), np.ones(2), np.tile(slot_hi, K), [1, 1, 1, 1]]).astype(np.float32)
        return spaces.Box(low=low, high=high, dtype=np.float32)

    def action_space(self) -> spaces.Box:
        """Left and right wheel power."""
        return spaces.Box(low=-1.0, high=1.0, shape=(2,), dtype=np.float32)

    def _check_room(self, arena: float, n_agents: int) -> None:
        """Refuse arenas that cannot hold the robots' lattice, the nest or the items."""
        cfg = self.config
        if self._side ** 2 < n_agents:
            raise ConfigError(
                f"arena of {arena:.1f} m is too small for {n_agents} agents: a lattice of spawn_spacing "
                f"{cfg.spawn_spacing} m has only {self._side ** 2} cells; raise arena_size or area_per_agent, or "
                f"lower n_agents or spawn_spacing")
        if 2 * cfg.nest_margin >= arena:
            raise ConfigError(f"arena of {arena:.1f} m is too small for the nest: nest_margin {cfg.nest_margin} m "
                              f"on both sides leaves no room; raise arena_size or lower nest_margin")
        if 2 * cfg.item_margin >= arena:
            raise ConfigError(f"arena of {arena:.1f} m is too small for items: item_margin {cfg.item_margin} m "
                              f"on both sides leaves no room; raise arena_size or lower item_margin")
        free = (arena - 2 * cfg.item_margin) ** 2 - math.pi * (cfg.nest_radius + cfg.nest_clearance) ** 2
        need = cfg.n_items * max(cfg.item_spacing, 2 * cfg.item_radius) ** 2 \
            + n_agents * math.pi * (cfg.agent_radius + cfg.item_radius + 0.05) ** 2
        if need > 0.5 * free:
            raise ConfigError(
                f"{cfg.n_items} items do not fit a {arena:.1f} m arena with {n_agents} robots: they need about "
                f"{need:.1f} m^2 of the {free:.1f} m^2 outside the nest and margins (at most half of it); lower "
                f"n_items or item_spacing, or raise arena_size")

    # ------------------------------------------------------------------ episodes
    def reset(self, mask: np.ndarray | None = None) -> None:
        w = self.world
        if mask is None:
            mask = np.ones(w.num_worlds, np.bool_)
        a = w.arena
        fk.reset_worlds(mask, self.rng, self._params, self._side, w.pos, w.vel, w.theta, w.omega, w.active,
                        self._order, self.nest.pos)
        w.walls[mask, :4] = np.array([[0, 0, a, 0], [a, 0, a, a], [a, a, 0, a], [0, a, 0, 0]], np.float32)
        w.n_walls[mask] = 4
        w.contact[mask] = False
        self.prev_contact[mask] = False
        w.sync(mask)
        self.items.scatter(mask, self.config.n_items, self.rng, self.nest)
        self._refresh()

    def respawn(self, mask: np.ndarray) -> None:
        w = self.world
        self.items.release(mask, self.rng, self.nest)
        fk.respawn_agents(mask, self.rng, self._params, w.pos, w.vel, w.theta, w.omega, w.active)
        self.prev_contact[mask] = False
        w.sync(mask.any(axis=1))
        self._refresh()

    def remove(self, mask: np.ndarray) -> None:
        """The robots leave; what they carry goes back to clear places on the floor."""
        super().remove(mask)
        self.items.release(mask, self.rng, self.nest)

    def _refresh(self) -> None:
        """Lidar, item sensing and observations from the current state (after a reset or respawn)."""
        w = self.world
        w.refresh_lidar()
        self.items.sense()
        self._agents(False)

    def _agents(self, with_reward: bool) -> None:
        w, it = self.world, self.items
        fk.agent_phase(with_reward, w.pos, w.vel, w.theta, w.active, w.contact, self.prev_contact, w.lidar,
                       it.sensed, it.sensed_index, it.pos, it.free, it.load, self.prev_load, it.delivered,
                       it.picked, it.world_delivered, self.nest.pos, self.nest.radius, self._params,
                       self.nest_dist, self.target, self.target_dist, self.reward, self.stats, self.obs)

    def step(self, actions: np.ndarray) -> None:
        w = self.world
        w.step(actions)
        np.copyto(self.prev_load, self.items.load)
        self.items.update(self.rng, self.nest)
        self.items.sense()
        self._agents(True)

    # ------------------------------------------------------------------ policies and drawing
    def heuristic(self, obs: np.ndarray) -> np.ndarray:
        """Go to the nearest sensed free item, carry it to the nest (explore on a spiral when no item
        is in sight), with lidar avoidance."""
        return foraging_heuristic(obs, self.config)

    def draw(self, canvas, world_index: int) -> None:
        """The nest (orange ring), free items (small green discs) and a yellow halo around every robot
        that carries an item (scenario drawings lie under the robots, so a carried item would be hidden)."""
        e, it, w = world_index, self.items, self.world
        canvas.ring(self.nest.pos[e, 0], self.nest.radius[e, 0], (230, 150, 20))
        for m in np.flatnonzero(it.free[e]):
            canvas.disc(it.pos[e, m], it.item_radius, (60, 200, 90))
        for i in np.flatnonzero((it.load[e] > 0) & w.active[e]):
            canvas.ring(w.pos[e, i], w.radius + 2 * it.item_radius, (240, 220, 60), width_frac=0.3)


def foraging_heuristic(obs: np.ndarray, config: ForagingConfig) -> np.ndarray:
    """Scripted forager for the foraging scenario, batched over any leading axes of ``obs`` (compiled).

    In the robot's frame the target is the nest when the robot is full (or carries something and
    sees no item), else the nearest sensed free item, else it explores on a wide left spiral; lidar
    hits within 0.4 m of the body push it away (less when it goes for an item, which may lie near a
    wall). It turns towards the desired direction and drives forward in proportion to cos(heading
    error).
    """
    obs = np.asarray(obs, np.float32)
    flat = np.ascontiguousarray(obs.reshape(-1, obs.shape[-1]))
    out = np.empty((flat.shape[0], 2), np.float32)
    fk.heuristic_kernel(flat, config.n_rays, config.n_item_obs, float(config.lidar_range),
                        float(config.agent_radius), out)
    return out.reshape(obs.shape[:-1] + (2,))
