"""The request pipelines both front ends run: STT audio in, TTS text in.

The Wyoming server and the Home Assistant integration are thin adapters over
these. The package imports neither ``wyoming`` nor ``homeassistant``, and
numpy only when audio is really converted or μ-law encoded.
"""

from .aio import IdleTimer, QuietStream, cancel_and_wait, next_or_quiet, run_together
from .endpointing import Endpointing, TurnEnd, utterance_end_ms
from .speaker import SentenceSegmenter, TextStreamSpeaker
from .stt_feed import MAX_UTTERANCE_SECONDS, SttFeed
from .transcript import PartialTranscript

__all__ = [
    "MAX_UTTERANCE_SECONDS",
    "Endpointing",
    "IdleTimer",
    "PartialTranscript",
    "QuietStream",
    "SentenceSegmenter",
    "SttFeed",
    "TextStreamSpeaker",
    "TurnEnd",
    "cancel_and_wait",
    "next_or_quiet",
    "run_together",
    "utterance_end_ms",
]
