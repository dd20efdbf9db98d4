"""Files from elsewhere and runs that go wrong: loading never runs code, NaN is never saved or resumed.

Every crafted file here carries a pickle payload that writes a marker file when unpickled
(``test_crafted_payloads_are_live`` proves the payloads work); each entry point must refuse or skip
it without the marker appearing.
"""
from __future__ import annotations

import base64
import io
import json
import pickle
import shutil
import warnings
import zipfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

import entropy_engine
from entropy_engine.cli import main
from entropy_engine.config import ConfigError
from entropy_engine.training.checkpoint import (PREV_NAME, CheckpointError, load_torch_checkpoint, restore_checkpoint,
                                                save_torch_checkpoint)
from entropy_engine.training.config import resolve_config
from entropy_engine.training.safe_files import SB3_META, ModelFileError

SMALL = dict(num_worlds=2, n_agents=4, n_steps=16, seq_len=8, batch_size=64, n_epochs=1, lstm_hidden_size=8,
             net_arch=8, max_episode_steps=30, tensorboard=False, videos=False)
TINY = ["--num-worlds", "2", "--n-agents", "4", "--n-steps", "16", "--seq-len", "8", "--batch-size", "64",
        "--n-epochs", "1", "--lstm-hidden-size", "8", "--net-arch", "8", "--max-episode-steps", "30",
        "--tensorboard", "false", "--console", "plain", "--videos", "false"]
SB3 = ["--algo", "sb3", "--encoder-size", "0", "--obs-delta", "0"]


class Payload:
    """Unpickles to a call of ``exec`` that writes ``marker``: what a malicious model file does."""

    def __init__(self, marker: Path):
        self.code = f"open({str(marker)!r}, 'w').write('the payload ran')"

    def __reduce__(self):
        return (exec, (self.code,))


def _trainer(**kw):
    from entropy_engine.training.native import NativeTrainer

    return NativeTrainer(resolve_config("default", overrides={**SMALL, "total_steps": 1024, **kw}))


@pytest.fixture(scope="module")
def native_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("native") / "run"
    assert main(["train", "--out", str(out), "--total-steps", "128", *TINY]) == 0
    return out


@pytest.fixture(scope="module")
def sb3_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sb3") / "run"
    assert main(["train", "--out", str(out), "--total-steps", "128", *TINY, *SB3]) == 0
    return out


def _copy_run(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest)
    return dest


def _crafted_native_model(path: Path, marker: Path) -> None:
    """The previous release's model format with the payload in its config."""
    from entropy_engine.training.policy import load_model

    model, _ = load_model(path)
    torch.save({"format": "entropy-engine-policy", "version": 1, "spec": asdict(model.spec),
                "state_dict": model.state_dict(), "config": {"n_agents": Payload(marker)}}, path)


def _rewrite_zip(path: Path, replace: dict[str, bytes | None]) -> None:
    """Rewrite the zip at ``path`` with some entries replaced (None: removed)."""
    with zipfile.ZipFile(path) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    for name, blob in replace.items():
        if blob is None:
            entries.pop(name, None)
        else:
            entries[name] = blob
    with zipfile.ZipFile(path, "w") as zf:
        for name, blob in entries.items():
            zf.writestr(name, blob)


def _crafted_sb3(path: Path, marker: Path, keep_meta: bool = False) -> None:
    """An SB3 zip whose cloudpickled ``policy_class`` runs the payload (as a file from elsewhere,
    without ``entropy_engine.json``, unless ``keep_meta``)."""
    with zipfile.ZipFile(path) as zf:
        data = json.loads(zf.read("data"))
    data["policy_class"][":serialized:"] = base64.b64encode(pickle.dumps(Payload(marker))).decode()
    _rewrite_zip(path, {"data": json.dumps(data).encode(), **({} if keep_meta else {SB3_META: None})})


# ------------------------------------------------------------------------------------ 1. no code runs
def test_crafted_payloads_are_live(native_run, sb3_run, tmp_path):
    """The payloads of this file really run when unpickled the unsafe way (so the tests below mean
    something): torch.load(weights_only=False) on the crafted model, and SB3's loader on the zip."""
    marker = tmp_path / "ran"
    model = tmp_path / "model.pt"
    shutil.copy(native_run / "models" / "model.pt", model)
    _crafted_native_model(model, marker)
    torch.load(model, weights_only=False)
    assert marker.exists()
    marker.unlink()
    z = tmp_path / "model.zip"
    shutil.copy(sb3_run / "models" / "model.zip", z)
    _crafted_sb3(z, marker)
    with pytest.raises(Exception):
        entropy_engine.load_policy(z, trust_pickle=True)      # the opt-in: SB3's loader, the old behaviour
    assert marker.exists()


