"""The account's repair issues, and the signal that its figures changed.

Two issues, neither fixable from Home Assistant (credits are bought on 60db's
dashboard), so there is no repair flow:

- "no credits" (an error): raised when 60db answers ``INSUFFICIENT_CREDITS``
  and deleted by the next request or catalog refresh that succeeds;
- "low balance" (a warning): while the balance 60db last reported is below
  the ``low_balance_warning`` option (off at 0). It gives way to "no credits",
  which says the same more urgently.

Every handshake reports the balance, so the figures change with requests as
well as with the catalog refresh; :func:`account_signal` tells the sensors
and the low-balance check when.
"""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_send

from wyoming_60db.sixtydb import SixtyDbClient

from .const import CONF_LOW_BALANCE, DEFAULTS, DOMAIN, ISSUE_NO_CREDITS

DASHBOARD_URL = "https://app.60db.ai"
ISSUE_LOW_BALANCE = "low_balance"


def no_credits_issue_id(entry: ConfigEntry) -> str:
    """One issue per account, so two accounts are reported separately."""
    return f"{ISSUE_NO_CREDITS}_{entry.entry_id}"


def low_balance_issue_id(entry: ConfigEntry) -> str:
    """One warning per account."""
    return f"{ISSUE_LOW_BALANCE}_{entry.entry_id}"


def account_signal(entry: ConfigEntry) -> str:
    """The dispatcher signal sent when the balance, the spending or the credits state changed."""
    return f"{DOMAIN}_account_{entry.entry_id}"


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
    ir.async_delete_issue(hass, DOMAIN, low_balance_issue_id(entry))
    async_dispatcher_send(hass, account_signal(entry))


@callback
def async_clear_no_credits(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Delete the issue once 60db accepts requests again (no-op when absent).

    Called after every successful request, so it does nothing more unless
    the issue was really there.
    """
    if not has_no_credits(hass, entry):
        return
    ir.async_delete_issue(hass, DOMAIN, no_credits_issue_id(entry))
    async_dispatcher_send(hass, account_signal(entry))


def has_no_credits(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """Whether 60db's last word was that the wallet is empty."""
    return ir.async_get(hass).async_get_issue(DOMAIN, no_credits_issue_id(entry)) is not None


def known_balance(hass: HomeAssistant, entry: ConfigEntry, client: SixtyDbClient) -> float | None:
    """The balance in USD as 60db last reported it; ``None`` when unknown.

    60db refuses the login of an empty wallet, so while the "no credits"
    issue stands the last balance seen is out of date and is not shown.
    """
    if client.account is None or has_no_credits(hass, entry):
        return None
    return client.account.credit_balance


def low_balance_threshold(entry: ConfigEntry) -> float:
    """The ``low_balance_warning`` option in USD; 0 (off) when unset or unreadable."""
    value = entry.options.get(CONF_LOW_BALANCE, DEFAULTS[CONF_LOW_BALANCE])
    try:
        return max(float(value), 0.0)
    except (TypeError, ValueError):
        return 0.0


@callback
def async_check_low_balance(hass: HomeAssistant, entry: ConfigEntry, client: SixtyDbClient) -> None:
    """Raise, update or delete the low-balance warning for the balance now known."""
    threshold = low_balance_threshold(entry)
    balance = known_balance(hass, entry, client)
    issue_id = low_balance_issue_id(entry)
    if threshold <= 0 or has_no_credits(hass, entry):
        ir.async_delete_issue(hass, DOMAIN, issue_id)
    elif balance is None:
        return  # not known right now (60db unreachable): keep what was decided
    elif balance < threshold:
        # Cents only: the balance moves with every request, and an unchanged
        # issue is not written to storage again.
        ir.async_create_issue(
            hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            is_persistent=False,
            learn_more_url=DASHBOARD_URL,
            severity=ir.IssueSeverity.WARNING,
            translation_key=ISSUE_LOW_BALANCE,
            translation_placeholders={
                "title": entry.title,
                "balance": f"{balance:.2f}",
                "threshold": f"{threshold:.2f}",
                "dashboard": DASHBOARD_URL,
            },
        )
    else:
        ir.async_delete_issue(hass, DOMAIN, issue_id)
