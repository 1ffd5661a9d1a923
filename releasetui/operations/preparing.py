"""The prepare phase of a deploy on one host: its script (the stream inside it when small, else on stdin after the
env file's line and the wheelhouse), sent again whole or with the files the host asks for, and its outcome."""

from __future__ import annotations

import itertools
import json
import threading
import time
from typing import TYPE_CHECKING, Callable, Optional

from .. import commands
from ..config import HostConfig
from ..manifest import Payload, canonical_digest
from ..metadata import complete_meta, meta_json
from ..models import HostOutcome, HostState
from ..text import clean_line
from . import wheels as wheelhouses

if TYPE_CHECKING:
    from .deploy_face import DeployFace


class Preparing:
    """Phase 3 of one deploy, host by host; the shipping streams it builds are shared by hosts that need the same."""

    def __init__(self, deploy: "DeployFace"):
        self.deploy = deploy
        self.payloads: dict = {}
        self._payload_lock = threading.Lock()

    def payload_for(self, state: HostState, send: list, link_from: Optional[str], delta: bool = True) -> Payload:
        """The shipping stream for a host, built once for every host that needs the same files.

        With ``delta`` its header carries only how the manifest differs from the host's current build's (as
        read under the lock), so a small change stays small enough to ride inside the script.
        """
        base = state.current_manifest if delta and link_from else None
        key = (link_from, tuple(send), canonical_digest(base) if base is not None else None)
        with self._payload_lock:
            payload = self.payloads.get(key)
            if payload is None:
                payload = self.deploy.manifest.payload(send, f"builds/{link_from}" if link_from else None, base=base)
                self.payloads[key] = payload
            return payload

    def prepare_command(self, host: HostConfig, payload: Payload, resume: bool = False,
                        shown: Optional[Callable[[str], str]] = None, env_in: bool = False,
                        wheels_in: bool = False) -> tuple[str, bool]:
        """The prepare script for ``host`` and whether the stream rides inside it (else: send it on stdin).

        Inside when it is small and the whole script still fits one exec request any SSH server takes; the
        run and ``--dry-run`` both decide here (``shown`` replaces the base64 in what a dry run prints).
        Never inside when the env file must be sent (``env_in``): a secret is never in a command line; nor
        when the wheelhouse goes with it (``wheels_in``): it comes first on stdin.
        """
        if env_in or wheels_in:
            return self.prepare_script_for(host, resume, env_in=env_in, wheels_in=wheels_in), False
        inline = commands.inline_payload(payload.data) if payload.data is not None else None
        if inline is not None:
            script = self.prepare_script_for(host, resume, inline)
            if commands.fits_one_packet(script):
                return (self.prepare_script_for(host, resume, shown(inline)) if shown else script), True
        return self.prepare_script_for(host, resume), False

    def prepare_script_for(self, host: HostConfig, resume: bool = False, inline: Optional[str] = None,
                           env_in: bool = False, wheels_in: bool = False) -> str:
        """The prepare script for ``host`` (also what ``--dry-run`` prints), carrying the ``inline`` stream."""
        meta = self.deploy.meta_for(host)
        wheelhouse = self.deploy.part(host).wheelhouse
        req = self.deploy.info.requirements
        return commands.prepare_script(
            host.root, self.deploy.ctx.token, self.deploy.plan.build_id, requirements=req.path, venv=meta["venv"],
            python=host.python, pip_args=self.deploy.config.pip_args, meta_incomplete=meta_json(meta),
            meta_complete=meta_json({**complete_meta(meta), "installer": commands.INSTALLER_SLOT}),
            install_timeout=self.deploy.config.install_timeout, resume=resume,
            shared_files=self.deploy.config.shared.files, shared_dirs=self.deploy.config.shared.dirs, inline=inline,
            env=(self.deploy.env.path, self.deploy.env.digest) if self.deploy.env else None, env_in=env_in,
            requirements_text=req.carried, installer=host.installer, uv=host.uv,
            wheelhouse=wheelhouse, wheels_in=wheels_in)

    def stdin_for(self, payload: Payload, env_in: bool, wheels: Optional[wheelhouses.Wheelhouse] = None):
        """What the prepare script reads on stdin: the env file's line first when it is sent, then the wheelhouse
        when it is sent, then the stream."""
        if not env_in and wheels is None:
            return payload.chunks()
        env = [json.dumps({"content": self.deploy.env.content}).encode("utf-8") + b"\n"] if env_in else []
        return itertools.chain(env, wheels.chunks() if wheels is not None else (), payload.chunks())

    def prepare_host(self, host: HostConfig) -> HostOutcome:
        """Phase 3 on one host: ship + venv + complete, in one script (two when files must be resent)."""
        state: HostState = self.deploy.fleet.states[host.name]  # type: ignore[assignment]
        link_from = state.current if state.current_manifest is not None else None
        send = self.deploy.manifest.to_send(state.current_manifest if link_from else None)
        payload = self.payload_for(state, send, link_from)
        env_in = self.deploy.env is not None and not state.env_here
        part = self.deploy.part(host)
        wheels = self.deploy.wheels.sent_to(part)
        script, inside = self.prepare_command(host, payload, env_in=env_in, wheels_in=wheels is not None)
        started = time.monotonic()
        result = self.deploy.ctx.run(host, script, phase="prepare",
                              stdin=None if inside else self.stdin_for(payload, env_in, wheels),
                              timeout=self.deploy.config.install_timeout)
        parsed = commands.parse_prepare(result.stdout)
        if parsed["full_manifest"] and not result.stopped and not parsed["lost_lock"]:
            # The host could not rebuild the manifest from the delta (nothing was written): send it whole.
            payload = self.payload_for(state, send, link_from, delta=False)
            script, inside = self.prepare_command(host, payload)
            result = self.deploy.ctx.run(host, script, phase="prepare", stdin=None if inside else payload.chunks(),
                                  timeout=self.deploy.config.install_timeout)
            parsed = commands.parse_prepare(result.stdout)
        if parsed["need"] and not result.stopped and not parsed["lost_lock"]:
            # Files of the current build changed since they were shipped: send them instead of linking.
            again = self.deploy.manifest.payload(parsed["need"], None)
            try:
                script, inside = self.prepare_command(host, again, resume=True)
                result = self.deploy.ctx.run(host, script, phase="prepare", stdin=None if inside else again.chunks(),
                                      timeout=self.deploy.config.install_timeout)
            finally:
                again.discard()
            parsed = commands.parse_prepare(result.stdout)
        if result.stopped:
            return HostOutcome(host.name, "interrupted", "interrupted while preparing", current=state.current)
        if parsed["lost_lock"]:
            return HostOutcome(host.name, "failed", "its lock was removed while the build was prepared (unlock?); "
                               "stopped: nothing switched", current=state.current)
        if not result.ok or not parsed["complete"]:
            return HostOutcome(host.name, "failed", f"prepare failed: {clean_line(result.error_text(), 400)}",
                               current=state.current)
        shipped = parsed["shipped"]
        detail = f" (sent {len(send)} of {self.deploy.manifest.file_count()} files" if shipped is None else \
            f" (received {shipped[0]} files, linked {shipped[1]}"
        if parsed["installer"]:
            # What made its venv, kept in the metadata any later mark (failed, rolled-away) is written onto.
            self.deploy.meta_for(host)["installer"] = parsed["installer"]
            detail += f"; venv by {parsed['installer']}"
        if wheels is not None:
            detail += f"; the wheelhouse {wheels.key}: {len(wheels.wheels)} wheels, {wheels.size} bytes"
        detail += ")"
        self.deploy.ctx.report(host.name, "build", "ok", time.monotonic() - started,
                        f"build {self.deploy.plan.build_id} complete{detail}", "prepare")
        return HostOutcome(host.name, "ok", current=state.current, previous=state.current, build_id=self.deploy.plan.build_id)


__all__ = ["Preparing"]
