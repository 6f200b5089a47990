"""``--allow`` (who may spend the credits) and zeroconf discovery."""

from __future__ import annotations

import logging
import socket
import sys
from typing import Any, ClassVar

import pytest
import zeroconf.asyncio
from wyoming.info import Describe
from wyoming.server import AsyncServer, AsyncTcpServer

from tests.server.conftest import exchange, refused, running_server, types
from wyoming_60db.allow import AllowList
from wyoming_60db.emulator import Emulator
from wyoming_60db.server import start_zeroconf
from wyoming_60db.settings import ServerSettings


@pytest.mark.parametrize(
    ("peer", "allowed"),
    [
        (("127.0.0.1", 5000), True),
        (("::1", 5000, 0, 0), True),
        (("192.168.1.20", 5000), True),
        (("10.9.8.7", 5000), True),
        (("172.20.0.5", 5000), True),
        (("169.254.3.4", 5000), True),
        (("fe80::1%eth0", 5000, 0, 2), True),
        (("fd12:3456::1", 5000, 0, 0), True),
        (("::ffff:192.168.1.20", 5000, 0, 0), True),  # IPv4 on a dual-stack socket
        (("8.8.8.8", 5000), False),
        (("172.32.0.1", 5000), False),
        (("2001:db8::1", 5000, 0, 0), False),
        (("::ffff:8.8.8.8", 5000, 0, 0), False),
        (("not-an-address", 5000), False),
        ("/run/60db.sock", True),  # a Unix socket: local by definition
        (None, True),  # stdio
    ],
)
def test_default_allow_list(peer: Any, allowed: bool) -> None:
    assert AllowList.default().permits(peer) is allowed


def test_custom_allow_list() -> None:
    allow = AllowList.from_cidrs(["203.0.113.0/24", "2001:db8::/32"])
    assert allow.permits(("203.0.113.9", 1))
    assert allow.permits(("2001:db8::5", 1, 0, 0))
    assert not allow.permits(("127.0.0.1", 1))
    with pytest.raises(ValueError, match="does not appear to be"):
        AllowList.from_cidrs(["300.1.1.1/8"])


async def test_connection_from_outside_the_allowed_networks_is_refused(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_server(emulator, allow=AllowList.from_cidrs(["10.0.0.0/8"])) as server:
        assert await refused(server.port)
        assert "Refused a connection from 127.0.0.1" in caplog.text
    async with running_server(emulator, allow=AllowList.from_cidrs(["127.0.0.1"])) as server:
        assert types(await exchange(server, [Describe().event()], ["info"])) == ["info"]


# --------------------------------------------------------------------------- zeroconf


class FakeAsyncZeroconf:
    """Stands in for zeroconf's network layer (multicast sockets)."""

    instances: ClassVar[list[FakeAsyncZeroconf]] = []

    def __init__(self) -> None:
        self.registered: list[zeroconf.asyncio.AsyncServiceInfo] = []
        self.closed = False
        FakeAsyncZeroconf.instances.append(self)

    async def async_register_service(self, info: zeroconf.asyncio.AsyncServiceInfo) -> None:
        self.registered.append(info)

    async def async_unregister_all_services(self) -> None:
        self.registered.clear()

    async def async_close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_zeroconf(monkeypatch: pytest.MonkeyPatch) -> type[FakeAsyncZeroconf]:
    FakeAsyncZeroconf.instances = []
    monkeypatch.setattr(zeroconf.asyncio, "AsyncZeroconf", FakeAsyncZeroconf)
    return FakeAsyncZeroconf


async def test_zeroconf_announces_the_server_under_a_stable_name(
    emulator: Emulator, fake_zeroconf: type[FakeAsyncZeroconf]
) -> None:
    for _ in range(2):  # a restart announces the same name
        async with running_server(emulator, zeroconf="60db") as server:
            (announcer,) = fake_zeroconf.instances[-1:]
            (info,) = announcer.registered
            assert info.type == "_wyoming._tcp.local."
            assert info.name == "60db._wyoming._tcp.local."
            assert info.port == server.port
            assert info.addresses == [socket.inet_aton("127.0.0.1")]
            assert types(await exchange(server, [Describe().event()], ["info"])) == ["info"]
        assert announcer.closed and not announcer.registered  # withdrawn on shutdown
    assert len(fake_zeroconf.instances) == 2


async def test_zeroconf_on_a_wildcard_address_announces_the_real_one(
    fake_zeroconf: type[FakeAsyncZeroconf], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("wyoming_60db.server.outbound_address", lambda: "192.168.1.50")
    settings = ServerSettings(zeroconf="den")
    announcement = await start_zeroconf(settings, AsyncTcpServer("0.0.0.0", 10300))
    assert announcement is not None
    (info,) = fake_zeroconf.instances[-1].registered
    assert info.addresses == [socket.inet_aton("192.168.1.50")]  # never 0.0.0.0
    assert (info.name, info.port) == ("den._wyoming._tcp.local.", 10300)
    await announcement.unregister()


async def test_zeroconf_needs_tcp(
    fake_zeroconf: type[FakeAsyncZeroconf], caplog: pytest.LogCaptureFixture
) -> None:
    settings = ServerSettings(zeroconf="60db")
    assert await start_zeroconf(settings, AsyncServer.from_uri("unix:///tmp/x.sock")) is None
    assert "--zeroconf needs a tcp:// URI" in caplog.text
    assert fake_zeroconf.instances == []


async def test_zeroconf_without_the_package_logs_and_keeps_serving(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "zeroconf.asyncio", None)  # import now fails
    caplog.set_level(logging.ERROR)
    async with running_server(emulator, zeroconf="60db") as server:
        assert types(await exchange(server, [Describe().event()], ["info"])) == ["info"]
    assert "--zeroconf needs the zeroconf package" in caplog.text