def test_load_policy_eval_and_play_refuse_a_crafted_model(native_run, tmp_path, capsys):
    run = _copy_run(native_run, tmp_path / "run")
    marker = tmp_path / "ran"
    model = run / "models" / "model.pt"
    _crafted_native_model(model, marker)
    with pytest.raises(ModelFileError, match="refused to load") as err:
        entropy_engine.load_policy(run)
    assert str(model) in str(err.value) and "can run code" in str(err.value)
    assert main(["eval", str(run), "--episodes", "1"]) == 2
    assert f"entropy eval: error: {model}: refused to load" in capsys.readouterr().err
    gif = tmp_path / "swarm.gif"
    with pytest.raises(SystemExit, match="refused to load"):
        main(["play", str(run), "--gif", str(gif)])
    assert not marker.exists() and not gif.exists()


def test_train_prev_model_refuses_a_crafted_model(native_run, tmp_path, capsys):
    base = _copy_run(native_run, tmp_path / "base")
    marker = tmp_path / "ran"
    _crafted_native_model(base / "models" / "model.pt", marker)
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--total-steps", "64", "--prev-model", str(base), *TINY]) == 2
    err = capsys.readouterr().err
    assert "prev_model" in err and "refused to load" in err and "Traceback" not in err
    assert not marker.exists() and not (out / "models" / "model.pt").exists()


def test_resume_skips_a_crafted_checkpoint(tmp_path, capsys):
    """A crafted checkpoint.zip is refused without running its payload; the previous one is used."""
    from entropy_engine.runs.files import run_layout

    out, marker = tmp_path / "run", tmp_path / "ran"
    paths = run_layout(out)
    tr = _trainer()
    tr.learn(128)
    save_torch_checkpoint(paths.checkpoint_file, tr.state_dict())
    save_torch_checkpoint(paths.checkpoint_file, tr.state_dict())      # the first becomes the previous one
    torch.save({"model": Payload(marker), "num_timesteps": 10**6}, paths.checkpoint_file)
    assert main(["train", "--out", str(out), "--total-steps", "256", *TINY]) == 0
    text = "".join(capsys.readouterr())
    assert f"checkpoint {paths.checkpoint_file} is unusable" in text and "refused to load" in text
    assert "Resuming from checkpoint at 128 steps" in text and "after 256 steps" in text
    assert not marker.exists()


def test_sb3_zip_loads_weights_only(sb3_run, tmp_path):
    """A crafted SB3 zip from elsewhere: its weights are used, its pickles never touched; the same
    actions as SB3's own loader gives on the original file."""
    from sb3_contrib import RecurrentPPO

    from entropy_engine.training.policy import SB3Policy

    src = sb3_run / "models" / "model.zip"
    z, marker = tmp_path / "model.zip", tmp_path / "ran"
    shutil.copy(src, z)
    _crafted_sb3(z, marker)
    with pytest.warns(UserWarning, match="weights only") as rec:
        policy = entropy_engine.load_policy(z)
    assert "can run code" in str(rec[0].message) and "--trust-pickle" in str(rec[0].message)
    assert not marker.exists()
    reference = SB3Policy.from_model(RecurrentPPO.load(str(src), device="cpu"))
    obs = np.random.default_rng(0).uniform(-1, 1, (4, policy.obs_dim)).astype(np.float32)
    sa, sr = policy.initial_state(4), reference.initial_state(4)
    for _ in range(3):
        a, sa = policy.act(obs, sa)
        r, sr = reference.act(obs, sr)
        np.testing.assert_array_equal(a, r)
        np.testing.assert_array_equal(sa, sr)
    # the project's own file with a tampered data entry fails its checksum
    shutil.copy(src, z)
    _crafted_sb3(z, marker, keep_meta=True)
    with pytest.raises(ModelFileError, match="checksum"):
        entropy_engine.load_policy(z)
    assert not marker.exists()


