"""The HTTP/1.x dissector and its sub-dissectors: the MSNP gateway, XML-RPC, Facebook REST."""

from dissectors.http.dissector import HttpDissector
from dissectors.http.frames import AppInfo, HttpMalformed, HttpMessage, HttpRequest, HttpResponse

__all__ = [
    "AppInfo", "HttpDissector", "HttpMalformed", "HttpMessage", "HttpRequest", "HttpResponse",
]  # fmt: skip
