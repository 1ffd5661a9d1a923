"""A TCP forwarder on 127.0.0.1 whose connections can be cut at once: a network failure on one machine.

Used to prove what an operation does when a host drops off the network in
the middle: :meth:`CuttableForwarder.cut` closes every forwarded connection
both ways and stops listening, exactly as a dead link looks to the client
(and, soon after, to sshd); :meth:`CuttableForwarder.resume` brings the
host back on the same port.
"""

from __future__ import annotations

import socket
import threading


class CuttableForwarder:
    """A TCP proxy on 127.0.0.1 in front of one sshd; :meth:`cut` drops every connection and stops listening."""

    def __init__(self, upstream_port: int):
        self.upstream = upstream_port
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._listen()

    def _listen(self) -> None:
        self.listener.listen(16)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream))
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        """Every connection closed, nothing accepted any more (the host dropped off the network)."""
        try:  # shutdown wakes the thread blocked in accept(); close() alone would leave it listening
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        with self.lock:
            for sock in self.sockets:
                try:  # shutdown first: close() alone leaves a socket another thread is reading from open
                    sock.shutdown(socket.SHUT_RDWR)
                    sock.close()
                except OSError:
                    pass
            self.sockets = []

    def resume(self) -> None:
        """Listen again on the same port (the host is back)."""
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self._listen()
