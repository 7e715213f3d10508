"""The sessions view: every login as a tree (DS -> NS -> switchboards and who was in them).

What the `sessions` command prints, as a tree one can walk: selecting a node asks the app to
filter the stream to that node's connections (`FilterRequested`), so "what did this
switchboard carry" is one key away. All facts come from `SessionLinks`; nothing is parsed
here. `refresh_from` is cheap when nothing changed (the tree is rebuilt only when the set of
connections does; otherwise the labels are updated in place, keeping the cursor and what is
expanded). A tree of more than `LAZY_FROM` nodes starts with every login closed and adds a
login's nodes when it is first opened: a big capture's tens of thousands of switchboards
and participants would otherwise hold a tree node and a styled label each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar, Final

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widget import Widget
from textual.widgets import Static, Tree
from textual.widgets.tree import TreeNode

from msnsniff.capture import Flow
from msnsniff.session.analysis import clock
from msnsniff.session.links import Login, SessionLinks, SwitchboardRef
from msnsniff.session.tunnels import carrier_of
from msnsniff.tui.messages import FilterRequested, request

NodeKey = tuple[str, ...]
"""A node's identity across refreshes: ("login", ns flow), ("sb", flow), ("who", flow, ...)."""
Top = Login | tuple[SwitchboardRef, ...]
"""What a top-level node stands for: a login, or the switchboards nothing links to."""
LAZY_FROM: Final = 400
"""Tree nodes past which logins start closed and are filled in when opened."""


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What a tree node stands for: its identity and the connections it covers (and for a
    top-level node, what its subtree is made from)."""

    key: NodeKey
    flows: tuple[str, ...]
    top: Top | None = None


Entry = tuple[NodeKey, "NodeKey | None", Text, tuple[str, ...]]
"""(key, parent key, label, flows) of one node."""


def _quote(text: str) -> str:
    """A display-filter string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def flow_filter(flow_ids: Iterable[str],
                carried_by: Callable[[str], Iterable[str]] = lambda _flow_id: ()) -> str:
    """The display filter selecting the frames of these connections (`flow == "1"`, or
    `flow in {"1", "29"}` for several). A connection through the HTTP gateway (`12/gw1`)
    brings the HTTP connection that opened it (`12`) and every other one `carried_by` says
    carried it (the session goes on under renewed SessionIDs, on new connections too): their
    POSTs and answers carried the MSNP, and the logical flow alone hid them (the gateway's
    errors and closes too)."""
    ids = list(dict.fromkeys(
        each for flow_id in flow_ids
        for each in (flow_id, carrier_of(flow_id), *carried_by(flow_id)) if each
    ))  # fmt: skip
    if len(ids) == 1:
        return f"flow == {_quote(ids[0])}"
    return "flow in {" + ", ".join(_quote(i) for i in ids) + "}"


def _endpoints(flow: Flow) -> str:
    if flow.client is None and flow.server is None:
        return flow.label or ""
    return f"{flow.client or '?'} → {flow.server or '?'}"


def _conn_label(kind: str, flow: Flow, style: str) -> Text:
    text = Text.assemble((f"{kind} ", f"bold {style}"), (f"flow {flow.id}", "bold"))
    where = _endpoints(flow)
    if where:
        text.append(f"  {where}", "dim")
    return text


def _login_label(login: Login) -> Text:
    text = Text(login.account or "(unknown account)", "bold")
    if login.nick and login.nick != login.account:
        text.append(f"  {login.nick!r}", "italic")
    if login.authenticated:
        text.append("  logged in", "green")
    elif login.joined_late:
        text.append("  logged in before the capture began", "green")
    elif login.error is not None:
        text.append(f"  login failed ({login.error})", "red")
    else:
        text.append("  not logged in", "yellow")
    text.append(f"  {clock(login.started)}", "dim")
    if login.ended is not None and login.started is not None:
        text.append(f" – {clock(login.ended)}", "dim")
    if not login.complete:
        text.append("  (open)", "cyan")
    sbs = len(login.switchboards)
    text.append(f"  {sbs} switchboard{'s' if sbs != 1 else ''}", "dim")
    return text


def _sb_label(sb: SwitchboardRef) -> Text:
    text = Text.assemble(("SB ", "bold magenta"), (f"flow {sb.flow.id}", "bold"))
    if sb.how == "XFR":
        text.append("  opened by XFR")
    elif sb.how == "RNG":
        text.append(f"  invited by {sb.caller or '?'} (RNG)")
    else:
        text.append("  unlinked", "yellow")
    if sb.session_id:
        text.append(f"  session {sb.session_id}", "dim")
    text.append(f"  {clock(sb.ts)}", "dim")
    if sb.refused:
        text.append(f"  refused ({sb.refused})", "red")
    where = _endpoints(sb.flow)
    if where:
        text.append(f"  {where}", "dim")
    return text


