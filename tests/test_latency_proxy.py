"""bench/latency_proxy.py: it delays, keeps bytes intact and in order, and carries many connections at once.

Plain TCP echo servers on 127.0.0.1; no sshd needed.  Lower bounds on time are
exact (the proxy may never deliver early); upper bounds are loose, for a busy
shared machine: they only catch a delay applied many times over, or
connections served one after another.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from bench.latency_proxy import LatencyProxy, LatencyProxyProcess
from tests.support.sshd import free_port

DELAY = 0.05  # one way: a round trip through the proxy costs at least 0.1 s


class EchoServer:
    """Echoes each chunk as it arrives; on EOF from the client, half-closes back.  ``greeting`` is sent first."""

    def __init__(self, greeting: bytes = b""):
        self.greeting = greeting
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        self.accepted_at: list[float] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted_at.append(time.monotonic())
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                if self.greeting:
                    conn.sendall(self.greeting)
                while True:
                    data = conn.recv(65536)
                    if not data:
                        conn.shutdown(socket.SHUT_WR)
                        return
                    conn.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def echo():
    server = EchoServer()
    yield server
    server.close()


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, f"connection ended after {len(data)} of {size} bytes"
        data += chunk
    return data


def recv_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def test_a_round_trip_takes_at_least_twice_the_delay(echo):
    with LatencyProxy([echo.port], DELAY, handshake=False) as proxy, connect(proxy.ports[0]) as sock:
        for _ in range(3):  # every round trip, not just the first
            started = time.monotonic()
            sock.sendall(b"x")
            assert recv_exactly(sock, 1) == b"x"
            elapsed = time.monotonic() - started
            assert elapsed >= 2 * DELAY
            assert elapsed < 2 * DELAY + 1.0


def test_zero_delay_forwards_at_once(echo):
    with LatencyProxy([echo.port], 0) as proxy, connect(proxy.ports[0]) as sock:
        started = time.monotonic()
        sock.sendall(b"ping")
        assert recv_exactly(sock, 4) == b"ping"
        assert time.monotonic() - started < 1.0


def test_the_handshake_costs_a_round_trip_and_a_half_before_the_server_sees_the_connection():
    server = EchoServer(greeting=b"SSH-2.0-echo\r\n")  # a server that speaks first, like sshd
    try:
        with LatencyProxy([server.port], DELAY) as proxy:
            started = time.monotonic()
            with connect(proxy.ports[0]) as sock:
                sock.sendall(b"early")  # sent before the "handshake" is over: held, not lost
                assert recv_exactly(sock, 14) == b"SSH-2.0-echo\r\n"
                banner_at = time.monotonic() - started
                assert recv_exactly(sock, 5) == b"early"
            # Over a real link: connect() returns after 1 round trip, the server accepts 1/2 later,
            # its first byte is back 1/2 after that: 2 round trips = 4 one-way delays.
            assert server.accepted_at[0] - started >= 3 * DELAY
            assert banner_at >= 4 * DELAY
            assert banner_at < 4 * DELAY + 1.0
    finally:
        server.close()


def test_bytes_arrive_intact_and_in_order(echo):
    payload = os.urandom(3 * 1024 * 1024 + 17)
    with LatencyProxy([echo.port], 0.01) as proxy, connect(proxy.ports[0]) as sock:
        def send() -> None:
            view, size = memoryview(payload), 1
            while view:  # uneven writes: 1 byte, 2, 4 ... up to 256 KiB, then again
                sock.sendall(view[:size])
                view = view[size:]
                size = 1 if size >= 262144 else size * 2
            sock.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send)
        sender.start()
        received = recv_all(sock)  # the server half-closes after our EOF reached it: that ends this
        sender.join()
    assert len(received) == len(payload)
    assert received == payload


def test_half_close_is_forwarded_and_the_answer_still_comes_back():
    """The client shuts down its write side and then reads: the reply must not be lost."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def answer_after_eof() -> None:
        conn, _ = server.accept()
        with conn:
            request = recv_all(conn)
            conn.sendall(b"got " + str(len(request)).encode())

    thread = threading.Thread(target=answer_after_eof, daemon=True)
    thread.start()
    try:
        with LatencyProxy([server.getsockname()[1]], 0.02) as proxy, connect(proxy.ports[0]) as sock:
            sock.sendall(b"q" * 100000)
            sock.shutdown(socket.SHUT_WR)
            assert recv_all(sock) == b"got 100000"
    finally:
        thread.join(5)
        server.close()


def test_many_connections_at_once_each_delayed_not_queued(echo):
    count = 50
    with LatencyProxy([echo.port] * 5, DELAY, handshake=False) as proxy:
        assert len(set(proxy.ports)) == 5  # a repeated target still gets its own port each time

        def one(i: int) -> tuple[bytes, bytes, float]:
            message = f"connection {i} ".encode() * (i + 1)
            with connect(proxy.ports[i % 5]) as sock:
                started = time.monotonic()
                sock.sendall(message)
                back = recv_exactly(sock, len(message))
                return message, back, time.monotonic() - started

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=count) as pool:
            results = list(pool.map(one, range(count)))
        total = time.monotonic() - started
    for message, back, elapsed in results:
        assert back == message
        assert elapsed >= 2 * DELAY
    # One after another they would take count * 2 * DELAY = 5 s.
    assert total < count * 2 * DELAY / 2


def test_each_port_leads_to_its_own_target():
    servers = [EchoServer(greeting=f"server {i}\n".encode()) for i in range(3)]
    try:
        with LatencyProxy([s.port for s in servers], 0) as proxy:
            for i, server in enumerate(servers):
                assert proxy.port_for(server.port) == proxy.ports[i]
                with connect(proxy.ports[i]) as sock:
                    assert recv_exactly(sock, len(f"server {i}\n")) == f"server {i}\n".encode()
    finally:
        for server in servers:
            server.close()


def test_a_refused_upstream_closes_the_client():
    dead = free_port()  # nothing listens there
    with LatencyProxy([dead], 0) as proxy, connect(proxy.ports[0]) as sock:
        try:
            assert sock.recv(10) == b""
        except ConnectionResetError:
            pass


def test_stop_ends_open_connections(echo):
    proxy = LatencyProxy([echo.port], 0).start()
    sock = connect(proxy.ports[0])
    sock.sendall(b"hi")
    assert recv_exactly(sock, 2) == b"hi"
    proxy.stop()
    try:
        assert sock.recv(10) == b""  # ended, not left hanging until the timeout
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    with pytest.raises(OSError):
        connect(proxy.ports[0]).close()


def test_a_listen_port_in_use_raises_from_start(echo):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        with pytest.raises(OSError):
            LatencyProxy([echo.port], 0, listen_ports=[taken.getsockname()[1]]).start()
    finally:
        taken.close()


def test_the_proxy_process_has_the_same_api(echo):
    with LatencyProxyProcess([echo.port, echo.port], DELAY, handshake=False) as proxy:
        assert len(proxy.ports) == 2 and proxy.port_for(echo.port) == proxy.ports[0]
        with connect(proxy.ports[1]) as sock:
            started = time.monotonic()
            sock.sendall(b"abc")
            assert recv_exactly(sock, 3) == b"abc"
            assert time.monotonic() - started >= 2 * DELAY
        assert proxy.cpu_seconds() >= 0
        process = proxy.process
    assert process.poll() is not None  # stopped
