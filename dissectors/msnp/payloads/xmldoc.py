"""XML payloads (NOT, UBX/UUX, ADL/RML/FQY, GCF, IPG, error XML) and MSN objects.

Untrusted XML is parsed with defusedxml with DTDs forbidden (so no entity expansion and no
external entities), refused above `MAX_XML_BYTES`, and turned into JSON-ready dicts with a
bounded depth and element count. A root-tag table picks a specific decoder; any other document
becomes a generic element tree. Every failure is a problem, never an exception.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from dissectors.msnp.payloads.findings import Findings

MAX_XML_BYTES: Final = 1 << 20
"""Larger XML documents are not parsed (1 MiB; real ones are a few KB)."""

MAX_DEPTH: Final = 24
MAX_ELEMENTS: Final = 2000
MAX_CONTACTS: Final = 5000

LIST_BITS: Final = ((1, "FL"), (2, "AL"), (4, "BL"), (8, "RL"), (16, "PL"))
"""Membership list bits of `<c l=...>` in ADL/RML (MSNP13+); PL is the pending list."""

NETWORKS: Final = MappingProxyType(
    {1: "messenger", 2: "email", 4: "telephone", 8: "mobile network", 32: "yahoo"}
)
"""`<c t=...>` contact network types in ADL/RML/FQY."""

MSNOBJ_TYPES: Final = MappingProxyType(
    {
        2: "custom emoticon",
        3: "display picture",
        5: "background",
        7: "dynamic display picture",
        8: "wink",
        11: "voice clip",
        12: "add-in state",
        14: "location",
    }
)
"""The `Type` attribute of an MSN object descriptor."""


def looks_like_xml(data: bytes) -> bool:
    """True when the payload starts (after a BOM and whitespace) with `<`."""
    return data.lstrip(b"\xef\xbb\xbf").lstrip(b" \t\r\n").startswith(b"<")


def parse(data: bytes | str, findings: Findings, where: str) -> Element | None:
    """The root element of a document, or None with a problem (size, DTD, syntax)."""
    size = len(data.encode("utf-8", "replace")) if isinstance(data, str) else len(data)
    if size > MAX_XML_BYTES:
        findings.problem(f"{where}: XML of {size} bytes not parsed (limit {MAX_XML_BYTES})")
        return None
    try:
        root: Element = SafeET.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        findings.problem(f"{where}: XML refused ({type(exc).__name__}: DTDs are not allowed)")
        return None
    except SyntaxError as exc:  # ParseError
        findings.problem(f"{where}: XML not well-formed ({exc})")
        return None
    except (ValueError, LookupError, UnicodeError, TypeError) as exc:
        findings.problem(f"{where}: XML not readable ({type(exc).__name__}: {exc})")
        return None
    return root


def local(tag: object) -> str:
    """A tag without its `{namespace}` prefix (comments and PIs give their kind)."""
    if not isinstance(tag, str):
        return "#special"
    return tag.rpartition("}")[2]


def _attrs(el: Element) -> dict[str, str]:
    return {local(k): v for k, v in el.attrib.items()}


def tree(root: Element, findings: Findings, where: str) -> dict[str, Any]:
    """A compact nested-dict form: tag, attrs, text, children (empty parts left out)."""
    budget = [MAX_ELEMENTS]
    truncated: list[str] = []

    def walk(el: Element, depth: int) -> dict[str, Any]:
        budget[0] -= 1
        node: dict[str, Any] = {"tag": local(el.tag)}
        attrs = _attrs(el)
        if attrs:
            node["attrs"] = attrs
        text = (el.text or "").strip()
        if text:
            node["text"] = text
        kids = list(el)
        if kids and depth >= MAX_DEPTH:
            truncated.append(f"deeper than {MAX_DEPTH} levels")
        elif kids:
            children = []
            for kid in kids:
                if budget[0] <= 0:
                    truncated.append(f"more than {MAX_ELEMENTS} elements")
                    break
                children.append(walk(kid, depth + 1))
            node["children"] = children
        return node

    out = walk(root, 1)
    if truncated:
        findings.problem(f"{where}: XML tree cut short ({truncated[0]})")
    return out


def child(el: Element | None, name: str) -> Element | None:
    """The first direct child with that local name, or None."""
    if el is None:
        return None
    for kid in el:
        if local(kid.tag) == name:
            return kid
    return None


def child_text(el: Element | None, name: str) -> str | None:
    """The text of the first direct child with that local name ("" when empty), or None."""
    kid = child(el, name)
    return None if kid is None else kid.text or ""


def _set(out: dict[str, Any], key: str, value: str | None) -> None:
    if value is not None:
        out[key] = value


def decode_notification(root: Element, findings: Findings, where: str) -> None:
    """NOT / IPG `<NOTIFICATION>`: ids, site, recipient, message and its action URLs."""
    out = findings.fields
    _set(out, "notification_id", root.get("id"))
    _set(out, "version", root.get("ver"))
    _set(out, "site_id", root.get("siteid"))
    _set(out, "site_url", root.get("siteurl"))
    to = child(root, "TO")
    if to is not None:
        _set(out, "to_name", to.get("name"))
        _set(out, "to_pid", to.get("pid"))
        _set(out, "to_email", to.get("email"))
        via = child(to, "VIA")
        if via is not None:
            _set(out, "via_agent", via.get("agent"))
    sender = child(root, "FROM")
    if sender is not None:
        _set(out, "from_name", sender.get("name"))
    msg = child(root, "MSG")
    if msg is None:
        findings.problem(f"{where}: NOTIFICATION has no MSG element")
        return
    _set(out, "message_id", msg.get("id"))
    _set(out, "priority", msg.get("pri"))
    action = child(msg, "ACTION")
    if action is not None:
        _set(out, "action_url", action.get("url"))
    subscr = child(msg, "SUBSCR")
    if subscr is not None:
        _set(out, "subscription_url", subscr.get("url"))
    cat = child(msg, "CAT")
    if cat is not None:
        _set(out, "category_id", cat.get("Id") or cat.get("id"))
    body = child(msg, "BODY")
    if body is None:
        return
    _set(out, "body_lang", body.get("lang") or body.get("lcid"))
    text = child_text(body, "TEXT")
    if text is not None:
        out["text"] = text
    inner = (body.text or "").strip()
    if inner:
        out["body"] = inner
        if inner.startswith("<"):
            nested = parse(inner, findings, f"{where} BODY")
            if nested is not None:
                out["body_xml"] = tree(nested, findings, f"{where} BODY")


def current_media(raw: str) -> dict[str, Any] | None:
    """UBX/UUX `CurrentMedia`: `App\\0Type\\0Enabled\\0Format\\0arg0\\0arg1...` (literal \\0)."""
    parts = raw.split("\\0")
    if len(parts) < 4:
        return None
    app, kind, enabled, fmt, *args = parts
    if args and args[-1] == "":
        args = args[:-1]
    shown = fmt
    for i, arg in enumerate(args):
        shown = shown.replace("{" + str(i) + "}", arg)
    return {
        "application": app,
        "type": kind,
        "enabled": enabled == "1",
        "format": fmt,
        "args": args,
        "shown": shown,
    }


_DATA_CHILDREN: Final = MappingProxyType(
    {
        "PSM": "psm",
        "CurrentMedia": "current_media",
        "MachineGuid": "machine_guid",
        "SignatureSound": "signature_sound",
        "DDP": "ddp",
        "Scene": "scene",
        "ColorScheme": "color_scheme",
    }
)


def decode_data(root: Element, findings: Findings, where: str) -> None:
    """UBX/UUX `<Data>`: personal message, current media (split up) and machine GUID."""
    out = findings.fields
    extra: dict[str, Any] = {}
    for kid in root:
        name = local(kid.tag)
        key = _DATA_CHILDREN.get(name)
        if key is None:
            extra[name] = tree(kid, findings, where)
            continue
        out.setdefault(key, kid.text or "")
    media = out.get("current_media")
    if isinstance(media, str) and media:
        parsed = current_media(media)
        if parsed is None:
            findings.problem(f"{where}: CurrentMedia is not App\\0Type\\0Enabled\\0Format...")
        else:
            out["current_media_parsed"] = parsed
    if extra:
        out["other"] = extra


def _list_names(bits: int) -> list[str]:
    return [name for bit, name in LIST_BITS if bits & bit]


def _int_attr(value: str | None) -> int | None:
    if value is not None and value.isascii() and value.isdigit() and len(value) <= 9:
        return int(value)
    return None


def decode_ml(root: Element, findings: Findings, where: str) -> None:
    """ADL/RML/FQY `<ml>`: each `<d n=domain><c n=user l=lists t=type/>` as one contact."""
    out = findings.fields
    initial = root.get("l")
    if initial is not None:
        out["initial"] = initial == "1"
    contacts: list[dict[str, Any]] = []
    for group in root:
        tag = local(group.tag)
        domain = group.get("n", "")
        if tag not in ("d", "t"):
            findings.problem(f"{where}: unexpected <{tag}> in <ml>")
            continue
        for c in group:
            if len(contacts) >= MAX_CONTACTS:
                findings.problem(f"{where}: more than {MAX_CONTACTS} contacts; rest not listed")
                out["contacts"] = contacts
                return
            name = c.get("n", "")
            entry: dict[str, Any] = {
                "account": f"{name}@{domain}" if tag == "d" else name,
            }
            lists = _int_attr(c.get("l"))
            if lists is not None:
                entry["lists"] = _list_names(lists)
                entry["list_bits"] = lists
            elif c.get("l") is not None:
                findings.problem(f"{where}: list bits {c.get('l')!r} are not a number")
            network = _int_attr(c.get("t"))
            if network is not None:
                entry["network"] = network
                entry["network_name"] = NETWORKS.get(network, f"network {network}")
            for key in ("s", "f"):
                if c.get(key) is not None:
                    entry[key] = c.get(key)
            contacts.append(entry)
    out["contacts"] = contacts


RootDecoder = Callable[[Element, Findings, str], None]

ROOT_DECODERS: Final[Mapping[str, RootDecoder]] = MappingProxyType(
    {
        "notification": decode_notification,
        "data": decode_data,
        "ml": decode_ml,
    }
)
"""Specific decoders by lower-case root tag; other roots get the generic tree."""


def decode_document(data: bytes, findings: Findings, where: str) -> None:
    """Parse an XML payload and fill `root` plus the root decoder's fields (or `xml`)."""
    root = parse(data, findings, where)
    if root is None:
        return
    name = local(root.tag)
    findings.fields["root"] = name
    decoder = ROOT_DECODERS.get(name.lower())
    if decoder is None:
        findings.fields["xml"] = tree(root, findings, where)
    else:
        decoder(root, findings, where)


def msnobj(raw: str, findings: Findings, where: str) -> dict[str, Any] | None:
    """An `<msnobj .../>` descriptor's attributes, with Size/Type as ints and Friendly decoded."""
    root = parse(raw.strip().rstrip("\x00"), findings, where)
    if root is None:
        return None
    if local(root.tag).lower() != "msnobj":
        findings.problem(f"{where}: expected <msnobj>, got <{local(root.tag)}>")
        return None
    out: dict[str, Any] = _attrs(root)
    for key in ("Size", "Type"):
        value = _int_attr(out.get(key))
        if value is not None:
            out[key] = value
    kind = out.get("Type")
    if isinstance(kind, int):
        out["Type_name"] = MSNOBJ_TYPES.get(kind, f"type {kind}")
    friendly = out.get("Friendly")
    if isinstance(friendly, str) and friendly:
        try:
            name = base64.b64decode(friendly, validate=True).decode("utf-16-le", "replace")
        except (binascii.Error, ValueError):
            findings.problem(f"{where}: Friendly is not base64")
        else:
            out["Friendly_text"] = name.rstrip("\x00")
    return out
