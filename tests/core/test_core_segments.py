"""``ipis encrypt`` on two processes (person_segments.py, second_process.py) against one.

The cut sizes are made tiny here, so that files of a few persons are cut at every person (or
inside the header, a comment, a CDATA section); the default sizes only cut files of megabytes.
Every comparison decrypts both outputs with the independent reader (ipis_testlib) and compares
them byte for byte, the random parts (keys, IVs, filId) aside.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import termios
import time
from array import array
from collections.abc import Iterator

import pytest
from ipis_testlib import (
    CONTACT,
    FNR,
    TODAY,
    VECTORS,
    Keys,
    document,
    gcm_open,
    open_message,
    person,
)

from ipis_core import encrypt_file as encrypt_module
from ipis_core import person_segments, second_process
from ipis_core.demo_data import document_bytes
from ipis_core.encrypt_file import SEGMENT_SIZES, encrypt_file
from ipis_core.faults import IplosFault
from ipis_core.message import EncryptionSummary, MessageEncryptor
from ipis_core.person_segments import SegmentSizes, plan_segments
from ipis_core.second_process import SecondProcess

FAULTS = json.loads((VECTORS / "iplos" / "faults.json").read_text(encoding="utf-8"))
VALID = json.loads((VECTORS / "iplos" / "valid.json").read_text(encoding="utf-8"))

ONE_PROCESS = SegmentSizes(min_file_bytes=1 << 62, first_bytes=1, segment_bytes=1)
CUTS = {
    "every person": SegmentSizes(min_file_bytes=0, first_bytes=1, segment_bytes=1),
    "uneven": SegmentSizes(min_file_bytes=0, first_bytes=700, segment_bytes=1300),
    "large segments": SegmentSizes(min_file_bytes=0, first_bytes=1, segment_bytes=5000),
}


# --- running both ways ----------------------------------------------------------------------


class Run:
    """One ``encrypt_file`` call: its output or its fault, and what the second process did."""

    def __init__(self, output: bytes | None, summary: EncryptionSummary | None,
                 fault: str | None, children: list[int], whole_reads: int) -> None:
        self.output = output
        self.summary = summary
        self.fault = fault
        self.children = children  # pids of the second processes started
        self.whole_reads = whole_reads  # times the file was read on one process


@pytest.fixture
def runner(tmp_path: pathlib.Path, key_file_path: pathlib.Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    children: list[int] = []
    whole_reads = [0]
    real_start = SecondProcess.start.__func__  # type: ignore[attr-defined]
    real_whole = encrypt_module._encrypt_whole

    def start(cls, *args):  # type: ignore[no-untyped-def]
        second = real_start(cls, *args)
        children.append(second.pid)
        return second

    async def whole(*args):  # type: ignore[no-untyped-def]
        whole_reads[0] += 1
        return await real_whole(*args)

    monkeypatch.setattr(SecondProcess, "start", classmethod(start))
    monkeypatch.setattr(encrypt_module, "_encrypt_whole", whole)
    counter = iter(range(1 << 30))

    def run(data: bytes, sizes: SegmentSizes) -> Run:
        folder = tmp_path / f"run{next(counter)}"
        folder.mkdir()
        (folder / "data.xml").write_bytes(data)
        out = folder / "ut" / "kryptert.xml"
        out.parent.mkdir()
        children.clear()
        whole_reads[0] = 0
        try:
            summary = asyncio.run(encrypt_file(str(folder / "data.xml"), str(out),
                                               str(key_file_path), CONTACT, TODAY, sizes))
        except IplosFault as fault:
            assert os.listdir(out.parent) == []  # no output, no temporary file
            return Run(None, None, fault.message, list(children), whole_reads[0])
        assert os.listdir(out.parent) == ["kryptert.xml"]
        return Run(out.read_bytes(), summary, None, list(children), whole_reads[0])

    yield run
    for pid in children:
        assert_reaped(pid)


def assert_reaped(pid: int) -> None:
    """Neither running nor a zombie: waitpid knows no such child any more."""
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def decrypted(data: bytes, keys: Keys) -> bytes:
    """The whole message with every layer opened, and the random parts blanked: the wrapped
    keys, the filId, and each record's ciphertext replaced by its plaintext."""
    opened = open_message(data, keys)

    def open_record(match: re.Match[bytes]) -> bytes:
        return b"<xenc:CipherValue>" + gcm_open(opened.register_key,
                                                base64.b64decode(match.group(1))) + b"<"

    clear = re.sub(rb"<xenc:CipherValue>[^<]*<", b"<xenc:CipherValue><", data)
    layer = re.sub(rb"(<xenc:EncryptedKey .*?<xenc:CipherValue>)[^<]*", rb"\1",
                   opened.tpf_plaintext)
    layer = re.sub(rb"<xenc:CipherValue>([A-Za-z0-9+/=]+)<", open_record, layer)
    layer = re.sub(rb'filId="[0-9a-f]{32}"', b'filId=""', layer)  # in Registerkontroll too
    return clear + b"\n" + layer


