"""Client audio in, one 60db STT session, results out: the STT pipeline of both front ends.

Clients send 10 ms chunks (home-assistant.md §2). Each goes through
:meth:`SttFeed.push`, which is synchronous: it converts (only when the format
is not 60db's), cuts the audio into ``STT_FRAME_MS`` frames, μ-law-encodes
them when the session takes μ-law, and hands complete frames to the feed's one
sender task. No coroutine and no task per chunk: the Wyoming server calls it
straight from the socket's ``data_received``.

A session that drops mid-request (a network error, a close code that is not
a refusal, a stall) is replaced: the audio of the current utterance, kept
since 60db's last canonical final, is replayed into a fresh session with the
same options, then live audio continues there. The finals already received
are kept, so the user gets the transcript an undisturbed session would have
given.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Final, Protocol

from wyoming_60db.pcm import FrameChunker, PcmFormat, frame_bytes_for
from wyoming_60db.sixtydb import (
    Billing,
    ConnectionLostError,
    ServerError,
    SixtyDbTimeoutError,
    SttOptions,
    SttResult,
    SttSession,
    Transcription,
)
from wyoming_60db.sixtydb.limits import DEFAULT_UTTERANCE_END_MS, MIN_INTERVAL_MS, STT_FRAME_MS

from .aio import cancel_and_wait
from .endpointing import Endpointing, TurnEnd, TurnWatch

MAX_UTTERANCE_SECONDS: Final = 30
"""Audio of the current utterance kept for a replay into a new session."""
MAX_UNSENT_SECONDS: Final = 60
"""Audio that may wait for the sender: a stalled socket must not grow memory
without limit. Generous, because Home Assistant's HTTP API uploads a whole
recording faster than real time."""
DEFAULT_SEND_TIMEOUT: Final = 10.0
"""How long :meth:`SttFeed.finish` waits for the last frames to go out (and a
replay may take to go out)."""
MAX_RECOVERIES: Final = 2
"""New sessions one request may open after drops: a 60db that keeps dropping
must end the request, not hold the user."""
RECOVERABLE: Final = (ConnectionLostError, SixtyDbTimeoutError, ServerError)
"""Failures of the connection, not of the request: a fresh session may succeed.
Refusals (credentials, credits, concurrency, an invalid request) would only
be refused again."""

_LOGGER = logging.getLogger(__name__)


class PcmConverter(Protocol):
    """What the feed needs of a converter (``wyoming_60db.audio.AudioConverter``)."""

    def convert(self, audio: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


class Passthrough:
    """HA's 16 kHz, 16-bit mono audio goes to 60db untouched and without numpy."""

    def convert(self, audio: bytes) -> bytes:
        return audio

    def flush(self) -> bytes:
        return b""


def converter_for(source: PcmFormat, rate: int) -> PcmConverter:
    """A converter from ``source`` to ``rate`` Hz 16-bit mono (numpy only if it converts)."""
    if (source.rate, source.width, source.channels) == (rate, 2, 1):
        return Passthrough()
    from wyoming_60db.audio import AudioConverter  # noqa: PLC0415 - numpy and soxr only when converting

    return AudioConverter(source, rate)


def _mulaw_encoder() -> Callable[[bytes], bytes]:
    from wyoming_60db.audio import mulaw_encode  # noqa: PLC0415 - numpy only for μ-law

    return mulaw_encode


