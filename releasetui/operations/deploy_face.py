"""What a deploy's parts (:mod:`.preparing`, :mod:`.shipped_wheels`) use of the deploy they serve, as a Protocol:
they name this face, not :mod:`.deploy` (which imports them), so the import drawing keeps no circle."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Protocol, Sequence

if TYPE_CHECKING:  # names for the type checker only: nothing here is imported at run time
    from .. import rules
    from ..config import Config, HostConfig
    from ..manifest import Manifest
    from ..models import OperationResult
    from ..secrets import EnvFile
    from .context import OperationContext
    from .locking import FleetRead
    from .source import SourceInfo
    from .wheels import Wheelhouse


class WheelsSent(Protocol):
    """The wheelhouses a deploy sends (:class:`releasetui.operations.shipped_wheels.ShippedWheels`)."""

    def sent_to(self, part: "rules.HostDeploy") -> Optional["Wheelhouse"]:
        """The wheelhouse ``part``'s host is sent with its build (None when it is sent none)."""


class DeployFace(Protocol):
    """The deploy as its parts see it: its context and config, what it read and decided, and its per-host answers."""

    ctx: "OperationContext"
    config: "Config"
    hosts: Sequence["HostConfig"]
    info: "SourceInfo"
    plan: Optional["rules.DeployPlan"]
    fleet: "FleetRead"
    manifest: Optional["Manifest"]
    env: Optional["EnvFile"]
    local: Optional["rules.LocalBuilder"]
    result: "OperationResult"
    wheels: WheelsSent

    def part(self, host: "HostConfig") -> "rules.HostDeploy":
        """The plan's part for ``host``."""

    def meta_for(self, host: "HostConfig") -> dict:
        """The new build's metadata on ``host``."""

    def current(self) -> dict:
        """Each host's current build as read."""


__all__ = ["DeployFace", "WheelsSent"]
