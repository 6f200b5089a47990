"""``SixtyDbClient``: the one entry point the Wyoming server and Home Assistant share."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from types import TracebackType

import aiohttp

from .catalog import SttLanguage, Voice, parse_stt_languages, parse_voices
from .channel import Channel, open_channel
from .config import STT_PATH, TTS_PATH, ClientConfig
from .errors import (
    ConcurrencyLimitError,
    ConnectionLostError,
    ProtocolError,
    SixtyDbError,
    TextTooLongError,
)
from .limits import MAX_CONTEXT_CHARS, MAX_TEXT_CHARS
from .pool import LIMIT_RETRY_DELAY, Slots, WarmPool
from .protocol import Account, Billing
from .rest import RestApi
from .stt import SttOptions, SttSession
from .text import split_text
from .tts import TtsContext, TtsOptions
from .usage import Usage

_LOGGER = logging.getLogger(__name__)


class SixtyDbClient:
    """Async client for 60db's streaming STT and TTS.

    Pass Home Assistant's shared ``aiohttp`` session as ``session``; without one
    the client makes (and closes) its own. ``warm_stt``/``warm_tts`` is how many
    authenticated connections are kept ready so a request skips 60db's login.
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        session: aiohttp.ClientSession | None = None,
        warm_stt: int = 1,
        warm_tts: int = 1,
    ) -> None:
        self.config = config
        self._session = session
        self._owns_session = session is None
        timeouts = config.timeouts
        self._stt_pool: WarmPool[Channel] = WarmPool(
            self._open_stt,
            name="STT",
            size=warm_stt,
            max_idle=timeouts.warm_max_idle,
            room=lambda: self._stt_slots.free,
        )
        self._tts_pool: WarmPool[Channel] = WarmPool(
            self._open_tts,
            name="TTS",
            size=warm_tts,
            reusable=True,
            max_idle=timeouts.warm_max_idle,
            room=lambda: self._tts_slots.free,
        )
        # A freed slot may leave room for a warm connection again.
        self._stt_slots = Slots(
            "stt", config.stt_concurrency, timeouts.queue, on_release=self._stt_pool.refill
        )
        self._tts_slots = Slots(
            "tts", config.tts_concurrency, timeouts.queue, on_release=self._tts_pool.refill
        )
        # §9.6: some servers close the TTS socket after `context_closed`;
        # once seen, connections are used once and the pool keeps new ones warm.
        self._tts_single_use = False
        self.account: Account | None = None
        """The account as the newest handshake (STT or TTS) described it."""
        self.usage = Usage()
        """What this client's STT sessions cost, from 60db's billing summaries."""
        self._listeners: list[Callable[[], None]] = []
        self._stopping: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"SixtyDbClient(api_url={self.config.api_url!r})"

    async def __aenter__(self) -> SixtyDbClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session used for every request."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        """Close warm connections, and the session if the client made it.

        Sessions still stopping in the background are closed without their
        billing summary: the client is going away.
        """
        for task in list(self._stopping):
            task.cancel()
        await asyncio.gather(*self._stopping, return_exceptions=True)
        await self._stt_pool.aclose()
        await self._tts_pool.aclose()
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def add_listener(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` after :attr:`account` or :attr:`usage` changed; returns its remover."""
        self._listeners.append(callback)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(callback)

        return remove

    def stop_in_background(self, session: SttSession) -> None:
        """End ``session`` without waiting: ``stop`` now, then its summary, then close.

        For a caller that already has its answer (60db ended the utterance):
        the session takes no more audio at once, its billing still counts,
        and its slot comes back when 60db confirms — or, at the latest, after
        the client's own bounds. The task is the client's, so the caller may
        be cancelled (Home Assistant hangs up) without cutting it short.
        """
        task = asyncio.get_running_loop().create_task(self._stop_and_close(session))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    def free_slots(self, service: str) -> int:
        """How many of the account's ``"stt"`` or ``"tts"`` sessions are free here."""
        return {"stt": self._stt_slots, "tts": self._tts_slots}[service].free

    def prewarm(self) -> None:
        """Open the warm connections in the background."""
        self._stt_pool.refill()
        self._tts_pool.refill()

    async def check_account(self) -> Account:
        """Validate the credentials and return the account behind them.

        60db has no "who am I" REST call for API keys; the WebSocket handshake's
        ``connection_established`` carries ``user_id`` and ``credit_balance``
        (§5.7). The connection is then kept as a warm TTS connection.
        """
        channel = await self._open_tts()
        self._tts_pool.adopt(channel)
        return self._account_of(channel)

    async def fetch_voices(self) -> list[Voice]:
        """The account's voices, built-in and cloned (§5.6)."""
        api = RestApi(self.session, self.config)
        voices = parse_voices(await api.get_json("/voices"))
        if not any(voice.category == "built_in" for voice in voices):
            # §9.15: `/voices` may be only the caller's own voices; the full
            # catalog is then at `/get-voices`.
            with contextlib.suppress(SixtyDbError):
                voices = _merge(parse_voices(await api.get_json("/get-voices")), voices)
        return voices

    async def fetch_stt_languages(self) -> list[SttLanguage]:
        """The languages 60db's STT recognises (§5.5)."""
        return parse_stt_languages(
            await RestApi(self.session, self.config).get_json("/stt/languages")
        )

    async def health(self) -> bool:
        """Whether 60db is reachable (no credentials needed)."""
        return await RestApi(self.session, self.config).health()

    def stt_session(self, options: SttOptions) -> SttSession:
        """A streaming STT session; use it as ``async with``.

        It connects in the background from the moment it is entered, so the
        caller can send audio at once.
        """
        slots = self._stt_slots
        held = False

        async def open_channel() -> Channel:
            nonlocal held
            if not held:  # once per session, also when it connects a second time
                await slots.acquire()
                held = True
            return await self._stt_pool.take()

        def release(closing: asyncio.Future[None] | None) -> None:
            nonlocal held
            if held:
                held = False
                if closing is None:
                    slots.release()
                else:
                    slots.release_after(closing)

        return SttSession(
            open_channel,
            options,
            self.config.timeouts,
            on_close=release,
            on_billing=self._count_billing,
        )

    @contextlib.asynccontextmanager
    async def tts_context(self, options: TtsOptions) -> AsyncIterator[TtsContext]:
        """An open TTS context on a warm connection, returned to the pool afterwards.

        The slot is given back in every case, also when the caller is
        cancelled: at once, or when a discarded socket has finished closing.
        """
        await self._tts_slots.acquire()
        closing: asyncio.Future[None] | None = None
        try:
            context = await self._open_context(options)
            try:
                yield context
            finally:
                closing = self._release(context)
        finally:
            if closing is None:
                self._tts_slots.release()
            else:
                self._tts_slots.release_after(closing)

    async def synthesize(self, text: str, options: TtsOptions) -> AsyncIterator[bytes]:
        """Speak ``text``: one request, audio chunks as they arrive."""
        text = text.strip()
        if len(text) > MAX_TEXT_CHARS:
            raise TextTooLongError(f"text is {len(text)} characters; the limit is {MAX_TEXT_CHARS}")
        for group in _context_groups(split_text(text)):
            async with self.tts_context(options) as context:
                for piece in group:
                    await context.send_text(piece)
                    await context.flush()
                await context.close()
                async for chunk in context.audio():
                    yield chunk

    async def _open_context(self, options: TtsOptions) -> TtsContext:
        try:
            return await self._open_context_once(options)
        except ConcurrencyLimitError:
            # We hold a slot, so 60db's count lags a context that just ended.
            await asyncio.sleep(LIMIT_RETRY_DELAY)
            return await self._open_context_once(options)

    async def _open_context_once(self, options: TtsOptions) -> TtsContext:
        channel = await self._tts_pool.take()
        try:
            return await self._create_context(channel, options)
        except ConnectionLostError:
            if not channel.reused:
                raise
        # The reused socket was closed under us (§9.6): retry once on a new one,
        # and stop reusing sockets of this server.
        self._tts_single_use = True
        return await self._create_context(await self._tts_pool.take(), options)

    async def _create_context(self, channel: Channel, options: TtsOptions) -> TtsContext:
        context = TtsContext(channel, options, self.config.timeouts)
        try:
            await context.open()
        except BaseException:
            self._tts_pool.discard(channel)
            raise
        channel.reused = True
        return context

    def _release(self, context: TtsContext) -> asyncio.Future[None] | None:
        """Return the context's socket to the pool, or close it (the close task)."""
        channel = context.channel
        if context.finished and channel.closed:
            self._tts_single_use = True
        if context.finished and not self._tts_single_use and not channel.closed:
            self._tts_pool.give_back(channel)
            return None
        # Mid-request failures leave the socket in an unknown state.
        return self._tts_pool.discard(channel)

    async def _stop_and_close(self, session: SttSession) -> None:
        try:
            await session.stop()
        except SixtyDbError as err:  # the answer is given; only the summary is lost
            _LOGGER.debug("60db STT session ended without its summary: %s", err.code)
        finally:
            await session.aclose()

    def _count_billing(self, billing: Billing) -> None:
        self.usage.add(billing)
        _LOGGER.debug(
            "60db STT session billed: %s s of audio, $%s",
            billing.total_duration_seconds,
            billing.total_cost,
        )
        self._notify()

    def _notify(self) -> None:
        for callback in list(self._listeners):
            try:
                callback()
            except Exception:  # one broken listener must not break a request
                _LOGGER.exception("60db client listener failed")

    async def _open_stt(self) -> Channel:
        channel = await open_channel(self.session, self.config, "stt", STT_PATH)
        self._note_account(channel)
        return channel

    async def _open_tts(self) -> Channel:
        channel = await open_channel(self.session, self.config, "tts", TTS_PATH)
        self._note_account(channel)
        return channel

    def _note_account(self, channel: Channel) -> None:
        """Every handshake says the wallet's balance (§2.4): keep the newest."""
        account = self._account_of(channel)
        if account != self.account:
            self.account = account
            self._notify()

    @staticmethod
    def _account_of(channel: Channel) -> Account:
        if channel.account is None:  # open_channel returns only after the handshake
            raise ProtocolError("60db's handshake carried no account")
        return channel.account


def _context_groups(pieces: list[str]) -> list[list[str]]:
    groups: list[list[str]] = [[]]
    size = 0
    for piece in pieces:
        if size + len(piece) > MAX_CONTEXT_CHARS and groups[-1]:
            groups.append([])
            size = 0
        groups[-1].append(piece)
        size += len(piece)
    return [group for group in groups if group]


def _merge(first: list[Voice], second: list[Voice]) -> list[Voice]:
    seen = {voice.voice_id for voice in first}
    return first + [voice for voice in second if voice.voice_id not in seen]
