"""``wheels: ship`` in a deploy: the wheelhouses its hosts are sent, from this machine's cache, built here, or built
on a builder host and brought back (:func:`releasetui.rules.wheelhouse_builders` says which), and what a dry run
says of each.  The deploy's prepare phase sends them; this module only gets them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from .. import commands, rules
from ..config import HostConfig
from ..models import HostOutcome, HostState
from ..text import clean_line
from . import wheels as wheelhouses
from .source import OperationError

if TYPE_CHECKING:
    from .deploy_face import DeployFace


class ShippedWheels:
    """The wheelhouses one deploy sends, by ``(venv key, builder host or None for this machine)``."""

    def __init__(self, deploy: "DeployFace"):
        self.deploy = deploy
        self.houses: dict[tuple, wheelhouses.Wheelhouse] = {}

    def sent_to(self, part: rules.HostDeploy) -> Optional[wheelhouses.Wheelhouse]:
        """The wheelhouse ``part``'s host is sent with its build (None when it is sent none)."""
        return self.houses[(part.venv, part.wheels_built_on)] if part.send_wheels else None

    def build(self) -> Optional[str]:
        """``wheels: ship``: each wheelhouse some host is sent, from this machine's cache or built now (here, or on
        its builder host: :func:`releasetui.rules.wheelhouse_builders`), once per venv key and platform whatever
        the number of hosts; why not, when one cannot be built (the deploy then aborts, nothing prepared)."""
        for part in self.deploy.plan.hosts:
            if not part.send_wheels or part.wheels_built_on is not None or (part.venv, None) in self.houses:
                continue
            started = time.monotonic()
            python = self.deploy.local.pythons[rules.major_minor(part.python_version)]
            try:
                req = self.deploy.info.requirements
                house = wheelhouses.ensure(part.venv, python, self.deploy.info.path / req.path, self.deploy.config.pip_args,
                                           self.deploy.config.path.parent, self.deploy.config.install_timeout, text=req.carried)
            except OperationError as exc:
                return str(exc)
            self.houses[(part.venv, None)] = house
            self.report(house, None, "built here" if house.built else "from this machine's cache",
                                   time.monotonic() - started)
        return self.build_on_hosts()

    def report(self, house: wheelhouses.Wheelhouse, built_on: Optional[str], how: str,
                          seconds: float) -> None:
        """The ``wheels`` step line of one wheelhouse: where it comes from and how many hosts it is sent to."""
        sent = sum(1 for p in self.deploy.plan.hosts if p.send_wheels and (p.venv, p.wheels_built_on) == (house.key, built_on))
        self.deploy.ctx.report(None, "wheels", "ok", seconds, f"wheelhouse {house.key} {how} ({len(house.wheels)} wheels, "
                        f"{house.size} bytes): sent to {sent} host(s)", "prepare")

    def host_cache(self, builder: str) -> Path:
        """This machine's folder for the wheelhouses built on hosts of ``builder``'s platform and Python (of that host
        alone when its platform is unknown: such a host shares its wheels with no other)."""
        state: HostState = self.deploy.fleet.states[builder]  # type: ignore[assignment]
        return wheelhouses.host_cache_dir(state.platform or f"unknown {builder}", state.python_version or "",
                                          self.deploy.config.pip_args)

    def build_on_hosts(self) -> Optional[str]:
        """The wheelhouses this machine cannot build: from its cache when a host built them before, else built on
        their builder hosts (one round trip each, all at once), checked and kept here, then sent like those built
        here.  Why not, in one line naming the host, when one failed (its outcome says so too)."""
        builders = {p.wheels_built_on: p.venv for p in self.deploy.plan.hosts
                    if p.send_wheels and p.wheels_built_on is not None}
        todo = []
        for builder, key in builders.items():
            found = wheelhouses.cached(key, self.host_cache(builder))
            if found is not None:
                self.houses[(key, builder)] = found
                self.report(found, builder, f"from this machine's cache (built on a host of "
                                       f"{self.deploy.fleet.states[builder].platform or 'its platform'})", 0.0)
            else:
                todo.append(next(h for h in self.deploy.hosts if h.name == builder))
        outcomes = self.deploy.ctx.runner.map(todo, lambda host: self.build_on_host(host, builders[host.name]))
        for host in todo:
            outcome = outcomes[host.name]
            why = outcome.value if outcome.ok else self.deploy.ctx.failure(host, outcome.error).message
            if why is not None and not self.deploy.ctx.stop.is_set():
                why = f"wheels: ship: the wheelhouse could not be built on {host.name}: {why}"
                self.deploy.result.outcomes[host.name] = HostOutcome(host.name, "failed", why,
                                                              current=self.deploy.current().get(host.name))
                return why
        return None

    def script_for(self, host: HostConfig, key: str) -> str:
        """The script that builds the wheelhouse ``key`` on ``host`` (also what ``--dry-run`` prints)."""
        return commands.wheelhouse_script(host.root, self.deploy.ctx.token, key=key, python=host.python,
                                          requirements_text=self.deploy.info.requirements.text,
                                          pip_args=self.deploy.config.pip_args, install_timeout=self.deploy.config.install_timeout)

    def build_on_host(self, host: HostConfig, key: str) -> Optional[str]:
        """Build the wheelhouse ``key`` on ``host`` and keep it here; None when done, else why not (pip's last
        words, a lost lock, something that arrived wrong)."""
        started = time.monotonic()
        arriving = wheelhouses.Receiving(key, self.host_cache(host.name))
        try:
            result, reader = self.receive(host, key, arriving)
        except BaseException:
            arriving.drop()
            raise
        built, why = reader.end(), None
        if result.stopped:
            why = "interrupted"
        elif built.lost_lock:
            why = "its lock was removed while the wheelhouse was built (unlock?)"
        elif built.failed:
            why = f"pip wheel: {clean_line(built.failed, 400)}"
        elif built.problem:
            why = clean_line(built.problem, 400)
        elif not result.ok or not built.complete:
            why = clean_line(result.error_text(), 400)
        else:  # a host's pip with another index (or a compromised host) must not hand the fleet other packages
            why = self.unpinned(reader.names)
        if why is not None:
            arriving.drop()
            return why
        house = arriving.keep()
        # Sent back to every host that needs it, the builder included: the same prepare (and the same abort)
        # on every host, and the builder's temporary folder is already gone.
        self.houses[(key, host.name)] = house
        self.report(house, host.name, f"built on {host.name}", time.monotonic() - started)
        return None

    def unpinned(self, names: list) -> Optional[str]:
        """Why the wheels ``names`` a builder host sent are not kept, when the lock does not pin them all."""
        req = self.deploy.info.requirements
        wrong = req.unpinned_wheels(names)
        if not wrong:
            return None
        return (f"it sent {', '.join(wrong[:3])}{' and more' if len(wrong) > 3 else ''}, which {req.path} does not "
                "pin: not kept, not sent")

    def receive(self, host: HostConfig, key: str, arriving: "wheelhouses.Receiving"):
        """Run the builder's script, its wheels written to ``arriving`` as they come (the executor keeps every other
        line, not their bytes): (its result, the reader that checked them)."""
        ctx = self.deploy.ctx
        reader = commands.WheelhouseReader(arriving.open_wheel)
        process = ctx.start(host, self.script_for(host, key), phase="prepare")
        process.keep_only(reader.take)
        process.feed(None)
        timeout = self.deploy.config.install_timeout
        result = process.wait(stop=ctx.stop, deadline=time.monotonic() + timeout if timeout else None)
        return result, reader

    def dry_run_line(self, part: rules.HostDeploy) -> str:
        """What a dry run says of a ``wheels: ship`` host's wheelhouse: not needed, on the host, or sent (and from
        where: this machine's cache, the ``pip wheel`` that builds it here first, or the one its builder host runs)."""
        if part.venv_reused:
            return f"venv {part.venv} is reused: no wheelhouse sent"
        if not part.send_wheels:
            return f"wheelhouse {part.venv} is on the host already: installs from it, nothing sent"
        install = f"install with --no-index --find-links wheelhouses/{part.venv}"
        built_on = part.wheels_built_on
        cache = self.host_cache(built_on) if built_on else None
        found = wheelhouses.cached(part.venv, cache, pip_args=self.deploy.config.pip_args)
        if found is not None:
            return (f"send wheelhouse {part.venv} from {found.path} ({len(found.wheels)} wheels, {found.size} bytes); "
                    + install)
        if built_on is not None:
            builder = next(h for h in self.deploy.hosts if h.name == built_on)
            return (f"build wheelhouse {part.venv} on {built_on} (this machine cannot build for "
                    f"{self.deploy.fleet.states[part.host].platform or 'its platform'}: "
                    f"{commands.host_pip_wheel(builder.python, self.deploy.config.pip_args)}, $_wd a temporary folder in its "
                    f"root), keep it in {cache / part.venv}, send it; {install}")
        req = self.deploy.info.requirements
        command = wheelhouses.pip_wheel_command(self.deploy.local.pythons[rules.major_minor(part.python_version)],
                                                self.deploy.info.path / req.path if req.carried is None else
                                                Path(f"<{req.label} resolved>"),
                                                wheelhouses.cache_dir(pip_args=self.deploy.config.pip_args) / part.venv,
                                                self.deploy.config.pip_args)
        return f"build wheelhouse {part.venv} here ({' '.join(command)}), send it; {install}"


__all__ = ["ShippedWheels"]
