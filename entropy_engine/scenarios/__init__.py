"""Scenario registry: ``make_scenario("navigation", num_worlds, n_agents, seed, **config)``."""
from __future__ import annotations

from typing import Any

from ..config import ConfigError, build_config
from .aggregation import Aggregation, AggregationConfig, aggregation_heuristic
from .base import Scenario
from .coverage import Coverage, CoverageConfig, coverage_heuristic
from .flocking import Flocking, FlockingConfig, flocking_heuristic
from .foraging import Foraging, ForagingConfig, foraging_heuristic
from .formation import Formation, FormationConfig, formation_heuristic
from .navigation import Navigation, NavigationConfig, navigation_heuristic
from .pursuit import Pursuit, PursuitConfig, pursuit_heuristic
from .rendezvous import Rendezvous, RendezvousConfig, rendezvous_heuristic
from .transport import Transport, TransportConfig, transport_heuristic

SCENARIOS: dict[str, type[Scenario]] = {
    "navigation": Navigation,
    "flocking": Flocking,
    "coverage": Coverage,
    "formation": Formation,
    "aggregation": Aggregation,
    "transport": Transport,
    "foraging": Foraging,
    "pursuit": Pursuit,
    "rendezvous": Rendezvous,
}


def register(cls: type[Scenario]) -> type[Scenario]:
    """Class decorator that makes a scenario available by its ``name``."""
    SCENARIOS[cls.name] = cls
    return cls


def scenario_class(name: str | type[Scenario]) -> type[Scenario]:
    """The registered scenario class called ``name`` (a class is returned as it is)."""
    if isinstance(name, type) and issubclass(name, Scenario):
        return name
    try:
        return SCENARIOS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown scenario {name!r}; available: {sorted(SCENARIOS)}") from None


def make_scenario(name: str | type[Scenario], num_worlds: int, n_agents: int, seed: int | None = None,
                  **config: Any) -> Scenario:
    cls = scenario_class(name)
    return cls(build_config(cls.Config, config), num_worlds, n_agents, seed)


__all__ = ["Scenario", "SCENARIOS", "register", "scenario_class", "make_scenario",
           "Navigation", "NavigationConfig", "navigation_heuristic",
           "Flocking", "FlockingConfig", "flocking_heuristic",
           "Coverage", "CoverageConfig", "coverage_heuristic",
           "Formation", "FormationConfig", "formation_heuristic",
           "Aggregation", "AggregationConfig", "aggregation_heuristic",
           "Transport", "TransportConfig", "transport_heuristic",
           "Foraging", "ForagingConfig", "foraging_heuristic",
           "Pursuit", "PursuitConfig", "pursuit_heuristic",
           "Rendezvous", "RendezvousConfig", "rendezvous_heuristic"]
