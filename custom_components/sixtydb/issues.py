"""The repair issue shown while the 60db wallet is empty.

It is not fixable from Home Assistant (credits are bought on 60db's dashboard),
so there is no repair flow: the issue is raised when 60db answers
``INSUFFICIENT_CREDITS`` and deleted by the next request or catalog refresh
that succeeds.
"""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN, ISSUE_NO_CREDITS

DASHBOARD_URL = "https://app.60db.ai"


def no_credits_issue_id(entry: ConfigEntry) -> str:
    """One issue per account, so two accounts are reported separately."""
    return f"{ISSUE_NO_CREDITS}_{entry.entry_id}"


@callback
def async_report_no_credits(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Raise (or keep) the "no credits" repair issue."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        no_credits_issue_id(entry),
        is_fixable=False,
        is_persistent=False,
        learn_more_url=DASHBOARD_URL,
        severity=ir.IssueSeverity.ERROR,
        translation_key=ISSUE_NO_CREDITS,
        translation_placeholders={"title": entry.title, "dashboard": DASHBOARD_URL},
    )


@callback
def async_clear_no_credits(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Delete the issue once 60db accepts requests again (no-op when absent)."""
    ir.async_delete_issue(hass, DOMAIN, no_credits_issue_id(entry))
