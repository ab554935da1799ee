"""The UTF-8 bytes given to expat, kept while a later step may still slice from them.

Positions are absolute (counted from the start of the UTF-8 stream, as expat's
``CurrentByteIndex`` is); ``data[i - offset]`` is the byte at absolute position ``i``.
"""

from __future__ import annotations

_TRIM_STEP = 1 << 20  # drop in large steps: deleting from a bytearray's front is O(remaining)


class ByteWindow:
    def __init__(self) -> None:
        self.data = bytearray()
        self.offset = 0  # absolute position of data[0]

    @property
    def end(self) -> int:
        """Absolute position just after the last byte received."""
        return self.offset + len(self.data)

    def append(self, chunk: bytes) -> None:
        self.data += chunk

    def slice(self, start: int, end: int) -> bytes:
        return bytes(self.data[start - self.offset : end - self.offset])

    def tag_end(self, start: int) -> int:
        """Absolute position just after the '>' of the attribute-less tag at ``start``."""
        return self.data.index(b">", start - self.offset) + self.offset + 1

    def forget_before(self, position: int) -> None:
        """Nothing before ``position`` will be sliced again."""
        drop = position - self.offset
        if drop > _TRIM_STEP:
            del self.data[:drop]
            self.offset = position
