"""Pygame renderer of one world of a scenario: a window (``human``) or RGB frames (``rgb_array``).

What is drawn, back to front: the arena floor, what the scenario draws through its ``draw(canvas,
world_index)`` hook (navigation: every active agent's goal as a ring in the agent's colour; the
renderer is the canvas, see ``ring``, ``disc``, ``segment``), optional trails (the last ``trails``
rendered positions) and lidar rays, the walls, and the agents as discs with a heading mark (a dark
line from near the centre to the front edge). A scenario's scripted (non-learning) robots are
drawn black with a white heading mark (``SCRIPTED_COLOR``).
An agent in contact with a wall or robot in the last step is filled red; agents that are no
longer active (reached their goal and left the world) are not drawn, nor are their goals.

With ``show_comm`` (an env with a communication channel, ``comm_dim > 0``) the renderer also shows
the radio: a thin grey line between every two active robots that can hear each other this step
(within ``comm_range`` and, with ``comm_occlusion``, not across a wall; random loss is not drawn),
under the robots, and a small disc at each robot's centre coloured by the first entry of the
message it sent in the last step: continuous values from blue (-1) through white (0) to orange
(+1), tokens by ``TOKEN_COLORS`` (token k: ``TOKEN_COLORS[k % 8]``). Off by default.

``rgb_array`` draws on an off-screen ``pygame.Surface`` and needs no display (tests run with
``SDL_VIDEODRIVER=dummy``); ``human`` opens a window with ``pygame.display`` on the first call.
pygame is imported lazily: ``pip install entropy-engine[render]``.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..optional import optional_import

BACKGROUND = (245, 245, 240)        # outside the arena and its floor
WALL_COLOR = (40, 40, 48)
OUTLINE_COLOR = (30, 30, 30)
HEADING_COLOR = (20, 20, 20)
COLLISION_COLOR = (220, 30, 30)
TEXT_COLOR = (20, 20, 20)
RAY_HIT_COLOR = (90, 90, 90)
SCRIPTED_COLOR = (25, 25, 25)       # a scenario's scripted robots (Scenario.n_scripted)
SCRIPTED_HEADING = (250, 250, 250)
LINK_COLOR = (150, 150, 165)        # who hears whom (show_comm)
MSG_LOW, MSG_MID, MSG_HIGH = (0, 90, 255), (255, 255, 255), (255, 140, 0)   # message -1, 0, +1
TOKEN_COLORS = ((0, 0, 0), (255, 255, 255), (255, 220, 0), (255, 0, 255), (0, 230, 230), (120, 255, 0),
                (255, 120, 0), (0, 60, 255))
# distinguishable colours, none of them red (red marks collisions)
PALETTE = (
    (31, 119, 180), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (0, 80, 160),
    (0, 128, 96), (102, 51, 153),
)


def import_pygame():
    """pygame, imported on first use, with an install hint if it is missing."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    return optional_import("pygame", "rendering", "render")


def agent_color(i: int) -> tuple[int, int, int]:
    """Colour of agent ``i`` (the palette repeats every 12 agents)."""
    return PALETTE[int(i) % len(PALETTE)]


def _blend(color, toward=BACKGROUND, amount: float = 0.6) -> tuple[int, int, int]:
    return tuple(int(round(c + (t - c) * amount)) for c, t in zip(color, toward))


def message_color(value: float, vocab: int = 0) -> tuple[int, int, int]:
    """Colour of a message entry: token ``value`` of a vocabulary (``vocab`` > 0) or a continuous
    value in [-1, 1] (blue, white, orange)."""
    if vocab:
        return TOKEN_COLORS[int(value) % len(TOKEN_COLORS)]
    v = float(np.clip(value, -1.0, 1.0))
    return _blend(MSG_MID, MSG_HIGH if v > 0 else MSG_LOW, abs(v))


