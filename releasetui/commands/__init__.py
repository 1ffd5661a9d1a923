"""Pure builders of the shell scripts run on a host, each with the parser of its output beside it.

Nothing here touches the network or the disk: every function returns text so
the scripts can be read, tested as strings and printed by ``--dry-run``.
One module per phase, like Kamal's ``lib/kamal/commands/``:

* :mod:`.read` — phase 1: read the state (and take the lock), :func:`parse_read`;
* :mod:`.prepare` — phase 3: receive the build, venv, complete;
* :mod:`.activate` — phase 5: switch, restart, hooks, health, verdict; switch back;
* :mod:`.finish` — release, prune, pin, unmark, unlock;
* :mod:`.wheelhouse` — ``wheels: ship`` when this machine cannot build: the wheelhouse built on a host;
* :mod:`.logs` — logs, history, manifests (read-only).
"""

from __future__ import annotations

from .activate import (VERDICT_BACK, VERDICT_COMMIT, ActivateRecords, ActivateReport, activate_script, parse_activate,
                       strip_verdict, sudo_noninteractive, switch_back_script, verdict_line)
from .base import LOST_LOCK_EXIT, PREAMBLE, REFUSED_EXIT, STEP_PREFIX, check_venv_key, op_marker, parse_step
from .finish import FinishReport, hold_script, parse_finish, pin_script, prune_script, release_script, unlock_script, unmark_script
from .logs import (PATCH_BYTES, contents_script, diff_script, history_script, logs_script, manifests_script, parse_contents,
                   parse_history, parse_manifests)
from .prepare import fits_one_packet, inline_payload, parse_prepare, prepare_script
from .ship_helper import SHIP_PY
from .venv import INSTALLER_SLOT
from .read import LockRequest, parse_read, read_script
from .wheelhouse import BuiltWheelhouse, WheelhouseReader, host_pip_wheel, parse_wheelhouse, wheelhouse_script

__all__ = [
    "ActivateRecords", "ActivateReport", "BuiltWheelhouse", "FinishReport", "INSTALLER_SLOT", "LOST_LOCK_EXIT", "LockRequest", "PATCH_BYTES",
    "PREAMBLE", "REFUSED_EXIT", "SHIP_PY",
    "STEP_PREFIX", "activate_script", "check_venv_key", "contents_script", "diff_script", "history_script", "logs_script", "manifests_script",
    "fits_one_packet", "hold_script", "inline_payload", "op_marker", "parse_activate", "parse_contents", "parse_finish", "parse_history", "parse_manifests", "parse_prepare", "parse_read",
    "parse_step", "pin_script", "prepare_script", "prune_script", "read_script", "release_script",
    "strip_verdict", "sudo_noninteractive", "switch_back_script", "unlock_script", "unmark_script", "VERDICT_BACK",
    "VERDICT_COMMIT", "verdict_line", "host_pip_wheel", "parse_wheelhouse", "wheelhouse_script", "WheelhouseReader",
]
