"""Comparing a recording with its replay: request by request, then the unsolicited frames
of each connection, after normalisation (`normalize.Rules`)."""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal

from dissectors.msnp.frames import CommandFrame
from msnsniff.replay.machine import Replayer
from msnsniff.replay.normalize import Normalizer, Rules
from msnsniff.replay.recording import RecConn
from msnsniff.session.capture_session import FrameRecord

Status = Literal["same", "changed", "missing", "extra"]
_STATUS: Final[Mapping[str, Status]] = MappingProxyType(
    {"equal": "same", "replace": "changed", "delete": "missing", "insert": "extra"}
)
"""difflib's opcode -> what it means for a recorded frame."""
Lines = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Item:
    """One comparison: a request's replies, or a run of unsolicited frames."""

    status: Status
    conn: str  # the connection's label
    request: str | None  # the normalised request line; None: unsolicited frames
    recorded_no: int | None
    recorded: tuple[Lines, ...]
    replayed: tuple[Lines, ...]
    reason: str | None = None  # why a request was not sent, or got no reply

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "connection": self.conn,
            "request": self.request,
            "recorded_frame": self.recorded_no,
            "recorded": [list(f) for f in self.recorded],
            "replayed": [list(f) for f in self.replayed],
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Report:
    """The comparison of a replay with its recording: the items, a failure, and notes."""

    items: tuple[Item, ...]
    failure: str | None
    notes: tuple[str, ...]
    interrupted: bool = False  # Ctrl-C: the items are what was replayed until then

    @property
    def counts(self) -> dict[str, int]:
        out = {"same": 0, "changed": 0, "missing": 0, "extra": 0}
        for item in self.items:
            out[item.status] += 1
        return out

    @property
    def result(self) -> Literal["equal", "different", "failed", "interrupted"]:
        if self.interrupted:
            return "interrupted"
        if self.failure is not None:
            return "failed"
        return "equal" if all(i.status == "same" for i in self.items) else "different"

    @property
    def exit_status(self) -> int:
        return {"equal": 0, "different": 1, "failed": 2, "interrupted": 130}[self.result]


def _normalised(
    frames: Iterable[tuple[int, CommandFrame]], rules: Rules
) -> dict[int, Lines | None]:
    """Frame no -> normalised server frame (None: ignored), in connection order."""
    norm = Normalizer(rules)
    out: dict[int, Lines | None] = {}
    for no, frame in frames:
        out[no] = None if norm.ignored(frame) else norm.frame(frame)
    return out


def _status(recorded: Sequence[Lines], replayed: Sequence[Lines]) -> Status:
    if list(recorded) == list(replayed):
        return "same"
    if not replayed:
        return "missing"
    if not recorded:
        return "extra"
    return "changed"


def compare(replayer: Replayer, rules: Rules) -> Report:
    """Every request the replay sent, and every connection's unsolicited frames."""
    recording = replayer.recording
    items: list[Item] = []
    request_norm = Normalizer(rules)
    for conn in recording.conns:
        rec_norm = _normalised(((f.no, f.frame) for f in conn.frames if not f.c2s), rules)
        new_frames = replayer.frames.get(conn.key, [])
        new_norm = _normalised(_server(new_frames), rules)
        for f in conn.frames:
            if not f.c2s or request_norm.ignored(f.frame):
                continue
            recorded = _kept(rec_norm, recording.replies.get(f.no, ()))
            if f.no in replayer.unsent:
                items.append(Item("missing", conn.label, request_norm.frame(f.frame)[0], f.no,
                                  recorded, (), f"not sent: {replayer.unsent[f.no]}"))
                continue
            if f.no not in replayer.sent:
                continue
            replayed = _kept(new_norm, replayer.replies.get(replayer.sent[f.no], ()))
            status = _status(recorded, replayed)
            why = replayer.unanswered.get(f.no) if status == "missing" else None
            items.append(Item(status, conn.label, request_norm.frame(f.frame)[0], f.no,
                              recorded, replayed, why))
        if conn.key not in replayer.live:
            continue
        due = replayer.stopped_before
        rec_unsol = [n for no, n in rec_norm.items()
                     if n is not None and no not in recording.reply_of
                     and (due is None or no < due)]  # fmt: skip
        new_unsol = [n for no, n in new_norm.items()
                     if n is not None and no not in replayer.reply_of]  # fmt: skip
        items.extend(_unsolicited(conn, rec_unsol, new_unsol))
    return Report(tuple(items), replayer.failure, tuple(dict.fromkeys(replayer.notes)),
                  replayer.interrupted)


def _server(records: Iterable[FrameRecord]) -> Iterable[tuple[int, CommandFrame]]:
    for record in records:
        frame = record.frame
        if isinstance(frame, CommandFrame) and frame.direction.value == "s2c":
            yield record.no, frame


def _kept(norm: Mapping[int, Lines | None], nos: Iterable[int]) -> tuple[Lines, ...]:
    return tuple(n for no in nos if (n := norm.get(no)) is not None)