def comm_links(pos: np.ndarray, active: np.ndarray, walls: np.ndarray, comm_range: float,
               occlusion: bool) -> np.ndarray:
    """Pairs (i, j), i < j, int [L, 2], of active agents within ``comm_range`` of each other (centre
    to centre) whose link crosses none of ``walls`` [W, 4] when ``occlusion``: who can hear whom in
    one world (pos [N, 2], active [N]), vectorised over the pairs and walls."""
    pos = np.asarray(pos, np.float64)
    i, j = np.triu_indices(len(pos), 1)
    d = pos[j] - pos[i]
    keep = np.asarray(active, bool)[i] & np.asarray(active, bool)[j] & \
        ((d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1]) <= float(comm_range) ** 2)
    i, j = i[keep], j[keep]
    if occlusion and len(walls) and len(i):
        p0, p1 = pos[i][:, None], pos[j][:, None]                          # [L, 1, 2]
        w = np.asarray(walls, np.float64)[None]                           # [1, W, 4]
        ax, ay, bx, by = w[..., 0], w[..., 1], w[..., 2], w[..., 3]
        d1 = (bx - ax) * (p0[..., 1] - ay) - (by - ay) * (p0[..., 0] - ax)
        d2 = (bx - ax) * (p1[..., 1] - ay) - (by - ay) * (p1[..., 0] - ax)
        d3 = (p1[..., 0] - p0[..., 0]) * (ay - p0[..., 1]) - (p1[..., 1] - p0[..., 1]) * (ax - p0[..., 0])
        d4 = (p1[..., 0] - p0[..., 0]) * (by - p0[..., 1]) - (p1[..., 1] - p0[..., 1]) * (bx - p0[..., 0])
        clear = ~((d1 * d2 < 0.0) & (d3 * d4 < 0.0)).any(axis=1)
        i, j = i[clear], j[clear]
    return np.stack([i, j], axis=1).astype(np.int64)


