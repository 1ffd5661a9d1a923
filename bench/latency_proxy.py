#!/usr/bin/env python3
"""A TCP proxy that delays every byte by a fixed one-way time: WAN latency on one machine.

Each listening port forwards to one target (one port per "host"); bytes read in
either direction are written to the other side ``delay`` seconds after they
arrived, in order, with no throughput cap.  A round trip through it therefore
costs ``2 * delay`` on top of loopback.

    python bench/latency_proxy.py --delay-ms 30 LISTEN_PORT:TARGET_PORT [...]

or, from Python, :class:`LatencyProxy` (a thread running its own event loop).
Everything binds to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import threading
import time
from typing import Optional


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy reader -> writer, each chunk released ``delay`` after it was read (order kept)."""
    queue: asyncio.Queue = asyncio.Queue()

    async def release() -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                break
            writer.write(data)
            await writer.drain()
        try:
            writer.write_eof()
        except (OSError, RuntimeError):
            pass

    loop = asyncio.get_running_loop()
    sender = asyncio.create_task(release())
    try:
        while True:
            data = await reader.read(65536)
            queue.put_nowait((loop.time() + delay, data or None))
            if not data:
                break
        await sender
    except (ConnectionError, OSError):
        sender.cancel()
    finally:
        try:
            writer.close()
        except (OSError, RuntimeError):
            pass


def _nodelay(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class LatencyProxy:
    """Listens on one free 127.0.0.1 port per target and forwards with ``delay`` seconds each way."""

    def __init__(self, targets: list[int], delay: float, listen_ports: Optional[list[int]] = None):
        self.targets = list(targets)
        self.delay = delay
        self.ports: list[int] = []
        self._listen = listen_ports or [0] * len(targets)
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._ready = threading.Event()
        self._servers: list[asyncio.base_events.Server] = []

    def port_for(self, target: int) -> int:
        """The proxy port that leads to ``target``."""
        return self.ports[self.targets.index(target)]

    async def _serve(self) -> None:
        for listen, target in zip(self._listen, self.targets):
            async def handle(reader, writer, target=target):
                try:
                    up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
                except OSError:
                    writer.close()
                    return
                _nodelay(writer)
                _nodelay(up_writer)
                await asyncio.gather(_pump(reader, up_writer, self.delay), _pump(up_reader, writer, self.delay))

            server = await asyncio.start_server(handle, "127.0.0.1", listen, backlog=512)
            self._servers.append(server)
            self.ports.append(server.sockets[0].getsockname()[1])
        self._ready.set()

    def start(self) -> "LatencyProxy":
        """Start serving in a background thread; returns once every port listens."""
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._serve())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="latency-proxy", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        """Stop listening (open connections die with the loop)."""
        if self._loop is None:
            return
        def close() -> None:
            for server in self._servers:
                server.close()
            self._loop.stop()
        self._loop.call_soon_threadsafe(close)
        if self._thread:
            self._thread.join(5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, required=True, help="one-way delay (a round trip costs twice this)")
    parser.add_argument("pairs", nargs="+", metavar="LISTEN:TARGET")
    args = parser.parse_args()
    listen, targets = zip(*(tuple(int(x) for x in pair.split(":")) for pair in args.pairs))
    proxy = LatencyProxy(list(targets), args.delay_ms / 1000, list(listen)).start()
    print("listening: " + ", ".join(f"{p} -> {t}" for p, t in zip(proxy.ports, proxy.targets)), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        proxy.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