def _unsolicited(conn: RecConn, recorded: list[Lines], replayed: list[Lines]) -> list[Item]:
    """Unsolicited frames compared as multisets first: their order across sources (a BYE
    against a message relayed at the same moment) is timing, not behaviour. What is left on
    each side is then aligned in order, so a frame that changed shows as changed."""
    spare = Counter(replayed)
    same: list[Lines] = []
    rest_recorded: list[Lines] = []
    for frame in recorded:
        if spare[frame] > 0:
            spare[frame] -= 1
            same.append(frame)
        else:
            rest_recorded.append(frame)
    used = Counter(same)
    rest_replayed: list[Lines] = []
    for frame in replayed:
        if used[frame] > 0:
            used[frame] -= 1
        else:
            rest_replayed.append(frame)
    out: list[Item] = []
    if same:
        out.append(Item("same", conn.label, None, None, tuple(same), tuple(same)))
    matcher = difflib.SequenceMatcher(a=rest_recorded, b=rest_replayed, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        status = _STATUS[op]
        out.append(Item(status, conn.label, None, None, tuple(rest_recorded[a0:a1]),
                        tuple(rest_replayed[b0:b1])))  # fmt: skip
    return out


# -- rendering ---------------------------------------------------------------------------------

WIDTH = 48


def render(report: Report, *, header: str, show_same: bool = True) -> str:
    """The comparison as text: one line per item, both sides side by side where they differ."""
    lines = [header]
    for item in report.items:
        what = item.request if item.request is not None else (
            f"unsolicited ({len(item.recorded) or len(item.replayed)} frame"
            f"{'' if (len(item.recorded) or len(item.replayed)) == 1 else 's'})")
        if item.status == "same" and not show_same:
            continue
        where = f" (recorded #{item.recorded_no})" if item.recorded_no is not None else ""
        lines.append(f"{item.status:<8} {item.conn:<28} {what}{where}")
        if item.reason is not None:
            lines.append(f"    {item.reason}")
        elif item.status != "same":
            lines.extend(_side_by_side(item.recorded, item.replayed))
    lines.extend(f"note: {n}" for n in report.notes)
    counts = report.counts
    summary = ", ".join(f"{v} {k}" for k, v in counts.items())
    if report.failure is not None:
        lines.append(f"replay failed: {report.failure}")
    if report.interrupted:
        lines.append("replay interrupted: what was replayed until then is compared above")
    lines.append(f"result: {report.result} ({summary})")
    return "\n".join(lines) + "\n"


def _side_by_side(recorded: Sequence[Lines], replayed: Sequence[Lines]) -> list[str]:
    """Frame beside frame, aligned as a diff aligns lines (a frame only one side has faces
    nothing, so the frames after it still meet their match); within a frame, line beside
    line, aligned the same way (a header line only one side has faces nothing), `*` where
    they differ. A differing pair too long for the column is shown whole, one line under the
    other, so the difference is not cut off."""
    out = [f"    {'recorded':<{WIDTH}} | replayed"]
    for left, right in _aligned(recorded, replayed):
        for j, (a, b) in enumerate(_lines_aligned(left, right)):
            if j and a == b:
                continue  # payload lines that agree add nothing
            if a != b and a.rstrip(" \t") == b.rstrip(" \t"):  # else the difference shows
                a, b = _trailing_shown(a), _trailing_shown(b)
            if a != b and len(a) > WIDTH:
                out += [f"  * {a}", f"    {'':<{WIDTH}} | {b}".rstrip()]
                continue
            out.append(f"  {' ' if a == b else '*'} {a:<{WIDTH}} | {b}".rstrip())
    return out


NOTHING: Final = ("(nothing)",)


def _trailing_shown(line: str) -> str:
    """`line` with its trailing spaces and tabs written `\\x20`, `\\x09`: a difference there
    would otherwise be invisible."""
    body = line.rstrip(" \t")
    return body + "".join(f"\\x{ord(c):02x}" for c in line[len(body):])


def _lines_aligned(left: Lines, right: Lines) -> list[tuple[str, str]]:
    """The lines of two frames paired by a diff (the first lines always face each other), a
    line only one side has facing ""."""
    pairs = [(left[0] if left else "", right[0] if right else "")]
    matcher = difflib.SequenceMatcher(None, left[1:], right[1:], autojunk=False)
    for _op, a0, a1, b0, b1 in matcher.get_opcodes():
        for k in range(max(a1 - a0, b1 - b0)):
            pairs.append((left[1 + a0 + k] if a0 + k < a1 else "",
                          right[1 + b0 + k] if b0 + k < b1 else ""))  # fmt: skip
    return pairs


def _aligned(recorded: Sequence[Lines], replayed: Sequence[Lines]) -> list[tuple[Lines, Lines]]:
    """The two sides' frames paired by a diff of their first lines."""
    if not recorded and not replayed:
        return [(NOTHING, NOTHING)]
    matcher = difflib.SequenceMatcher(
        None, [f[0] if f else "" for f in recorded], [f[0] if f else "" for f in replayed],
        autojunk=False,
    )  # fmt: skip
    pairs: list[tuple[Lines, Lines]] = []
    for _op, a0, a1, b0, b1 in matcher.get_opcodes():
        for k in range(max(a1 - a0, b1 - b0)):
            pairs.append((recorded[a0 + k] if a0 + k < a1 else NOTHING,
                          replayed[b0 + k] if b0 + k < b1 else NOTHING))  # fmt: skip
    return pairs
