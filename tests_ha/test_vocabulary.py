"""The home's names as 60db context terms: what is collected, when it is rebuilt, cleanup.

Floors, areas and entities are made in Home Assistant's real registries; the
exposure settings are Home Assistant's own (its core integration is set up).
The rebuild cooldown is shortened so that a change shows within 50 ms.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any
from unittest.mock import patch

import numpy as np
import pytest
from homeassistant.components import stt
from homeassistant.components.homeassistant.const import DATA_EXPOSED_ENTITIES
from homeassistant.components.homeassistant.exposed_entities import async_expose_entity
from homeassistant.const import EVENT_STATE_CHANGED
from homeassistant.core import HomeAssistant
from homeassistant.helpers import area_registry as ar
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import floor_registry as fr
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sixtydb import vocabulary as vocabulary_module
from custom_components.sixtydb.vocabulary import ASSISTANT, EntryVocabulary
from wyoming_60db.emulator import Emulator, tonecode
from wyoming_60db.sixtydb.limits import MAX_CONTEXT_TERMS

from .conftest import STT_ENTITY, bounded, wait_for

COOLDOWN = 0.05
PHRASE = "turn on the kitchen lights"
WATCHED_EVENTS = (
    ar.EVENT_AREA_REGISTRY_UPDATED,
    fr.EVENT_FLOOR_REGISTRY_UPDATED,
    er.EVENT_ENTITY_REGISTRY_UPDATED,
    dr.EVENT_DEVICE_REGISTRY_UPDATED,
    EVENT_STATE_CHANGED,
)


@pytest.fixture(autouse=True)
def short_cooldown() -> Iterator[None]:
    """Rebuilds 50 ms after a change instead of a second."""
    with patch.object(vocabulary_module, "REBUILD_COOLDOWN", COOLDOWN):
        yield


@pytest.fixture
async def core(hass: HomeAssistant) -> None:
    """Home Assistant's core integration: it keeps the exposure settings."""
    assert await async_setup_component(hass, "homeassistant", {})


@pytest.fixture
async def home(hass: HomeAssistant, core: None) -> dict[str, str]:
    """A floor, an area, an exposed lamp with an alias and a hidden switch; their entity ids."""
    floor = fr.async_get(hass).async_create("Obergeschoss", aliases={"Upstairs"})
    ar.async_get(hass).async_create("Küche", aliases={"Kochecke"}, floor_id=floor.floor_id)
    entities = er.async_get(hass)
    lamp = entities.async_get_or_create("light", "test", "zorb", suggested_object_id="zorb")
    _set_aliases(hass, lamp.entity_id, "Zorbulon lamp")
    hass.states.async_set(lamp.entity_id, "on", {"friendly_name": "Küchenlicht"})
    secret = entities.async_get_or_create("switch", "test", "vault", suggested_object_id="vault")
    hass.states.async_set(secret.entity_id, "off", {"friendly_name": "Tresorschalter"})
    async_expose_entity(hass, ASSISTANT, secret.entity_id, False)
    # A sensor is not exposed to Assist by default.
    hass.states.async_set("sensor.attic_meter", "3", {"friendly_name": "Dachbodenzähler"})
    await hass.async_block_till_done()
    return {"lamp": lamp.entity_id, "secret": secret.entity_id}


@pytest.fixture
async def loaded(
    hass: HomeAssistant, home: dict[str, str], setup_entry: MockConfigEntry
) -> MockConfigEntry:
    """The entry, set up after the home was made."""
    return setup_entry


def _set_aliases(hass: HomeAssistant, entity_id: str, *aliases: str) -> None:
    """Aliases in the shape this Home Assistant keeps them (a set; a list from 2026.11)."""
    registry = er.async_get(hass)
    entry = registry.async_get(entity_id)
    assert entry is not None
    if isinstance(entry.aliases, list):
        # 2026.11: keep the marker of the computed name, add ours after it.
        new: Any = [alias for alias in entry.aliases if not isinstance(alias, str)]
        new += list(aliases)
    else:
        new = set(aliases)
    registry.async_update_entity(entity_id, aliases=new)


def _vocabulary(entry: MockConfigEntry) -> EntryVocabulary:
    vocabulary = entry.runtime_data.vocabulary
    assert isinstance(vocabulary, EntryVocabulary)
    return vocabulary