class Renderer:
    """Draws world ``world_index`` of ``scenario`` (or of ``scenario.scenario`` for an env).

    Args:
        scenario: a scenario (``.world`` and the ``draw`` hook), or an env holding one as
            ``.scenario`` (``BatchEnv``, the PettingZoo env).
        world_index: which of the batched worlds to draw.
        render_mode: ``"rgb_array"`` (``render()`` returns uint8 [H, W, 3]) or ``"human"``
            (``render()`` draws into a window and returns None).
        size: side of the square image in pixels.
        show_lidar: draw every active agent's lidar rays, hit points as dots.
        trails: draw each agent's last ``trails`` rendered positions (0: no trails).
        fps: ``human`` mode waits so that at most ``fps`` frames are shown per second (0: no wait).
        show_comm: draw who hears whom and each agent's last message (``scenario`` must be an
            env with a communication channel: ``comm_dim > 0``).
    """

    metadata = {"render_modes": ["human", "rgb_array"]}

    def __init__(self, scenario: Any, world_index: int = 0, render_mode: str = "rgb_array", size: int = 512,
                 show_lidar: bool = False, trails: int = 0, fps: float = 10.0, show_comm: bool = False):
        if render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be 'human' or 'rgb_array', got {render_mode!r}")
        engine_channel = getattr(scenario, "channel", None)          # an env's EngineChannel (comm_dim > 0)
        if show_comm and engine_channel is None:
            raise ValueError("show_comm needs an env with a communication channel (comm_dim > 0), "
                             "e.g. --env comm_dim=4")
        self.channel = engine_channel.channel if show_comm else None  # core.channel.Channel
        self.links = np.zeros((0, 2), np.int64)                       # [L, 2] links of the last frame drawn
        scenario = getattr(scenario, "scenario", scenario)
        world = scenario.world
        if not 0 <= int(world_index) < world.num_worlds:
            raise ValueError(f"world_index {world_index} out of range for {world.num_worlds} worlds")
        if int(size) < 32:
            raise ValueError(f"size must be at least 32 pixels, got {size!r}")
        if int(trails) < 0:
            raise ValueError(f"trails must be >= 0, got {trails!r}")
        self.pg = import_pygame()
        self.scenario = scenario
        self.world = world
        self.world_index = int(world_index)
        self.render_mode = render_mode
        self.size = int(size)
        self.show_lidar = bool(show_lidar)
        self.fps = float(fps)
        self.margin = max(4, self.size // 64)
        self.scale = (self.size - 2 * self.margin) / float(world.arena)   # pixels per metre
        n = world.n_agents
        self.trails = int(trails)
        self._trail_pos = np.zeros((self.trails, n, 2), np.float32)   # [K, N, 2] ring buffer
        self._trail_ok = np.zeros((self.trails, n), np.bool_)         # [K, N] slot holds a position
        self._trail_next = 0
        self._surface = None
        self._window = None
        self._clock = None
        self._font = None
        self.is_open = True     # False once the window was closed by the user (human mode)

    # ------------------------------------------------------------------ geometry
    def world_to_pixel(self, xy) -> np.ndarray:
        """Pixel coordinates (column, row) as int [..., 2] of world points ``xy`` [..., 2] in metres.

        The world's y axis points up, the image's rows go down; ``frame[row, col]`` is the pixel.
        """
        xy = np.asarray(xy, np.float64)
        col = self.margin + xy[..., 0] * self.scale
        row = self.margin + (self.world.arena - xy[..., 1]) * self.scale
        return np.stack([np.floor(col), np.floor(row)], axis=-1).astype(np.int64)

    def _px(self, x: float, y: float) -> tuple[int, int]:
        c, r = self.world_to_pixel((x, y))
        return int(c), int(r)

    @property
    def agent_radius_px(self) -> int:
        return max(2, int(round(self.world.radius * self.scale)))

    # ------------------------------------------------------------------ drawing
    def clear_trails(self) -> None:
        """Forget the trails (call after a reset so that no trail jumps across the arena)."""
        self._trail_ok[:] = False
        self._trail_next = 0

    def _record_trail(self, pos: np.ndarray, active: np.ndarray) -> None:
        if self.trails:
            k = self._trail_next % self.trails
            self._trail_pos[k] = pos
            self._trail_ok[k] = active
            self._trail_next += 1

    def _draw_trails(self, surf) -> None:
        K = min(self._trail_next, self.trails)
        if K < 2:
            return
        order = [(self._trail_next - K + j) % self.trails for j in range(K)]   # oldest first
        pos = self._trail_pos[order]                       # [K, N, 2]
        ok = self._trail_ok[order]                         # [K, N]
        jump = np.linalg.norm(np.diff(pos, axis=0), axis=-1)                 # [K-1, N]
        link = ok[1:] & ok[:-1] & (jump < max(1.0, 10 * self.world.radius))  # respawns break a trail
        pix = self.world_to_pixel(pos)                     # [K, N, 2]
        width = max(1, self.agent_radius_px // 3)
        for i in np.flatnonzero(link.any(axis=0)):
            color = _blend(agent_color(i), amount=0.45)
            for j in np.flatnonzero(link[:, i]):
                self.pg.draw.line(surf, color, pix[j, i], pix[j + 1, i], width)

    def _draw_lidar(self, surf, pos, theta, active) -> None:
        w, wi = self.world, self.world_index
        rng = float(w.config.lidar_range)
        ray_cs = np.asarray(w.ray_cs, np.float64)          # [R, 2] ray directions in the robot frame
        for i in np.flatnonzero(active):
            c, s = np.cos(theta[i]), np.sin(theta[i])
            d = np.stack([c * ray_cs[:, 0] - s * ray_cs[:, 1], s * ray_cs[:, 0] + c * ray_cs[:, 1]], axis=1)
            frac = np.asarray(w.lidar[wi, i], np.float64)  # [R] normalised distances
            ends = self.world_to_pixel(pos[i] + d * (frac[:, None] * rng))
            start = self._px(*pos[i])
            free_color = _blend(agent_color(i), amount=0.85)   # rays that hit nothing: faint
            hit_color = _blend(agent_color(i), amount=0.5)
            for r in range(len(frac)):
                hit = frac[r] < 0.999
                self.pg.draw.line(surf, hit_color if hit else free_color, start, ends[r], 1)
                if hit:
                    self.pg.draw.circle(surf, RAY_HIT_COLOR, ends[r], 2)

    def draw(self, surf, text: str | None = None) -> None:
        """Draw the current state of the world onto the pygame surface ``surf``."""
        pg, w, wi = self.pg, self.world, self.world_index
        pos = np.asarray(w.pos[wi], np.float64)            # [N, 2]
        theta = np.asarray(w.theta[wi], np.float64)        # [N]
        active = np.asarray(w.active[wi], np.bool_)        # [N]
        contact = np.asarray(w.contact[wi], np.bool_)      # [N]
        self._record_trail(pos, active)
        surf.fill(BACKGROUND)
        r_px = self.agent_radius_px
        self._surf = surf
        self.scenario.draw(self, wi)
        if self.trails:
            self._draw_trails(surf)
        if self.show_lidar:
            self._draw_lidar(surf, pos, theta, active)
        if self.channel is not None:
            self.links = self._draw_links(surf, pos, active)
        wall_w = max(2, int(round(0.05 * self.scale)))
        for x1, y1, x2, y2 in np.asarray(w.walls[wi, : int(w.n_walls[wi])], np.float64):
            pg.draw.line(surf, WALL_COLOR, self._px(x1, y1), self._px(x2, y2), wall_w)
        # heading mark: from 40% of the radius (at least 1.5 px + half its width, so that the
        # centre pixel keeps the agent's colour) to the rim
        head_w = max(1, r_px // 4)
        head_start = max(0.4 * r_px, 1.5 + head_w / 2) / self.scale
        head_end = max(0.95 * r_px, head_start * self.scale + 1.0) / self.scale
        n_learners = w.n_agents - int(getattr(self.scenario, "n_scripted", 0))
        for i in np.flatnonzero(active):
            centre = self._px(*pos[i])
            scripted = i >= n_learners
            fill = SCRIPTED_COLOR if scripted else COLLISION_COLOR if contact[i] else agent_color(i)
            pg.draw.circle(surf, fill, centre, r_px)
            if r_px >= 4:
                pg.draw.circle(surf, OUTLINE_COLOR, centre, r_px, 1)
            h = np.array([np.cos(theta[i]), np.sin(theta[i])])
            pg.draw.line(surf, SCRIPTED_HEADING if scripted else HEADING_COLOR, self._px(*(pos[i] + head_start * h)),
                         self._px(*(pos[i] + head_end * h)), head_w)
        if self.channel is not None:
            self._draw_messages(surf, pos, active)
        if text:
            self._draw_text(surf, text)

    def _draw_links(self, surf, pos, active) -> np.ndarray:
        """Grey lines between the agents that can hear each other; returns the pairs [L, 2]."""
        w, wi, cfg = self.world, self.world_index, self.channel.config
        links = comm_links(pos, active & self.channel.senders, np.asarray(w.walls[wi, :int(w.n_walls[wi])]), cfg.comm_range,
                           cfg.comm_occlusion)
        pix = self.world_to_pixel(pos)
        for i, j in links:
            self.pg.draw.line(surf, LINK_COLOR, pix[i], pix[j], 1)
        return links

    def last_messages(self) -> tuple[np.ndarray, np.ndarray]:
        """The first entry of the message each agent of the drawn world sent in the last step [N]
        (the token with ``comm_vocab``) and whether it sent one [N] (False before the first step)."""
        ch, wi = self.channel, self.world_index
        slot = (ch.head - 1) % (ch.delay + 1)
        msgs = ch.msgs[slot, wi]                                    # [N, comm_values]
        first = msgs[:, :ch.vocab].argmax(1).astype(np.float32) if ch.vocab else msgs[:, 0].copy()
        return first, ch.valid[slot, wi].copy()

    def _draw_messages(self, surf, pos, active) -> None:
        first, sent = self.last_messages()
        r = max(2, int(round(0.38 * self.agent_radius_px)))
        for i in np.flatnonzero(active & sent):
            centre = self._px(*pos[i])
            self.pg.draw.circle(surf, message_color(first[i], self.channel.vocab), centre, r)
            if r >= 3:
                self.pg.draw.circle(surf, OUTLINE_COLOR, centre, r, 1)

    # ------------------------------------------------------------------ the canvas of scenario.draw
    agent_color = staticmethod(agent_color)

    def ring(self, xy, radius: float, color, width_frac: float = 0.25) -> None:
        """A circle outline at ``xy`` (metres) of ``radius`` metres (at least 3 px)."""
        r_px = max(3, int(round(float(radius) * self.scale)))
        self.pg.draw.circle(self._surf, color, self._px(*xy), r_px, max(1, int(r_px * width_frac)))

    def disc(self, xy, radius: float, color) -> None:
        """A filled circle at ``xy`` (metres) of ``radius`` metres (at least 2 px)."""
        self.pg.draw.circle(self._surf, color, self._px(*xy), max(2, int(round(float(radius) * self.scale))))

    def segment(self, a, b, color, width: float = 0.05) -> None:
        """A line from ``a`` to ``b`` (metres), ``width`` metres wide (at least 1 px)."""
        self.pg.draw.line(self._surf, color, self._px(*a), self._px(*b), max(1, int(round(width * self.scale))))

    def _draw_text(self, surf, text: str) -> None:
        if self._font is None:
            try:
                self.pg.font.init()
                self._font = self.pg.font.Font(None, max(14, self.size // 28))
            except Exception:  # no font support in this pygame build: skip the caption
                self._font = False
        if self._font:
            label = self._font.render(text, True, TEXT_COLOR, BACKGROUND)
            surf.blit(label, (self.margin + 4, self.margin + 4))

    # ------------------------------------------------------------------ output
    def render(self, text: str | None = None) -> np.ndarray | None:
        """Draw the world; ``rgb_array``: return uint8 [size, size, 3], ``human``: show it, return None.

        ``text`` is an optional caption drawn in the top-left corner.
        """
        pg = self.pg
        if self.render_mode == "human":
            return self._render_window(text)
        if self._surface is None:
            self._surface = pg.Surface((self.size, self.size))
        self.draw(self._surface, text)
        return np.ascontiguousarray(pg.surfarray.array3d(self._surface).transpose(1, 0, 2))

    def _render_window(self, text: str | None) -> None:
        pg = self.pg
        if self._window is None:
            pg.display.init()
            try:
                self._window = pg.display.set_mode((self.size, self.size))
            except pg.error as exc:
                raise RuntimeError(
                    f"cannot open a window ({exc}); use render_mode='rgb_array' (or `entropy play --gif`)"
                ) from exc
            pg.display.set_caption("Entropy Engine")
            self._clock = pg.time.Clock()
        for event in pg.event.get():
            if event.type == pg.QUIT or (event.type == pg.KEYDOWN and event.key in (pg.K_ESCAPE, pg.K_q)):
                self.is_open = False
        if not self.is_open:
            return None
        self.draw(self._window, text)
        pg.display.flip()
        if self.fps > 0:
            self._clock.tick(self.fps)
        return None

    def close(self) -> None:
        """Close the window (if any); the renderer can still draw ``rgb_array`` frames afterwards."""
        if self._window is not None:
            self.pg.display.quit()
            self._window = None
        self.is_open = False if self.render_mode == "human" else self.is_open

    def __enter__(self) -> "Renderer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
