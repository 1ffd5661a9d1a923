"""The executors of an operation (or of the TUI's lifetime): one per host, made on first use, closed together."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from ..config import HostConfig
from .base import Executor
from .local import LocalExecutor
from .ssh import GatewaySource, SSHExecutor

if TYPE_CHECKING:  # made only when a host has a jump host
    from .jump import GatewayPool


def make_executor(host: HostConfig, connect_timeout: float = 15.0, gateways: GatewaySource = None) -> Executor:
    """The executor for a host's transport."""
    if host.transport == "local":
        return LocalExecutor(host, connect_timeout)
    return SSHExecutor(host, connect_timeout, gateways)


@dataclass
class ExecutorPool:
    """Kept-open executors, one per host, reused across operations (the TUI keeps one for its lifetime)."""

    executors: dict = field(default_factory=dict)
    connect_timeout: float = 15.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    gateways: Optional["GatewayPool"] = None

    def gateway_pool(self) -> "GatewayPool":
        """The jump hosts' connections, made when a host first needs one (the jump code is imported only then)."""
        with self._lock:
            if self.gateways is None:  # the jump hosts get the same connect timeout as the hosts
                from .jump import GatewayPool
                self.gateways = GatewayPool(self.connect_timeout)
            return self.gateways

    def get(self, host: HostConfig) -> Executor:
        """The executor for ``host``, made on first use."""
        with self._lock:
            executor = self.executors.get(host.name)
            if executor is None or executor.host != host:
                executor = make_executor(host, self.connect_timeout, self.gateways or self.gateway_pool)
                self.executors[host.name] = executor
            return executor

    def close(self) -> None:
        """Close every connection."""
        with self._lock:
            for executor in self.executors.values():
                try:
                    executor.close()
                except Exception:
                    pass
            self.executors.clear()
        if self.gateways is not None:
            self.gateways.close()
