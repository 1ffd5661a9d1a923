"""A deploy's plan: the build id, whether each host's venv is reused, whether it is sent a wheelhouse."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional, Sequence

from ..models import BuildInfo, HostState, check_build_id
from .refusals import Refusal, States, layout_refusals, reachable, read_refusals, shared_refusals


# --- deploy ---------------------------------------------------------------------------

def venv_key(requirements_sha256: str, python_version: str) -> str:
    """The venv directory name for a requirements hash and a host interpreter (``3.11.7`` -> ``py3.11``)."""
    from ..models import VENV_KEY_PATTERN
    major_minor = ".".join(python_version.split(".")[:2])
    key = f"{requirements_sha256[:16]}-py{major_minor}"
    if not VENV_KEY_PATTERN.fullmatch(key):
        raise ValueError(f"invalid venv key {key!r}")
    return key


def venv_reused(state: HostState, requirements_sha256: str) -> bool:
    """Whether a deploy with these requirements finds its venv already built on the host (no pip at all)."""
    if not state.python_version:
        return False
    return venv_key(requirements_sha256, state.python_version) in state.venvs


def requirements_changed(builds: Sequence[BuildInfo]) -> dict[str, bool]:
    """For each build id: whether its requirements hash differs from the build before it (by id)."""
    changed: dict[str, bool] = {}
    previous: Optional[str] = None
    for build in sorted(builds, key=lambda b: b.id):
        sha = build.requirements_sha256
        changed[build.id] = bool(previous and sha and sha != previous)
        previous = sha or previous
    return changed


def unique_build_id(base: str, taken: Iterable[str]) -> str:
    """``base`` if no host has it yet, else ``base-01``, ``base-02``... (the same id on every host)."""
    check_build_id(base)
    taken = set(taken)
    if base not in taken:
        return base
    for n in range(1, 100):
        candidate = f"{base}-{n:02d}"
        if candidate not in taken:
            return candidate
    raise ValueError(f"more than 99 builds started in the second {base}")


@dataclass
class HostDeploy:
    """One host's part of a deploy."""

    host: str
    current: Optional[str]
    venv: Optional[str]
    venv_reused: bool
    python_version: Optional[str]
    wheels: str = "host"            # `wheels:` for this host: "host" (pip wheel there) or "ship"
    send_wheels: bool = False       # the wheelhouse is sent with the build (see wheels_to_send)
    wheels_built_on: Optional[str] = None   # where that wheelhouse is built: None = this machine, else a host's name

    @property
    def wheelhouse(self) -> Optional[str]:
        """The wheelhouse (``wheelhouses/<key>`` on the host) this host's new venv installs from, when it ships."""
        return self.venv if self.wheels == "ship" and not self.venv_reused else None


@dataclass(frozen=True)
class LocalBuilder:
    """What this machine can build wheels for: its OS and machine as ``uname -sm`` says them (``Linux x86_64``)
    and its interpreters by major.minor (``{"3.11": "/usr/bin/python3.11"}``)."""

    platform: str
    pythons: Mapping[str, str] = field(default_factory=dict)


def major_minor(version: Optional[str]) -> str:
    """``3.11.7`` -> ``3.11`` ('' for None)."""
    return ".".join((version or "").split(".")[:2])


def wheels_to_send(state: HostState, venv: Optional[str], mode: str) -> bool:
    """THE rule of shipping wheels: a ``wheels: ship`` host is sent the wheelhouse only when its new venv must be
    built (not reused) and the wheelhouse for that venv is not already on the host."""
    return mode == "ship" and venv is not None and venv not in state.venvs and venv not in state.wheelhouses


def builds_here(state: HostState, local: Optional[LocalBuilder]) -> bool:
    """Whether this machine can build the wheelhouse a host needs: wheels built here install there only when the
    OS, the machine and Python's major.minor are the same."""
    return (local is not None and state.platform is not None and state.platform == local.platform
            and major_minor(state.python_version) in local.pythons)


def wheelhouse_builders(parts: Sequence[HostDeploy], states: Mapping[str, HostState],
                        local: Optional[LocalBuilder]) -> dict[str, Optional[str]]:
    """THE rule of where each wheelhouse that must be sent is built, for each host sent one: this machine (None)
    when it can build for the host (:func:`builds_here`), else the first host in plan order among those that
    need the same wheelhouse (venv key) on the same platform.

    Hosts of different platforms never share a wheelhouse built on a host; a host whose platform is unknown
    builds its own (nothing says another host's wheels would install there).
    """
    first: dict[tuple, str] = {}
    builders: dict[str, Optional[str]] = {}
    for part in parts:
        if not part.send_wheels:
            continue
        state = states[part.host]
        if builds_here(state, local):
            builders[part.host] = None
            continue
        group = (part.venv, state.platform or "\0" + part.host)
        builders[part.host] = first.setdefault(group, part.host)
    return builders


@dataclass
class DeployPlan:
    """A deploy decided from every targeted host's state."""

    build_id: Optional[str]
    requirements_sha256: str
    hosts: list[HostDeploy] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the deploy may go ahead on every host."""
        return not self.refusals


def plan_deploy(states: States, requirements_sha256: str, base_id: str, python: Mapping[str, str],
                shared_files: Sequence[str] = (), ignore_locks: bool = False,
                roots: Optional[Mapping[str, str]] = None, wheels: Optional[Mapping[str, str]] = None,
                local: Optional[LocalBuilder] = None) -> DeployPlan:
    """The new build's id (the same on every host), and per host: from which build, whether its venv is reused,
    whether it is sent the wheelhouse (``wheels``: each host's mode; ``local``: what this machine builds for).

    Refused on every host when one cannot take part (unreachable, locked, its
    interpreter missing, a shared file missing).  A wheelhouse this machine cannot
    build is built on a host (:func:`wheelhouse_builders`).  ``python`` names each
    host's interpreter and ``roots`` its project root, for the messages.
    """
    plan = DeployPlan(None, requirements_sha256)
    plan.refusals.extend(read_refusals(states, ignore_locks))
    plan.refusals.extend(layout_refusals(states))
    hosts = reachable(states)
    for name, state in hosts.items():
        if not state.python_version:
            plan.refusals.append(Refusal(name, f"interpreter {python.get(name, 'python3')!r} does not run there "
                                               "(set `python:` for this host)"))
    plan.refusals.extend(shared_refusals(hosts, roots or {}))
    plan.build_id = unique_build_id(base_id, (b.id for s in hosts.values() for b in s.builds))
    for name, state in hosts.items():
        key = venv_key(requirements_sha256, state.python_version) if state.python_version else None
        mode = (wheels or {}).get(name, "host")
        plan.hosts.append(HostDeploy(name, state.current, key, bool(key and key in state.venvs), state.python_version,
                                     mode, wheels_to_send(state, key, mode)))
    builders = wheelhouse_builders(plan.hosts, hosts, local)
    for part in plan.hosts:
        part.wheels_built_on = builders.get(part.host)
    return plan
