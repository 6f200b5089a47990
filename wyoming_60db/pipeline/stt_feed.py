"""Client audio in, one 60db STT session, results out: the STT pipeline of both front ends.

Clients send 10 ms chunks (home-assistant.md §2). Each goes through
:meth:`SttFeed.push`, which is synchronous: it converts (only when the format
is not 60db's), cuts the audio into ``STT_FRAME_MS`` frames, μ-law-encodes
them when the session takes μ-law, and hands complete frames to the feed's one
sender task. No coroutine and no task per chunk: the Wyoming server calls it
straight from the socket's ``data_received``.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Callable
from typing import Final, Protocol

from wyoming_60db.pcm import FrameChunker, PcmFormat, frame_bytes_for
from wyoming_60db.sixtydb import SixtyDbTimeoutError, SttResult, SttSession, Transcription
from wyoming_60db.sixtydb.limits import STT_FRAME_MS

from .aio import cancel_and_wait

MAX_UTTERANCE_SECONDS: Final = 30
"""Audio of the current utterance kept for a replay into a new session."""
MAX_UNSENT_SECONDS: Final = 60
"""Audio that may wait for the sender: a stalled socket must not grow memory
without limit. Generous, because Home Assistant's HTTP API uploads a whole
recording faster than real time."""
DEFAULT_SEND_TIMEOUT: Final = 10.0
"""How long :meth:`SttFeed.finish` waits for the last frames to go out."""


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

    def clear(self) -> None:
        """60db finished an utterance: its audio is no longer needed."""
        self._frames.clear()
        self.size = 0

    def audio(self) -> bytes:
        """The kept frames, joined."""
        return b"".join(self._frames)


class SttFeed:
    """Audio in, one started :class:`SttSession`, the text heard so far out.

    The format of the client's audio may come later (the server learns it from
    ``audio-start``): until :meth:`begin_audio`, :meth:`push` is refused.
    Results come from :attr:`heard` (the canonical finals so far, joined) and
    from :meth:`updates` (every interim and final ``transcription``, for one
    reader, when made with ``keep_updates=True``). A failure to send surfaces
    at the next :meth:`push` or :meth:`finish`; a failure of the session also
    ends :meth:`updates`.
    """

    def __init__(
        self,
        session: SttSession,
        source: PcmFormat | None = None,
        *,
        send_timeout: float = DEFAULT_SEND_TIMEOUT,
        keep_updates: bool = False,
    ) -> None:
        options = session.options
        self._session = session
        self._rate = options.sample_rate
        self._converter: PcmConverter | None = None
        if source is not None:
            self.begin_audio(source)
        self._chunker = _frame_chunker(self._rate)
        self._encode = _mulaw_encoder() if options.encoding == "mulaw" else None
        sent_per_second = self._rate * (1 if self._encode else 2)
        self._bytes_per_second = sent_per_second
        self._utterance = UtteranceAudio(MAX_UTTERANCE_SECONDS * sent_per_second)
        self._unsent: collections.deque[bytes] = collections.deque()
        self._max_unsent = MAX_UNSENT_SECONDS * 1000 // STT_FRAME_MS
        self._more = asyncio.Event()
        self._ending = False
        self._send_timeout = send_timeout
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
        loop = asyncio.get_running_loop()
        self._sender = loop.create_task(self._send_frames())
        self._listener = loop.create_task(self._listen())

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
        """One chunk of client audio: complete frames are queued for sending."""
        self._raise_if_failed()
        if self._converter is None:
            raise RuntimeError("SttFeed.push before begin_audio")
        if audio:
            self._queue(self._chunker.push(self._converter.convert(audio)))

    async def finish(self) -> SttResult:
        """End of speech: send what is left, stop the session and return its result."""
        self._raise_if_failed()
        if self._converter is not None:
            self._queue(self._chunker.push(self._converter.flush()))
            if tail := self._chunker.flush():
                self._queue([tail])
        self._ending = True
        self._more.set()
        # asyncio.wait, not `await`: a timeout here must not cancel the sender.
        await asyncio.wait([self._sender], timeout=self._send_timeout)
        if not self._sender.done():
            raise SixtyDbTimeoutError(
                f"60db did not take the audio within {self._send_timeout:.0f} s"
            )
        self._raise_if_failed()
        return await self._session.stop()

    async def updates(self) -> AsyncIterator[Transcription]:
        """Every ``transcription`` as it arrives; ends with the session, raising its error.

        Only for a feed made with ``keep_updates=True``.
        """
        if self._updates is None:
            raise RuntimeError("SttFeed.updates() needs keep_updates=True")
        while (update := await self._updates.get()) is not None:
            yield update
        if self._updates_error is not None:
            raise self._updates_error

    async def aclose(self) -> None:
        """Stop sending and release the session and its slot (idempotent).

        The session is closed even if this is cancelled while the tasks end.
        """
        try:
            await cancel_and_wait([self._sender, self._listener])
        finally:
            await self._session.aclose()

    def _queue(self, frames: list[bytes]) -> None:
        if not frames:
            return
        for frame in frames:
            sent = self._encode(frame) if self._encode else frame
            self._unsent.append(sent)
            self._utterance.add(sent)
        self._more.set()
        if len(self._unsent) > self._max_unsent:
            self._failure = SixtyDbTimeoutError(
                f"60db took no audio for {MAX_UNSENT_SECONDS} s of speech"
            )
            raise self._failure

    def _raise_if_failed(self) -> None:
        if self._failure is None and self._sender.done() and not self._sender.cancelled():
            self._failure = self._sender.exception()
        if self._failure is not None:
            raise self._failure

    async def _send_frames(self) -> None:
        unsent = self._unsent
        while True:
            while unsent:
                await self._session.send_audio(unsent.popleft())
            if self._ending:
                return
            self._more.clear()
            await self._more.wait()

    async def _listen(self) -> None:
        try:
            async for update in self._session.transcripts():
                if update.is_canonical:
                    self._utterance.clear()  # 60db has it: a replay starts after it
                    if text := update.text.strip():
                        self._finals.append(text)
                        self.heard = " ".join(self._finals)
                if self._updates is not None:
                    self._updates.put_nowait(update)
        except Exception as err:  # the session's failure, for the reader of updates()
            self._updates_error = err
        finally:
            if self._updates is not None:
                self._updates.put_nowait(None)


def _frame_chunker(rate: int) -> FrameChunker:
    return FrameChunker(frame_bytes_for(rate, 2, 1, STT_FRAME_MS))
