"""Bounded, safe XML for the sub-dissectors: defusedxml first, a tolerant reader second.

The strict parse goes through defusedxml with DTDs forbidden, so no entity (internal or
external) is ever expanded; documents over `MAX_XML` bytes are not parsed and trees deeper
than `MAX_DEPTH` are refused. Documents that are not well-formed (the seed 001 example
request closes `</array><data>` the wrong way round) are reported with expat's line and
column and then read by a tolerant tokenizer (the stdlib HTML tokenizer, which expands only
the fixed character references): an end tag closes the nearest open element of that name and
is ignored otherwise, so the fields still decode. Tag names compare lower-case, without
namespace.
"""

from __future__ import annotations

import codecs
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Final

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

MAX_XML: Final = 1 << 20  # bytes of a document
MAX_DEPTH: Final = 64  # nested elements
MAX_NODES: Final = 100_000  # elements in a document
XML_TYPES: Final = frozenset({"text/xml", "application/xml"})
DECLARED: Final = re.compile(rb"""\s*<\?xml[^>]*\sencoding\s*=""")
DECLARATION: Final = re.compile(r"""\A(\s*<\?xml[^>]*\sencoding\s*=\s*)(["'])[^"']*\2""")
BOMS: Final = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


@dataclass(slots=True)
class Node:
    """An element: lower-case local name, its text (stripped of nothing), its children."""

    tag: str
    text: str = ""
    children: list[Node] = field(default_factory=list)

    def find(self, tag: str) -> Node | None:
        """The first child element called `tag` (lower-case local name), or None."""
        return next((c for c in self.children if c.tag == tag), None)

    def elements(self) -> list[Node]:
        """The child elements in document order (the `children` list itself, not a copy)."""
        return self.children


class XmlRefused(Exception):
    """A document over the bounds, or one with a DTD/entity: never parsed further."""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].lower()


def _from_etree(root: ET.Element) -> Node:
    top = Node(_local(root.tag), root.text or "")
    stack: list[tuple[ET.Element, Node, int]] = [(root, top, 1)]
    count = 1
    while stack:
        element, node, depth = stack.pop()
        for child in element:
            count += 1
            if depth + 1 > MAX_DEPTH or count > MAX_NODES:
                raise XmlRefused(f"deeper than {MAX_DEPTH} or over {MAX_NODES} elements")
            kid = Node(_local(child.tag), child.text or "")
            node.children.append(kid)
            stack.append((child, kid, depth + 1))
    return top


class _Tolerant(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document")
        self.stack = [self.root]
        self.count = 0
        self.refused = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.count += 1
        if len(self.stack) > MAX_DEPTH or self.count > MAX_NODES:
            self.refused = f"deeper than {MAX_DEPTH} or over {MAX_NODES} elements"
            return
        node = Node(_local(tag))
        self.stack[-1].children.append(node)
        self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if self.stack[-1].tag == _local(tag) and len(self.stack) > 1:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        name = _local(tag)
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == name:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].text += data

    def unknown_decl(self, data: str) -> None:
        self.refused = "a declaration (DTD) in the document"


def charset_of(content_type: str | None) -> str | None:
    """The charset parameter of an XML content type (`text/xml; charset=iso-8859-1`)."""
    if not content_type:
        return None
    kind, _, params = content_type.partition(";")
    kind = kind.strip().lower()
    if kind not in XML_TYPES and not kind.endswith("+xml"):
        return None
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"') or None
    return None


def in_utf8(body: bytes, charset: str | None) -> bytes:
    """`body` in UTF-8 when the HTTP charset says how it is written. The charset outranks
    the document's own encoding declaration (RFC 7303, as RFC 3023 before it: "the charset
    parameter is authoritative"), which is rewritten to say UTF-8 so the parser agrees; only
    a byte order mark outranks the charset. An unknown charset leaves the bytes as they
    are, and so does no charset: the document's declaration (or UTF-8) then decides."""
    if not charset or body.startswith(BOMS):
        return body
    try:
        codec = codecs.lookup(charset).name
    except LookupError:
        return body
    declared = DECLARED.match(body[:256]) is not None
    if codec in ("utf-8", "ascii") and not declared:
        return body
    text = body.decode(codec, "replace")
    if declared:
        text = DECLARATION.sub(r"\1\2utf-8\2", text, count=1)
    return text.encode("utf-8")


def parse(body: bytes) -> tuple[Node | None, str | None]:
    """(root, problem): the root element, and why the document is not well-formed (if so).

    The root is None when nothing could be read (empty, refused or no element at all).
    """
    if len(body) > MAX_XML:
        return None, f"XML document over {MAX_XML} bytes is not parsed"
    try:
        root = DET.fromstring(body, forbid_dtd=True, forbid_entities=True,
                              forbid_external=True)  # fmt: skip
        return _from_etree(root), None
    except (DefusedXmlException, XmlRefused) as exc:
        return None, f"XML refused: {exc.__class__.__name__} {exc}".strip()
    except ET.ParseError as exc:
        problem = f"XML not well-formed: {exc}"
    except LookupError as exc:  # the declaration names an encoding no codec knows
        problem = f"XML not well-formed: {exc}"
    except (ValueError, RecursionError) as exc:
        return None, f"XML not readable: {exc}"
    reader = _Tolerant()
    try:
        reader.feed(body.decode("utf-8", "replace"))
        reader.close()
    except (ValueError, AssertionError) as exc:  # the tokenizer gives up on some garbage
        return None, f"{problem}; not readable either: {exc}"
    if reader.refused:
        return None, f"{problem}; {reader.refused}"
    element = next((c for c in reader.root.children), None)
    return element, problem
