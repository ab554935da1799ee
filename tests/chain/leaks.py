"""Looking for a value where it must not be: every file under a folder, every SQLite database
there dumped as SQL text, and logs; the value in every form a program could have written it.

Forms: ASCII/UTF-8, UTF-16 and UTF-32 (both byte orders), hex of its bytes (either case),
base64 of its bytes (whatever the alignment: the characters that do not depend on the bytes
around it), and, for a number, the integer in the 6- and 8-byte big-endian and 8-byte
little-endian forms a database or a binary format would store (SQLite keeps an 11-digit
integer in 6 bytes). A dump renders what the database holds as text (integers in decimal,
blobs in hex), so a value stored in any column type is found in the dump as well.
"""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SQLITE_MAGIC = b"SQLite format 3\x00"


def forms(value: str) -> list[bytes]:
    raw = value.encode("utf-8")
    found = [raw]
    for codec in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"):
        found.append(value.encode(codec))
    found += [raw.hex().encode(), raw.hex().upper().encode()]
    for shift in range(3):  # the value starting at each offset of a base64 group
        aligned = base64.b64encode(raw[shift:])[:-4]  # the last group may take later bytes
        if len(aligned) >= 8:
            found.append(aligned)
    if value.isdigit():
        number = int(value)
        found += [number.to_bytes(6, "big"), number.to_bytes(8, "big"),
                  number.to_bytes(8, "little")]
    return found


def occurs(value: str, data: bytes) -> bool:
    return any(form in data for form in forms(value))


def sqlite_dump(path: Path) -> bytes:
    """The database as SQL text (read-only, so a search changes nothing)."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return "\n".join(connection.iterdump()).encode("utf-8")
    finally:
        connection.close()


@dataclass(frozen=True)
class Haystack:
    """What one place holds: its files' bytes and its databases' dumps, by name."""

    parts: dict[str, bytes]

    def where(self, value: str) -> list[str]:
        return [name for name, data in self.parts.items() if occurs(value, data)]


def gather(folders: Iterable[Path], logs: dict[str, bytes],
           skip: Iterable[Path] = ()) -> Haystack:
    """Every file under ``folders`` (and the dump of every SQLite database among them), and
    ``logs``; ``skip``: files left out (a database a value may be in)."""
    skipped = {p.resolve() for p in skip}
    parts = dict(logs)
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or path.resolve() in skipped:
                continue
            data = path.read_bytes()
            parts[str(path)] = data
            if data.startswith(SQLITE_MAGIC):
                parts[f"{path} (dump)"] = sqlite_dump(path)
    return Haystack(parts)