class UtteranceAudio:
    """The frames sent since the last canonical final, the newest ``max_bytes`` of them."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._frames: collections.deque[bytes] = collections.deque()
        self.size = 0

    def add(self, frame: bytes) -> None:
        """One more frame; the oldest go beyond the cap."""
        self._frames.append(frame)
        self.size += len(frame)
        while self.size > self._max_bytes:
            self.size -= len(self._frames.popleft())

    def clear(self, keep_bytes: int = 0) -> None:
        """60db finished an utterance: drop its audio, keeping the newest ``keep_bytes``.

        The frames kept are whole frames, at most ``keep_bytes`` of them.
        """
        kept: collections.deque[bytes] = collections.deque()
        size = 0
        while self._frames and size + len(self._frames[-1]) <= keep_bytes:
            frame = self._frames.pop()
            kept.appendleft(frame)
            size += len(frame)
        self._frames, self.size = kept, size

    def audio(self) -> bytes:
        """The kept frames, joined."""
        return b"".join(self._frames)

    def frames(self) -> list[bytes]:
        """The kept frames, oldest first (what a replay sends)."""
        return list(self._frames)


class SttSessions(Protocol):
    """Where the feed gets its sessions (``SixtyDbClient``)."""

    def stt_session(self, options: SttOptions) -> SttSession: ...

    def stop_in_background(self, session: SttSession) -> None: ...


class SttFeed:
    """Audio in, started :class:`SttSession` s (one, or more after drops), the text heard out.

    The feed makes and starts its session from ``client`` and ``options`` at
    once, so 60db's handshake overlaps with the user speaking. The format of
    the client's audio may come later (the server learns it from
    ``audio-start``): until :meth:`begin_audio`, :meth:`push` is refused.
    Results come from :attr:`heard` (the canonical finals so far, joined) and
    from :meth:`updates` (every interim and final ``transcription``, for one
    reader, when made with ``keep_updates=True``). A session that drops is
    replaced, at most ``max_recoveries`` times; a failure that is not a drop,
    or one drop too many, surfaces at the next :meth:`push` or
    :meth:`finish` and also ends :meth:`updates`.
    """

    def __init__(
        self,
        client: SttSessions,
        options: SttOptions,
        source: PcmFormat | None = None,
        *,
        send_timeout: float = DEFAULT_SEND_TIMEOUT,
        keep_updates: bool = False,
        max_recoveries: int = MAX_RECOVERIES,
        endpointing: Endpointing | None = None,
    ) -> None:
        self._client = client
        self._options = options
        self._rate = options.sample_rate
        self._converter: PcmConverter | None = None
        if source is not None:
            self.begin_audio(source)
        self._chunker = _frame_chunker(self._rate)
        self._encode = _mulaw_encoder() if options.encoding == "mulaw" else None
        sent_per_second = self._rate * (1 if self._encode else 2)
        self._bytes_per_second = sent_per_second
        self._utterance = UtteranceAudio(MAX_UTTERANCE_SECONDS * sent_per_second)
        # 60db ends an utterance only after `utterance_end_ms` of silence, so
        # with live audio (real time) what was sent within that span before
        # its final arrives is silence or the next phrase's beginning, never
        # the finished utterance: a replay keeps it, or a drop right after a
        # final would lose the first words of the next phrase.
        end_ms = options.utterance_end_ms or DEFAULT_UTTERANCE_END_MS
        self._after_final_bytes = sent_per_second * max(end_ms, MIN_INTERVAL_MS) // 1000
        self._unsent: collections.deque[bytes] = collections.deque()
        self._max_unsent = MAX_UNSENT_SECONDS * 1000 // STT_FRAME_MS
        self._more = asyncio.Event()
        self._ending = False
        self._send_timeout = send_timeout
        self._send_bound: asyncio.Timeout | None = None
        self._recover_until: float | None = None
        self._failure: BaseException | None = None
        self._finals: list[str] = []
        self.heard = ""
        """The canonical finals so far, joined (what ``SttSession.result().text`` says)."""
        # Only a reader of updates() gets them queued: a front end that reads
        # only `heard` must not keep every interim result of a long session.
        self._updates: asyncio.Queue[Transcription | None] | None = (
            asyncio.Queue() if keep_updates else None
        )
        self._updates_error: BaseException | None = None
        self._max_recoveries = max_recoveries
        self.recoveries = 0
        """How many dropped sessions this feed has replaced."""
        self._taken = 0  # transcriptions of the current session taken into `heard`
        self._earlier: list[SttResult] = []  # what the dropped sessions heard
        self._closing: set[asyncio.Task[None]] = set()  # dropped sessions being closed
        self._endpointing = endpointing
        self._turn = TurnWatch(endpointing, self._rate * 2) if endpointing else None  # PCM16 frames
        self._result: SttResult | None = None  # the turn's, once it is over
        self.turn_end: TurnEnd | None = None
        """Why the turn ended, once it has."""
        self._session = self._open_session()
        self._handed_over = False  # the session is the client's to stop
        self._driver = asyncio.get_running_loop().create_task(self._drive())

    @property
    def has_audio_format(self) -> bool:
        """True once the client's audio format is known."""
        return self._converter is not None

    @property
    def utterance_audio(self) -> bytes:
        """The frames sent since 60db's last canonical final (at most 30 s), as sent."""
        return self._utterance.audio()

    @property
    def utterance_seconds(self) -> float:
        """How much audio :attr:`utterance_audio` holds."""
        return self._utterance.size / self._bytes_per_second

    def begin_audio(self, source: PcmFormat) -> None:
        """Take the client's format; raises ``UnsupportedAudioFormat``."""
        self._converter = converter_for(source.validate(), self._rate)

    def push(self, audio: bytes) -> None:
        """One chunk of client audio: complete frames are queued for sending.

        Once the turn is over (:meth:`turn_ended`), audio is dropped: the
        client may stream on until it reads the transcript.
        """
        if self._result is not None:
            return
        self._raise_if_failed()
        if self._converter is None:
            raise RuntimeError("SttFeed.push before begin_audio")
        if audio:
            self._queue(self._chunker.push(self._converter.convert(audio)))

    async def finish(self, *, recover_until: float | None = None) -> SttResult:
        """End of speech: send what is left, stop the session and return the result.

        After a recovery the result joins the finals of every session, in
        order, with the language of the last. ``recover_until`` (loop time)
        is the last moment a recovery may begin: one that could not finish
        within the caller's time budget reports the session's own error.
        """
        if self._result is not None:
            return self._result
        self._recover_until = recover_until
        self._raise_if_failed()
        if self._converter is not None:
            self._queue(self._chunker.push(self._converter.flush()))
            if tail := self._chunker.flush():
                self._queue([tail])
        self._ending = True
        self._more.set()
        if self._send_bound is not None:  # the last frames must go out in time
            self._send_bound.reschedule(asyncio.get_running_loop().time() + self._send_timeout)
        result = await self._driver
        self._conclude(self.turn_end or TurnEnd.CLIENT, result)
        return result

    async def turn_ended(self) -> SttResult:
        """Wait until the turn is over (only for a feed with ``endpointing``).

        It is over when 60db ends the utterance (its canonical final, or with
        a context the first final whose refinement is late), when a guard
        fires (too long: finalised like :meth:`finish`; no speech: an empty
        text), or when :meth:`finish` came first. After a 60db end of
        utterance the session is handed to the client to stop in the
        background, so the answer does not wait for 60db's confirmation.
        """
        turn = self._turn
        if turn is None:
            raise RuntimeError("SttFeed.turn_ended() needs endpointing")
        if self._result is None and not self._ending:
            waiters: list[asyncio.Future[Any]] = [turn.over, self._driver]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if self._result is not None:
            return self._result
        if self._ending or not turn.over.done():  # finish() came first, or the feed failed
            return await self._driver
        end = turn.over.result()
        if end is TurnEnd.MAX_LENGTH:
            self.turn_end = end
            return await self.finish()
        text = "" if end is TurnEnd.NO_SPEECH else turn.text(self._finals)
        result = self._result_so_far(text)
        self._conclude(end, result)
        self._hand_over()
        return result

    async def updates(self) -> AsyncIterator[Transcription]:
        """Every ``transcription`` as it arrives, across recoveries; ends with the feed.

        Only for a feed made with ``keep_updates=True``. After a recovery the
        new session's results start again from the replayed utterance.
        """
        if self._updates is None:
            raise RuntimeError("SttFeed.updates() needs keep_updates=True")
        while (update := await self._updates.get()) is not None:
            yield update
        if self._updates_error is not None:
            raise self._updates_error

    async def aclose(self) -> None:
        """Stop sending and release the sessions and their slots (idempotent).

        The sessions are closed even if this is cancelled while the tasks end.
        """
        if self._turn is not None:
            self._turn.stop()
        try:
            await cancel_and_wait([self._driver])
        finally:
            # The driver has ended, so no recovery can open another session now.
            if not self._handed_over:
                await self._session.aclose()
            if self._closing:
                await asyncio.gather(*self._closing, return_exceptions=True)

    def _conclude(self, end: TurnEnd, result: SttResult) -> None:
        """The turn is over: the same result for every later caller, no more audio."""
        if self._result is None:
            self._result = result
            self.turn_end = end
            self._unsent.clear()
            if self._turn is not None:
                self._turn.stop()

    def _hand_over(self) -> None:
        """Stop sending and let the client end the session (its slot, its bill).

        Synchronous: the answer must not wait for the driver's tasks to wind
        down (:meth:`aclose` waits for them).
        """
        self._handed_over = True
        self._client.stop_in_background(self._session)
        self._driver.cancel()

    def _result_so_far(self, text: str) -> SttResult:
        """A turn 60db ended (no ``stop``): ``text``, in the session's language."""
        current = self._session.result()
        return SttResult(
            text=text,
            language=current.language,
            billing=None,  # 60db bills at `stop`; the client counts it then
            utterances=tuple(
                update for result in (*self._earlier, current) for update in result.utterances
            ),
        )

    def _open_session(self) -> SttSession:
        session = self._client.stt_session(self._options)
        session.start()
        return session

    def _queue(self, frames: list[bytes]) -> None:
        if not frames:
            return
        for frame in frames:
            sent = self._encode(frame) if self._encode else frame
            self._unsent.append(sent)
            self._utterance.add(sent)
        self._more.set()
        if self._turn is not None:
            self._turn.audio(sum(map(len, frames)), self._session.speech_started)
        if len(self._unsent) > self._max_unsent:
            self._failure = SixtyDbTimeoutError(
                f"60db took no audio for {MAX_UNSENT_SECONDS} s of speech"
            )
            raise self._failure

    def _raise_if_failed(self) -> None:
        if self._failure is None and self._driver.done() and not self._driver.cancelled():
            self._failure = self._driver.exception()
        if self._failure is not None:
            raise self._failure

    async def _drive(self) -> SttResult:
        """The sessions of the request, one after another; the combined result."""
        try:
            return await self._run_sessions()
        except Exception as err:  # the feed's failure, for the reader of updates()
            self._updates_error = err
            raise
        finally:
            if self._updates is not None:
                self._updates.put_nowait(None)

    async def _run_sessions(self) -> SttResult:
        replay: list[bytes] = []
        started: float | None = None  # when the session being replaced failed
        while True:
            try:
                result = await self._run_session(self._session, replay, started)
            except RECOVERABLE as err:
                started = asyncio.get_running_loop().time()
                if not self._may_recover(started):
                    raise
                _LOGGER.debug("60db STT session dropped (%s); replacing it", err.code)
                replay = self._replace_session()
            else:
                return self._combined(result)

    def _may_recover(self, now: float) -> bool:
        """A dropped session, a recovery left, and time for it."""
        return (
            self._session.accepted  # a session that never started was refused, not dropped
            and self.recoveries < self._max_recoveries
            and (self._recover_until is None or now <= self._recover_until)
        )

    def _replace_session(self) -> list[bytes]:
        """Close the dropped session, open a fresh one: the audio to replay into it.

        Synchronous, so that no client audio can arrive half-way: every frame
        not yet sent is in the utterance, and frames pushed from now on go to
        the new session after the replay.
        """
        dropped = self._session
        if self._turn is not None and dropped.speech_started:
            self._turn.heard_speech = True
        result = dropped.result()
        # Finals the listener had not taken yet (it may have been cancelled
        # first): their audio must not be replayed, nor their text lost.
        for update in result.utterances[self._taken :]:
            self._take(update)
        self._earlier.append(result)
        closing = asyncio.get_running_loop().create_task(dropped.aclose())
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)
        self._session = self._open_session()
        self._taken = 0
        self.recoveries += 1
        self._unsent.clear()
        return self._utterance.frames()

    async def _run_session(
        self, session: SttSession, replay: list[bytes], started: float | None
    ) -> SttResult:
        """Replay, send live audio and stop; the first failure of sending or listening ends it."""
        finishing = asyncio.ensure_future(self._send_and_stop(session, replay, started))
        listening = asyncio.ensure_future(self._listen(session))
        try:
            await asyncio.wait([finishing, listening], return_when=asyncio.FIRST_EXCEPTION)
            if listening.done():
                listening.result()  # the session failed while audio was still going out
            result = await finishing
            await listening  # the last results of the session
            return result
        finally:
            await cancel_and_wait([finishing, listening])

    async def _send_and_stop(
        self, session: SttSession, replay: list[bytes], started: float | None
    ) -> SttResult:
        if started is not None:
            await self._replay(session, replay, started)
        await self._send_frames(session)
        return await session.stop()

    async def _replay(self, session: SttSession, replay: list[bytes], started: float) -> None:
        """The utterance so far, into a new session, as fast as 60db takes it."""
        seconds = sum(map(len, replay)) / self._bytes_per_second
        await session.wait_ready()
        try:
            async with asyncio.timeout(self._send_timeout):
                for frame in replay:
                    await session.send_audio(frame)
        except TimeoutError as err:
            if isinstance(err, SixtyDbTimeoutError):
                raise
            raise SixtyDbTimeoutError(
                f"60db did not take the replayed audio within {self._send_timeout:.0f} s"
            ) from None
        took = asyncio.get_running_loop().time() - started
        _LOGGER.info(
            "60db STT session dropped mid-request; recovered in a new session "
            "(replayed %.2f s of the utterance, recovery took %.0f ms)",
            seconds,
            took * 1000,
        )

    async def _send_frames(self, session: SttSession) -> None:
        """Live audio until :meth:`finish`; after it, bounded by ``send_timeout``."""
        loop = asyncio.get_running_loop()
        unsent = self._unsent
        try:
            async with asyncio.timeout(None) as bound:
                self._send_bound = bound
                if self._ending:
                    bound.reschedule(loop.time() + self._send_timeout)
                while True:
                    while unsent:
                        await session.send_audio(unsent.popleft())
                    if self._ending:
                        return
                    self._more.clear()
                    await self._more.wait()
        except TimeoutError as err:
            if isinstance(err, SixtyDbTimeoutError):
                raise
            raise SixtyDbTimeoutError(
                f"60db did not take the audio within {self._send_timeout:.0f} s"
            ) from None
        finally:
            self._send_bound = None

    async def _listen(self, session: SttSession) -> None:
        async for update in session.transcripts():
            self._take(update)

    def _take(self, update: Transcription) -> None:
        self._taken += 1
        if update.is_canonical:
            self._utterance.clear(self._after_final_bytes)  # 60db has the utterance
            if text := update.text.strip():
                self._finals.append(text)
                self.heard = " ".join(self._finals)
        if self._turn is not None:
            self._turn.transcription(update)
        if self._updates is not None:
            self._updates.put_nowait(update)

    def _combined(self, last: SttResult) -> SttResult:
        if not self._earlier:
            return last
        results = [*self._earlier, last]
        return SttResult(
            text=self.heard,
            language=last.language,
            billing=_billing_sum([result.billing for result in results]),
            utterances=tuple(update for result in results for update in result.utterances),
        )


def _billing_sum(billings: list[Billing | None]) -> Billing | None:
    """What every session of the request cost (``None`` where 60db did not say)."""
    known = [billing for billing in billings if billing is not None]
    if not known:
        return None

    def total(values: list[float | None]) -> float | None:
        return None if any(value is None for value in values) else sum(v or 0.0 for v in values)

    return Billing(
        total_duration_seconds=total([billing.total_duration_seconds for billing in known]),
        total_cost=total([billing.total_cost for billing in known]),
    )


def _frame_chunker(rate: int) -> FrameChunker:
    return FrameChunker(frame_bytes_for(rate, 2, 1, STT_FRAME_MS))
