"""60db's revisable interim results as append-only text (the server's transcript-chunk)."""

from __future__ import annotations

from wyoming_60db.sixtydb import Transcription


class PartialTranscript:
    """Turns 60db's revisable interim results into append-only text chunks.

    An interim result may still change (60db-protocol.md §2.5), so only whole
    words that extend what was already sent are passed on; the final
    ``transcript`` event always carries the authoritative text.
    """

    def __init__(self) -> None:
        self._finals: list[str] = []
        self.sent = ""

    def update(self, update: Transcription) -> str:
        """The new text to send for one ``transcription``, possibly ""."""
        text = update.text.strip()
        if update.is_canonical:
            if text:
                self._finals.append(text)
            return self._extend(" ".join(self._finals))
        hypothesis = " ".join([*self._finals, text]) if text else ""
        # The last word of an interim result may be cut off ("turn on th").
        return self._extend(hypothesis.rsplit(" ", 1)[0] if " " in hypothesis else "")

    def complete(self, final_text: str) -> str:
        """What is still missing once the final text is known."""
        return self._extend(final_text.strip())

    def _extend(self, stable: str) -> str:
        sent = self.sent
        if len(stable) <= len(sent) or not stable.startswith(sent):
            return ""
        if sent and stable[len(sent)] != " ":
            return ""  # "turn on" → "turn one": the last word changed
        self.sent = stable
        return stable[len(sent) :]