def assert_same(one: Run, two: Run, keys: Keys) -> None:
    assert one.fault is None and two.fault is None, (one.fault, two.fault)
    assert one.output is not None and two.output is not None
    assert one.summary is not None and two.summary is not None
    assert decrypted(one.output, keys) == decrypted(two.output, keys)
    assert len(one.output) == len(two.output)
    for name in ("persons", "sender", "warnings", "output_bytes", "key_file_lines"):
        assert getattr(one.summary, name) == getattr(two.summary, name), name


def with_bad_check_digits(data: bytes, every: int) -> bytes:
    """Every ``every``-th fødselsnummer with its last digit changed (a warning, with lines)."""
    count = iter(range(1 << 30))

    def spoil(match: re.Match[bytes]) -> bytes:
        number = match.group(1)
        if next(count) % every:
            return match.group(0)
        return b"<Fodselsnummer>" + number[:10] + str((number[10] - 47) % 10).encode()

    return re.sub(rb"<Fodselsnummer>(\d{11})", spoil, data)


# --- the same output --------------------------------------------------------------------------


@pytest.mark.parametrize("cuts", CUTS, ids=list(CUTS))
@pytest.mark.parametrize("case", VALID, ids=[c["file"] for c in VALID])
def test_vector_files_decrypt_the_same(runner, keys, case, cuts) -> None:
    data = (VECTORS / "iplos" / "valid" / case["file"]).read_bytes()
    one, two = runner(data, ONE_PROCESS), runner(data, CUTS[cuts])
    assert_same(one, two, keys)
    assert one.children == []
    if case["file"].startswith("utf-16"):  # read on one process: a byte is no character
        assert two.children == [] and two.whole_reads == 1
    else:
        assert len(two.children) == 1 and two.whole_reads == 0


DEMO = [
    # persons, encoding, chunk (bytes read at a time)
    (1, "UTF-8", 1 << 20),
    (2, "UTF-8-BOM", 97),
    (7, "ISO-8859-1", 4096),
    (60, "windows-1252", 97),
    (600, "UTF-8", 4096),
    (3000, "UTF-8", 1 << 20),
]


@pytest.mark.parametrize("cuts", CUTS, ids=list(CUTS))
@pytest.mark.parametrize(("persons", "encoding", "chunk"), DEMO)
def test_demo_files_decrypt_the_same(runner, keys, monkeypatch, persons, encoding, chunk,
                                     cuts) -> None:
    monkeypatch.setattr(encrypt_module, "CHUNK_BYTES", chunk)
    monkeypatch.setattr(person_segments, "READ_BYTES", chunk)
    data = with_bad_check_digits(document_bytes(persons, seed=persons, encoding=encoding), 5)
    one, two = runner(data, ONE_PROCESS), runner(data, CUTS[cuts])
    assert_same(one, two, keys)
    cut = persons > 1  # one person: no <Person> after the first 1024 bytes to cut at
    assert (len(two.children), two.whole_reads) == ((1, 0) if cut else (0, 1))
    assert one.summary is not None and one.summary.persons == persons
    assert any("kontrollsiffer" in w for w in one.summary.warnings)


def test_crlf_and_many_bad_check_digits_keep_their_lines(runner, keys) -> None:
    """The warning lists lines: those of the second process's persons are counted from its
    segment's first byte and moved to the file's lines by the main process."""
    data = document_bytes(80, seed=3).replace(b"\n", b"\r\n")
    data = with_bad_check_digits(data, 1)  # every one: the warning lists the first 20 lines
    one, two = runner(data, ONE_PROCESS), runner(data, CUTS["every person"])
    assert_same(one, two, keys)
    assert one.summary is not None
    assert "80 fødselsnumre har feil kontrollsiffer" in one.summary.warnings[-1]


