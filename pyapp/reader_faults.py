"""expat's errors in the user's words: which fault of formats §1 an ``ExpatError`` is.

expat knows where it stopped but not what the user can do about it; the reader knows which
element is open (``open_element``) and has the bytes around the error (``window``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from xml.parsers import expat

from . import faults
from .reader_window import ByteWindow

_CODES = expat.errors.codes
_TAG_MISMATCH = _CODES[expat.errors.XML_ERROR_TAG_MISMATCH]
_INVALID_TOKEN = _CODES[expat.errors.XML_ERROR_INVALID_TOKEN]
_NO_ELEMENTS = _CODES[expat.errors.XML_ERROR_NO_ELEMENTS]
_TRUNCATION_CODES = frozenset(
    _CODES[e]
    for e in (
        expat.errors.XML_ERROR_NO_ELEMENTS,
        expat.errors.XML_ERROR_UNCLOSED_TOKEN,
        expat.errors.XML_ERROR_PARTIAL_CHAR,
        expat.errors.XML_ERROR_UNCLOSED_CDATA_SECTION,
    )
)
_END_TAG_NAME_RE = re.compile(rb"(?:</)?\s*([^\s>/]+)")  # expat points just after "</"


def translate(
    error: expat.ExpatError,
    error_index: int,
    window: ByteWindow,
    root_seen: bool,
    open_element: Callable[[int], tuple[str, int]],
) -> faults.IplosFault:
    """The fault for ``error`` at absolute byte ``error_index``; ``open_element(position)``
    gives the innermost element open at a position (name, line)."""
    if error.code == _INVALID_TOKEN and _bad_character_at(window, error_index):
        return faults.bad_characters(error.lineno)
    if not root_seen:
        if error.code == _NO_ELEMENTS:
            return faults.RootNotIplos()
        return faults.not_xml(error.lineno, error.offset + 1)
    if error.code == _TAG_MISMATCH:
        start_tag, start_line = open_element(error_index)
        return faults.TagMismatch(start_tag, start_line, _end_tag_name(window, error_index),
                                  error.lineno)
    if error.code in _TRUNCATION_CODES:
        return faults.truncated(*open_element(window.end))
    return faults.not_xml(error.lineno, error.offset + 1)


def _end_tag_name(window: ByteWindow, index: int) -> str:
    match = _END_TAG_NAME_RE.match(window.slice(index, index + 512))
    return match.group(1).decode("utf-8", "replace") if match else "?"


def _bad_character_at(window: ByteWindow, index: int) -> bool:
    """Is the byte expat stopped at not a character (bad UTF-8, a control character)?"""
    sample = window.slice(index, index + 4)
    if sample[:1] < b" " and sample[:1] not in (b"", b"\t", b"\n", b"\r"):
        return True  # a control character: XML 1.0 allows none but these three
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as problem:
        return problem.start == 0 and problem.reason != "unexpected end of data"
    return False