async def test_terms_are_the_homes_names(hass: HomeAssistant, loaded: MockConfigEntry) -> None:
    """Floor, area (with umlaut), the exposed lamp's alias and name; nothing unexposed."""
    terms = _vocabulary(loaded).terms
    for term in ("Obergeschoss", "Upstairs", "Küche", "Kochecke", "Zorbulon lamp", "Küchenlicht"):
        assert term in terms, (term, terms)
    assert "Tresorschalter" not in terms  # exposure switched off
    assert "Dachbodenzähler" not in terms  # never exposed
    # Places first, then aliases, then entity names (the order survives the cap).
    assert terms.index("Küche") < terms.index("Zorbulon lamp") < terms.index("Küchenlicht")
    assert len(terms) <= MAX_CONTEXT_TERMS


async def test_renaming_rebuilds_once_after_the_cooldown(
    hass: HomeAssistant, loaded: MockConfigEntry
) -> None:
    """A burst of renames is one rebuild, a moment later."""
    vocabulary = _vocabulary(loaded)
    before = vocabulary.rebuilds
    areas = ar.async_get(hass)
    kitchen = areas.async_get_area_by_name("Küche")
    assert kitchen is not None
    areas.async_update(kitchen.id, name="Wohnküche")
    areas.async_update(kitchen.id, aliases={"Kochnische"})
    assert "Küche" in vocabulary.terms  # not yet: debounced
    await wait_for(lambda: "Wohnküche" in vocabulary.terms, "the new area name")
    assert "Küche" not in vocabulary.terms
    await wait_for(lambda: "Kochnische" in vocabulary.terms, "the new alias")
    assert vocabulary.rebuilds - before <= 2


@pytest.mark.parametrize(
    "change",
    ["floor", "entity_name", "alias", "exposure", "new_entity", "device"],
)
async def test_each_kind_of_change_is_followed(
    hass: HomeAssistant, loaded: MockConfigEntry, change: str
) -> None:
    """Floors, entity names and aliases, exposure, new entities and device names."""
    vocabulary = _vocabulary(loaded)
    lamp = "light.zorb"
    if change == "floor":
        floors = fr.async_get(hass)
        floor = floors.async_get_floor_by_name("Obergeschoss")
        assert floor is not None
        floors.async_update(floor.floor_id, name="Dachgeschoss")
        expected, gone = "Dachgeschoss", "Obergeschoss"
    elif change == "entity_name":
        # The registry name is what the state then shows.
        er.async_get(hass).async_update_entity(lamp, name="Leselampe")
        hass.states.async_set(lamp, "on", {"friendly_name": "Leselampe"})
        expected, gone = "Leselampe", "Küchenlicht"
    elif change == "alias":
        _set_aliases(hass, lamp, "Glühwürmchen")
        expected, gone = "Glühwürmchen", "Zorbulon lamp"
    elif change == "exposure":
        async_expose_entity(hass, ASSISTANT, lamp, False)
        expected, gone = "Obergeschoss", "Zorbulon lamp"
    elif change == "new_entity":
        hass.states.async_set("light.porch", "off", {"friendly_name": "Verandalicht"})
        expected, gone = "Verandalicht", "no such term"
    else:
        entry = MockConfigEntry(domain="test")
        entry.add_to_hass(hass)
        devices = dr.async_get(hass)
        device = devices.async_get_or_create(
            config_entry_id=entry.entry_id, identifiers={("test", "d")}, name="Lampe"
        )
        before = vocabulary.rebuilds
        devices.async_update_device(device.id, name_by_user="Stehlampe")
        await wait_for(lambda: vocabulary.rebuilds > before, "a rebuild after the device rename")
        return
    await wait_for(
        lambda: expected in vocabulary.terms and gone not in vocabulary.terms,
        f"{expected} in, {gone} out after the change",
    )


async def test_unrelated_registry_updates_do_not_rebuild(
    hass: HomeAssistant, loaded: MockConfigEntry
) -> None:
    """Icons, state changes and the exposure default Home Assistant stores are not names."""
    vocabulary = _vocabulary(loaded)
    await _quiet(hass)  # the entry's own entities appeared after the first build
    before = vocabulary.rebuilds
    er.async_get(hass).async_update_entity("light.zorb", icon="mdi:lamp")
    hass.states.async_set("light.zorb", "off", {"friendly_name": "Küchenlicht"})
    hass.states.async_set("sensor.attic_meter", "4", {"friendly_name": "Dachbodenzähler"})
    await _quiet(hass)
    assert vocabulary.rebuilds == before