ODD_SHAPES = {
    # a "<Person>" the byte search finds but the reader does not count as a person
    "comment with a person tag": person(FNR[1]) + "    <!-- <Person> -->\n" + person(FNR[2]),
    "CDATA with a person tag": person(FNR[1], body="      <Husstand><![CDATA[<Person>]]>"
                                                   "</Husstand>\n") + person(FNR[2]),
    "comment before a cut": person(FNR[1]) + "    <!-- mellom -->\n" + person(FNR[2]),
    "person of another shape": person(FNR[1], body="      <!-- k -->\n      <Husstand a='1'>"
                                                   "2</Husstand>\n") + person(FNR[2]),
    "space in a person tag": person(FNR[1]).replace("<Person>", "<Person >") + person(FNR[2]),
}


@pytest.mark.parametrize("cuts", CUTS, ids=list(CUTS))
@pytest.mark.parametrize("shape", ODD_SHAPES, ids=list(ODD_SHAPES))
def test_odd_shapes_at_the_cuts_decrypt_the_same(runner, keys, shape, cuts) -> None:
    """Where a cut falls inside a comment or CDATA, or the tags it counts are not persons, the
    file is read again on one process (or the cut is still sound): the output is the same."""
    text = document([person(FNR[0]), ODD_SHAPES[shape], person(FNR[3])])
    one, two = runner(text.encode(), ONE_PROCESS), runner(text.encode(), CUTS[cuts])
    assert_same(one, two, keys)


def _claims_left(claims: person_segments.SegmentClaims) -> int:
    """Bytes of indices still waiting in the claims pipe (FIONREAD)."""
    left = array("i", [0])
    fcntl.ioctl(claims._read_end, termios.FIONREAD, left)
    return left[0]


