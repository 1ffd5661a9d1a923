#!/usr/bin/env python3
"""A TCP proxy that delays every byte by a fixed one-way time: WAN latency on one machine.

Each listening port forwards to one target (one port per "host"); bytes read in
either direction are written to the other side ``delay`` seconds after they
arrived, in order, with no throughput cap.  A round trip through it therefore
costs ``2 * delay`` on top of loopback.

What it models, and what it does not:

- **Half-close is forwarded.**  EOF from one side becomes a ``shutdown(SHUT_WR)``
  on the other, ``delay`` later, and the other direction keeps flowing until it
  ends too (a client that sends, shuts down its write side and then reads the
  answer gets the answer).
- **The TCP handshake** (``handshake=True``, the default): on a real link a
  client's ``connect()`` returns after one round trip and the server sees the
  connection half a round trip later.  Loopback completes ``connect()`` at
  once, so the proxy opens its upstream connection ``3 * delay`` after
  accepting instead; whatever the client sent meanwhile is held until then.
  The first server byte (an SSH banner) therefore reaches the client after two
  round trips, exactly as over a WAN.  ``handshake=False`` (``--no-handshake``)
  connects upstream at once: every new connection is then 1.5 round trips
  cheaper than on a real network.
- No bandwidth limit, no loss, no jitter, no window: bytes are read as fast as
  they come (the protocols here have their own flow control: SSH's channel
  windows).
- Timers run on one event loop: when the machine's cores are saturated, the
  delays stretch.  Run it in its own process (:class:`LatencyProxyProcess`, or
  the command line) when the process being measured is busy itself, so the two
  do not share one GIL.

    python bench/latency_proxy.py --delay-ms 30 LISTEN_PORT:TARGET_PORT [...]

(``0`` as LISTEN_PORT takes a free port; the first line printed says which.)
From Python: :class:`LatencyProxy` (a thread running its own event loop, in this
process) or :class:`LatencyProxyProcess` (same API, a child process).
Everything binds to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Optional

CHUNK = 65536


def _nodelay(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def _pump(reader: asyncio.StreamReader, writer_ready: "asyncio.Future[asyncio.StreamWriter]",
                delay: float) -> None:
    """Copy ``reader`` to the writer ``writer_ready`` yields, each chunk ``delay`` after it was read.

    Order is kept (one FIFO, due times only grow).  EOF is forwarded as a
    half-close, ``delay`` late, and the pump returns; the caller closes the
    sockets once both directions are done.  A connection error raises.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    async def release() -> None:
        writer = await writer_ready
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                if writer.can_write_eof() and not writer.is_closing():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(release())
    try:
        while not sender.done():  # the far side failed: stop reading, the caller aborts both sides
            data = await reader.read(CHUNK)
            queue.put_nowait((loop.time() + delay, data or None))
            if not data:
                break
        await sender
    finally:
        if not sender.done():
            sender.cancel()


