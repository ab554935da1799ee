"""Memory of validating an encrypted message's envelope, hostile or not (issue 7.2).

Each measurement is a fresh child process that makes its input on the fly in 1 MB pieces
(nothing is held whole, nothing read from disk) and feeds it to one parser; the figure is the
child's peak RSS (``os.wait4`` rusage, that child only) and its wall time. Inputs:

- ``normal``: a real envelope (tests/vectors/envelope/valid/golden.xml) whose TPF layer's
  CipherValue is stretched to each of ``--sizes`` MB (default 50 and 500) of base64: the
  normal large upload;
- ``attribute``: 100 MB in Fagsystem/@navn; ``comment``: a 100 MB comment after Meldingstype;
  ``navn``: 100 MB of text in Avsender/Navn.

Parsers, measured in the same run on the same inputs:

- ``floor``: only makes the input (the interpreter, both parsers' code loaded, the generator):
  the baseline;
- ``reader``: ipis_core.envelope.EnvelopeReader, the one reader (refuses the hostile ones);
- ``lxml``: lxml's feed parser with a do-nothing target, the design the send module had before
  issue 7 (it buffers a whole token before any callback).

Target (docs/drift.md: "a few MB whatever the input"): the reader's peak RSS at most 20 MB
above the floor for every input. Medians of ``--runs`` (default 3). The filler is one 1 MB
block repeated, so the times are those of cache-warm input: this bench is for memory; the
upload's speed is bench_upload.py's.

    .venv/bin/python bench/bench_envelope.py [--quick] [--sizes 50 500] [--runs 3] [--strict]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from report import Figure, Section, command_line, target  # noqa: E402

GOLDEN = REPO / "tests" / "vectors" / "envelope" / "valid" / "golden.xml"
CHUNK = 1 << 20
HOSTILE_MB = 100
TARGET_ABOVE_FLOOR_MB = 20.0
PARSERS = ("floor", "reader", "lxml")
INPUTS = {  # the cases' names in docs/ytelse.md
    "normal": "normal konvolutt, TPF-laget",
    "attribute": "i Fagsystem/@navn",
    "comment": "i en kommentar",
    "navn": "i Avsender/Navn",
}


def _split(marker: bytes) -> tuple[bytes, bytes]:
    golden = GOLDEN.read_bytes()
    at = golden.index(marker) + len(marker)
    return golden[:at], golden[at:]


def make_input(case: str, megabytes: int) -> Iterator[bytes]:
    """The input in pieces of 1 MB; ``megabytes`` of filler (10^6 bytes)."""
    golden = GOLDEN.read_bytes()
    if case == "normal":
        head, _, rest = golden.rpartition(b"<xenc:CipherValue>")
        head += b"<xenc:CipherValue>"
        tail = rest[rest.index(b"</xenc:CipherValue>") :]
        filler = b"QUJD"
    elif case == "attribute":
        head, tail = _split(b'<Fagsystem navn="')
        filler = b"P"
    elif case == "comment":
        head, tail = _split(b"</Meldingstype>")
        head += b"<!--"
        tail = b"-->" + tail
        filler = b"x"
    elif case == "navn":
        head, tail = _split(b"<Navn>")
        filler = b"A"
    else:
        raise ValueError(case)
    yield head
    block = filler * (CHUNK // len(filler))
    left = megabytes * 1_000_000
    while left > 0:
        piece = block[: min(len(block), left)]
        left -= len(piece)
        yield piece
    yield tail


def child(case: str, parser: str, megabytes: int) -> None:
    """Runs in the measured process: feed the input to one parser; print what happened.

    Every child loads both parsers first, so the floor holds the same code as the others and
    the difference is what parsing costs."""
    from lxml import etree

    from ipis_core.envelope import EnvelopeReader
    from ipis_core.faults import EncryptedMessageFault

    started = time.perf_counter()
    outcome = "angitt"
    if parser == "floor":
        for _ in make_input(case, megabytes):
            pass
    elif parser == "reader":
        reader = EnvelopeReader({"tpf-vektor"})
        try:
            for piece in make_input(case, megabytes):
                reader.feed(piece)
            reader.close()
            outcome = "godtatt"
        except EncryptedMessageFault as fault:
            outcome = f"avvist ({type(fault).__name__})"
    else:

        class Target:
            def start(self, *_: object) -> None: ...
            def end(self, *_: object) -> None: ...
            def data(self, *_: object) -> None: ...
            def comment(self, *_: object) -> None: ...
            def close(self) -> None: ...

        lxml_parser = etree.XMLParser(target=Target(), huge_tree=True, resolve_entities=False,
                                      no_network=True, load_dtd=False)
        try:
            for piece in make_input(case, megabytes):
                lxml_parser.feed(piece)
            lxml_parser.close()
            outcome = "godtatt"
        except etree.XMLSyntaxError:
            outcome = "avvist (XMLSyntaxError)"
    print(json.dumps({"seconds": time.perf_counter() - started, "outcome": outcome}))


def signed(megabytes: float) -> str:
    return f"{megabytes:+.1f}".replace(".", ",")


def measure(case: str, parser: str, megabytes: int) -> tuple[float, float, str]:
    """Peak RSS (MB) and seconds of one child run."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", case, parser, str(megabytes)],
        stdout=subprocess.PIPE, cwd=REPO,
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise RuntimeError(f"{case}/{parser} stoppet med status {status}")
    result = json.loads(output)
    return usage.ru_maxrss / 1024, float(result["seconds"]), str(result["outcome"])


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        child(argv[1], argv[2], int(argv[3]))
        return 0
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--quick", action="store_true",
                         help="each measurement once, 50 MB (--sizes ignored)")
    options.add_argument("--sizes", type=int, nargs="+", default=[50, 500],
                         help="sizes (MB) of the normal envelope")
    options.add_argument("--runs", type=int, default=3, help="runs of each measurement")
    options.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args, _ = options.parse_known_args(argv)
    runs = 1 if args.quick else args.runs
    cases = [("normal", size) for size in ([50] if args.quick else args.sizes)]
    cases += [(hostile, HOSTILE_MB) for hostile in ("attribute", "comment", "navn")]
    print(f"{sys.executable} bench/bench_envelope.py; {runs} kjøring(er) per måling; "
          f"toppminne (RSS) per barneprosess, median")
    missed = []
    section = Section("envelope", "Minnet til konvoluttleseren, ondsinnet inndata eller ikke",
                      command_line("bench/bench_envelope.py", argv))
    for case, megabytes in cases:
        figures = {}
        for parser in PARSERS:
            samples = [measure(case, parser, megabytes) for _ in range(runs)]
            figures[parser] = (
                statistics.median(s[0] for s in samples),
                statistics.median(s[1] for s in samples),
                samples[0][2],
            )
        floor_rss = figures["floor"][0]
        print(f"{case} ({megabytes} MB):")
        for parser in PARSERS:
            rss, seconds, outcome = figures[parser]
            above = rss - floor_rss
            print(f"  {parser:6} {rss:7.1f} MB  ({above:+6.1f} MB over gulvet, "
                  f"{rss / floor_rss:5.2f}x)  {seconds:6.2f} s  {outcome}")
        reader_above = figures["reader"][0] - floor_rss
        if reader_above > TARGET_ABOVE_FLOOR_MB:
            missed.append(f"{case}: leseren bruker {reader_above:.1f} MB over gulvet")
        size = f"{megabytes} MB {INPUTS[case]}"
        section.add(Figure(
            "leseren, største RSS", size, figures["reader"][0], "MB",
            "gulvet (samme barneprosess uten tolker)", floor_rss, runs=runs,
            note=f"{figures['reader'][2]}; {signed(reader_above)} MB over gulvet; "
                 + target("≤ 20 MB over gulvet", reader_above <= TARGET_ABOVE_FLOOR_MB)))
        section.add(Figure(
            "leseren, største RSS", size, figures["reader"][0], "MB",
            "lxml feed-parser med tomt target", figures["lxml"][0], runs=runs,
            note=f"lxml {figures['lxml'][2]}, {signed(figures['lxml'][0] - floor_rss)} MB over "
                 "gulvet"))
    section.note("Hver måling er en ny barneprosess (`os.wait4`-rusage) som lager inndataene "
                 "1 MB om gangen og mater én tolker; gulvet har begge tolkernes kode lastet. lxml "
                 "er utformingen sendemodulen hadde før issue 7.")
    section.write()
    for line in missed:
        print(f"TARGET MISSED: {line}")
    return 1 if (missed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
