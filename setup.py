"""Optional native build: the per-frame hot path compiled with mypyc.

`pip install .` builds pure Python, as before (and the README's commands do). With
MSNSNIFF_COMPILE=1, and a C compiler and the Python headers, the modules below are compiled
with mypyc into C extensions beside their sources; Python prefers the extension when both are
there. They compile as they are, with no source change. Metadata and dependencies are in
pyproject.toml.

    MSNSNIFF_COMPILE=1 pip install .                          # compiled, or an error
    MSNSNIFF_COMPILE=auto pip install .                       # compiled if it can
    MSNSNIFF_COMPILE=1 python setup.py build_ext --inplace    # in the source tree
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# the per-frame path of `msnsniff read`: framing (85% of `-T none` in the profile; compiling
# the session and dissector that drive the framer took 6-11% more off `read -j 1 -T none`'s
# CPU on the 1M capture), then the payload decoders, the pairing and the JSON rendering of
# `-T jsonl`, and the parallel reader's merge; and the analyzers every analysis command runs
# (with them and percent.py, `expert` on the 100k capture runs 8.92 G instructions instead
# of 10.29). Not the modules of the frozen frame and payload dataclasses: their fast
# constructors write slots past the frozen `__setattr__`, which a compiled (native) class
# does not have: for that, Pairing lives in paired.py, apart from the pairing view, the
# chat events in chat_events.py (whose `ClassVar` kinds a compiled class would also turn
# into fields), the command frame's TrID and argument getters in parts.py, and the payload
# decoders' Findings in findings.py.
HOT = [
    "dissectors/msnp/decode.py",
    "dissectors/msnp/framer.py",
    "dissectors/msnp/grammar.py",
    "dissectors/msnp/payloads/decode.py",
    "dissectors/msnp/payloads/findings.py",
    "dissectors/msnp/payloads/mime.py",
    "dissectors/msnp/payloads/p2p.py",
    "dissectors/msnp/payloads/text.py",
    "dissectors/msnp/parts.py",
    "dissectors/msnp/percent.py",
    "msnsniff/capture/pcap.py",
    "msnsniff/capture/reassembly.py",
    "msnsniff/session/transactions.py",
    "msnsniff/session/capture_session.py",
    "dissectors/msnp/dissector.py",
    "msnsniff/session/analysis.py",
    "msnsniff/session/contacts.py",
    "msnsniff/session/expert.py",
    "msnsniff/session/links.py",
    "msnsniff/session/presence.py",
    "msnsniff/session/conversations.py",
    "msnsniff/session/httppairing.py",
    "msnsniff/session/webapi.py",
    "msnsniff/output.py",
    "msnsniff/session/pairing.py",
    "msnsniff/parallel.py",
    "msnsniff/pipeline.py",
]

MODE = os.environ.get("MSNSNIFF_COMPILE", "").strip().lower()
COMPILE = MODE not in ("", "0", "no", "false")


def _ext_modules() -> list[Extension]:
    if not COMPILE:
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:  # the frontend is still installing the build requirements
        return [Extension("msnsniff_native__mypyc", sources=[])]
    try:
        # a top-level shared runtime: inside a package mypyc gets __path__ wrong
        return list(mypycify(HOT, opt_level="3", group_name="msnsniff_native"))
    except Exception as exc:
        if MODE != "auto":
            raise
        print(f"msnsniff: not compiled ({exc}); installing pure Python", file=sys.stderr)
        return []


class _BuildExt(build_ext):
    """With MSNSNIFF_COMPILE=auto, a failed compilation leaves pure Python (all or nothing:
    a module's extension without the shared runtime would not import)."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:
            if MODE != "auto":
                raise
            for ext in self.extensions:
                path = self.get_ext_fullpath(ext.name)
                if os.path.exists(path):
                    os.remove(path)
            print(f"msnsniff: not compiled ({exc}); installing pure Python", file=sys.stderr)


setup(
    ext_modules=_ext_modules(),
    cmdclass={"build_ext": _BuildExt},
    # asked of the build frontend only when compiling; orjson and lark for their types
    setup_requires=["mypy>=1.11", "orjson>=3.9", "lark>=1.1"] if COMPILE else [],
)