def test_sb3_resume_skips_a_crafted_checkpoint(tmp_path, capsys):
    """An SB3 checkpoint with a pickle payload (as an earlier release's, no entropy_engine.json) is not
    resumed without --trust-pickle and its payload never runs; the previous checkpoint is used."""
    from entropy_engine.runs.files import run_layout
    from entropy_engine.training.sb3_trainer import make_model, save_sb3_checkpoint

    out, marker = tmp_path / "run", tmp_path / "ran"
    cfg = resolve_config("default", overrides={**SMALL, "algo": "sb3", "encoder_size": 0, "obs_delta": 0.0,
                                               "total_steps": 256})
    paths = run_layout(out)
    model = make_model(cfg)
    model.learn(128)
    save_sb3_checkpoint(model, paths.checkpoint_file, cfg)
    save_sb3_checkpoint(model, paths.checkpoint_file, cfg)
    model.env.close()
    shutil.copy(paths.checkpoints / PREV_NAME, paths.checkpoint_file)
    _crafted_sb3(paths.checkpoint_file, marker)
    assert main(["train", "--out", str(out), "--total-steps", "256", *TINY, *SB3]) == 0
    text = "".join(capsys.readouterr())
    assert f"checkpoint {paths.checkpoint_file} is unusable" in text and "--trust-pickle" in text
    assert "Resuming from checkpoint at 128 steps" in text and "after 256 steps" in text
    assert not marker.exists()


# ------------------------------------------------------------------------------------ round trips
def test_native_model_round_trip(tmp_path):
    from entropy_engine.training.policy import RecurrentPolicy, load_model

    tr = _trainer()
    tr.learn(64)
    path = tr.save(tmp_path)
    model, config = load_model(path)
    for (k, v), w in zip(tr.model.state_dict().items(), model.state_dict().values()):
        assert torch.equal(v, w), k
    assert model.spec == tr.model.spec and config["n_agents"] == 4
    a = RecurrentPolicy(tr.model, config)
    b = entropy_engine.load_policy(tmp_path)
    obs = np.random.default_rng(1).uniform(-1, 1, (4, a.obs_dim)).astype(np.float32)
    np.testing.assert_array_equal(a.act(obs, a.initial_state(4))[0], b.act(obs, b.initial_state(4))[0])
    with zipfile.ZipFile(path) as zf:                 # nothing but tensors and plain data in the pickle
        pkl = next(zf.read(n) for n in zf.namelist() if n.endswith("data.pkl"))
    globals_ = {arg for op, arg, _ in __import__("pickletools").genops(pkl) if op.name in ("GLOBAL", "STACK_GLOBAL")}
    assert not any("numpy" in str(g) for g in globals_)


def test_native_model_of_the_previous_release_loads_its_weights(tmp_path):
    """Format 1 (no checksum) is loaded with the safe loader and a note; a NaN one is refused."""
    from entropy_engine.training.policy import MODEL_FORMAT, load_model

    tr = _trainer()
    old = {"format": MODEL_FORMAT, "version": 1, "spec": asdict(tr.model.spec),
           "state_dict": tr.model.state_dict(), "config": {"n_agents": 4}}
    torch.save(old, tmp_path / "old.pt")
    notes: list[str] = []
    model, config = load_model(tmp_path / "old.pt", notes.append)
    assert config == {"n_agents": 4} and "earlier release" in notes[0] and "no checksum" in notes[0]
    assert torch.equal(model.log_std, tr.model.log_std)
    old["state_dict"] = {k: v.clone() for k, v in old["state_dict"].items()}
    old["state_dict"]["log_std"][0] = float("nan")
    torch.save(old, tmp_path / "nan.pt")
    with pytest.raises(ModelFileError, match=r"non-finite values .* log_std"):
        load_model(tmp_path / "nan.pt", notes.append)


