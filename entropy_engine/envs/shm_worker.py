"""The worker side of ``ShmBatchEnv`` (``envs/shm.py``): one process stepping a block of worlds.

``serve`` runs in the worker process: it builds an ordinary ``BatchEnv`` on worlds ``[e0, e1)``
with the random streams those worlds have in a single ``BatchEnv`` of ``total_worlds`` worlds,
reports its spaces and info keys, maps its slice of the shared segment and then answers one-byte
commands (``envs/shm_protocol.py``) until ``CLOSE`` or until the main process is gone.

Signals: the main process owns Ctrl-C (SIGINT is ignored here; the supervisor stops the workers).
On SIGTERM (the supervisor's ``terminate``, or a SIGTERM to the whole process group) a worker exits
at once and quietly with the shell's code for death by SIGTERM (143), whatever it was doing and
whatever handler it inherited from the process that started it (with the ``fork`` context, e.g. a
trainer's "stopping after the current update" handler): no traceback, no message. The segment is
the supervisor's to unlink; the worker's mapping goes with the process.
"""
from __future__ import annotations

import os
import pickle
import signal
import struct
import traceback
from multiprocessing import shared_memory

import numpy as np

from .shm_protocol import CLOSE, ERROR, OK, RESET, SEED, SHAPING, STEP, decode_seed, views as segment_views

SIGTERM_EXIT = 128 + signal.SIGTERM  # 143, the shell's convention


def _on_sigterm(signum, frame) -> None:
    os._exit(SIGTERM_EXIT)  # no unwinding: nothing of this process outlives it, nothing to report


def serve(conn, scenario: type, e0: int, e1: int, total_worlds: int, n_agents: int, seed: int,
          on_goal: str, config: dict, threads: int) -> None:
    """Worker process: build a BatchEnv on worlds [e0, e1), then serve one-byte commands. ``scenario``
    is the scenario class (pickled by reference: a scenario registered outside the package works as
    long as its module can be imported)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    signal.signal(signal.SIGTERM, _on_sigterm)     # exit quietly (see the module docstring)
    shm = None
    views: dict[str, np.ndarray] = {}
    out_info: list = []
    try:
        import numba

        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
        from .batch import BatchEnv

        env = BatchEnv(scenario, e1 - e0, n_agents, seed=None, on_goal=on_goal, **config)
        env.seed_block(seed, total_worlds, e0)
        S0, S1 = e0 * n_agents, e1 * n_agents
        info = {k: (v.dtype.str, v.shape[1:], "world" if k == "world_done" else "slot") for k, v in env.info.items()}
        conn.send_bytes(pickle.dumps({"observation_space": env.observation_space, "action_space": env.action_space,
                                      "agent_action_space": env.agent_action_space, "tokens": env.tokens,
                                      "stat_names": env.stat_names, "success_stat": env.success_stat, "metrics": env.metrics,
                                      "info_keys": env.info_keys, "max_steps": env.max_steps, "info": info}))
        name, layout = pickle.loads(conn.recv_bytes())
        shm = shared_memory.SharedMemory(name=name)

        def part(key: str, arr: np.ndarray) -> np.ndarray:
            world = key.startswith("info_") and info[key[5:]][2] == "world"
            return arr[e0:e1] if world else arr[S0:S1]

        views = {k: part(k, v) for k, v in segment_views(shm.buf, layout).items()}
        conn.send_bytes(pickle.dumps(None))
        out_info = [(views["info_" + k], k) for k in env.info]
        while True:
            msg = conn.recv_bytes()
            cmd, arg = msg[:1], msg[1:]
            if cmd == STEP:
                obs, rew, term, trunc, inf = env.step(views["actions"])
                views["obs"][:] = obs
                views["reward"][:] = rew
                views["terminated"][:] = term
                views["truncated"][:] = trunc
                for dst, k in out_info:
                    dst[:] = inf[k]
            elif cmd in (RESET, SEED):
                s = decode_seed(arg)
                if s is not None:
                    env.seed_block(s, total_worlds, e0)
                if cmd == RESET:
                    views["obs"][:] = env.reset()
            elif cmd == SHAPING:
                env.set_shaping_scale(struct.unpack("<d", arg)[0])
            elif cmd == CLOSE:
                conn.send_bytes(OK)
                return
            conn.send_bytes(OK)
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        return  # the main process is gone
    except BaseException as exc:  # report any failure to the main process, then exit
        tb = traceback.format_exc()
        try:
            payload = pickle.dumps((exc, tb))
        except Exception:
            payload = pickle.dumps((RuntimeError(repr(exc)), tb))
        try:
            conn.send_bytes(ERROR + payload)
        except Exception:
            pass
        os._exit(1)
    finally:
        views.clear()
        out_info = None  # noqa: F841 - drop the last views so the segment can be unmapped
        if shm is not None:
            try:
                shm.close()
            except BufferError:
                pass