class LatencyProxy:
    """Listens on one free 127.0.0.1 port per target and forwards with ``delay`` seconds each way.

    ``targets`` may repeat a port (many "hosts" on one sshd): each entry gets its
    own listening port, in order, in :attr:`ports`; :meth:`port_for` then names
    only the first, so index :attr:`ports` instead.
    """

    def __init__(self, targets: list[int], delay: float, listen_ports: Optional[list[int]] = None,
                 handshake: bool = True):
        self.targets = list(targets)
        self.delay = delay
        self.handshake = handshake
        self.ports: list[int] = []
        self._listen = list(listen_ports) if listen_ports else [0] * len(self.targets)
        if len(self._listen) != len(self.targets):
            raise ValueError("one listen port per target")
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._ready = threading.Event()
        self._error: Optional[BaseException] = None
        self._servers: list[asyncio.base_events.Server] = []
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task] = set()

    @property
    def connect_delay(self) -> float:
        """How long after accepting a client the upstream connection is opened (the TCP handshake)."""
        return 3 * self.delay if self.handshake else 0.0

    def port_for(self, target: int) -> int:
        """The (first) proxy port that leads to ``target``."""
        return self.ports[self.targets.index(target)]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: int) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        self._writers.add(writer)
        _nodelay(writer)
        loop = asyncio.get_running_loop()
        upstream: "asyncio.Future[asyncio.StreamWriter]" = loop.create_future()
        client: "asyncio.Future[asyncio.StreamWriter]" = loop.create_future()
        client.set_result(writer)
        up_writer: Optional[asyncio.StreamWriter] = None
        # The client's bytes are read (and their due times taken) from the start; they wait for upstream.
        pumps = [asyncio.create_task(_pump(reader, upstream, self.delay))]
        try:
            if self.connect_delay > 0:
                await asyncio.sleep(self.connect_delay)
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
            except OSError:
                upstream.cancel()
                return
            self._writers.add(up_writer)
            _nodelay(up_writer)
            upstream.set_result(up_writer)
            pumps.append(asyncio.create_task(_pump(up_reader, client, self.delay)))
            done, pending = await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
            failed = [p for p in done if not p.cancelled() and p.exception() is not None]
            if failed:  # a reset on one side: reset the other rather than leave it hanging
                for pump in pending:
                    pump.cancel()
                for w in (writer, up_writer):
                    w.transport.abort()
        except asyncio.CancelledError:
            pass
        finally:
            for pump in pumps:
                if not pump.done():
                    pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for w in (writer, up_writer):
                if w is not None:
                    self._writers.discard(w)
                    try:
                        w.close()
                    except (OSError, RuntimeError):
                        pass
            self._tasks.discard(task)

    async def _serve(self) -> None:
        try:
            for listen, target in zip(self._listen, self.targets):
                async def handle(reader, writer, target=target):
                    await self._handle(reader, writer, target)

                server = await asyncio.start_server(handle, "127.0.0.1", listen, backlog=512)
                self._servers.append(server)
                self.ports.append(server.sockets[0].getsockname()[1])
        except BaseException as exc:  # noqa: BLE001 - handed to start(), which raises it
            self._error = exc
        finally:
            self._ready.set()

    def start(self) -> "LatencyProxy":
        """Start serving in a background thread; returns once every port listens (raises if one cannot)."""
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._serve())
            if self._error is None:
                self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="latency-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("latency proxy did not start within 10 s")
        if self._error is not None:
            self._thread.join(5)
            self._close_loop()
            raise self._error
        return self

    def stop(self) -> None:
        """Stop listening and reset every open connection (both sides see it end)."""
        loop, self._loop = self._loop, None
        if loop is None:
            return

        async def shutdown() -> None:
            for server in self._servers:
                server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            loop.stop()

        if self._thread is not None and self._thread.is_alive():
            loop.call_soon_threadsafe(lambda: loop.create_task(shutdown()))
            self._thread.join(5)
        self._loop = loop
        self._close_loop()

    def _close_loop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None and not loop.is_running():
            loop.close()

    def __enter__(self) -> "LatencyProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class LatencyProxyProcess:
    """:class:`LatencyProxy` in a child process (its own interpreter and GIL), with the same API.

    Its CPU time is its own, not the measured process's: :meth:`cpu_seconds` reads it.
    """

    def __init__(self, targets: list[int], delay: float, handshake: bool = True):
        self.targets = list(targets)
        self.delay = delay
        self.handshake = handshake
        self.ports: list[int] = []
        self.process: Optional[subprocess.Popen] = None

    def port_for(self, target: int) -> int:
        """The (first) proxy port that leads to ``target``."""
        return self.ports[self.targets.index(target)]

    def start(self) -> "LatencyProxyProcess":
        argv = [sys.executable, str(Path(__file__).resolve()), "--delay-ms", repr(self.delay * 1000)]
        if not self.handshake:
            argv.append("--no-handshake")
        argv += [f"0:{t}" for t in self.targets]
        # Its own session: a Ctrl-C at the terminal reaches us, and we stop it in order.
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
                                        start_new_session=True)
        line = self.process.stdout.readline()
        if not line.startswith("listening: "):
            self.stop()
            raise RuntimeError(f"latency proxy did not start: {line.strip() or 'no output'}")
        self.ports = [int(pair.split(" -> ")[0]) for pair in line[len("listening: "):].strip().split(", ")]
        return self

    def cpu_seconds(self) -> float:
        """user + system CPU the proxy process has used so far (Linux /proc)."""
        if self.process is None:
            return 0.0
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> "LatencyProxyProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, required=True, help="one-way delay (a round trip costs twice this)")
    parser.add_argument("--no-handshake", action="store_true",
                        help="connect upstream at once instead of 1.5 round trips after accepting")
    parser.add_argument("pairs", nargs="+", metavar="LISTEN:TARGET", help="LISTEN 0 takes a free port")
    args = parser.parse_args()
    listen, targets = zip(*(tuple(int(x) for x in pair.split(":")) for pair in args.pairs))
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    proxy = LatencyProxy(list(targets), args.delay_ms / 1000, list(listen), handshake=not args.no_handshake).start()
    print("listening: " + ", ".join(f"{p} -> {t}" for p, t in zip(proxy.ports, proxy.targets)), flush=True)
    try:
        stopped.wait()
    finally:
        proxy.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
