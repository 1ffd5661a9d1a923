"""rsync's "remote shell" when releasetui already holds a checked SSH connection to the host.

rsync runs ``python -m releasetui.rsync_relay SOCKET [-l USER] HOST COMMAND...`` as if it were ``ssh``.
This relay hands COMMAND to the releasetui process listening on SOCKET (a 0700 temporary directory),
which runs it on a new channel of its kept-open connection, and then carries the bytes: our stdin
goes up raw; what comes back is framed (1 byte kind, 4 bytes length, data) so the remote stdout,
stderr and exit status stay apart.  No second SSH handshake, no second host-key check to keep in step.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import threading

STDOUT, STDERR, EXIT = 1, 2, 3
HEADER = struct.Struct("!BI")


def send_frame(conn: socket.socket, kind: int, data: bytes) -> None:
    """Send one framed chunk from the releasetui side to the relay."""
    conn.sendall(HEADER.pack(kind, len(data)) + data)


def _recv_exact(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def main(argv: list[str]) -> int:
    """Relay rsync's stdin/stdout through the releasetui process; exit with the remote command's status."""
    if len(argv) < 3:
        sys.stderr.write("usage: python -m releasetui.rsync_relay SOCKET [-l USER] HOST COMMAND...\n")
        return 255
    socket_path, args = argv[0], argv[1:]
    if args[:1] == ["-l"]:
        args = args[2:]
    command = " ".join(args[1:])  # like ssh: the words, joined by spaces, for the remote shell
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(socket_path)
    conn.sendall(command.encode() + b"\n")

    def upload() -> None:
        try:
            while True:
                data = os.read(0, 65536)
                if not data:
                    break
                conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    threading.Thread(target=upload, daemon=True).start()
    try:
        while True:
            kind, size = HEADER.unpack(_recv_exact(conn, HEADER.size))
            data = _recv_exact(conn, size)
            if kind == STDOUT:
                _write_all(1, data)
            elif kind == STDERR:
                _write_all(2, data)
            elif kind == EXIT:
                return struct.unpack("!i", data)[0] & 0xFF
    except (EOFError, OSError):
        return 255


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
