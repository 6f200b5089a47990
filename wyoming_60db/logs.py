"""Logging to stderr, with secrets scrubbed from every line."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .cli import Command

_LOGGER = logging.getLogger(__name__)


class RedactSecrets(logging.Filter):
    """Replaces secrets in every log record, whoever logs it (aiohttp included)."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self._secrets = tuple(secret for secret in secrets if secret)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(secret in message for secret in self._secrets):
            for secret in self._secrets:
                message = message.replace(secret, "***")
            record.msg, record.args = message, None
        return True


def setup_logging(*, debug: bool, log_format: str, secrets: Sequence[str]) -> None:
    """Log to stderr; each of ``secrets`` is replaced by ``***`` on every line."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, format=log_format)
    redact = RedactSecrets(secrets)
    for handler in logging.getLogger().handlers:
        handler.addFilter(redact)


def start_logging(command: Command) -> None:
    """Log as the command line asks, with the API key scrubbed from every line."""
    setup_logging(
        debug=command.debug,
        log_format=command.log_format,
        secrets=[command.settings.api_key or ""],
    )
    _LOGGER.debug("Settings: %s", command.settings)
