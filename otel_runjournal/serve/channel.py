"""Length-prefixed messages over a connected socket: how serve's two processes talk.

One message is an 8-byte little-endian length and that many bytes. Senders from several threads
hold a lock around :meth:`Channel.send`; one thread receives. The end of the stream (the other
process closed it or died) is :class:`EOFError`.
"""

from __future__ import annotations

import socket

_HEADER = 8


class Channel:
    """A message channel over ``sock`` (a ``socket.socketpair()`` end)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def send(self, *parts: bytes) -> None:
        """Send one message made of ``parts`` (joined: one copy, one ``sendall``)."""
        size = sum(len(p) for p in parts)
        self._sock.sendall(b"".join((size.to_bytes(_HEADER, "little"), *parts)))

    def recv(self) -> bytes:
        """The next message; :class:`EOFError` when the other end is gone."""
        size = int.from_bytes(self._exactly(_HEADER), "little")
        return self._exactly(size)

    def _exactly(self, size: int) -> bytes:
        buffer = bytearray(size)
        view = memoryview(buffer)
        done = 0
        while done < size:
            got = self._sock.recv_into(view[done:])
            if not got:
                raise EOFError("the other process closed the channel")
            done += got
        return bytes(buffer)

    def fileno(self) -> int:
        return self._sock.fileno()

    def close(self) -> None:
        self._sock.close()
