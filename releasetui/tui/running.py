"""Running an operation from the main screen: its worker thread, its events as they arrive, its end, and
quitting while it runs (stop it, let it clean up, then exit)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional

from textual import work
from textual.css.query import NoMatches
from textual.message import Message

from .. import present
from ..models import Event, ExitCode, OperationResult
from ..operations import Operations
from . import confirm
from .dialogs import QuitWhileBusyScreen
from .fmt import event_line, served_lines

if TYPE_CHECKING:
    from .face import ReleaseFace


class OperationEvent(Message):
    """An event reported by an operation's worker thread."""

    def __init__(self, event: Event):
        super().__init__()
        self.event = event


class OperationFinished(Message):
    """An operation ended: its result, or the one-line reason it could not start."""

    def __init__(self, name: str, result: Optional[OperationResult], error: Optional[str]):
        super().__init__()
        self.name = name
        self.result = result
        self.error = error


class OperationRunner:
    """One mutating operation at a time, in a worker (a mixin of :class:`~releasetui.tui.main.MainScreen`)."""

    releasetui: "ReleaseFace"

    def init_running(self) -> None:
        """Nothing runs yet."""
        self.busy: Optional[str] = None
        self.preparing: Optional[str] = None  # a key whose confirmation waits for fresh states
        self.quitting = False  # quit confirmed while busy: exit once the operation has cleaned up
        self.interrupted = False
        self.running_steps: dict[tuple[Optional[str], str], str] = {}
        self.running_ops: Optional[Operations] = None
        self.served_changed = False  # a deploy or rollback ran: the app prints what each host serves on exit
        self.last_name: Optional[str] = None  # the last operation run here
        self.last_outcome: Optional[str] = None  # the last operation's closing line (the quit dialog says it)

    def report(self, event: Event) -> None:
        """The operations' reporter, called from worker threads; post_message is thread-safe."""
        self.post_message(OperationEvent(event))

    def on_operation_event(self, message: OperationEvent) -> None:
        """Show a step when it finishes; a started one only shows in the pane's title (the running indicator)."""
        event = message.event
        key = (event.host, event.step)
        if event.status == "started":
            self.running_steps[key] = f"{event.host or '*'} {event.step}"
            self.update_output_title()
            return
        if self.running_steps.pop(key, None) is not None:
            self.update_output_title()
        self.say(event_line(event, self.releasetui.tz))

    def update_output_title(self) -> None:
        """The output pane's title: what runs (the steps under way), that it is stopping, or what is read."""
        self.output_pane().show_running(self.busy, self.interrupted, self.running_steps, self.preparing,
                                        len(self.releasetui.hosts))

    def run_operation(self, name: str, work_fn: Callable[[Operations], OperationResult]) -> None:
        """Start a mutating operation in a worker; keys are dimmed until it finishes.

        Confirmed from the fleet view, it first goes back to this screen: the progress is in the output pane.
        """
        if self.app.screen is not self and self in self.app.screen_stack:
            self.pop_until_active()
        self.busy = name
        self.interrupted = False
        self.running_steps.clear()
        # Made here, not in the worker: a quit right after the start must find the stop event to set.
        self.running_ops = self.releasetui.make_operations(self.report)
        self.refresh_bindings()
        self.update_output_title()
        self.say(f"── {name} on {self.targets_phrase()}", "bold")
        self.operation_worker(name, self.running_ops, work_fn)

    @work(thread=True, exclusive=True, group="operation", exit_on_error=False)
    def operation_worker(self, name: str, ops: Operations, work_fn: Callable[[Operations], OperationResult]) -> None:
        """Worker: run the blocking operation; its end comes back as :class:`OperationFinished`."""
        result, error = None, None
        try:
            result = work_fn(ops)
        except Exception as exc:  # OperationError and friends: one line, the app keeps running
            error = str(exc) or type(exc).__name__
        self.post_message(OperationFinished(name, result, error))

    def on_operation_finished(self, message: OperationFinished) -> None:
        """Summarise per host in the pane, notify, and re-read the hosts (or quit, when a quit waited for this)."""
        self.last_name = self.busy or message.name
        self.busy = None
        self.running_ops = None
        self.running_steps.clear()
        self.refresh_bindings()
        self.update_output_title()
        name, result = message.name, message.result
        # Toasts sit over the bottom of the output pane: short-lived, the pane keeps the full text.
        if message.error or result is None:
            self.last_outcome = f"{name} could not start: {message.error}"
            self.say(self.last_outcome, "bold red")
            self.notify(message.error or "unknown error", title=f"{name} failed", severity="error", timeout=6)
        else:
            self.say_result(name, result)
        if self.quitting:
            self.app.exit(return_code=self.quit_verdict(name, result))
            return
        # A quit dialog open meanwhile now says the operation has ended: y just quits.
        for screen in self.app.screen_stack:
            if isinstance(screen, QuitWhileBusyScreen):
                screen.follow()
        self.action_refresh()

    def say_result(self, name: str, result: OperationResult) -> None:
        """An operation's end in the pane (per host, then its summary) and in a notification; after a deploy or
        rollback, what each host serves, also for the terminal once the app exits."""
        for status, line in present.outcome_lines(result):
            self.say(line, "green" if status == "ok" else "bold red")
        summary = f"{name} {result.status} in {result.duration:.1f}s"
        self.say(summary, "bold green" if result.ok else "bold red")
        self.last_outcome = summary + "."
        if name in ("deploy", "rollback"):
            live = present.live_line(result.live(), [o.host for o in result.outcomes.values()
                                                     if o.status == "unreachable"])
            self.say(live, "bold" if not result.mixed else "bold yellow")
            self.last_outcome = f"{summary}; {live}."
            # What each host serves is said again on the terminal once the app exits (after a quit
            # mid-operation, this result is the last word; else the re-read that follows replaces it).
            self.served_changed = True
            self.releasetui.exit_report = served_lines(
                {o.host: (RuntimeError(o.message) if o.status == "unreachable" else o.current)
                 for o in result.outcomes.values()},
                {o.host: f"{name} {o.status}" + (f": {o.message}" if o.message else "")
                 for o in result.outcomes.values() if o.status not in ("ok", "unreachable")})
        if result.ok:
            self.notify(summary, title=name, timeout=3)
        else:
            bad = [f"{o.host}: {o.message}" for o in result.outcomes.values() if o.status != "ok"]
            self.notify("\n".join(bad), title=f"{name} failed", severity="error", timeout=6)

    def quit_promise(self) -> confirm.Confirmation:
        """What quitting does now, from the running operation's own state (the quit dialog asks a few times a
        second): abort it, let its switch finish, let its wave finish and switch back, or just quit."""
        if self.busy is None:
            return confirm.quit_promise(self.last_name or "the operation", None,
                                        finished=self.last_outcome or "it has ended.")
        interrupts = getattr(self.running_ops, "interrupts", None)
        if interrupts is None:  # a core that cannot say its phase: the promise that holds before the switch
            return confirm.quit_promise(self.busy, None)
        return confirm.quit_promise(self.busy, interrupts.outlook(), interrupts.wave, interrupts.waves)

    def quit_verdict(self, name: str, result: Optional[OperationResult]) -> int:
        """The exit code of a quit that waited for ``name`` to stop: 0 when it ended ok anyway (the switch had
        begun and finished), else 130 and one line on the terminal saying the quit aborted it."""
        if result is not None and result.ok:
            return 0
        status = result.status if result is not None else "stopped"
        self.releasetui.exit_report.append(f"releasetui: {name} {status}: aborted by quitting the TUI (exit 130)")
        return int(ExitCode.INTERRUPTED)

    def interrupt(self) -> None:
        """Ask the running operation to stop, once (setting it again could cut short the cleanup it started)."""
        if self.interrupted or self.running_ops is None:
            return
        self.interrupted = True
        self.running_ops.interrupt("TUI quit")
        try:
            self.update_output_title()
        except NoMatches:  # called while the app unmounts: the pane is already gone
            pass

    def stop_then_quit(self) -> None:
        """Quit confirmed while busy: stop the operation, let it clean up on every host, exit when it has."""
        if self.busy is None:  # it finished while the question was open
            self.app.exit(0)
            return
        self.quitting = True
        self.refresh_bindings()
        self.interrupt()
        self.say(f"stopping {self.busy}… (cleaning up on the hosts; the app quits when that is done)", "bold yellow")
        self.notify(f"Stopping {self.busy}: cleaning up on the hosts, then quitting.", title="Quitting", timeout=4)
