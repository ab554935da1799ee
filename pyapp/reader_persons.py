"""The person phase of the IPLOS reader: persons cut out of bytes expat found well-formed.

From ``<Personer>`` on, expat runs without Python handlers (in C, it only checks that the
bytes are well-formed XML), and this scanner follows behind it over the same UTF-8 bytes.
Everything before its limit has been parsed without error, so '<' only ever starts markup
and regular expressions can find element boundaries.

The fast path takes runs of persons of the common shape, one regular expression each:
``<Person>``, ``Fodselsnummer`` first with 11 digits, then data with no comment, CDATA,
processing instruction, nested ``Person``, second ``Fodselsnummer`` or '>' outside a tag.
The indentation of a whole run is then removed in one substitution. Any other shape, and
every fault, goes to the exact path (reader_person_parser.py) for that one person.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import Enum
from functools import partial
from itertools import accumulate, repeat

from . import faults
from .identifiers import fnr_digits_all_check_ok, fnr_digits_check_ok
from .reader_events import Event, PersonRecord
from .reader_header import PERSONER, ROOT, misplaced_or_unknown
from .reader_person_parser import SlowPerson
from .reader_window import ByteWindow


class Phase(Enum):
    """Where the reader is in the document."""

    HEADER = "header"  # before <Personer>: expat calls the header phase's handlers
    PERSONS = "persons"  # between <Personer> and </Personer>
    AFTER_PERSONS = "after persons"  # after </Personer>: only </IPLOS> may follow
    DONE = "done"  # </IPLOS> reached; expat checks that nothing but comments follows


_PLAIN_PERSON_RE = re.compile(
    rb"(\s*+)<Person>\s*+(<Fodselsnummer>\s*+(\d{11})\s*+</Fodselsnummer>)"
    # data: text without '<' or '>', and tags (quoted values hold no '<' either) that are no
    # comment, CDATA, processing instruction, Person or Fodselsnummer
    rb"((?:[^<>]++|<(?![!?]|/?Person[\s/>]|/?Fodselsnummer[\s/>])[^<>]*+>)*+)</Person>"
)
# The same shape, cheaper, for a run of persons checked as a whole (_take_plain_run): the data
# only stops at the first </Person>; counts over the run rule out the rest.
_PLAIN_RUN_RE = re.compile(
    rb"(\s*+<Person>\s*+)(<Fodselsnummer>\s*+(\d{11})\s*+</Fodselsnummer>)"
    rb"([^<]*+(?:<(?!/Person>)[^<]*+)*+)</Person>"
)
_NOT_ELEMENT_RE = re.compile(rb"<[!?]")
# Indentation: whitespace holding a line break between '>' and '<'. A single space, as in
# <Navn> </Navn>, is data and stays. Sound on fast-path data only, where every '>' ends a tag.
_INDENTATION_RE = re.compile(rb">[ \t\r]*+\n\s*+<")
# Joins the data of a run of persons for one substitution: NUL never occurs in XML.
_RUN_SEPARATOR = b"<\x00>"
_NOT_TEXT_RE = re.compile(rb"(?:\s++|<!--.*?-->|<\?.*?\?>)*+", re.DOTALL)
_TAG_NAME_RE = re.compile(rb"<([^\s>/]+)")
_END_TAG = b"</Person>"
_CDATA_START = b"<![CDATA["
_make_record = partial(tuple.__new__, PersonRecord)  # no Python frame per record


class PersonScanner:
    """Follows expat through the person phase; ``scan`` takes what is complete."""

    def __init__(self, window: ByteWindow, start: int, line: int) -> None:
        self.window = window
        self.phase = Phase.PERSONS
        self.position = start  # absolute: the next byte not yet taken
        self.line = line  # the line at ``position``
        self.count = 0
        self.bad_check_digit_lines: list[int] = []
        self._slow: SlowPerson | None = None  # a person of another shape, being fed
        self._slow_fed = 0  # absolute: how far it has been fed

    @property
    def in_person(self) -> bool:
        """A person of another shape has begun and not yet ended."""
        return self._slow is not None

    def scan(self, limit: int, events: list[Event]) -> None:
        """Take every person, and the end of ``Personer``, that ends before ``limit``."""
        one_by_one = False
        while self.phase is Phase.PERSONS:
            if self._slow is None:
                # A run that fails its checks holds a person of another shape somewhere:
                # take the rest up to ``limit`` one by one (never a run twice: linear time).
                one_by_one = one_by_one or not self._take_plain_run(limit, events)
                if one_by_one:
                    self._take_plain_persons(limit, events)
            if not self._take_other(limit, events):
                return
        while self.phase is Phase.AFTER_PERSONS and self._take_after_persons(limit):
            pass

    def _take_plain_run(self, limit: int, events: list[Event]) -> bool:
        """Take the persons up to the last </Person> before ``limit`` (and before any comment,
        CDATA or processing instruction) in bulk, when every one of them has the plain shape.
        False when one has not: nothing is taken then."""
        data, offset = self.window.data, self.window.offset
        start = self.position - offset
        stop = self._markup_not_element(limit) - offset
        last = data.rfind(_END_TAG, start, stop)
        if last < 0:
            return True  # no person complete before it: the exact path takes the next one
        region = bytes(data[start : last + len(_END_TAG)])
        # Indentation first (the checks below tell whether that was sound), then the persons.
        plain = _without_indentation(region)
        found = _PLAIN_RUN_RE.findall(plain)
        count = len(found)
        if not count:
            return False
        starts, fnr_elements, numbers, person_data = zip(*found, strict=True)
        covered = sum(map(len, starts)) + sum(map(len, fnr_elements)) + sum(map(len, person_data))
        if (
            covered + count * len(_END_TAG) != len(plain)  # nothing between the matches
            or plain.count(b"<Person") != count  # no Person inside a person
            or plain.count(b"Fodselsnummer") != 2 * count  # no second Fodselsnummer
            or plain.count(b"<") != plain.count(b">")  # no '>' in text: indentation was sound
        ):
            return False
        # Lines after the newlines before each <Person>: each person's, then the run's end.
        newlines = map(bytes.count, region.split(b"<Person>"), repeat(b"\n"))
        lines = list(accumulate(newlines, initial=self.line))[1:]
        self.position += len(region)
        self.line = lines.pop()
        self._add(events, lines, fnr_elements, numbers, person_data)
        return True

    def _take_plain_persons(self, limit: int, events: list[Event]) -> None:
        """Take plain persons one by one, each checked whole by one regular expression."""
        data, offset = self.window.data, self.window.offset
        position, end, line = self.position - offset, limit - offset, self.line
        match, count = _PLAIN_PERSON_RE.match, data.count
        lines: list[int] = []
        fnr_elements: list[bytes] = []
        numbers: list[bytes] = []
        person_data: list[bytes] = []
        while (person := match(data, position, end)) is not None:
            start = person.end(1)
            person_line = line + count(b"\n", position, start)
            position = person.end()
            line = person_line + count(b"\n", start, position)
            lines.append(person_line)
            fnr_element, number, raw = person.group(2, 3, 4)
            fnr_elements.append(fnr_element)
            numbers.append(number)
            person_data.append(raw)
        if lines:
            self.position, self.line = position + offset, line
            # Each person's data between the '>' ending </Fodselsnummer> and the '<' starting
            # </Person>, so indentation at both ends is matched too.
            joined = _without_indentation(b">" + _RUN_SEPARATOR.join(person_data) + b"<")
            stripped = joined[1:-1].split(_RUN_SEPARATOR)
            self._add(events, lines, fnr_elements, numbers, stripped)

    def _add(
        self,
        events: list[Event],
        lines: Sequence[int],
        fnr_elements: Sequence[bytes],
        numbers: Sequence[bytes],
        person_data: Sequence[bytes],
    ) -> None:
        """Records for plain persons, in bulk (no Python step per person where avoidable);
        ``person_data`` without indentation already."""
        texts = list(map(bytes.decode, numbers))
        if fnr_digits_all_check_ok(numbers):  # the common case, checked in bulk
            checks = [True] * len(numbers)
        else:
            checks = list(map(fnr_digits_check_ok, numbers))
        if not all(checks):
            self.bad_check_digit_lines += [n for n, ok in zip(lines, checks, strict=True) if not ok]
        self.count += len(texts)
        fields = zip(lines, fnr_elements, texts, person_data, checks, strict=True)
        events += map(_make_record, fields)

    def _markup_not_element(self, limit: int) -> int:
        """Absolute position of the next '<!' or '<?' (comment, CDATA, processing instruction)
        at or after ``position``, or ``limit``. Linear over a scan: each search ends at the
        next such markup, which the exact path then passes."""
        data, offset = self.window.data, self.window.offset
        found = _NOT_ELEMENT_RE.search(data, self.position - offset, limit - offset)
        return limit if found is None else found.start() + offset

    def _take_other(self, limit: int, events: list[Event]) -> bool:
        """The end of ``Personer``, or one person of another shape; False: wait for bytes."""
        if self._slow is None:
            found = self._next_markup(limit, PERSONER)
            if found is None:
                return False
            at, at_line = found
            data, offset = self.window.data, self.window.offset
            if data.startswith(b"</", at - offset):  # well-formed, so this is </Personer>
                end = data.find(b">", at - offset, limit - offset)
                if end < 0:
                    return False
                self.phase = Phase.AFTER_PERSONS
                self.position = end + 1 + offset
                self.line = at_line + data.count(b"\n", at - offset, end)
                return True
            self.position, self.line = at, at_line
            self._slow = SlowPerson(at_line)
            self._slow_fed = at
        return self._feed_slow_person(limit, events)

    def _feed_slow_person(self, limit: int, events: list[Event]) -> bool:
        """Feed the exact parser up to each next </Person> until the person is complete."""
        slow = self._slow
        assert slow is not None
        data, offset = self.window.data, self.window.offset
        while self._slow_fed < limit:
            close = data.find(_END_TAG, self._slow_fed - offset, limit - offset)
            upto = close + offset + len(_END_TAG) if close >= 0 else limit
            done = slow.feed(bytes(data[self._slow_fed - offset : upto - offset]))
            self._slow_fed = upto
            if done is not None:
                record, taken = done
                if not record.check_digits_ok:
                    self.bad_check_digit_lines.append(record.line)
                events.append(record)
                self.count += 1
                self.line += slow.segment.count(b"\n", 0, taken)
                self.position += taken
                self._slow = None
                return True
        return False

    def _take_after_persons(self, limit: int) -> bool:
        """Between </Personer> and </IPLOS> only whitespace and comments may stand."""
        found = self._next_markup(limit, ROOT)
        if found is None:
            return False
        at, at_line = found
        data, offset = self.window.data, self.window.offset
        if data.startswith(b"</", at - offset):  # </IPLOS>: expat checks the rest
            self.phase = Phase.DONE
            return True
        name = _TAG_NAME_RE.match(data, at - offset, limit - offset)
        if name is None or name.end() >= limit - offset:
            return False
        raise misplaced_or_unknown(name.group(1).decode("utf-8", "replace"), at_line)

    def _next_markup(self, limit: int, parent: str) -> tuple[int, int] | None:
        """Skip whitespace, comments and processing instructions: the next markup's position
        and line, or None when it has not been read yet. Text (CDATA too) there is refused as
        text directly in ``parent``."""
        data, offset = self.window.data, self.window.offset
        start, end = self.position - offset, limit - offset
        skipped = _NOT_TEXT_RE.match(data, start, end)
        assert skipped is not None  # the pattern matches the empty string
        at = skipped.end()
        if at >= end:
            return None
        at_line = self.line + data.count(b"\n", start, at)
        head = bytes(data[at : min(at + len(_CDATA_START), end)])
        if not head.startswith(b"<") or head == _CDATA_START:
            raise faults.unexpected_text(parent, at_line)
        if len(head) < 2 or head.startswith((b"<!", b"<?")):
            return None  # a comment, processing instruction or CDATA not complete yet
        return at + offset, at_line


def _without_indentation(xml: bytes) -> bytes:
    """``xml`` without indentation: whitespace holding a line break between '>' and '<'.

    Sound on plain data only, where every '>' ends a tag. One substitution by a regular
    expression with possessive quantifiers: over the 50 MB demo file's persons (three depths of
    indentation) it takes 0.16 s on Python 3.11, where a ``bytes.replace`` pass for each form
    of indentation took 0.20 s (bench/explore_indentation.py)."""
    return _INDENTATION_RE.sub(b"><", xml)