def _who_label(account: str, sb: SwitchboardRef) -> Text:
    text = Text(account)
    if account == sb.account:
        text.append("  (the user)", "dim")
    elif account == sb.caller:
        text.append("  (invited the user)", "dim")
    return text


def _entries(top: Top) -> Iterable[Entry]:
    """Every node of a top-level node's subtree, the top first, parents before children."""
    if isinstance(top, Login):
        ns = top.ns_flow
        key = ("login", ns.id)
        flows = (*(f.id for f in top.ds_flows), ns.id, *(sb.flow.id for sb in top.switchboards))
        yield key, None, _login_label(top), flows
        for ds in top.ds_flows:
            yield ("ds", ds.id), key, _conn_label("DS", ds, "blue"), (ds.id,)
        ns_key = ("ns", ns.id)
        yield ns_key, key, _conn_label("NS", ns, "green"), (ns.id,)
        for sb in top.switchboards:
            yield from _sb_entries(sb, ns_key)
        return
    group = ("unlinked",)
    n = len(top)
    label = Text.assemble(
        ("unlinked switchboards", "bold yellow"), (f"  {n} connection{'s' * (n != 1)}", "dim"),
    )  # fmt: skip
    yield group, None, label, tuple(sb.flow.id for sb in top)
    for sb in top:
        yield from _sb_entries(sb, group)


def _sb_entries(sb: SwitchboardRef, parent: NodeKey) -> Iterable[Entry]:
    key = ("sb", sb.flow.id)
    yield key, parent, _sb_label(sb), (sb.flow.id,)
    for who in sb.participants:
        yield ("who", sb.flow.id, who), key, _who_label(who, sb), (sb.flow.id,)
    if sb.reason:
        yield ("why", sb.flow.id), key, Text(sb.reason, "italic dim"), (sb.flow.id,)


def _keys(top: Top) -> Iterable[NodeKey]:
    """The keys `_entries` gives, without making a label."""
    sbs: Iterable[SwitchboardRef]
    if isinstance(top, Login):
        yield ("login", top.ns_flow.id)
        yield from (("ds", ds.id) for ds in top.ds_flows)
        yield ("ns", top.ns_flow.id)
        sbs = top.switchboards
    else:
        yield ("unlinked",)
        sbs = top
    for sb in sbs:
        yield ("sb", sb.flow.id)
        yield from (("who", sb.flow.id, who) for who in sb.participants)
        if sb.reason:
            yield ("why", sb.flow.id)


