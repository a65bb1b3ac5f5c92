"""Replace secret values found in what the artifact writer reads out of secret-marked inputs."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

SECRET = "[secret]"


def _occurrences(text: str, secret: str) -> Iterator[tuple[int, int]]:
    """Every (start, stop) of `secret` in `text`, overlapping ones included ("aa" in "aaa": 2)."""
    start = text.find(secret)
    while start >= 0:
        yield start, start + len(secret)
        start = text.find(secret, start + 1)


class Scrubber:
    """Replaces each secret value found in a text by "[secret]". Occurrences that overlap
    become one "[secret]", so no fragment of either shows (replacing one secret after another
    would leave the part of one that the other had covered). Texts repeat (a host's address is
    in the header of each of its commands): each distinct text is scrubbed once."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = tuple(sorted({s for s in secrets if s}))
        self._done: dict[str, str] = {}

    def __call__(self, text: str) -> str:
        if text not in self._done:
            self._done[text] = self._scrub(text)
        return self._done[text]

    def _scrub(self, text: str) -> str:
        spans = sorted(span for secret in self._secrets for span in _occurrences(text, secret))
        parts: list[str] = []
        copied = 0
        for start, stop in spans:
            if start < copied:  # overlaps the one replaced before: widen it
                copied = max(copied, stop)
                continue
            parts += [text[copied:start], SECRET]
            copied = stop
        return "".join(parts) + text[copied:] if parts else text

    def deep(self, value: Any) -> Any:
        """`value` (a parsed document) with every string in it scrubbed, keys included: scrubbing
        the document's serialization instead would miss a secret that YAML folds or escapes."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self.deep(k): self.deep(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.deep(v) for v in value]
        return value
