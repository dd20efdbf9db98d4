"""GIFs of the swarm: record an episode to frames, compose two side by side, write and read GIFs.

``record_episode`` drives a scenario with a policy (see ``render.episode`` for the protocol) and
renders one frame per step; ``side_by_side`` puts two recordings next to each other under labels
(the untrained and the trained swarm); ``write_gif`` saves frames; ``write_run_videos`` writes the
three GIFs of a training run into its ``videos/`` folder. Pillow (writing) and imageio (reading) are
imported lazily: ``pip install entropy-engine[render]``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..optional import optional_import
from .episode import EpisodeResult, run_episode
from .renderer import BACKGROUND, TEXT_COLOR, Renderer


def _import_imageio():
    return optional_import("imageio.v3", "reading GIFs", "render", pip_name="imageio")


def _import_pillow():
    return optional_import("PIL.Image", "writing GIFs", "render", pip_name="pillow")


def write_gif(path: str | Path, frames: Sequence[np.ndarray], fps: float = 10.0, loop: int = 0) -> Path:
    """Write uint8 frames [H, W, 3] (all of one size) as an animated GIF; creates parent folders.

    ``fps`` is rounded to GIF's 10 ms frame-delay resolution; ``loop=0`` repeats forever.
    Identical consecutive frames are merged by the GIF encoder into one longer frame.

    All frames share one 256-colour palette computed from a sample of them (rendered frames have
    few colours), which is about ten times faster than imageio's per-frame adaptive palette.
    The encoder is Pillow's, the one imageio itself uses for GIFs.
    """
    if len(frames) == 0:
        raise ValueError("write_gif needs at least one frame")
    shape = np.shape(frames[0])
    if len(shape) != 3 or shape[-1] != 3:
        raise ValueError(f"frames must be [H, W, 3] images, got shape {shape}")
    if any(np.shape(f) != shape for f in frames):
        raise ValueError("all frames of a GIF must have the same size")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    Image = _import_pillow()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    picks = np.unique(np.linspace(0, len(frames) - 1, min(len(frames), 12)).astype(int))
    mosaic = np.concatenate([np.asarray(frames[i], np.uint8) for i in picks], axis=0)
    palette = Image.fromarray(mosaic).quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                               dither=Image.Dither.NONE)
    images = [Image.fromarray(np.ascontiguousarray(f, np.uint8)).quantize(palette=palette, dither=Image.Dither.NONE)
              for f in frames]
    duration_ms = max(10, int(round(100.0 / fps)) * 10)
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms,
                   loop=loop, optimize=False)
    return path


def read_gif(path: str | Path) -> np.ndarray:
    """All frames of a GIF as uint8 [T, H, W, 3]."""
    frames = _import_imageio().imread(Path(path), index=None, extension=".gif")
    frames = np.asarray(frames)
    if frames.ndim == 3:            # a single frame
        frames = frames[None]
    return frames[..., :3]


def _label_strip(text: str, width: int, height: int) -> np.ndarray:
    """A [height, width, 3] strip with ``text`` centred (Pillow, which imageio depends on)."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(img)
    try:
        font = ImageFont.load_default(size=max(10, int(height * 0.6)))
    except TypeError:  # Pillow < 10.1 has one fixed-size default font
        font = ImageFont.load_default()
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    xy = ((width - (right - left)) // 2 - left, (height - (bottom - top)) // 2 - top)
    draw.text(xy, text, fill=TEXT_COLOR, font=font)
    return np.asarray(img, np.uint8)


def side_by_side(frames_a: Sequence[np.ndarray], frames_b: Sequence[np.ndarray],
                 labels: Sequence[str] | None = ("untrained", "trained"), gap: int = 8) -> list[np.ndarray]:
    """Frames of ``a`` and ``b`` next to each other, ``labels`` above them.

    The shorter recording holds its last frame until the longer one ends; frames of different
    heights are padded with the background colour.
    """
    if len(frames_a) == 0 or len(frames_b) == 0:
        raise ValueError("side_by_side needs at least one frame on each side")
    ha, wa = np.asarray(frames_a[0]).shape[:2]
    hb, wb = np.asarray(frames_b[0]).shape[:2]
    h = max(ha, hb)
    label_h = max(16, h // 16) if labels else 0
    width = wa + gap + wb
    header = None
    if labels:
        if len(labels) != 2:
            raise ValueError(f"labels must be two strings, got {labels!r}")
        header = np.full((label_h, width, 3), BACKGROUND, np.uint8)
        header[:, :wa] = _label_strip(str(labels[0]), wa, label_h)
        header[:, wa + gap:] = _label_strip(str(labels[1]), wb, label_h)
    out = []
    for t in range(max(len(frames_a), len(frames_b))):
        canvas = np.full((label_h + h, width, 3), BACKGROUND, np.uint8)
        if header is not None:
            canvas[:label_h] = header
        fa = np.asarray(frames_a[min(t, len(frames_a) - 1)])
        fb = np.asarray(frames_b[min(t, len(frames_b) - 1)])
        canvas[label_h:label_h + fa.shape[0], :wa] = fa[..., :3]
        canvas[label_h:label_h + fb.shape[0], wa + gap:] = fb[..., :3]
        out.append(canvas)
    return out


def record_episode(env: Any, policy: Any, steps: int | None = None, size: int = 384, show_lidar: bool = False,
                   trails: int = 0, frame_skip: int = 1, deterministic: bool = True, caption: str | None = "",
                   hold: int = 5, reset: bool = True, seed: int | None = None, return_result: bool = False,
                   show_comm: bool = False):
    """Play one episode (``render.episode.run_episode``) and render every ``frame_skip``-th step.

    Args:
        env: a one-world env from ``render.episode.episode_env`` (it is reset and driven).
        policy: an object with ``initial_state(n)`` / ``act(obs, state, deterministic)``, or a
            callable ``obs [N, D] -> actions [N, A]``.
        steps: step limit (default: the scenario's ``max_steps``); the episode also ends when
            every agent has left.
        caption: text drawn in each frame's corner, followed by the step and how many agents'
            episodes have ended; ``None`` for no caption.
        hold: the last frame is repeated this many extra times so that loops pause at the end.
        seed: reseed the env first, so that two policies can be recorded on one layout.
        return_result: also return the ``EpisodeResult``.
        show_comm: draw who hears whom and the messages (``Renderer``; needs ``comm_dim > 0``).

    Returns:
        list of uint8 [size, size, 3] frames, or ``(frames, result)`` with ``return_result``.
    """
    if frame_skip < 1:
        raise ValueError(f"frame_skip must be >= 1, got {frame_skip!r}")
    renderer = Renderer(env, render_mode="rgb_array", size=size, show_lidar=show_lidar, trails=trails,
                        show_comm=show_comm)
    frames: list[np.ndarray] = []
    limit = env.max_steps if steps is None else int(steps)

    def on_step(t: int, res: EpisodeResult) -> None:
        if t == 0:
            renderer.clear_trails()
        last = t == limit or env.over
        if t % frame_skip == 0 or last:
            text = None
            if caption is not None:
                text = f"{caption}  " if caption else ""
                text += f"step {t}  done {res.ended}/{res.n_agents}"
            frames.append(renderer.render(text=text))

    result = run_episode(env, policy, max_steps=limit, deterministic=deterministic, reset=reset, seed=seed,
                         on_step=on_step)
    renderer.close()
    frames.extend([frames[-1]] * max(0, int(hold)))
    return (frames, result) if return_result else frames


def write_run_videos(videos_dir: str | Path, start_frames: Sequence[np.ndarray],
                     end_frames: Sequence[np.ndarray], fps: float = 10.0,
                     labels: Sequence[str] = ("untrained", "trained")) -> dict[str, Path]:
    """The GIFs of a training run: ``start.gif``, ``end.gif`` and ``comparison.gif`` in ``videos_dir``."""
    videos_dir = Path(videos_dir)
    return {
        "start": write_gif(videos_dir / "start.gif", start_frames, fps),
        "end": write_gif(videos_dir / "end.gif", end_frames, fps),
        "comparison": write_gif(videos_dir / "comparison.gif", side_by_side(start_frames, end_frames, labels), fps),
    }
