"""Listening on ``tcp://`` and ``unix://``: every connection read by an :class:`EventProtocol`.

The listeners are wyoming's ``AsyncTcpServer``/``AsyncUnixServer`` as far as
the rest of the program can tell (``host``, ``port``, ``stop()``), but they
accept connections with ``loop.create_server`` and the server's own protocol
instead of wyoming's ``StreamReader`` loop (see ``event_protocol.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Protocol
from urllib.parse import urlparse

from wyoming.server import AsyncTcpServer, AsyncUnixServer

from .event_protocol import EventProtocol
from .wire import EventLimits


class Runnable(Protocol):
    async def run(self) -> None: ...


ConnectionFactory = Callable[[EventProtocol, asyncio.StreamWriter], Runnable]
"""Makes the handler of a new connection (it may refuse it)."""


class _Connections:
    """The live connections of a listener and their tasks, to end them at ``stop()``."""

    def __init__(self, limits: EventLimits, factory: ConnectionFactory) -> None:
        self._limits = limits
        self._factory = factory
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def protocol(self) -> EventProtocol:
        return EventProtocol(self._limits, self._opened)

    def _opened(self, events: EventProtocol, writer: asyncio.StreamWriter) -> None:
        connection = self._factory(events, writer)
        task = asyncio.get_running_loop().create_task(self._run(connection, writer))
        # The loop keeps only weak references to tasks.
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, connection: Runnable, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await connection.run()
        finally:
            self._writers.discard(writer)

    def close_all(self) -> None:
        """Close every connection; each handler then sees the end and releases its requests."""
        for writer in list(self._writers):
            writer.close()


Bind = Callable[[Callable[[], EventProtocol]], Awaitable[asyncio.AbstractServer]]
"""Opens the listening socket with a protocol factory (``loop.create_server`` and the like)."""


class _Listening:
    """What both listeners add to wyoming's servers: accept with our protocol, end all at stop."""

    _server: asyncio.AbstractServer | None

    def _init_listening(self, limits: EventLimits) -> None:
        self._limits = limits
        self._connections: _Connections | None = None

    async def _listen_with(self, bind: Bind, factory: ConnectionFactory) -> None:
        connections = _Connections(self._limits, factory)
        self._server = await bind(connections.protocol)
        self._connections = connections

    def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._connections is not None:
            self._connections.close_all()


class TcpListener(_Listening, AsyncTcpServer):
    """``tcp://host:port``."""

    def __init__(self, host: str, port: int, limits: EventLimits) -> None:
        super().__init__(host, port)
        self._init_listening(limits)

    async def listen(self, factory: ConnectionFactory) -> None:
        """Accept connections; each is read by an :class:`EventProtocol` and run by ``factory``."""
        loop = asyncio.get_running_loop()
        await self._listen_with(
            lambda protocol: loop.create_server(protocol, self.host, self.port), factory
        )

    async def stop(self) -> None:
        self._close()


class UnixListener(_Listening, AsyncUnixServer):
    """``unix:///path``."""

    def __init__(self, path: str, limits: EventLimits) -> None:
        super().__init__(path)
        self._init_listening(limits)

    async def listen(self, factory: ConnectionFactory) -> None:
        """Accept connections; each is read by an :class:`EventProtocol` and run by ``factory``."""
        self.socket_path.unlink(missing_ok=True)  # left behind by an earlier run
        loop = asyncio.get_running_loop()
        path = str(self.socket_path)
        await self._listen_with(lambda protocol: loop.create_unix_server(protocol, path), factory)

    async def stop(self) -> None:
        self._close()
        with contextlib.suppress(OSError):
            self.socket_path.unlink(missing_ok=True)


def listener_for(uri: str, limits: EventLimits) -> TcpListener | UnixListener:
    """The listener for a ``tcp://`` or ``unix://`` URI (``stdio://`` has no listener)."""
    parsed = urlparse(uri)
    if parsed.scheme == "tcp":
        host, port = parsed.hostname, parsed.port
        if host is None or port is None:
            raise ValueError("A port must be specified when using a 'tcp://' URI")
        return TcpListener(host, port, limits)
    if parsed.scheme == "unix":
        return UnixListener(parsed.path, limits)
    raise ValueError(f"Only 'unix://' or 'tcp://' can be listened on, not {uri!r}")