def test_native_checkpoint_round_trip(tmp_path):
    ckpt = tmp_path / "checkpoint.zip"
    a = _trainer()
    a.learn(128)
    np.random.seed(5)
    np.random.standard_normal()                       # a cached gaussian in numpy's state
    state = a.state_dict()
    save_torch_checkpoint(ckpt, state)
    env_rng = a._env_rng().copy()
    b = _trainer(seed=3)
    b._reset_env = lambda: None               # (a reset draws from the env's stream: compare before it)
    b.load_state_dict(load_torch_checkpoint(ckpt))
    assert (b.num_timesteps, b.n_updates) == (128, a.n_updates)
    for (k, v), w in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(v, w), k
    for k, s in a.optimizer.state_dict()["state"].items():
        for name, t in s.items():
            assert torch.equal(t, b.optimizer.state_dict()["state"][k][name]), (k, name)
    saved_np = (state["numpy_rng"]["key"], state["numpy_rng"]["keys"].numpy().astype(np.uint32),
                state["numpy_rng"]["pos"], state["numpy_rng"]["has_gauss"], state["numpy_rng"]["cached_gaussian"])
    now = np.random.get_state()
    assert now[0] == saved_np[0] and np.array_equal(now[1], saved_np[1]) and now[2:] == saved_np[2:]
    assert now[3] == 1
    assert torch.equal(torch.get_rng_state(), state["torch_rng"]) and torch.equal(b.gen.get_state(), state["gen_rng"])
    assert b._env_rng().dtype == np.uint64 and np.array_equal(b._env_rng(), env_rng)


def test_sb3_model_and_checkpoint_round_trip(sb3_run, tmp_path):
    from sb3_contrib import RecurrentPPO

    from entropy_engine.training.config import config_dict
    from entropy_engine.training.sb3_files import restore_sb3_checkpoint
    from entropy_engine.training.sb3_trainer import make_model, save_sb3_checkpoint

    # the final model: SB3 still loads it (trusted), and the safe loader gives the same network
    z = sb3_run / "models" / "model.zip"
    assert RecurrentPPO.load(str(z), device="cpu").num_timesteps == 128
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        policy = entropy_engine.load_policy(z)
    assert policy.config["n_agents"] == 4 and policy.hidden_size == 8
    # a checkpoint: weights, optimizer state, counters and RNG states come back without unpickling
    cfg = resolve_config("default", overrides={**SMALL, "algo": "sb3", "encoder_size": 0, "obs_delta": 0.0,
                                               "total_steps": 256})
    a = make_model(cfg)
    a.learn(128)
    ckpt = tmp_path / "checkpoint.zip"
    torch.manual_seed(9)
    np.random.seed(9)
    save_sb3_checkpoint(a, ckpt, cfg)
    torch_rng, np_rng = torch.get_rng_state(), np.random.get_state()
    torch.manual_seed(0)
    np.random.seed(0)
    b = make_model(cfg)
    restore_sb3_checkpoint(ckpt, b, config_dict(cfg))
    assert (b.num_timesteps, b._n_updates, len(b.ep_info_buffer)) == (128, a._n_updates, len(a.ep_info_buffer))
    for (k, v), w in zip(a.policy.state_dict().items(), b.policy.state_dict().values()):
        assert torch.equal(v, w), k
    sa, sb = a.policy.optimizer.state_dict()["state"], b.policy.optimizer.state_dict()["state"]
    assert all(torch.equal(sa[k]["exp_avg_sq"], sb[k]["exp_avg_sq"]) for k in sa)
    assert torch.equal(torch.get_rng_state(), torch_rng) and np.array_equal(np.random.get_state()[1], np_rng[1])
    with pytest.raises(CheckpointError, match="different config"):
        restore_sb3_checkpoint(ckpt, b, {**config_dict(cfg), "n_agents": 5})
    for m in (a, b):
        m.env.close()


# ------------------------------------------------------------------------------------ 2. NaN
@pytest.mark.parametrize("key,value", [
    ("learning_rate", "inf"), ("learning_rate", "nan"), ("learning_rate", 0), ("learning_rate", 5),
    ("max_grad_norm", "inf"), ("max_grad_norm", 0), ("ent_coef", "nan"), ("vf_coef", "inf"),
    ("clip_range", "inf"), ("clip_range", 0), ("clip_range_vf", "nan"), ("target_kl", "inf"),
    ("log_std_init", "inf"), ("log_std_init", 100), ("obs_delta", "inf"), ("obs_delta", 1e9),
    ("gamma", "nan"), ("gamma", 1.5), ("gae_lambda", "nan"), ("gae_lambda", -0.1),
    ("env", {"goal_reward": "nan"}), ("env", {"progress_reward": "inf"}), ("env", {"approach_penalty": "-inf"}),
    ("env", {"time_penalty": "nan"}),
])
def test_settings_that_only_produce_nan_are_refused(key, value):
    with pytest.raises(ConfigError, match="finite number"):
        resolve_config("default", overrides={key: value})


