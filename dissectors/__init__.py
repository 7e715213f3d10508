"""Protocol dissectors for msnsniff: pure, sans-IO state machines fed bytes.

This package never imports `msnsniff`; third-party dissectors plug in through the
`msnsniff.dissectors` entry-point group exactly like the in-tree ones.
"""
