"""ShmBatchEnv: ``BatchEnv`` worlds stepped in worker processes, exchanging arrays through shared memory.

This is how the pymunk backend uses several cores (the original ran 8 processes x 10 agents);
the compiled backend uses threads instead. The public interface is ``BatchEnv``'s: ``reset`` and
``step`` return ``obs [S, D]``, ``reward [S]``, ``terminated [S]``, ``truncated [S]`` and an
``info`` dict of arrays (``terminal_obs``, episode statistics, ...), all views of one
``multiprocessing.shared_memory`` segment that the next call overwrites.

How it works: worker ``k`` owns a contiguous block of worlds (sizes differ by at most one) and
runs an ordinary ``BatchEnv`` on them. Each step the main process writes the validated actions
into the shared segment and sends every worker one byte; each worker steps, copies its results
into its slice of the segment and answers one byte. Nothing is pickled per step (only at start-up
and on errors). Each world keeps the random stream it would have in a single ``BatchEnv`` with the
same seed, so ``ShmBatchEnv(..., workers=W)`` produces exactly the trajectories of
``BatchEnv(...)`` for every ``W``.

Failures: a worker that raises, dies or does not answer within ``timeout`` seconds makes the call
raise ``RuntimeError`` naming the worker (with its traceback when there is one); the env is then
shut down. ``close()`` (also run on garbage collection and at interpreter exit) stops and joins
every worker (terminating or killing it if it does not exit) and unlinks the segment.

Processes are started with the ``"spawn"`` context by default: forking a process whose numba
OpenMP threads are running is unsafe. Scripts that create this env must therefore guard their
entry point with ``if __name__ == "__main__":``.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import secrets
import struct
import time
import weakref
from multiprocessing import shared_memory
from multiprocessing.connection import wait
from typing import Any, Literal

import numpy as np

from ..config import build_config
from ..core.rng import check_seed
from ..scenarios import scenario_class
from ..scenarios.base import check_shaping_scale
from .shm_protocol import CLOSE, ERROR, RESET, SEED, SHAPING, STEP, encode_seed, layout as segment_layout, views
from .comm import heuristic_with_channel
from .shm_worker import serve
from .validate import action_bounds, check_actions

def _shutdown(procs: list, conns: list, shm_box: list, grace: list) -> None:
    """Stop every worker (politely within ``grace[0]`` s, then terminate, then kill), close pipes,
    unlink the segment."""
    for conn, proc in zip(conns, procs):
        if proc.is_alive():
            try:
                conn.send_bytes(CLOSE)
            except Exception:
                pass
    deadline = time.monotonic() + grace[0]
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
            proc.join(0.5)
        if proc.is_alive():
            proc.kill()
            proc.join(5.0)
    for conn in conns:
        conn.close()
    for proc in procs:
        try:
            proc.close()
        except ValueError:
            pass
    procs.clear()
    conns.clear()
    for shm in shm_box:
        try:
            shm.close()
        except BufferError:
            pass  # arrays handed out still map it; the memory goes when they do
        try:
            shm.unlink()
        except FileNotFoundError:
            pass
    shm_box.clear()


class ShmBatchEnv:
    """``BatchEnv`` over ``num_worlds`` worlds split across ``workers`` processes (shared memory)."""

    def __init__(self, scenario: str = "navigation", num_worlds: int = 8, n_agents: int = 10,
                 seed: int | None = None, on_goal: Literal["respawn", "deactivate"] = "respawn",
                 workers: int = 2, timeout: float = 60.0, start_timeout: float = 300.0,
                 threads_per_worker: int = 1, context: str = "spawn", **config: Any):
        if not isinstance(workers, (int, np.integer)) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        if not isinstance(num_worlds, (int, np.integer)) or num_worlds < workers:
            raise ValueError(f"num_worlds ({num_worlds!r}) must be an integer >= workers ({workers})")
        if on_goal not in ("respawn", "deactivate"):
            raise ValueError(f"on_goal must be 'respawn' or 'deactivate', got {on_goal!r}")
        self._cls = scenario_class(scenario)
        self._config = build_config(self._cls.Config, config)  # config errors surface here, not in a worker
        self.scenario_name = scenario
        self.on_goal = on_goal
        self.num_workers = W = int(workers)
        self.num_worlds = E = int(num_worlds)
        self.n_agents = N = int(n_agents)
        self.num_slots = S = E * N
        self.timeout = float(timeout)
        seed = check_seed(seed)
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2 ** 63))
        bounds = np.linspace(0, E, W + 1).round().astype(int)  # worker k: worlds [bounds[k], bounds[k+1])
        self._bounds = bounds
        self._procs: list = []
        self._conns: list = []
        self._shm: list = []
        self._grace = [5.0]  # seconds a worker gets to exit on close (less after a failure)
        self._finalizer = weakref.finalize(self, _shutdown, self._procs, self._conns, self._shm, self._grace)
        ctx = mp.get_context(context)
        try:
            for k in range(W):
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=serve, name=f"entropy-shm-worker-{k}", daemon=True,
                                   args=(child, self._cls, int(bounds[k]), int(bounds[k + 1]), E, N, seed, on_goal,
                                         dict(config), int(threads_per_worker)))
                proc.start()
                child.close()
                self._procs.append(proc)
                self._conns.append(parent)
            metas = self._gather_pickled(start_timeout, "start")
            meta = metas[0]
            self.observation_space = meta["observation_space"]
            self.action_space = meta["action_space"]
            self.agent_action_space = meta["agent_action_space"]
            self.tokens = meta["tokens"]
            self.stat_names = tuple(meta["stat_names"])
            self.success_stat = meta["success_stat"]
            self.metrics = dict(meta["metrics"])
            self.info_keys = tuple(meta["info_keys"])
            self.obs_dim = D = int(self.observation_space.shape[0])
            self.act_dim = A = int(self.action_space.shape[0])
            self.max_steps = int(meta["max_steps"])
            fields = {"actions": ((S, A), "<f4"), "obs": ((S, D), "<f4"), "reward": ((S,), "<f4"),
                      "terminated": ((S,), "|b1"), "truncated": ((S,), "|b1")}
            for key, (dtype, tail, kind) in meta["info"].items():
                fields["info_" + key] = (((E,) if kind == "world" else (S,)) + tuple(tail), dtype)
            layout, size = segment_layout(fields)
            name = f"entropy_{os.getpid()}_{secrets.token_hex(4)}"
            self._shm.append(shared_memory.SharedMemory(name=name, create=True, size=size))
            for conn in self._conns:
                conn.send_bytes(pickle.dumps((name, layout)))
            self._gather_pickled(start_timeout, "attach")
        except BaseException:
            self._grace[0] = 0.5
            self._finalizer()
            raise
        arrays = views(self._shm[0].buf, layout)
        self._actions = arrays["actions"]
        self.obs = arrays["obs"]
        self._reward = arrays["reward"]
        self._terminated = arrays["terminated"]
        self._truncated = arrays["truncated"]
        self.info: dict[str, np.ndarray] = {k[5:]: v for k, v in arrays.items() if k.startswith("info_")}
        self.terminal_obs = self.info["terminal_obs"]
        self._shapes = ((S, A), (E, N, A))
        self._bounds_of_actions = action_bounds(self.action_space, (S, A))
        self._needs_reset = True

    # ------------------------------------------------------------------ BatchEnv interface
    @property
    def config(self):
        return self._config

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def seed(self, seed: int | None) -> None:
        """Restart every world's random stream from ``seed`` (as ``BatchEnv.seed``)."""
        if seed is not None:
            self._command(SEED + encode_seed(seed))

    def set_shaping_scale(self, scale: float) -> None:
        """Scale the scenario's optional reward-shaping terms in every worker."""
        self._command(SHAPING + struct.pack("<d", check_shaping_scale(scale)))

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Reset every world; returns the observation view [S, D]."""
        self._command(RESET + encode_seed(seed))
        self._needs_reset = False
        return self.obs

    def step(self, actions) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Step with actions [S, 2] (or [E, N, 2]); returns views overwritten by the next call."""
        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        if self.closed:
            raise RuntimeError("this ShmBatchEnv is closed")
        check_actions(actions, self._shapes, self._actions, *self._bounds_of_actions, self.tokens)
        self._command(STEP)
        return self.obs, self._reward, self._terminated, self._truncated, self.info

    def heuristic_actions(self) -> np.ndarray:
        """The scenario's scripted policy on the current observations, [S, 2]."""
        holder = type("_Holder", (), {"config": self._config})()
        return heuristic_with_channel(lambda obs: self._cls.heuristic(holder, obs), self.obs, self._config,
                                      self._cls.heuristic_uses_channel)

    def close(self) -> None:
        """Stop every worker and free the shared memory (safe to call twice)."""
        self._finalizer()

    def __enter__(self) -> "ShmBatchEnv":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        fin = getattr(self, "_finalizer", None)
        if fin is not None:
            fin()

    # ------------------------------------------------------------------ plumbing
    def _command(self, msg: bytes) -> None:
        if self.closed:
            raise RuntimeError("this ShmBatchEnv is closed")
        try:
            for k, conn in enumerate(self._conns):
                try:
                    conn.send_bytes(msg)
                except (BrokenPipeError, ConnectionResetError, OSError):
                    self._fail(k, "its pipe is closed")
            self._await(lambda k, conn: self._ack(k, conn), self.timeout, "step" if msg == STEP else "command")
        except BaseException:
            self._grace[0] = 0.5  # a worker failed: do not wait long for the others
            self._finalizer()
            raise

    def _ack(self, k: int, conn) -> None:
        msg = conn.recv_bytes()
        if msg[:1] == ERROR:
            exc, tb = pickle.loads(msg[1:])
            raise RuntimeError(f"worker {k} (pid {self._procs[k].pid}) raised {type(exc).__name__}: {exc}\n"
                               f"--- worker traceback ---\n{tb}") from exc

    def _gather_pickled(self, timeout: float, phase: str) -> list:
        out: list = [None] * len(self._conns)

        def receive(k, conn):
            msg = conn.recv_bytes()
            if msg[:1] == ERROR:
                exc, tb = pickle.loads(msg[1:])
                if isinstance(exc, ValueError):  # a config the scenario refused: the user's error
                    raise exc
                raise RuntimeError(f"worker {k} failed to {phase}: {type(exc).__name__}: {exc}\n{tb}") from exc
            out[k] = pickle.loads(msg)

        self._await(receive, timeout, phase)
        return out

    def _await(self, receive, timeout: float, what: str) -> None:
        """Call ``receive(k, conn)`` once per worker as answers arrive; fail on death or timeout."""
        pending = dict(enumerate(self._conns))
        deadline = time.monotonic() + timeout
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                ids = sorted(pending)
                raise RuntimeError(
                    f"worker(s) {ids} (pid {[self._procs[k].pid for k in ids]}) did not answer a {what} within "
                    f"{timeout:g} s (hung?); the env was shut down")
            sentinels = {self._procs[k].sentinel: k for k in pending}
            ready = wait(list(pending.values()) + list(sentinels), timeout=left)
            for obj in ready:
                if obj in sentinels:
                    continue
                k = next(k for k, c in pending.items() if c is obj)
                try:
                    receive(k, obj)
                except (EOFError, ConnectionResetError):
                    self._procs[k].join(1.0)
                    self._fail(k, f"exited with code {self._procs[k].exitcode}")
                del pending[k]
            for obj in ready:
                k = sentinels.get(obj)
                if k is not None and k in pending and not pending[k].poll():
                    self._procs[k].join(0.1)
                    self._fail(k, f"exited with code {self._procs[k].exitcode}")

    def _fail(self, k: int, why: str) -> None:
        raise RuntimeError(f"worker {k} (pid {self._procs[k].pid}) {why}; the env was shut down")


def make_batch_env(scenario: str = "navigation", num_worlds: int = 8, n_agents: int = 10, seed: int | None = None,
                   on_goal: Literal["respawn", "deactivate"] = "respawn", workers: int = 0,
                   timeout: float = 60.0, **config: Any):
    """``BatchEnv`` in this process (``workers`` <= 1) or ``ShmBatchEnv`` over ``workers`` processes.

    Both have the same interface and, for one seed, the same trajectories.
    """
    if workers and workers > 1:
        if config.get("curriculum") is not None:
            from ..config import ConfigError

            raise ConfigError("a curriculum needs the worlds in this process: use workers 0 or 1")
        config.pop("curriculum", None)
        return ShmBatchEnv(scenario, num_worlds, n_agents, seed=seed, on_goal=on_goal, workers=workers,
                           timeout=timeout, **config)
    from .batch import BatchEnv

    return BatchEnv(scenario, num_worlds, n_agents, seed=seed, on_goal=on_goal, **config)
