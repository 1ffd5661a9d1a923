"""The release operations over a set of hosts: deploy, rollback, prune, pin, unmark, unlock, builds, logs, history.

:class:`Operations` is the one entry point the CLI, the TUI and the demo use.
Each operation runs as named phases in its own module (:mod:`.deploy`,
:mod:`.rollback`, :mod:`.maintenance`, :mod:`.reading`); running work on many
hosts at once is :mod:`releasetui.runner`'s; the rules they follow are
:mod:`releasetui.rules`'.  Operations report typed events and return an
:class:`~releasetui.models.OperationResult`; they know nothing of terminals.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Optional

from ..config import Config, HostConfig
from ..executors import ExecutorPool
from ..models import OperationResult
from ..rules import unique_build_id
from ..runner import Interrupts
from .context import OperationContext, Reporter
from .waves import RolloutChoice
if TYPE_CHECKING:  # each operation's module is imported by the operation that needs it: a CLI run loads one
    from ..diffing import DiffReport
from .source import (OperationError, SourceInfo, deployer_identity, inspect_source, new_build_id, pid_alive,
                     source_requirements,
                     this_machine, utc_now)


class Operations:
    """The release operations over a set of hosts (see the module docstring).

    ``report`` receives every :class:`~releasetui.models.Event` (from worker
    threads); ``pool`` keeps connections open across operations; ``dry_run``
    reads for real and records every change instead of making it.  One
    object runs one operation at a time; :meth:`interrupt` is its Ctrl-C.
    """

    def __init__(self, config: Config, report: Optional[Reporter] = None, pool: Optional[ExecutorPool] = None,
                 dry_run: bool = False, parallel: Optional[int] = None, lock_wait: Optional[float] = None,
                 message: Optional[str] = None, interrupts: Optional[Interrupts] = None):
        self.config = config
        self.ctx = OperationContext(config, report, pool, dry_run, interrupts, parallel, message, lock_wait)

    # --- plumbing ------------------------------------------------------------------------------

    @property
    def pool(self) -> ExecutorPool:
        """The connections (kept open by the TUI across operations)."""
        return self.ctx.pool

    @property
    def stop(self) -> threading.Event:
        """Set by the first interrupt."""
        return self.ctx.stop

    @property
    def interrupts(self) -> Interrupts:
        """Ctrl-C presses (see :class:`~releasetui.runner.Interrupts`)."""
        return self.ctx.interrupts

    @property
    def recorded(self) -> list:
        """What a dry run would have run."""
        return self.ctx.recorded

    def interrupt(self, by: str = "Ctrl-C") -> int:
        """One Ctrl-C (or ``by``: SIGTERM, a TUI quit): the first stops (or lets the switch wave finish), the second
        stops waiting and switches back."""
        return self.ctx.interrupts.press(by)

    def close(self) -> None:
        """Close connections this object opened itself."""
        self.ctx.close()

    def round_trips(self, host: HostConfig) -> int:
        """Remote scripts this object has run on the host."""
        return self.ctx.round_trips(host)

    # --- operations ------------------------------------------------------------------------------

    def deploy(self, hosts: Iterable[HostConfig], source: Optional[Path] = None, build_id: Optional[str] = None,
               rollout: Optional[RolloutChoice] = None, health: bool = True,
               source_info: Optional[SourceInfo] = None, ref: Optional[str] = None) -> OperationResult:
        """Ship ``source`` (or, with ``ref``, exactly that commit's tree) to every host as a new build; switch only
        once every host has it complete."""
        from .deploy import Deploy
        return Deploy(self.ctx, list(hosts), source, build_id, rollout, health, source_info, ref).run()

    def rollback(self, hosts: Iterable[HostConfig], build_id: Optional[str] = None,
                 rollout: Optional[RolloutChoice] = None, health: bool = True) -> OperationResult:
        """Switch every host to ``build_id`` (or the fleet's previous good build), or none of them."""
        from .rollback import Rollback
        return Rollback(self.ctx, list(hosts), build_id, rollout, health).run()

    def prune(self, hosts: Iterable[HostConfig], keep: Optional[int] = None) -> OperationResult:
        """Remove failed, incomplete and old builds and unused venvs, decided under the lock."""
        from . import maintenance
        return maintenance.prune(self.ctx, list(hosts), keep)

    def pin(self, hosts: Iterable[HostConfig], build_id: str, pinned: bool = True) -> OperationResult:
        """Pin (or unpin) a build on every host: prune never removes a pinned build."""
        from . import maintenance
        return maintenance.pin(self.ctx, list(hosts), build_id, pinned)

    def lock(self, hosts: Iterable[HostConfig]) -> OperationResult:
        """Take the fleet's lock by hand and keep it (the message says why) until :meth:`unlock`."""
        from . import maintenance
        return maintenance.hold(self.ctx, list(hosts))

    def unmark(self, hosts: Iterable[HostConfig], build_id: str) -> OperationResult:
        """Clear a build's rolled-away and failed marks on every host: it may be a default rollback target again."""
        from . import maintenance
        return maintenance.unmark(self.ctx, list(hosts), build_id)

    def unlock(self, hosts: Iterable[HostConfig]) -> OperationResult:
        """Remove each host's deploy lock (as shown), stopping what its operation still runs there."""
        from . import maintenance
        return maintenance.unlock(self.ctx, list(hosts))

    def exec(self, hosts: Iterable[HostConfig], argv: list, timeout: Optional[float] = None):
        """Run a one-off command in the live build of every host (see :mod:`.execution`)."""
        from .execution import run_exec
        return run_exec(self.ctx, list(hosts), argv, timeout)

    def interactive_command(self, host: HostConfig, argv: list) -> list:
        """The argv that runs ``argv`` on ``host`` with this terminal (``exec -i``)."""
        from .execution import interactive_command
        return interactive_command(self.ctx, host, argv)

    def doctor(self, hosts: Iterable[HostConfig]):
        """Check every host and this machine for what a deploy needs (one read-only round trip per host)."""
        from .doctor import checkup
        return checkup(self.ctx, list(hosts))

    def states(self, hosts: Iterable[HostConfig]) -> dict[str, object]:
        """Each host's state (one read-only round trip per host), or the exception reading it raised."""
        from . import reading
        return reading.states(self.ctx, list(hosts))

    def logs(self, hosts: Iterable[HostConfig], lines: int = 50, follow: bool = False,
             stop: Optional[threading.Event] = None) -> OperationResult:
        """Tail the configured log files on each host until ``stop`` (or the operation's interrupt)."""
        from . import reading
        return reading.logs(self.ctx, list(hosts), lines, follow, stop)

    def diff(self, hosts: Iterable[HostConfig], from_id: Optional[str] = None, to_id: Optional[str] = None,
             source: Optional[Path] = None, ref: Optional[str] = None, patch: bool = False) -> DiffReport:
        """What changes from ``from_id`` (default: each host's current build) to ``to_id`` (default: what a deploy
        would ship now, from ``source`` or exactly ``ref``): files, requirements, commits; one round trip per host
        (``patch``: the files' contents too, one more on one host of each group)."""
        from . import diff as diffing_ops

        return diffing_ops.diff(self.ctx, list(hosts), from_id, to_id, source, ref, patch)

    def diff_summary(self, hosts: Iterable[HostConfig], from_id: Optional[str] = None,
                     to_id: Optional[str] = None) -> str:
        """The one line the TUI's confirmations show: ``12 files changed, requirements: +redis==5.0.1, 3 commits: …``.

        Deploy: ``diff_summary(hosts)`` (current -> the source); rollback: ``diff_summary(hosts, to_id=target)``.
        Never raises for a host's problem: it is said in the line (a bad source raises OperationError).
        """
        return self.diff(hosts, from_id, to_id).summary()

    def history(self, hosts: Iterable[HostConfig], lines: int = 1000):
        """The fleet's history, one entry per operation, and each host's reading problems."""
        from . import reading
        return reading.history(self.ctx, list(hosts), lines)


def __getattr__(name: str):
    """``check_keep`` and ``prune_plans`` (maintenance's), imported on first use."""
    if name in ("check_keep", "prune_plans"):
        from . import maintenance
        return getattr(maintenance, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Operations", "OperationError", "OperationContext", "RolloutChoice", "SourceInfo", "check_keep",
           "deployer_identity", "inspect_source", "new_build_id", "source_requirements", "pid_alive", "prune_plans", "this_machine",
           "unique_build_id", "utc_now"]
