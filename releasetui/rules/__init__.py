"""The rules, each written once: pure functions over host states.

Which build the fleet runs, which build a rollback goes to, why a target is
refused, whether a venv is reused, what prune removes, who may take a lock,
how a rollout is cut into waves.  The core decides with these functions, the
CLI's ``--dry-run`` prints what they decided, and the TUI's confirmations are
built from the same plans, so what a person is shown is what then happens.

Nothing here touches a host, the disk or the clock.

One module per subject: :mod:`.refusals` (why a host cannot take part), :mod:`.targets` (which build the fleet
runs and which is the rollback target), :mod:`.rollback`, :mod:`.deploy` (venv and wheelhouse reuse, the build
id), :mod:`.prune`, :mod:`.rollouts` (waves).  Everything is importable from here.
"""

from __future__ import annotations

from .refusals import (Refusal, States, choices, layout_refusals, lock_is_stale, lock_refusals, pin_refusals,
                       reachable, read_refusals, shared_refusals, unmark_refusals)
from .targets import (FleetCurrent, RollbackChoice, choose_previous, default_rollback_target, fleet_current,
                      fleet_moves, fleet_objection, last_good_live, live_before,
                      previous_good_build)
from .rollback import (HostSwitch, RollbackPlan, plan_rollback)
from .deploy import (DeployPlan, HostDeploy, LocalBuilder, major_minor, plan_deploy, requirements_changed,
                     unique_build_id, venv_key, venv_reused, builds_here, wheelhouse_builders,
                     wheels_to_send)
from .prune import (HostPrune, plan_prune)
from .rollouts import (CanaryProblem, canary_problem, plan_waves)

__all__ = [
    "CanaryProblem", "DeployPlan", "FleetCurrent", "HostDeploy", "HostPrune", "HostSwitch", "LocalBuilder",
    "Refusal", "RollbackChoice", "RollbackPlan", "States", "canary_problem", "choices", "choose_previous",
    "default_rollback_target", "fleet_current", "fleet_moves", "fleet_objection", "last_good_live",
    "layout_refusals", "live_before", "lock_is_stale", "lock_refusals", "major_minor", "pin_refusals",
    "plan_deploy", "plan_prune", "plan_rollback", "plan_waves", "previous_good_build", "reachable", "read_refusals",
    "requirements_changed", "shared_refusals", "unique_build_id", "unmark_refusals", "venv_key", "venv_reused",
    "builds_here", "wheelhouse_builders", "wheels_to_send",
]
