"""Misbehaving services for outage tests: a Redis that answers PING but refuses every task, and
a port that accepts connections and never says a word."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def _commands(stream) -> Iterator[list[bytes]]:
    """Each RESP command (a list of bytes) a client sends."""
    while True:
        line = stream.readline()
        if not line:
            return
        if not line.startswith(b"*"):
            yield line.split()
            continue
        parts = []
        for _ in range(int(line[1:])):
            size = int(stream.readline()[1:])
            parts.append(stream.read(size + 2)[:-2])
        yield parts


def _answer(command: list[bytes]) -> bytes:
    name = command[0].upper() if command else b""
    if name == b"HELLO":  # RESP3 handshake of redis-py
        return b"%2\r\n+server\r\n+redis\r\n+proto\r\n:3\r\n"
    if name == b"PING":
        return b"+PONG\r\n"
    if name in (b"SELECT", b"CLIENT", b"AUTH"):
        return b"+OK\r\n"
    return b"-ERR this broker is read-only and takes no tasks\r\n"


def _serve(server: socket.socket) -> None:
    while True:
        try:
            client, _ = server.accept()
        except OSError:
            return
        threading.Thread(target=_talk, args=(client,), daemon=True).start()


def _talk(client: socket.socket) -> None:
    with client, client.makefile("rb") as stream:
        try:
            for command in _commands(stream):
                client.sendall(_answer(command))
        except OSError:
            return


@contextmanager
def refusing_redis() -> Iterator[str]:
    """A Redis URL whose server accepts connections and PING, then refuses every write."""
    server = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=_serve, args=(server,), daemon=True).start()
    try:
        yield f"redis://:s3cret@127.0.0.1:{server.getsockname()[1]}/0"
    finally:
        server.close()


@contextmanager
def silent_port() -> Iterator[int]:
    """A port whose connections are accepted by the kernel and never answered."""
    server = socket.create_server(("127.0.0.1", 0), backlog=64)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()