@pytest.fixture
def child_claims_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the second process is started, this process waits until it has claimed segment 1,
    so who reads which segment is known (it is a race otherwise)."""
    real_start = SecondProcess.start.__func__  # type: ignore[attr-defined]

    def start(cls, fd, plan, sealing, claims):  # type: ignore[no-untyped-def]
        second = real_start(cls, fd, plan, sealing, claims)
        deadline = time.monotonic() + 60
        while _claims_left(claims) == 4 * (len(plan.segments) - 1):
            assert time.monotonic() < deadline, "the second process claimed nothing"
            time.sleep(0.001)
        return second

    monkeypatch.setattr(SecondProcess, "start", classmethod(start))


def _segment_of(text: bytes, offset: int, sizes: SegmentSizes) -> int:
    with open(os.memfd_create("plan"), "w+b") as handle:
        handle.write(text)
        handle.flush()
        plan = plan_segments(handle.fileno(), sizes)
    assert plan is not None
    return next(s.index for s in plan.segments if s.end is None or offset < s.end)


def test_a_count_the_second_process_gets_wrong_reads_again(runner, keys,
                                                          child_claims_first) -> None:
    """A tag in a comment of segment 0 (always the main process's) makes the second process,
    which only counts the tags there, number segment 1's persons one too high: the main process
    sees it and reads the file again."""
    text = document([person(FNR[0]), "    <!-- <Person> -->\n" + person(FNR[1]),
                     person(FNR[2]), person(FNR[3])]).encode()
    assert _segment_of(text, text.index(b"<!-- <Person>"), CUTS["every person"]) == 0
    two = runner(text, CUTS["every person"])
    assert_same(runner(text, ONE_PROCESS), two, keys)
    assert two.whole_reads == 1 and len(two.children) == 1


def test_a_count_the_main_process_gets_wrong_reads_again(runner, keys, child_claims_first,
                                                        monkeypatch) -> None:
    """The same the other way round: the second process is slow in segment 1, which holds a
    tag in a comment, so the main process claims segment 2 and numbers it from its count of
    segment 1's tags, one too high. Its own check finds that, and the file is read again."""
    real_seal = second_process._seal_claimed

    def slow_seal(*args):  # type: ignore[no-untyped-def]
        time.sleep(0.3)  # in the child only: the parent never calls it
        return real_seal(*args)

    monkeypatch.setattr(second_process, "_seal_claimed", slow_seal)
    sizes = SegmentSizes(min_file_bytes=0, first_bytes=1, segment_bytes=1)
    persons = [person(FNR[i % 4]) for i in range(8)]
    text = document(persons).encode()
    first_cut = text.index(b"<Person>", 1024)
    comment = b"    <!-- <Person> -->\n"
    at = text.index(b"    <Person>", first_cut + 1)  # inside segment 1, before its last person
    text = text[:at] + comment + text[at:]
    assert _segment_of(text, at, sizes) == 1
    two = runner(text, sizes)
    assert_same(runner(text, ONE_PROCESS), two, keys)
    assert two.whole_reads == 1 and len(two.children) == 1


# --- the same fault ----------------------------------------------------------------------------


@pytest.mark.parametrize("cuts", CUTS, ids=list(CUTS))
@pytest.mark.parametrize("case", FAULTS, ids=[c["file"] for c in FAULTS])
def test_fault_vectors_give_the_same_fault(runner, case, cuts) -> None:
    data = (VECTORS / "iplos" / "faults" / case["file"]).read_bytes()
    assert runner(data, ONE_PROCESS).fault == case["message"]
    assert runner(data, CUTS[cuts]).fault == case["message"]  # and the child reaped (fixture)


def test_first_fault_in_file_order_whichever_process_reads_it(runner) -> None:
    """Two faults, in segments of different processes, in both orders: the first one wins."""
    broken = person(FNR[1]).replace("</Husstand>", "</Hustand>")
    short = person(FNR[2]).replace(FNR[2], FNR[2][:10])
    plain = [person(FNR[0]) for _ in range(6)]
    for persons in ([*plain[:3], broken, plain[3], short], [*plain[:2], short, broken, *plain]):
        text = document(persons).encode()
        expected = runner(text, ONE_PROCESS).fault
        assert expected is not None
        for cuts in CUTS.values():
            assert runner(text, cuts).fault == expected


def test_a_cut_inside_a_comment_that_hides_a_fault(runner) -> None:
    """A comment holding a person the byte search cuts at: the second process reads that
    person as a plain one, and the fault after the comment (an end tag that closes nothing)
    only shows when the file is read whole. The message is that of the whole file."""
    hidden = (f"    <Person>\n      <Fodselsnummer>{FNR[1]}</Fodselsnummer>\n"
              "      <Husstand>1<!-- <Person><Fodselsnummer>"
              f"{FNR[2]}</Fodselsnummer><Husstand>2 --></Husstand>\n    </Person>\n"
              "    </Husstand>\n")
    text = document([person(FNR[0]), hidden, person(FNR[3])]).encode()
    expected = runner(text, ONE_PROCESS).fault
    assert expected is not None and "Husstand" in expected
    for cuts in CUTS.values():
        assert runner(text, cuts).fault == expected


def test_a_cut_inside_a_comment_where_the_counts_agree(runner, keys) -> None:
    """The cut falls in a comment inside a person, and the comment holds the start of a
    person the second process reads as whole; a "<Person >" before it, which the byte count
    misses, makes its numbers agree. Only the check that segment 0 ends between persons
    (and, behind it, the main reader's end) sees it: the output is still the whole file's."""
    hidden = (f"    <Person>\n      <Fodselsnummer>{FNR[1]}</Fodselsnummer>\n"
              "      <Husstand>1<!-- <Person><Fodselsnummer>"
              f"{FNR[2]}</Fodselsnummer><Husstand>2 --></Husstand>\n    </Person>\n")
    spaced = person(FNR[0]).replace("<Person>", "<Person >").replace(
        "</Person>", '  <Diagnose kode="F03"/>\n' * 4 + "    </Person>")  # cut after 1 kB
    text = document([spaced, hidden, person(FNR[3])]).encode()
    cut = text.index(b"<Person><Fodselsnummer>")
    assert cut > 1024  # the first cut: the reader parses nothing before 1024 bytes
    first = SegmentSizes(min_file_bytes=0, first_bytes=cut, segment_bytes=1)
    one, two = runner(text, ONE_PROCESS), runner(text, first)
    assert_same(one, two, keys)
    assert one.summary is not None and one.summary.persons == 3
    assert two.whole_reads == 1 and len(two.children) == 1


def test_a_fault_in_the_header_stops_before_any_second_process(runner) -> None:
    text = document([person()] * 4).replace("<Bydelsnummer>00", "<Bydelsnummer>0").encode()
    run = runner(text, CUTS["every person"])
    assert run.fault is not None and "Bydelsnummer" in run.fault
    assert run.children == []


# --- the second process ends, whatever happens ------------------------------------------------


def test_interrupt_ends_the_second_process_and_leaves_nothing(runner, monkeypatch,
                                                              tmp_path) -> None:
    real = MessageEncryptor.append_sealed_persons
    calls = iter(range(1 << 30))

    async def append(self, *args):  # type: ignore[no-untyped-def]
        if next(calls) == 2:
            raise KeyboardInterrupt
        return await real(self, *args)

    monkeypatch.setattr(MessageEncryptor, "append_sealed_persons", append)
    text = document([person(FNR[i % 4]) for i in range(12)]).encode()
    with pytest.raises(KeyboardInterrupt):
        runner(text, CUTS["every person"])
    [output_folder] = tmp_path.glob("run*/ut")
    assert os.listdir(output_folder) == []  # the fixture checks that the child was reaped


def test_a_second_process_that_dies_is_read_around(runner, keys, monkeypatch,
                                                   child_claims_first) -> None:
    """Killed from outside (out of memory, say) with a segment claimed: the main process reads
    the file again."""
    real_start = SecondProcess.start
    real_seal = second_process._seal_claimed

    def slow_seal(*args):  # type: ignore[no-untyped-def]
        time.sleep(0.3)  # in the child only: still at work on segment 1 when it is killed
        return real_seal(*args)

    def start(*args):  # type: ignore[no-untyped-def]
        second = real_start(*args)  # returns once the child has claimed segment 1
        os.kill(second.pid, signal.SIGKILL)
        return second

    monkeypatch.setattr(second_process, "_seal_claimed", slow_seal)

    monkeypatch.setattr(SecondProcess, "start", start)
    text = document([person(FNR[i % 4]) for i in range(9)]).encode()
    two = runner(text, CUTS["every person"])
    assert_same(runner(text, ONE_PROCESS), two, keys)
    assert two.whole_reads == 1


def test_a_second_process_that_claims_nothing_leaves_every_segment_here(runner, keys,
                                                                        monkeypatch) -> None:
    """A child that ends before it claims anything (it found no work, or died at once): this
    process claims and seals every segment itself, with no second reading of the file."""

    def serve_nothing(*args):  # type: ignore[no-untyped-def]
        raise SystemExit(1)  # in the child only: _child exits with status 1

    monkeypatch.setattr(second_process, "_serve", serve_nothing)
    text = with_bad_check_digits(document_bytes(60, seed=4), 3)
    two = runner(text, CUTS["every person"])
    assert_same(runner(text, ONE_PROCESS), two, keys)
    assert two.whole_reads == 0 and len(two.children) == 1


HANGING_CHILD = '''
import asyncio, os, pathlib, sys, threading, time
from ipis_core import second_process
from ipis_core.encrypt_file import encrypt_file
from ipis_core.faults import IplosFault
from ipis_core.person_segments import SegmentSizes
sys.path.insert(0, sys.argv[4])
from ipis_testlib import CONTACT, TODAY

marker = pathlib.Path(sys.argv[5])

def hang(*args):  # the child's segments never end
    marker.write_text("hanging")
    threading.Event().wait()

second_process._seal_claimed = hang  # before the fork: the child's, not this process's
real_start = second_process.SecondProcess.start.__func__

def start(cls, *args):
    second = real_start(cls, *args)
    deadline = time.monotonic() + 60
    while not marker.exists():  # the child is stuck before this process reads on
        assert time.monotonic() < deadline
        time.sleep(0.001)
    print("started and hanging")
    return second

second_process.SecondProcess.start = classmethod(start)
try:
    asyncio.run(encrypt_file(sys.argv[1], sys.argv[2], sys.argv[3], CONTACT, TODAY,
                             SegmentSizes(0, 120_000, 1)))
except IplosFault as fault:
    print(fault.message)
'''


def test_a_second_process_that_hangs_is_killed(tmp_path, key_file_path) -> None:
    """A fault in the main process's first segment while the child is stuck in a segment of
    its own: the run ends with the fault and the child is killed (without the kill, this run
    would never end)."""
    persons = [person(FNR[i % 4]) for i in range(600)]  # about 150 kB
    # after the bytes read before the fork (64 kB), before the first cut (120 kB)
    persons[350] = persons[350].replace("</Husstand>", "</Hustand>")
    (tmp_path / "data.xml").write_text(document(persons), encoding="utf-8")
    marker = tmp_path.parent / f"{tmp_path.name}-hanging"
    result = subprocess.run(
        [sys.executable, "-c", HANGING_CHILD, str(tmp_path / "data.xml"),
         str(tmp_path / "k.xml"), str(key_file_path), str(pathlib.Path(__file__).parent),
         str(marker)],
        capture_output=True, text=True, timeout=300)
    assert result.stdout.startswith("started and hanging\n"), result.stdout
    assert "\nFeil i innholdet i IPLOS filen: Starten på feltet Husstand" in result.stdout
    assert result.stderr == ""
    assert sorted(os.listdir(tmp_path)) == ["data.xml"]


def test_claims_that_do_not_fit_their_pipe_mean_one_process(runner, keys, monkeypatch) -> None:
    """A user over the kernel's pipe-user-pages-soft gets one-page pipes: the segment indices
    (four bytes each) then do not all fit before anyone reads. The write must not block for
    ever: the file is read on one process instead."""
    real_pipe = os.pipe

    def one_page_pipe() -> tuple[int, int]:
        read_end, write_end = real_pipe()
        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
        return read_end, write_end

    monkeypatch.setattr(person_segments.os, "pipe", one_page_pipe)
    text = document_bytes(1100, seed=5)  # cut at every person: more than 1024 indices
    descriptors = len(os.listdir("/proc/self/fd"))
    two = runner(text, CUTS["every person"])
    assert len(os.listdir("/proc/self/fd")) == descriptors  # both ends of the pipe closed
    assert_same(runner(text, ONE_PROCESS), two, keys)
    assert two.whole_reads == 1 and two.children == []


def test_small_files_and_utf16_are_read_on_one_process(tmp_path) -> None:
    path = tmp_path / "data.xml"
    path.write_bytes(document_bytes(300, seed=1))  # a small municipality: about 150 kB
    with open(path, "rb") as handle:
        assert plan_segments(handle.fileno(), SEGMENT_SIZES) is None
        assert plan_segments(handle.fileno(), CUTS["uneven"]) is not None
    path.write_bytes(document_bytes(300, seed=1, encoding="UTF-16LE"))
    with open(path, "rb") as handle:
        assert plan_segments(handle.fileno(), CUTS["uneven"]) is None


@pytest.fixture(scope="module")
def large_file(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """Above SEGMENT_SIZES.min_file_bytes, so the command line cuts it."""
    path = tmp_path_factory.mktemp("large") / "data.xml"
    persons = SEGMENT_SIZES.min_file_bytes // 400
    path.write_bytes(document_bytes(persons, seed=2))
    assert path.stat().st_size > SEGMENT_SIZES.min_file_bytes * 1.2
    return path


def _children_of(pid: int) -> list[int]:
    try:
        text = pathlib.Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(n) for n in text.split()]


def test_ctrl_c_on_the_command_line_ends_both_processes(large_file, key_file_path,
                                                       tmp_path) -> None:
    """Ctrl-C reaches both processes (the terminal signals the process group): exit status
    130, "Avbrutt.", no file, and the second process gone with the first. The first is stopped
    once the second exists, so the signal surely finds the run under way."""
    out = tmp_path / "ut"
    out.mkdir()
    command = [sys.executable, "-m", "ipis_server", "encrypt", "--data", str(large_file),
               "--out", str(out / "k.xml"), "--keys", str(key_file_path), "--email",
               "iplos@kommune.no", "--name", "Kari", "--mobile", "912 34 567",
               "--today", TODAY.isoformat()]
    main = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (children := _children_of(main.pid)):
            assert main.poll() is None, main.communicate()
            assert time.monotonic() < deadline, "no second process started"
            time.sleep(0.001)
        os.kill(main.pid, signal.SIGSTOP)
        os.killpg(main.pid, signal.SIGINT)
        os.kill(main.pid, signal.SIGCONT)
        _, err = main.communicate(timeout=120)
    finally:
        if main.poll() is None:
            main.kill()
            main.wait()
    assert (main.returncode, err) == (130, b"Avbrutt.\n")
    assert os.listdir(out) == []
    for child in children:
        assert not pathlib.Path(f"/proc/{child}").exists()
