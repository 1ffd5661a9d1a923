"""The main screen's keys: each builds its confirmation from the hosts' states with :mod:`.confirm` (or refuses),
then hands the operation to the runner; the views (fleet, history, diff, logs) and marking the targets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional

from rich.text import Text
from textual.widgets import Input

from ..config import HostConfig
from ..models import Event, HostState, OperationResult
from ..operations import pid_alive, this_machine
from ..operations.source import OperationError, source_requirements
from . import confirm
from .dialogs import ConfirmScreen, RolePickerScreen, StagePickerScreen
from .diffview import DiffScreen
from .fleet import FleetScreen
from .historyview import HistoryScreen
from .reading import DiffRead, Then
from .screens import LogScreen

if TYPE_CHECKING:
    from .face import ReleaseFace

Outcome = Optional[confirm.Confirmation | confirm.Refusal]
# What a dialog opened from the states on screen says of the diff until the read beside it lands.
DIFF_PENDING = "reading the hosts…"


class KeyActions:
    """What each key of the main screen does (a mixin of :class:`~releasetui.tui.main.MainScreen`)."""

    releasetui: "ReleaseFace"
    marked: set[str]

    # --- confirmations -----------------------------------------------------------------

    def confirm_after_refresh(self, name: str, build: Then, diff: Optional[DiffRead] = None) -> None:
        """Re-read the hosts, then build the confirmation from what they say now, not from a read minutes old.

        ``diff`` (deploy and rollback only) is made in the same worker, and ``build`` gets its one line (else
        None): at most one more round trip per host, never on the UI thread.
        """
        self.preparing = name
        self.refresh_bindings()
        self.update_output_title()  # says what is read, for whom: the key's answer until the dialog opens

        def then(changes: Optional[str]) -> None:
            self.preparing = None
            self.refresh_bindings()
            self.update_output_title()
            if not self.quitting and self.busy is None:
                build(changes)
        self.start_read(then, diff)

    def confirm_at_once(self, name: str, hosts: list[HostConfig], make: Callable[[Optional[str]], Outcome],
                        on_yes: Callable[[], None], diff: DiffRead) -> None:
        """d and r: open the dialog at once from the states on screen, then read the hosts and ``diff`` in a
        worker and redraw it from what they say now (or close it and say why, if that refuses).

        ``make(changes)`` builds the dialog from the app's states.  The operation re-checks everything under
        the lock: a dialog answered before the read lands acts on nothing stale.  A target not read yet, or a
        refusal, waits for the read (a refusal is only said from fresh states: the host may be back).
        """
        shown = all(self.releasetui.states.get(h.name) is not None for h in hosts)
        outcome = make(DIFF_PENDING) if shown else None
        if not isinstance(outcome, confirm.Confirmation):
            self.confirm_after_refresh(name, lambda changes: self.show(make(changes), on_yes, name, hosts), diff)
            return
        dialog = self.show(outcome, on_yes, name, hosts)
        self.start_read(lambda changes: self.recheck(dialog, make(changes), name, hosts), diff)

    def recheck(self, dialog: Optional[ConfirmScreen], outcome: Outcome, what: str, hosts: list[HostConfig]) -> None:
        """The fresh read behind a dialog opened at once has landed: redraw it with ``outcome``, or close it and
        say why when that is a refusal.  Nothing when it was answered meanwhile."""
        if dialog is None or dialog not in self.app.screen_stack or self.busy or self.quitting:
            return
        if isinstance(outcome, confirm.Refusal):
            if self.app.screen is dialog:
                dialog.dismiss(False)
            self.refuse(outcome, what)
        elif outcome is not None:
            dialog.show(outcome.title, self.dialog_body(outcome, hosts), outcome.label, outcome.danger)

    def show(self, outcome: Outcome, on_yes: Callable[[], None], what: str,
             hosts: list[HostConfig]) -> Optional[ConfirmScreen]:
        """Open the confirmation, or say why the action is refused (pane and notification), from a pure builder.

        The dialog starts with the target ``hosts``: its grouped lines say "all 4 hosts" of the targets, and
        with fifty hosts and a role marked, which four must be said.
        """
        if outcome is None:
            return None
        if isinstance(outcome, confirm.Refusal):
            self.refuse(outcome, what)
            return None
        dialog = ConfirmScreen(outcome.title, self.dialog_body(outcome, hosts), outcome.label, danger=outcome.danger)
        self.app.push_screen(dialog, lambda ok: ok and on_yes())
        return dialog

    def refuse(self, refusal: confirm.Refusal, what: str) -> None:
        """Say why ``what`` is refused: in the pane, and in a notification."""
        self.say(f"{what} refused: " + "; ".join(refusal.lines), "bold red")
        self.notify("\n".join(refusal.lines), title=refusal.title, severity="error", timeout=6)

    def dialog_body(self, outcome: confirm.Confirmation, hosts: list[HostConfig]) -> Text:
        """The confirmation's text, after the targets in a few words."""
        body = Text()
        body.append("Targets       ", style="bold")
        body.append(self.targets_phrase(hosts) + "\n\n", style="bold cyan")
        body.append_text(outcome.body)
        return body

    # --- the operations -----------------------------------------------------------------

    def action_deploy(self) -> None:
        """d: confirm source and hosts (at once, from the states on screen; redrawn when the hosts have been read
        again), then deploy."""
        app = self.releasetui
        config = app.config
        hosts = self.targets()
        try:  # the digest the deploy itself will key the venvs by (one function, resolving locks as it does)
            req = source_requirements(config.source, config.requirements, config.requirements_extras)
        except OperationError as exc:
            self.notify(str(exc), title="Deploy", severity="error")
            return

        def make(changes: Optional[str]) -> Outcome:
            """The deploy dialog from the app's states, with the one line of the diff from the hosts' current
            build to the source."""
            return confirm.deploy(config, hosts, app.states, req.sha256, app.now(), diff_summary=changes,
                                  requirements_label=req.label)

        self.confirm_at_once("deploy", hosts, make, lambda: self.run_operation("deploy", lambda ops: ops.deploy(hosts)),
                             lambda ops: ops.diff(hosts))

    def action_rollback(self) -> None:
        """r: roll the target hosts back (or forward) to the build under the cursor, after a confirmation; on the
        build live everywhere, to where a rollback with no id goes (the build live before it)."""
        build_id = self.selected_build()
        if build_id is None:
            self.notify("No build under the cursor.", title="Rollback", severity="warning", timeout=4)
            return
        self.rollback_to(confirm.rollback_target(self.targets(), self.releasetui.states, build_id))

    def rollback_to(self, build_id: str) -> None:
        """Confirm (or refuse) rolling the targets to ``build_id``, at once from the states on screen (also the
        fleet view's r): all hosts switch, or none."""
        app = self.releasetui
        hosts = self.targets()

        def make(changes: Optional[str]) -> Outcome:
            """The rollback dialog from the app's states, with the one line of the diff from the hosts' current
            build to ``build_id``."""
            return confirm.rollback(app.config, hosts, app.states, build_id, app.now(), app.tz, diff_summary=changes)

        self.confirm_at_once("rollback", hosts, make,
                             lambda: self.run_operation("rollback", lambda ops: ops.rollback(hosts, build_id)),
                             lambda ops: ops.diff(hosts, to_id=build_id))

    def action_prune(self) -> None:
        """p: re-read the hosts, list exactly which builds and venvs go on each, then prune."""
        hosts = self.targets()
        self.confirm_after_refresh("prune", lambda _: self.confirm_prune(hosts))

    def confirm_prune(self, hosts: list[HostConfig]) -> None:
        """The prune confirmation, from the states just read."""
        app = self.releasetui
        outcome = confirm.prune(app.config, hosts, app.states)
        if outcome is None:
            self.notify(f"Nothing to prune on {self.targets_phrase()}.", title="Prune", timeout=4)
            return
        self.show(outcome, lambda: self.run_operation("prune", lambda ops: ops.prune(hosts)), "prune", hosts)

    def action_unlock(self) -> None:
        """u: re-read the hosts, show who holds each lock (and whether it is stale), then remove it."""
        targets = self.targets()
        self.confirm_after_refresh("unlock", lambda _: self.confirm_unlock(targets))

    def confirm_unlock(self, targets: list[HostConfig]) -> None:
        """The unlock confirmation, from the states just read."""
        app = self.releasetui
        outcome = confirm.unlock(targets, app.states, this_machine(), pid_alive)
        if outcome is None:
            self.notify(f"No deploy lock on {self.targets_phrase()}.", title="Unlock", timeout=4)
            return
        hosts = [h for h in targets if isinstance(app.states.get(h.name), HostState) and app.states[h.name].lock]  # type: ignore[union-attr]
        self.show(outcome, lambda: self.run_operation("unlock", lambda ops: ops.unlock(hosts)), "unlock", targets)

    def action_pin(self) -> None:
        """P: pin (or unpin) the build under the cursor on the target hosts, after a confirmation."""
        build_id = self.selected_build()
        if build_id is None:
            self.notify("No build under the cursor.", title="Pin", severity="warning", timeout=4)
            return
        self.pin_build(build_id)

    def pin_build(self, build_id: str) -> None:
        """Re-read the hosts, then confirm pinning ``build_id`` (unpinning it when pinned on every target)."""
        hosts = self.targets()
        self.confirm_after_refresh("pin", lambda _: self.confirm_pin(build_id, hosts))

    def confirm_pin(self, build_id: str, hosts: list[HostConfig]) -> None:
        """The pin confirmation (or the refusal), from the states just read."""
        app = self.releasetui
        pinned = confirm.pin_wanted(hosts, app.states, build_id)
        name = "pin" if pinned else "unpin"
        self.show(confirm.pin(hosts, app.states, build_id, pinned),
                  lambda: self.run_operation(name, lambda ops: ops.pin(hosts, build_id, pinned)), name, hosts)

    # --- the views ------------------------------------------------------------------------

    def action_diff(self) -> None:
        """D: the full diff of the build under the cursor against the target hosts' current build."""
        build_id = self.selected_build()
        if build_id is None:
            self.notify("No build under the cursor.", title="Diff", severity="warning", timeout=4)
            return
        self.show_diff(build_id)

    def show_diff(self, build_id: str) -> None:
        """The diff view for ``build_id`` on the target hosts (also the fleet view's D); it reads in a worker."""
        app = self.releasetui
        hosts = self.targets()
        self.app.push_screen(DiffScreen(build_id, self.targets_phrase(hosts), hosts,
                                        lambda: app.make_operations(lambda event: None).diff(hosts, to_id=build_id)))

    def action_fleet(self) -> None:
        """v: the fleet view (builds by hosts) over the states last read."""
        self.app.push_screen(FleetScreen(self))

    def action_history(self) -> None:
        """h: the fleet's history, read in a worker by the history screen."""
        app = self.releasetui
        hosts = list(app.hosts)
        self.app.push_screen(HistoryScreen(hosts, lambda: app.make_operations(lambda event: None).history(hosts),
                                           app.now, app.tz))

    def action_logs(self) -> None:
        """l: a live tail of the target hosts' log files on its own screen."""
        app = self.releasetui
        if not app.config.logs:
            self.notify("No log files configured: add `logs:` to the config.", title="Logs", severity="warning",
                        timeout=4)
            return
        hosts = self.targets()

        def start(report: Callable[[Event], None], stop) -> OperationResult:
            return app.make_operations(report).logs(hosts, lines=50, follow=True, stop=stop)

        self.app.push_screen(LogScreen(hosts, start))

    # --- targets, stages, the filter --------------------------------------------------------

    def action_mark(self) -> None:
        """m/space: toggle the host under the hosts cursor as a target."""
        name = self.host_cursor
        if name is None:
            return
        self.marked.symmetric_difference_update({name})
        self.fill_hosts()

    def action_mark_role(self) -> None:
        """M: pick a role; its hosts become the targets (or none marked: all hosts)."""
        roles = self.roles()
        if not roles:
            self.notify("No roles: give the hosts `roles:` in the config.", title="Mark role", severity="warning",
                        timeout=4)
            return
        host = next((h for h in self.releasetui.hosts if h.name == self.host_cursor), None)
        first = host.roles[0] if host is not None and host.roles else None
        current = next((role for role, names in roles if set(names) == self.marked), None)
        self.app.push_screen(RolePickerScreen(roles, len(self.releasetui.hosts), highlight=first, marked=current),
                             self.mark_role)

    def mark_role(self, role: Optional[str]) -> None:
        """The picker's answer: mark exactly that role's hosts ("*": none, so every host is a target)."""
        if role is None:
            return
        self.marked = set() if role == "*" else set(dict(self.roles()).get(role, []))
        self.fill_hosts()

    def action_pick_stage(self) -> None:
        """S: pick another stage; the app opens again on it (its own hosts, connections and reads)."""
        config = self.releasetui.config
        self.app.push_screen(StagePickerScreen(config.stages, config.stage), self.open_stage)

    def open_stage(self, stage: Optional[str]) -> None:
        """The picker's answer: leave this stage's screen and open that one (nothing runs: keys were dimmed)."""
        if stage is None or stage == self.releasetui.config.stage or self.busy:
            return
        self.releasetui.next_stage = stage
        self.app.exit(0)

    def action_filter(self) -> None:
        """/: show the filter box."""
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    def action_clear_filter(self) -> None:
        """esc: clear and hide the filter."""
        box = self.query_one("#filter", Input)
        if box.display:
            box.value = ""
            box.display = False
            self.filter_text = ""
            self.fill_builds()
            self.builds_table().focus()
