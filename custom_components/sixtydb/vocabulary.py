"""The home's own words, sent to 60db as ``context.terms`` (keyword boosting).

Names like "Küchenlicht" or a made-up "Zorbulon lamp" are what a speech model
gets wrong, and exactly what Assist then needs to match. Home Assistant knows
them: the names and aliases of the floors, the areas and the entities exposed
to the conversation agent (the same set Assist matches against). They are
collected here once at setup and again when the registries or the exposure
settings change (debounced: a burst of changes, such as Home Assistant's
start, is one rebuild), never per request. The STT entity only reads
:attr:`EntryVocabulary.terms`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from homeassistant.components.homeassistant.const import DATA_EXPOSED_ENTITIES
from homeassistant.components.homeassistant.exposed_entities import (
    async_listen_entity_updates,
    async_should_expose,
)
from homeassistant.const import EVENT_STATE_CHANGED
from homeassistant.core import CALLBACK_TYPE, Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers import area_registry as ar
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import floor_registry as fr
from homeassistant.helpers.debounce import Debouncer

from wyoming_60db.sixtydb import context_terms

from .const import LOGGER

# Long enough to fold Home Assistant's start (hundreds of entities added) or
# an edit session into a few rebuilds; short enough that a renamed area is
# heard by its new name a moment later.
REBUILD_COOLDOWN = 1.0

# Exposure is per assistant; Assist's conversation agent is "conversation".
ASSISTANT = "conversation"

# Changes of an entity registry entry that change what the entity is called
# (as Home Assistant's own conversation agent watches them). Other updates,
# such as the exposure default async_should_expose stores, do not count.
_ENTITY_NAME_FIELDS = ("aliases", "name", "original_name")
# A device's name is part of its entities' names.
_DEVICE_NAME_FIELDS = ("name", "name_by_user")


class EntryVocabulary:
    """The terms of one config entry, kept up to date while the entry is loaded."""

    def __init__(self, hass: HomeAssistant, *, cooldown: float | None = None) -> None:
        self.hass = hass
        self.terms: tuple[str, ...] = ()
        """Floors and areas, then entity aliases, then entity names; bounded by the core."""
        self.rebuilds = 0
        """How many times :attr:`terms` was built (tests use it: never per request)."""
        self._debouncer = Debouncer(
            hass,
            LOGGER,
            cooldown=REBUILD_COOLDOWN if cooldown is None else cooldown,
            immediate=False,
            function=self.async_rebuild,
        )
        self._unsubscribe: list[CALLBACK_TYPE] = []

    @callback
    def async_start(self) -> None:
        """Build the terms now and follow every change that alters them."""
        self.async_rebuild()
        listen = self.hass.bus.async_listen
        self._unsubscribe = [
            listen(ar.EVENT_AREA_REGISTRY_UPDATED, self._async_changed),
            listen(fr.EVENT_FLOOR_REGISTRY_UPDATED, self._async_changed),
            listen(
                er.EVENT_ENTITY_REGISTRY_UPDATED,
                self._async_changed,
                event_filter=_entity_renamed,
            ),
            listen(
                dr.EVENT_DEVICE_REGISTRY_UPDATED,
                self._async_changed,
                event_filter=_device_renamed,
            ),
            # An entity appears (or goes) when its integration starts (or stops).
            listen(EVENT_STATE_CHANGED, self._async_changed, event_filter=_added_or_removed),
        ]
        if DATA_EXPOSED_ENTITIES in self.hass.data:
            self._unsubscribe.append(
                async_listen_entity_updates(
                    self.hass, ASSISTANT, self._debouncer.async_schedule_call
                )
            )

    @callback
    def async_stop(self) -> None:
        """Stop following changes (the entry unloads); a pending rebuild is dropped."""
        while self._unsubscribe:
            self._unsubscribe.pop()()
        self._debouncer.async_shutdown()

    @callback
    def async_rebuild(self) -> None:
        """Collect the terms again (a loop over the registries and states: no I/O)."""
        places = _place_names(self.hass)
        aliases, names = _entity_names(self.hass)
        self.terms = tuple(context_terms(places, aliases, names))
        self.rebuilds += 1
        LOGGER.debug("%d terms for 60db from Home Assistant's names", len(self.terms))

    @callback
    def _async_changed(self, event: Event[Any]) -> None:
        self._debouncer.async_schedule_call()


def _place_names(hass: HomeAssistant) -> list[str]:
    """Each floor's and area's name followed by its aliases."""
    names: list[str] = []
    for floor in fr.async_get(hass).async_list_floors():
        names.append(floor.name)
        names.extend(_strings(floor.aliases))
    for area in ar.async_get(hass).async_list_areas():
        names.append(area.name)
        names.extend(_strings(area.aliases))
    return names


def _entity_names(hass: HomeAssistant) -> tuple[list[str], list[str]]:
    """The aliases and the names (as Home Assistant shows them) of exposed entities.

    Like Home Assistant's conversation agent, this walks the states: an entity
    without a state cannot be controlled by voice either. Aliases come first
    because the user chose them to be spoken.
    """
    if DATA_EXPOSED_ENTITIES not in hass.data:
        # Only in a Home Assistant without its core integration (some tests).
        return [], []
    registry = er.async_get(hass)
    aliases: list[str] = []
    names: list[str] = []
    for state in hass.states.async_all():
        if not async_should_expose(hass, ASSISTANT, state.entity_id):
            continue
        names.append(state.name)
        if (entry := registry.async_get(state.entity_id)) is not None:
            aliases.extend(_strings(entry.aliases))
    return aliases, names


def _strings(aliases: Iterable[object]) -> list[str]:
    """The text aliases, in a stable order.

    Up to 2026.10 aliases are a set (sorted here, so the terms do not shuffle
    between restarts); from 2026.11 an entity's are a list in the user's order
    that may hold a marker for "the computed name", which the state's name
    already covers.
    """
    texts = [alias for alias in aliases if isinstance(alias, str)]
    if isinstance(aliases, set | frozenset):
        texts.sort(key=str.casefold)
    return texts


@callback
def _entity_renamed(data: er.EventEntityRegistryUpdatedData) -> bool:
    return data["action"] == "update" and any(
        field in data["changes"] for field in _ENTITY_NAME_FIELDS
    )


@callback
def _device_renamed(data: dr.EventDeviceRegistryUpdatedData) -> bool:
    return data["action"] == "update" and any(
        field in data["changes"] for field in _DEVICE_NAME_FIELDS
    )


@callback
def _added_or_removed(data: EventStateChangedData) -> bool:
    return data["old_state"] is None or data["new_state"] is None
