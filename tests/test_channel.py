"""The communication channel: settings, the compiled kernel against the numpy reference, and the
engine integration (spaces, actions, observations) for any scenario."""
import numpy as np
import pytest

from entropy_engine.config import ConfigError, build_config
from entropy_engine.scenarios import scenario_class
from entropy_engine.training.config import TrainConfig


# ----------------------------------------------------------------------------- settings
@pytest.mark.parametrize("scenario", ["navigation", "flocking"])
def test_channel_settings_on_every_scenario(scenario):
    cfg = build_config(scenario_class(scenario).Config,
                       {"comm_dim": "4", "comm_range": "2.5", "comm_combine": "nearest", "comm_k": "3",
                        "comm_noise": "0.1", "comm_dropout": "0.2", "comm_delay": "2", "comm_occlusion": "true"})
    assert (cfg.comm_dim, cfg.comm_range, cfg.comm_combine, cfg.comm_k) == (4, 2.5, "nearest", 3)
    assert (cfg.comm_noise, cfg.comm_dropout, cfg.comm_delay, cfg.comm_occlusion) == (0.1, 0.2, 2, True)
    assert cfg.comm_obs_width == 3 * (4 + 3) + 1
    assert build_config(scenario_class(scenario).Config, {}).comm_dim == 0     # off by default
    assert build_config(scenario_class(scenario).Config, {"comm_dim": 5}).comm_obs_width == 6   # mean: C + count


@pytest.mark.parametrize("bad, words", [
    ({"comm_range": -1.0}, "comm_range must be a positive"),
    ({"comm_range": 0.0}, "comm_range must be a positive"),
    ({"comm_range": float("inf")}, "comm_range must be a finite"),
    ({"comm_dropout": 1.5}, "comm_dropout must be in [0, 1]"),
    ({"comm_dropout": -0.1}, "comm_dropout must be in [0, 1]"),
    ({"comm_delay": -1}, "comm_delay must be >= 0"),
    ({"comm_combine": "sum"}, "comm_combine"),
    ({"comm_dim": -1}, "comm_dim must be >= 0"),
    ({"comm_k": 0}, "comm_k must be >= 1"),
    ({"comm_noise": -0.5}, "comm_noise must be >= 0"),
])
def test_impossible_channel_settings_are_clear_errors(bad, words):
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("]", r"\]")):
        build_config(scenario_class("navigation").Config, bad)


def test_channel_settings_through_the_run_config():
    """``--env comm_dim=8`` reaches the scenario like any other scenario key."""
    cfg = TrainConfig(scenario="navigation", env={"comm_dim": "8", "comm_range": "3"})
    assert cfg.env_kwargs["comm_dim"] == 8 and cfg.env_kwargs["comm_range"] == 3.0
    with pytest.raises(ConfigError, match="comm_dropout"):
        TrainConfig(scenario="navigation", env={"comm_dropout": 2})
