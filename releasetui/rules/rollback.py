"""A rollback's plan: every host switches to the same build, or none does (and why)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..models import check_build_id
from .refusals import Refusal, States, choices, layout_refusals, reachable, read_refusals
from .targets import RollbackChoice, default_rollback_target


# --- rollback -------------------------------------------------------------------------

@dataclass
class HostSwitch:
    """One host's part of a switch: from its current build to the target."""

    host: str
    current: Optional[str]
    target: str
    venv_changes: bool = False
    target_failed: bool = False
    target_rolled_away: bool = False

    @property
    def needed(self) -> bool:
        """Whether the host must switch at all (it may already serve the target)."""
        return self.current != self.target

    @property
    def rolls_away(self) -> bool:
        """Whether this switch goes back to an older build, so the one it leaves is marked ``rolled-away`` when
        the rollback commits (a switch forward to a newer build marks nothing)."""
        return self.needed and self.current is not None and self.target < self.current


@dataclass
class RollbackPlan:
    """A rollback decided from every targeted host's state: all switch, or none."""

    target: Optional[str]
    requested: Optional[str]
    hosts: list[HostSwitch] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    # Where a rollback with no id goes, and why (the dry run and the confirmation say it).
    default: Optional[RollbackChoice] = None

    @property
    def ok(self) -> bool:
        """Whether the rollback may go ahead on every host."""
        return not self.refusals

    @property
    def reason(self) -> str:
        """Why this target, for a person: the default's reason, or that it was named and where the default goes."""
        default = self.default
        if default is None:
            return ""
        if self.requested is None or self.requested == default.target:
            return default.reason
        return (f"named; with no id the rollback would go to {default.target}: {default.reason}" if default.target
                else f"named; with no id the rollback is refused: {default.reason}")

    @property
    def switching(self) -> list[HostSwitch]:
        """The hosts that actually change build."""
        return [h for h in self.hosts if h.needed]


def plan_rollback(states: States, requested: Optional[str] = None, ignore_locks: bool = False) -> RollbackPlan:
    """Check the target on every host; refuse (naming each host and why) unless ALL can switch.

    With no ``requested`` id the target is the build live before the current
    one (:func:`default_rollback_target`), and ``reason`` says why.  A failed
    or rolled-away build may be named explicitly; it is allowed, and the plan
    says how it is marked.
    """
    if requested is not None:
        check_build_id(requested)
    plan = RollbackPlan(target=requested, requested=requested)
    plan.refusals.extend(read_refusals(states, ignore_locks))
    plan.refusals.extend(layout_refusals(states, action="roll back"))
    hosts = reachable(states)
    plan.default = default_rollback_target(states)
    if requested is None:
        if plan.default.target is None:
            plan.refusals.append(Refusal(None, plan.default.reason))
            return plan
        plan.target = plan.default.target
    target = plan.target
    for name, state in hosts.items():
        build = state.build(target)
        if build is None:
            plan.refusals.append(Refusal(name, f"build {target} does not exist there (builds you can choose: "
                                               f"{choices(state)})"))
            continue
        if build.damaged:
            plan.refusals.append(Refusal(name, f"build {target} is damaged ({build.damaged}): it cannot be "
                                               f"made current (builds you can choose: {choices(state)})"))
            continue
        if not build.complete:
            plan.refusals.append(Refusal(name, f"build {target} is incomplete: its deploy never finished "
                                               f"(builds you can choose: {choices(state)})"))
            continue
        current = state.build(state.current)
        venv_changes = current is None or current.venv != build.venv
        plan.hosts.append(HostSwitch(name, state.current, target, venv_changes, build.failed, build.rolled_away))
    return plan
