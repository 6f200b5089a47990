"""The running server: listening, zeroconf, demo mode and graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import socket
from collections.abc import AsyncIterator
from functools import partial
from typing import TYPE_CHECKING, Final
from urllib.parse import urlparse

from wyoming.server import AsyncServer, AsyncTcpServer

from .handler import handler_factory, stdio_handler
from .listener import listener_for
from .settings import ServerSettings
from .startup import start_backend, stop_backend
from .state import Backend

if TYPE_CHECKING:
    from zeroconf.asyncio import AsyncZeroconf

_LOGGER = logging.getLogger(__name__)

DEFAULT_ZEROCONF_NAME: Final = "60db"
ZEROCONF_TYPE: Final = "_wyoming._tcp.local."
DEMO_API_KEY: Final = "sk_test_demo_key"  # the emulator takes any sk_test_ key


async def serve(settings: ServerSettings) -> None:
    """Run the server until SIGTERM or SIGINT."""
    async with contextlib.AsyncExitStack() as stack:
        if settings.demo:
            settings = await stack.enter_async_context(demo_settings(settings))
        backend = await start_backend(settings)
        stack.push_async_callback(stop_backend, backend)
        if urlparse(settings.uri).scheme == "stdio":
            # One client on stdin/stdout; wyoming's server runs it to the end.
            await AsyncServer.from_uri(settings.uri).run(partial(stdio_handler, backend))
            return
        await stack.enter_async_context(serving(settings, backend))
        await wait_for_stop_signal()
        _LOGGER.info("Stopping")


@contextlib.asynccontextmanager
async def serving(settings: ServerSettings, backend: Backend) -> AsyncIterator[AsyncServer]:
    """Listen on ``settings.uri`` until the block ends, then shut down gracefully.

    The server is wyoming's ``AsyncTcpServer``/``AsyncUnixServer`` to its users
    (``host``, ``port``); it reads events with the server's own protocol.
    """
    server = listener_for(settings.uri, settings.limits)
    await server.listen(partial(handler_factory, backend))
    _LOGGER.info("Listening on %s; clients allowed from %s", settings.uri, settings.allow)
    # Registered only once the port is open, so HA never finds a closed port.
    zeroconf = await start_zeroconf(settings, server)
    try:
        yield server
    finally:
        if zeroconf is not None:
            await zeroconf.unregister()
        await shut_down(server, backend, settings.shutdown_grace)


async def shut_down(server: AsyncServer, backend: Backend, grace: float) -> None:
    """Refuse new connections, let requests in flight finish, then stop the rest."""
    backend.accepting = False
    if any(connection.busy for connection in backend.connections):
        _LOGGER.info("Waiting up to %.0f s for requests in flight", grace)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                # Polling, only during shutdown: simpler than an event per request.
                while any(connection.busy for connection in backend.connections):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
    # Closes the listener and every connection; their handlers release 60db sessions.
    await server.stop()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(grace):
            await asyncio.gather(*(c.finished.wait() for c in list(backend.connections)))


@contextlib.asynccontextmanager
async def demo_settings(settings: ServerSettings) -> AsyncIterator[ServerSettings]:
    """``--demo``: settings pointing at the built-in emulator, run in this process."""
    # Imported here: the emulator (aiohttp's server side) is memory a real server never needs.
    from .emulator import Emulator, EmulatorSettings  # noqa: PLC0415

    async with Emulator(EmulatorSettings()) as emulator:
        _LOGGER.warning(
            "Demo mode: the built-in 60db emulator at %s stands in for 60db. Its speech is "
            "a tone code: TTS audio is beeps, and STT understands only such beeps.",
            emulator.base_url,
        )
        yield dataclasses.replace(settings, api_key=DEMO_API_KEY, api_url=emulator.base_url)


class Zeroconf:
    """The ``_wyoming._tcp`` announcement Home Assistant discovers the server by.

    Written against ``zeroconf`` directly rather than ``wyoming.zeroconf``,
    whose API differs between wyoming 1.7 and 1.8 and which cannot unregister.
    """

    def __init__(self, name: str, port: int, host: str | None) -> None:
        self.name = name
        self.port = port
        self.host = host
        self._zeroconf: AsyncZeroconf | None = None

    async def register(self) -> None:
        """Announce the server under its stable name (HA then knows it after restarts)."""
        from zeroconf.asyncio import (  # noqa: PLC0415 - an optional extra
            AsyncServiceInfo,
            AsyncZeroconf,
        )

        host = self.host or outbound_address()
        info = AsyncServiceInfo(
            ZEROCONF_TYPE,
            f"{self.name}.{ZEROCONF_TYPE}",
            addresses=[socket.inet_aton(host)],
            port=self.port,
        )
        zeroconf = AsyncZeroconf()
        try:
            await zeroconf.async_register_service(info)
        except BaseException:
            await zeroconf.async_close()
            raise
        self._zeroconf = zeroconf
        _LOGGER.info("Zeroconf: announced %r at %s:%d", self.name, host, self.port)

    async def unregister(self) -> None:
        """Withdraw the announcement."""
        zeroconf, self._zeroconf = self._zeroconf, None
        if zeroconf is not None:
            await zeroconf.async_unregister_all_services()
            await zeroconf.async_close()


def outbound_address() -> str:
    """The IPv4 address other hosts reach this one at (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("224.0.0.251", 5353))  # the mDNS group
        address: str = probe.getsockname()[0]
        return address


async def start_zeroconf(settings: ServerSettings, server: AsyncServer) -> Zeroconf | None:
    """Announce a TCP server; a failure is logged and the server keeps serving."""
    if settings.zeroconf is None:
        return None
    if not isinstance(server, AsyncTcpServer):
        _LOGGER.error("--zeroconf needs a tcp:// URI; discovery is off")
        return None
    # A wildcard bind address is no address to announce: find the real one.
    host = None if server.host in ("0.0.0.0", "::", "") else server.host
    zeroconf = Zeroconf(settings.zeroconf, server.port, host)
    try:
        await zeroconf.register()
    except ImportError:
        _LOGGER.error(
            "--zeroconf needs the zeroconf package (pip install 'wyoming-60db[zeroconf]'); "
            "discovery is off"
        )
        return None
    except (OSError, ValueError) as err:
        _LOGGER.error("Zeroconf registration failed (%s); discovery is off", err)
        return None
    return zeroconf


async def wait_for_stop_signal() -> None:
    """Until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
