"""Activation in waves: which hosts switch together (the command line's rollout over the config's), and how long
a host's activation and the fleet's verdict may take."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from .. import rules
from ..config import Config, HostConfig


@dataclass
class RolloutChoice:
    """Canary and batch for this run (the command line's, else the config's ``rollout``)."""

    canary: object = None
    batch: object = None
    pause: float = 0.0


def waves_for(config: Config, hosts: Sequence[HostConfig], choice: Optional[RolloutChoice] = None) -> tuple[list, float]:
    """The activation waves and the pause between them: the command line's choice over the config's ``rollout``
    (the operation, its dry run and the TUI's confirmation all ask here)."""
    rollout = config.rollout
    canary = choice.canary if choice and choice.canary is not None else (rollout.canary if rollout else None)
    batch = choice.batch if choice and choice.batch is not None else (rollout.batch if rollout else None)
    pause = choice.pause if choice and choice.pause else (rollout.pause if rollout else 0.0)
    if isinstance(canary, tuple):
        canary = list(canary)
    return rules.plan_waves([h.name for h in hosts], canary, batch), pause


def activation_deadline(host: HostConfig, hooks_name: str, health: bool) -> float:
    """Seconds a host's activate script may take until it says healthy or not."""
    hooks = sum(h.timeout for h in host.hooks if h.name == hooks_name)
    check = (host.healthcheck.timeout + 15) if (health and host.healthcheck) else 0
    return host.restart_timeout + 10 + hooks + check + 30


def verdict_timeout(hosts: Sequence[HostConfig], waves: list, pause: float, hooks_name: str, health: bool) -> float:
    """How long a healthy host waits for the fleet's verdict before it switches itself back."""
    per_wave = max((activation_deadline(h, hooks_name, health) for h in hosts), default=60)
    return len(waves) * (per_wave + pause) + 300
