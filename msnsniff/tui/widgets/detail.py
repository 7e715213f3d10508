"""The selected frame in full: decoded fields as a tree, payload, pairing, findings, bytes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar, Final

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Static, Tree
from textual.widgets.tree import TreeNode

from dissectors.msnp.frames import (
    CommandFrame,
    ErrorFrame,
    GapFrame,
    MalformedFrame,
    PartialFrame,
)
from msnsniff.output import own_fields, payload_type_text, printable
from msnsniff.session.analysis import Finding, Severity
from msnsniff.session.capture_session import FrameRecord
from msnsniff.session.paired import Pairing
from msnsniff.session.workspace import Workspace
from msnsniff.tui.widgets.scroll import KeyScroll

HEX_LIMIT = 4096  # bytes shown in the hex dump (a MSG is at most a few KiB anyway)
NARROW_BELOW = 120  # a detail pane narrower than this gets the narrow hex dump
# a detail pane narrower than this has no room for the tree beside even the narrow dump (41
# columns): it shows one of them, the tree, or with `x` the dump (at 40x12 the dump took the
# whole width and the tree none)
CRAMPED_BELOW = 80
SHORT_BELOW = 10  # a detail pane lower than this (80x24 gives 7 rows) spares every line
# bytes a line and offset digits: wide (73 columns), and narrow (39), which leaves the
# fields tree half of an 80-column terminal instead of none
HEX_LAYOUTS = {False: (16, 6), True: (8, 4)}


def hexdump(data: bytes, *, narrow: bool = False) -> str:
    """Offset, hex and printable text, 16 bytes a line (8 when `narrow`)."""
    per_line, digits = HEX_LAYOUTS[narrow]
    lines = []
    for i in range(0, min(len(data), HEX_LIMIT), per_line):
        chunk = data[i : i + per_line]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{i:0{digits}x}  {hexes:<{per_line * 3 - 1}}  {text}")
    if len(data) > HEX_LIMIT:
        lines.append(f"... {len(data) - HEX_LIMIT} more bytes")
    return "\n".join(lines)


LONG_ITEM = 30  # characters: a list with an item this long gets a line per item


def _add(node: TreeNode[None], key: str, value: Any) -> None:
    """A value as a leaf, or a mapping/list as a branch; a short list of plain values on one
    line, as words (`versions: MSNP8, CVR0`), not as Python writes it. Any mapping: a
    payload's decoded fields are a read-only view, not a dict."""
    if isinstance(value, Mapping):
        branch = node.add(Text(key), expand=True)
        for k, v in value.items():
            _add(branch, str(k), v)
    elif _pairs(value):  # HTTP headers: name and value, a repeated name once per line
        branch = node.add(Text(f"{key} ({len(value)})"), expand=True)
        for name, v in value:
            branch.add_leaf(Text(f"{printable(name)}: {printable(v)}"))
    elif isinstance(value, (list, tuple)) and any(
        isinstance(v, (dict, list, tuple)) or len(str(v)) >= LONG_ITEM for v in value
    ):
        branch = node.add(Text(f"{key} ({len(value)})"), expand=True)
        for i, v in enumerate(value):
            _add(branch, str(i), v)
    else:
        node.add_leaf(Text(f"{key}: {printable(_words(value))}"))  # frame text: no markup


def _pairs(value: Any) -> bool:
    """A non-empty list of (name, value) string pairs."""
    return isinstance(value, (list, tuple)) and bool(value) and all(
        isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, str) for x in v)
        for v in value
    )


def _words(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) if value else "(none)"
    return "(none)" if value is None else str(value)


SEVERITY_STYLE: Final = MappingProxyType({
    Severity.CHAT: "", Severity.NOTE: "cyan", Severity.WARN: "yellow", Severity.ERROR: "bold red",
})  # fmt: skip


def findings_text(findings: Sequence[Finding]) -> Text:
    """The frame's expert findings in full, one paragraph each: a tree line is cut at the
    pane's edge, and a finding runs to 250 characters."""
    text = Text()
    for i, finding in enumerate(findings):
        style = SEVERITY_STYLE[finding.severity]
        text.append("\n" if i else "").append(f"{finding.severity.name.lower()}: ", style)
        text.append(finding.message)
    return text


Analysed = tuple[Pairing | None, int]
"""A frame's pairing and number of findings (`DetailView.refresh_analysis`)."""


