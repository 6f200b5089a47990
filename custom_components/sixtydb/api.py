"""Making 60db clients from a config entry's data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from wyoming_60db.sixtydb import DEFAULT_API_URL, Account, ClientConfig, SixtyDbClient, Timeouts

from .const import CONF_API_URL


def create_client(
    hass: HomeAssistant,
    data: Mapping[str, Any],
    *,
    warm: bool = True,
    timeouts: Timeouts | None = None,
) -> SixtyDbClient:
    """A client on Home Assistant's shared aiohttp session.

    ``warm`` keeps one logged-in STT and one TTS connection ready, which takes
    60db's login (a few hundred ms) out of every voice command. ``timeouts``
    defaults to the client core's (e.g. 10 s without audio ends an STT
    request). Raises ``ValueError`` for a URL that is neither http(s) nor ws(s).
    """
    config = ClientConfig(
        api_key=data[CONF_API_KEY],
        api_url=data.get(CONF_API_URL) or DEFAULT_API_URL,
        timeouts=timeouts or Timeouts(),
    )
    return SixtyDbClient(
        config,
        session=async_get_clientsession(hass),
        warm_stt=1 if warm else 0,
        warm_tts=1 if warm else 0,
    )


async def async_check_account(hass: HomeAssistant, data: Mapping[str, Any]) -> Account:
    """Log in once with ``data`` and return the account behind the key."""
    client = create_client(hass, data, warm=False)
    try:
        return await client.check_account()
    finally:
        await client.close()
