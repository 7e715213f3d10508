"""msnsniff: the Wireshark-plus-mitmproxy of the MSN Messenger protocol."""

__version__ = "0.1.0"
