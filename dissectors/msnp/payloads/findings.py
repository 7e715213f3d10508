"""The accumulator payload decoders fill in (`Findings`): the small mutable scratchpad one
decoder call builds up (fields, problems, credential names) before `model` freezes it into a
`Payload`.

A module of its own so the opt-in compiled build makes it native (model.py cannot be
compiled: `new_payload` writes a frozen dataclass's slots): every payload makes one, and
the decoders call its methods for each problem and credential.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

MAX_PROBLEMS: Final = 40
"""Problems kept per payload; a hostile payload must not produce an unbounded list."""


@dataclass(slots=True)
class Findings:
    """What decoding one payload found: named fields, problems and credential names."""

    fields: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    credentials: list[str] = field(default_factory=list)
    dropped: int = 0

    def problem(self, text: str) -> None:
        """Record a problem (bounded: past `MAX_PROBLEMS` only a count is kept)."""
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)
        else:
            self.dropped += 1

    def secret(self, name: str) -> None:
        """Mark a header name or field key as holding a credential."""
        if name not in self.credentials:
            self.credentials.append(name)

    def final_problems(self) -> tuple[str, ...]:
        """The problems to freeze into the payload, plus a count of any dropped past the cap."""
        if self.dropped:
            return (*self.problems, f"{self.dropped} more problems not shown")
        return tuple(self.problems)


class KeepingFindings(Findings):
    """A `Findings` that keeps every problem (for replaying into a bounded one, in order)."""

    def problem(self, text: str) -> None:
        """Record a problem, without the bound."""
        self.problems.append(text)