def _collapsed(node: TreeNode[None], path: tuple[str, ...],
               of: set[tuple[str, ...]] | None = None) -> Iterator[Any]:  # fmt: skip
    """The label paths of the collapsed branches under `node`; with `of`, the nodes whose
    paths are among those instead (to collapse them again once the tree is rebuilt)."""
    for child in node.children:
        here = (*path, str(child.label))
        if child.children and not child.is_expanded:
            if of is None:
                yield here
            elif here in of:
                yield child
        yield from _collapsed(child, here, of)


class DetailView(Vertical):
    """Fields tree (left, scrolling itself) and raw bytes (right) of one frame; fixed sizes,
    so selecting another frame redraws these two widgets and lays out nothing else (but for
    the frame's findings, over the full width above them, wrapped: shown only when it has
    some, in at most a third of the pane, scrolling). Below NARROW_BELOW columns the dump is
    8 bytes a line (class `-narrow`); `x` hides it and gives the tree its width (class
    `-no-hex`). Below CRAMPED_BELOW columns (class `-cramped`) the two do not fit side by
    side: the tree takes the width, and `x` puts the dump in its place and back (class
    `-hex-only`). Below SHORT_BELOW rows (80x24) the findings have no rule under them, which
    would take a line from the tree (class `-short`)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x", "toggle_hex", "Hex dump"),
    ]

    def __init__(self, workspace: Workspace, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.workspace = workspace
        self.number: int | None = None
        self.show_hex = True  # beside the tree (when there is room for both)
        self.hex_only = False  # in a cramped pane: the dump instead of the tree
        self._shown: Analysed = (None, 0)  # the frame's pairing and findings when shown

    def compose(self) -> ComposeResult:
        with KeyScroll(id="findings"):  # (wheel, or Tab then the arrows)
            yield Static("", id="findings-text")
        with Horizontal(id="detail-body"):
            tree: Tree[None] = Tree("no frame selected", id="fields")
            tree.show_root = True
            yield tree
            with KeyScroll(id="hex-scroll"):
                yield Static("", id="hex", markup=False)  # raw bytes: "[" is no markup

    def _analysed(self, number: int | None) -> Analysed:
        """What the analysis has said about frame `number` so far: its pairing and how many
        findings (they are only ever added)."""
        index = self.workspace.index
        if number is None or not 0 < number <= index.count:
            return (None, -1)
        return (index.pairing(number), len(index.findings.get(number, ())))

    def refresh_analysis(self) -> None:
        """Show the frame again if its pairing or findings changed since it was shown (live:
        its reply came, a finding about it was made), keeping the fields tree's cursor, its
        collapsed branches and every scroll position; the focus stays where it is. Asked at
        every tick: two look-ups, and nothing drawn while nothing changed."""
        number = self.number
        if number is None or self._analysed(number) == self._shown:
            return
        tree = self.query_one("#fields", Tree)
        cursor = tree.cursor_line
        collapsed = set(_collapsed(tree.root, ()))
        scrolled = [(w, w.scroll_offset) for w in (tree, self.query_one("#hex-scroll"),
                                                   self.query_one("#findings"))]  # fmt: skip
        self.show(number)
        for path in _collapsed(tree.root, (), of=collapsed):
            path.collapse()
        tree.cursor_line = cursor

        def scroll_back() -> None:
            for widget, offset in scrolled:
                widget.scroll_to(offset.x, offset.y, animate=False, immediate=True)

        self.call_after_refresh(scroll_back)

    def show(self, number: int | None) -> None:
        self.number = number
        self._shown = self._analysed(number)  # first: what comes meanwhile shows at the next
        tree = self.query_one("#fields", Tree)
        hexview = self.query_one("#hex", Static)
        tree.clear()
        findings = [] if number is None else self.workspace.index.findings.get(number, [])
        strip = self.query_one("#findings", KeyScroll)
        if findings or strip.display:  # (no layout for the frames without any)
            self.query_one("#findings-text", Static).update(findings_text(findings))
            strip.display = bool(findings)
            strip.scroll_home(animate=False, immediate=True)
        if number is None or number > self.workspace.index.count:
            tree.root.set_label("no frame selected")
            hexview.update("")
            return
        index = self.workspace.index
        record = index.record(number)
        frame = record.frame
        tree.root.set_label(Text(f"Frame {number}  flow {record.flow.id}  "
                                 f"{frame.direction.value}  offset {frame.offset}"))  # fmt: skip
        root = tree.root
        if isinstance(frame, GapFrame):
            root.add_leaf(f"gap: {frame.length} bytes missing from the capture")
        elif isinstance(frame, MalformedFrame):
            what = "partial" if isinstance(frame, PartialFrame) else "malformed"
            root.add_leaf(Text(f"{what}: {frame.reason}"))
        elif isinstance(frame, CommandFrame):
            self._command(root, frame)
        elif record.proto == "http":
            self._http(root, record)
        else:  # a plugin's frame: its own fields, under its protocol's name
            fields = own_fields(frame)
            branch = root.add(Text(record.proto), expand=True)
            for name, value in fields:
                _add(branch, name, value)
            if not fields:
                branch.add_leaf(f"{len(frame.raw)} bytes")
        pairing = index.pairing(number)
        if pairing is not None:
            branch = root.add("pairing", expand=True)
            if pairing.request is not None:
                branch.add_leaf(f"reply to #{pairing.request}")
            if pairing.replies is not None:
                replies = ", ".join(f"#{n}" for n in pairing.replies) or "none"
                branch.add_leaf(f"replies: {replies}")
            if pairing.rtt is not None:
                branch.add_leaf(f"round trip: {pairing.rtt * 1000:.1f} ms")
        root.expand()
        hexview.update(hexdump(frame.raw, narrow=self.has_class("-narrow"))
                       if self.hex_shown else "")  # fmt: skip

    @property
    def hex_shown(self) -> bool:
        """The dump is on screen: beside the tree, or in a cramped pane instead of it."""
        return self.hex_only if self.has_class("-cramped") else self.show_hex

    def on_resize(self, event: events.Resize) -> None:
        """Switch between the wide and the narrow dump when the width crosses NARROW_BELOW,
        between the tree beside the dump and one of them when it crosses CRAMPED_BELOW, and
        the findings' rule on and off when the height crosses SHORT_BELOW."""
        self.set_class(event.size.height < SHORT_BELOW, "-short")
        narrow = event.size.width < NARROW_BELOW
        cramped = event.size.width < CRAMPED_BELOW
        if (narrow, cramped) != (self.has_class("-narrow"), self.has_class("-cramped")):
            self.set_class(narrow, "-narrow")
            self.set_class(cramped, "-cramped")
            self._keep_focus_shown()
            self.show(self.number)

    def _command(self, root: TreeNode[None], frame: CommandFrame) -> None:
        root.add_leaf(Text(f"line: {printable(frame.line.decode('utf-8', 'surrogateescape'))}"))
        root.add_leaf(f"dialect: MSNP{frame.dialect}" + (" (inferred)" if frame.dialect_inferred
                                                          else ""))  # fmt: skip
        if isinstance(frame, ErrorFrame):
            from dissectors.msnp.errors import error_info

            info = error_info(frame.code)
            root.add_leaf(Text(f"error {frame.code} {info.name}: {info.meaning}", style="red"))
        fields = frame.fields
        if fields:
            _add(root, "fields", fields)
        payload = frame.payload
        if payload is not None:
            branch = root.add(Text(f"payload: {payload.length} bytes, "
                                   f"{payload_type_text(payload)}"), expand=True)
            if payload.headers:
                _add(branch, "headers", dict(payload.headers))
            if payload.fields:
                _add(branch, "decoded", payload.fields)
            body = payload.body[:2000].decode("utf-8", "replace")
            if body.strip():
                branch.add_leaf(Text(f"body: {printable(body)}"))

    def _http(self, root: TreeNode[None], record: FrameRecord) -> None:
        """An HTTP frame: its line, the sub-dissector's fields, problems, headers and body."""
        from msnsniff.httpview import fill_json, summary

        out: dict[str, Any] = {}
        fill_json(record.frame, out, redact=False)
        root.add_leaf(Text(f"http: {printable(summary(record.frame, redact=False))}"))
        for key in ("fields", "problems", "credentials", "http", "payload", "malformed"):
            if out.get(key):
                _add(root, key, out[key])

    def action_toggle_hex(self) -> None:
        """Hide or show the dump beside the tree; in a cramped pane, show the dump instead
        of the tree, or the tree again."""
        if self.has_class("-cramped"):
            self.hex_only = not self.hex_only
            self.set_class(self.hex_only, "-hex-only")
        else:
            self.show_hex = not self.show_hex
            self.set_class(not self.show_hex, "-no-hex")
        self._keep_focus_shown()
        self.show(self.number)

    def _keep_focus_shown(self) -> None:
        """The tree or the dump had the keys and is hidden now: the one shown takes them
        (a hidden tree would go on moving its cursor unseen)."""
        tree, dump = self.query_one("#fields", Tree), self.query_one("#hex-scroll")
        cramped = self.has_class("-cramped")
        hidden = {tree: cramped and self.hex_only, dump: not self.hex_shown}
        focused = self.screen.focused
        if focused is not None and hidden.get(focused):
            other = dump if focused is tree else tree
            if not hidden[other]:
                other.focus()
