"""The first bytes of an upload: the encrypted format is UTF-8 (docs/formater.md, the envelope).

An XML parser happily reads the same document re-encoded as UTF-16 (a BOM or a declaration
says so), and then so would the TPF's. The format says UTF-8, so the upload refuses anything
else on its first bytes, before the parser sees them (issue 7, point 12): a UTF-16 or UTF-32
byte order mark, a NUL among the first bytes (UTF-16 without a BOM), or an XML declaration
naming another encoding. A UTF-8 BOM is allowed; no declaration means UTF-8.
"""

from __future__ import annotations

import re

UTF8_BOM = b"\xef\xbb\xbf"
_OTHER_BOMS = (b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00", b"\xfe\xff", b"\xff\xfe")
_DECLARATION = b"<?xml"
MAX_DECLARATION_BYTES = 256  # a real declaration is about 40 bytes
_ENCODING = re.compile(rb"""\sencoding\s*=\s*["']([^"']*)["']""")


class Utf8Prolog:
    """Fed the upload's first chunks; ``feed`` says False as soon as they are not UTF-8."""

    def __init__(self) -> None:
        self._head = b""
        self.settled = False

    def feed(self, data: bytes) -> bool:
        if self.settled:
            return True
        self._head += data[: MAX_DECLARATION_BYTES + len(UTF8_BOM)]
        head = self._head
        if head.startswith(_OTHER_BOMS):
            return False
        head = head.removeprefix(UTF8_BOM)
        if b"\x00" in head[:4]:
            return False
        if not head.startswith(_DECLARATION):
            if _DECLARATION.startswith(head):
                return True  # too few bytes yet to tell
            self.settled = True  # no declaration: UTF-8 by the XML rules
            return True
        end = head.find(b"?>")
        if end < 0:
            return len(head) <= MAX_DECLARATION_BYTES
        found = _ENCODING.search(head[:end])
        self.settled = True
        return found is None or found.group(1).lower() == b"utf-8"