async def test_requests_do_not_rebuild(
    hass: HomeAssistant, loaded: MockConfigEntry, emulator: Emulator
) -> None:
    """Three STT requests read the terms; none collects them again."""
    hass.config_entries.async_update_entry(loaded, options={**loaded.options, "vocabulary": True})
    vocabulary = _vocabulary(loaded)
    await _quiet(hass)
    before = vocabulary.rebuilds
    for _ in range(3):
        result = await bounded(transcribe(hass), 30)
        assert result.text == PHRASE
    assert vocabulary.rebuilds == before
    # The terms went to 60db (the option is on).
    sent = [s.context_terms for s in emulator.stt_sessions if s.start is not None]
    assert sent
    assert all(terms == list(vocabulary.terms) for terms in sent), sent


async def test_unload_removes_every_listener(
    hass: HomeAssistant, home: dict[str, str], config_entry: MockConfigEntry
) -> None:
    """After unload no listener is left, and a change rebuilds nothing."""
    exposed = hass.data[DATA_EXPOSED_ENTITIES]
    before = _listener_counts(hass)
    exposure_before = len(exposed._listeners.get(ASSISTANT, []))

    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    vocabulary = _vocabulary(config_entry)
    during = _listener_counts(hass)
    for event in (ar.EVENT_AREA_REGISTRY_UPDATED, fr.EVENT_FLOOR_REGISTRY_UPDATED):
        assert during[event] == before[event] + 1, event
    assert len(exposed._listeners[ASSISTANT]) == exposure_before + 1

    assert await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()
    assert _listener_counts(hass) == before
    assert len(exposed._listeners[ASSISTANT]) == exposure_before
    rebuilds = vocabulary.rebuilds
    kitchen = ar.async_get(hass).async_get_area_by_name("Küche")
    assert kitchen is not None
    ar.async_get(hass).async_update(kitchen.id, name="Speisekammer")
    await _quiet(hass)
    assert vocabulary.rebuilds == rebuilds


async def test_without_the_core_integration_only_places(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    """No exposure settings (a bare test instance): areas still count, entities do not."""
    assert DATA_EXPOSED_ENTITIES not in hass.data
    hass.states.async_set("light.anything", "on", {"friendly_name": "Irgendwas"})
    ar.async_get(hass).async_create("Flur")
    vocabulary = _vocabulary(setup_entry)
    await wait_for(lambda: "Flur" in vocabulary.terms, "the new area")
    assert "Irgendwas" not in vocabulary.terms


async def test_terms_are_bounded(hass: HomeAssistant, core: None) -> None:
    """Hundreds of names: at most the core's cap, places kept first."""
    for index in range(150):
        hass.states.async_set(f"light.l{index}", "on", {"friendly_name": f"Lampe {index}"})
    ar.async_get(hass).async_create("Keller")
    vocabulary = EntryVocabulary(hass, cooldown=COOLDOWN)
    vocabulary.async_start()
    try:
        assert len(vocabulary.terms) == MAX_CONTEXT_TERMS
        assert vocabulary.terms[0] == "Keller"
        assert vocabulary.rebuilds == 1
    finally:
        vocabulary.async_stop()


def _listener_counts(hass: HomeAssistant) -> dict[str, int]:
    listeners = hass.bus.async_listeners()
    return {str(event): listeners.get(str(event), 0) for event in WATCHED_EVENTS}


async def _quiet(hass: HomeAssistant) -> None:
    """Let any pending rebuild happen (two cooldowns)."""
    await hass.async_block_till_done()
    await asyncio.sleep(COOLDOWN * 3)
    await hass.async_block_till_done()


async def transcribe(hass: HomeAssistant) -> stt.SpeechResult:
    """One command through HA's STT entity API, faster than real time (60db counts audio time)."""
    entity = stt.async_get_speech_to_text_entity(hass, STT_ENTITY)
    assert entity is not None
    rate = 16000
    silence = np.zeros(rate, dtype="<i2")
    audio = np.concatenate([silence[: rate // 5], tonecode.encode(PHRASE, rate), silence])
    data = audio.astype("<i2").tobytes()

    async def stream() -> AsyncIterator[bytes]:
        step = rate // 10 * 2  # 100 ms
        for start in range(0, len(data), step):
            yield data[start : start + step]

    metadata = stt.SpeechMetadata(
        language="en",
        format=stt.AudioFormats.WAV,
        codec=stt.AudioCodecs.PCM,
        bit_rate=stt.AudioBitRates.BITRATE_16,
        sample_rate=stt.AudioSampleRates.SAMPLERATE_16000,
        channel=stt.AudioChannels.CHANNEL_MONO,
    )
    if hasattr(entity, "internal_async_process_audio_stream"):
        result = await entity.internal_async_process_audio_stream(metadata, stream())
    else:
        result = await entity.async_process_audio_stream(metadata, stream())
    assert isinstance(result, stt.SpeechResult)
    return result