class SessionTree(Tree[NodeInfo]):
    """The sessions tree; the footer names its Enter for what it does here (the view's own
    Enter binding is never reached: the focused tree's comes first, and it said nothing)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "filter_node", "Filter to node"),
    ]

    def action_filter_node(self) -> None:
        """Enter asks for the node under the cursor now, not through `NodeSelected` (handled
        a turn later, when the keys typed behind Enter are here already: `request`)."""
        view = self.parent
        if isinstance(view, SessionsView):
            view.action_filter_node()


class SessionsView(Widget):
    """Logins and their connections as a tree; selecting a node filters the stream to it."""

    DEFAULT_CSS = """
    SessionsView {
        height: 1fr;
    }
    SessionsView > Tree {
        height: 1fr;
    }
    SessionsView > .empty {
        color: $text-muted;
        padding: 1 2;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "filter_node", "Filter to node", show=True),
        Binding("f", "filter_login", "Filter to login"),
        Binding("e", "expand_all", "Expand all"),
        Binding("c", "collapse_all", "Collapse all"),
    ]

    def __init__(
        self,
        links: SessionLinks,
        *,
        carried_by: Callable[[str], Iterable[str]] = lambda _flow_id: (),
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._links = links
        self._carried_by = carried_by  # a gateway session's HTTP connections
        self._shape: tuple[NodeKey, ...] | None = None  # the keys the tree was built with
        self._seen: tuple[tuple[Login, ...], tuple[SwitchboardRef, ...]] = ((), ())
        self._tree_nodes: dict[NodeKey, TreeNode[NodeInfo]] = {}  # the nodes added so far
        self._filled: set[NodeKey] = set()  # top-level nodes whose subtree was added

    def compose(self) -> ComposeResult:
        tree = SessionTree("sessions", id="sessions-tree")
        tree.show_root = False
        tree.auto_expand = False
        tree.guide_depth = 3
        yield tree
        yield Static("no logins in this capture", classes="empty", id="sessions-empty")

    def on_mount(self) -> None:
        self.refresh_from()

    @property
    def session_tree(self) -> Tree[NodeInfo]:
        """The tree widget (for the app to focus)."""
        return self.query_one("#sessions-tree", Tree)

    # -- updating ---------------------------------------------------------------------------
    def refresh_from(self, links: SessionLinks | None = None) -> None:
        """Re-read the analyzer (another one when given): call when more frames arrived."""
        if links is not None:
            self._links = links
            self._shape = None
        logins, unlinked = self._links.logins(), self._links.unlinked()
        seen = (tuple(logins), tuple(unlinked))
        if self._shape is not None and seen == self._seen:
            return  # nothing changed since the last call: the common case while live
        self._seen = seen
        tops: list[Top] = [*logins, *([seen[1]] if unlinked else [])]
        shape = tuple(key for top in tops for key in _keys(top))
        tree = self.session_tree
        if shape != self._shape:
            self._rebuild(tree, tops, lazy=len(shape) > LAZY_FROM)
            self._shape = shape
        else:
            for top in tops:
                entries = iter(_entries(top))
                key, _, label, flows = next(entries)
                node = self._tree_nodes[key]
                node.data = NodeInfo(key, flows, top)  # what a later first opening fills from
                if node.label != label:
                    node.set_label(label)
                if key not in self._filled:
                    continue  # only its own node exists
                for key, _, label, _ in entries:
                    node = self._tree_nodes[key]
                    if node.label != label:
                        node.set_label(label)
        empty = not logins and not unlinked
        tree.display = not empty
        self.query_one("#sessions-empty", Static).display = empty

    def _rebuild(self, tree: Tree[NodeInfo], tops: list[Top], *, lazy: bool) -> None:
        """Build the tree anew, keeping what was expanded and where the cursor was."""
        before = self._tree_nodes
        expanded = {key for key, node in before.items() if node.is_expanded}
        cursor = tree.cursor_node
        cursor_key = cursor.data.key if cursor is not None and cursor.data is not None else None
        tree.clear()
        self._tree_nodes, self._filled = {}, set()
        for top in tops:
            entries = iter(_entries(top))
            key, _, label, flows = next(entries)
            # new nodes open (closed in a big tree), known ones as they were
            open_ = key in expanded or (key not in before and not lazy)
            node = tree.root.add(label, NodeInfo(key, flows, top), expand=open_)
            self._tree_nodes[key] = node
            if open_:
                self._fill(node, entries, expanded, before)
        target = self._tree_nodes.get(cursor_key) if cursor_key is not None else None
        if target is None and tree.root.children:
            target = tree.root.children[0]
        if target is not None:
            self.call_after_refresh(tree.move_cursor, target)

    def _fill(
        self,
        top: TreeNode[NodeInfo],
        entries: Iterable[Entry],
        expanded: set[NodeKey],
        before: dict[NodeKey, TreeNode[NodeInfo]],
    ) -> None:
        """Add a top-level node's subtree (`entries`, parents first, without the top)."""
        assert top.data is not None
        self._filled.add(top.data.key)
        rest = list(entries)
        parents = {parent for _, parent, _, _ in rest}
        for key, parent, label, flows in rest:
            under = self._tree_nodes[parent] if parent is not None else top
            info = NodeInfo(key, flows)
            if key in parents:
                # open when new, or a leaf until now (a live NS before its first switchboard);
                # otherwise as the user left it
                was = before.get(key)
                node = under.add(label, info, expand=key in expanded or was is None
                                 or not was.allow_expand)  # fmt: skip
            else:
                node = under.add_leaf(label, info)
            self._tree_nodes[key] = node

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[NodeInfo]) -> None:
        """A login opened for the first time: add its connections and participants."""
        info = event.node.data
        if info is None or info.top is None or info.key in self._filled:
            return
        entries = iter(_entries(info.top))
        next(entries)  # the login's own node is there
        self._fill(event.node, entries, set(), {})

    # -- actions ----------------------------------------------------------------------------
    def on_tree_node_selected(self, event: Tree.NodeSelected[NodeInfo]) -> None:
        event.stop()
        self._request(event.node)

    def _request(self, node: TreeNode[NodeInfo] | None) -> None:
        if node is not None and node.data is not None:
            request(self, FilterRequested(flow_filter(node.data.flows, self._carried_by)))

    def action_filter_node(self) -> None:
        """Filter the stream to the connections of the node under the cursor."""
        self._request(self.session_tree.cursor_node)

    def action_filter_login(self) -> None:
        """Filter the stream to every connection of the login the cursor is in."""
        node = self.session_tree.cursor_node
        while node is not None and node.parent is not None and node.parent.parent is not None:
            node = node.parent
        self._request(node)

    def action_expand_all(self) -> None:
        """Open every node."""
        self.session_tree.root.expand_all()

    def action_collapse_all(self) -> None:
        """Close every node (the logins stay listed)."""
        for node in self.session_tree.root.children:
            node.collapse_all()