def test_cli_refuses_an_infinite_learning_rate(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--learning-rate", "inf", "--total-steps", "20480", "--out", str(out)]) == 2
    assert "learning_rate must be a finite number in (0, 1], got inf" in capsys.readouterr().err
    assert not out.exists()


def _flip(path: Path, needle: bytes, n: int = 64) -> None:
    """XOR ``n`` bytes of ``path`` where ``needle`` (raw tensor bytes) is stored."""
    raw = bytearray(path.read_bytes())
    at = raw.find(needle)
    assert at >= 0 and raw.find(needle, at + 1) < 0
    for i in range(at, at + min(n, len(needle))):
        raw[i] ^= 0x5A
    path.write_bytes(bytes(raw))


def test_flipped_optimizer_bytes_fall_back_to_previous_checkpoint(tmp_path, capsys):
    from entropy_engine.runs.files import run_layout

    out = tmp_path / "run"
    paths = run_layout(out)
    tr = _trainer()
    tr.learn(128)
    save_torch_checkpoint(paths.checkpoint_file, tr.state_dict())
    tr.learn(192)
    state = tr.state_dict()
    save_torch_checkpoint(paths.checkpoint_file, state)
    exp_avg_sq = max((s["exp_avg_sq"] for s in state["optimizer"]["state"].values()), key=lambda t: t.numel())
    _flip(paths.checkpoint_file, exp_avg_sq.numpy().tobytes())
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        load_torch_checkpoint(paths.checkpoint_file)
    assert main(["train", "--out", str(out), "--total-steps", "256", *TINY]) == 0
    text = "".join(capsys.readouterr())
    assert f"checkpoint {paths.checkpoint_file} is unusable" in text and "checksum mismatch" in text
    assert "falling back" in text and "Resuming from checkpoint at 128 steps" in text and "after 256 steps" in text
    assert (paths.checkpoints / "checkpoint.corrupt.zip").exists()


def test_nonfinite_checkpoint_counts_as_corrupt(tmp_path):
    """A checkpoint that holds NaN (its checksum intact) is never resumed: the previous one is."""
    import json as _json

    from entropy_engine.training.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION
    from entropy_engine.training.safe_files import save_torch_file

    ckpt = tmp_path / "checkpoint.zip"
    tr = _trainer()
    save_torch_checkpoint(ckpt, tr.state_dict())
    save_torch_checkpoint(ckpt, tr.state_dict())
    state = tr.state_dict()
    state["model"] = {k: torch.full_like(v, float("nan")) for k, v in state["model"].items()}
    from entropy_engine.training.guards import TrainingDiverged

    with pytest.raises(TrainingDiverged, match="non-finite"):
        save_torch_checkpoint(ckpt, state)                                # the saver refuses
    save_torch_file(ckpt, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, {**state, "config": _json.dumps(state["config"])})
    messages: list[str] = []
    fresh = _trainer()
    _, used = restore_checkpoint(ckpt, lambda f: fresh.load_state_dict(load_torch_checkpoint(f)), messages.append)
    assert used.name == PREV_NAME and "non-finite values" in messages[0]
    assert all(bool(torch.isfinite(p).all()) for p in fresh.model.parameters())


def test_flipped_model_bytes_are_refused(native_run, tmp_path, capsys):
    run = _copy_run(native_run, tmp_path / "run")
    model = run / "models" / "model.pt"
    from entropy_engine.training.policy import load_model

    weight = load_model(model)[0].lstm.weight_hh_l0.detach()
    _flip(model, weight.numpy().tobytes())
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        entropy_engine.load_policy(run)
    assert main(["eval", str(run), "--episodes", "1"]) == 2
    assert "checksum mismatch" in capsys.readouterr().err


def test_nan_loss_stops_the_run_before_saving(tmp_path, capsys, monkeypatch):
    """A NaN loss in the third update: the run stops with a clear message and exit status 1, the
    checkpoint of the second update is kept (finite, resumable), no model is written."""
    from entropy_engine.training import ppo

    calls = {"n": 0}
    real = ppo.ppo_loss

    def poisoned(*args, **kw):
        loss, parts = real(*args, **kw)
        calls["n"] += 1
        if calls["n"] > 4:                       # two minibatches per update: updates 1 and 2 are fine
            loss = loss * float("nan")
        return loss, parts

    monkeypatch.setattr(ppo, "ppo_loss", poisoned)
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--total-steps", "512", "--checkpoint-every", "128", *TINY]) == 1
    err = capsys.readouterr().err
    assert "training diverged at step 384" in err and "non-finite" in err and "Traceback" not in err
    assert not (out / "models" / "model.pt").exists()
    state = load_torch_checkpoint(out / "checkpoints" / "checkpoint.zip")
    assert state["num_timesteps"] == 256
    monkeypatch.undo()                           # the same command (a sound update now) continues from it
    assert main(["train", "--out", str(out), "--total-steps", "512", "--checkpoint-every", "128", *TINY]) == 0
    text = "".join(capsys.readouterr())
    assert "Resuming from checkpoint at 256 steps" in text and "after 512 steps" in text


def test_sb3_nan_update_stops_the_run_before_saving(tmp_path, monkeypatch):
    """SB3: an update that leaves NaN weights stops the run before the next checkpoint or the model."""
    from sb3_contrib import RecurrentPPO

    from entropy_engine.runs.files import run_layout
    from entropy_engine.training.checkpoint import Checkpointer
    from entropy_engine.training.guards import TrainingDiverged
    from entropy_engine.training.sb3_trainer import save_sb3_checkpoint, train_sb3

    real = RecurrentPPO.train

    def train(self):
        real(self)
        if self.num_timesteps >= 256:
            with torch.no_grad():
                self.policy.action_net.weight[0, 0] = float("nan")

    monkeypatch.setattr(RecurrentPPO, "train", train)
    cfg = resolve_config("default", overrides={**SMALL, "algo": "sb3", "encoder_size": 0, "obs_delta": 0.0,
                                               "total_steps": 512})
    paths = run_layout(tmp_path / "run")
    with pytest.raises(TrainingDiverged, match=r"diverged at step 256: non-finite parameters action_net.weight"):
        train_sb3(cfg, paths, on_rollout=Checkpointer(lambda m: save_sb3_checkpoint(m, paths.checkpoint_file, cfg),
                                                      128))
    assert not (paths.models / "model.zip").exists()
    with zipfile.ZipFile(paths.checkpoint_file) as zf:
        assert json.loads(zf.read(SB3_META))["state"]["num_timesteps"] == 128


def test_sb3_prev_model_takes_only_the_weights_of_a_crafted_zip(sb3_run, tmp_path, capsys):
    base, marker = _copy_run(sb3_run, tmp_path / "base"), tmp_path / "ran"
    _crafted_sb3(base / "models" / "model.zip", marker)
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--total-steps", "128", "--prev-model", str(base), *TINY, *SB3]) == 0
    assert f"Starting from base model {base / 'models' / 'model.zip'}" in "".join(capsys.readouterr())
    assert not marker.exists()


def test_sb3_checkpoint_of_the_previous_release_needs_trust_pickle(tmp_path, capsys):
    """The previous release stored its SB3 checkpoint state in the cloudpickled data entry: refused by
    default (the run says why), resumed with --trust-pickle (SB3's loader, the old behaviour)."""
    from entropy_engine.runs.files import run_layout
    from entropy_engine.training.config import config_dict
    from entropy_engine.training.sb3_trainer import make_model

    out = tmp_path / "run"
    cfg = resolve_config("default", overrides={**SMALL, "algo": "sb3", "encoder_size": 0, "obs_delta": 0.0,
                                               "total_steps": 256})
    paths = run_layout(out)
    model = make_model(cfg)
    model.learn(128)
    model.entropy_config = config_dict(cfg)            # what the previous release's save_sb3_checkpoint did
    model.entropy_rng = {"torch": torch.get_rng_state().numpy(), "numpy": np.random.get_state()}
    model.save(str(paths.checkpoint_file))
    model.env.close()
    args = ["train", "--out", str(out), "--total-steps", "256", *TINY, *SB3]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert str(paths.checkpoint_file) in err and "--trust-pickle" in err and "earlier release" in err
    corrupt = paths.checkpoints / "checkpoint.corrupt.zip"
    assert not corrupt.exists() and paths.checkpoint_file.exists()      # the only one: left in place
    assert main([*args, "--trust-pickle"]) == 0
    text = "".join(capsys.readouterr())
    assert "Resuming from checkpoint at 128 steps" in text and "after 256 steps" in text
