"""Each benchmark's section of docs/ytelse.md (written by ``make bench``, issue 7, point 16).

A benchmark builds a ``Section`` of figures, each with what was measured, the command, the
input size, the median, the baseline measured in the same run, and their ratio, and calls
``Section.write()``. bench/run.py collects the sections of the benchmarks it ran and puts each
between its markers in docs/ytelse.md, with the machine, so a partial run replaces only its
own sections. A benchmark run on its own writes its section to bench/out/report/ all the same.

    from report import Figure, Section
    section = Section("upload", "Opplasting til kvittering", "python bench/bench_upload.py")
    section.add(Figure("50 MB til kvittering", "50 MB", 1.4, "s", "kopi + SHA-256 + fsync",
                       0.3, runs=3))
    section.write()
"""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REPORT_ENV = "IPIS_BENCH_REPORT"  # set by bench/run.py: the folder of this run's sections
DEFAULT_FOLDER = REPO / "bench" / "out" / "report"
DOC = REPO / "docs" / "ytelse.md"


@dataclass(frozen=True)
class Figure:
    what: str
    input_size: str  # e.g. "50 MB", "20 × 20 MB"
    median: float
    unit: str  # "s", "MB", "MB/s"
    baseline_what: str  # what the baseline is, measured in the same run
    baseline: float
    runs: int = 1
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.median / self.baseline if self.baseline else float("nan")

    def row(self) -> str:
        return (
            f"| {self.what} | {self.input_size} | {number(self.median)} {self.unit} "
            f"(median av {self.runs}) | {self.baseline_what}: {number(self.baseline)} "
            f"{self.unit} | {number(self.ratio)} | {self.note} |"
        )


@dataclass
class Section:
    """One benchmark's part of docs/ytelse.md."""

    name: str  # the marker: bench_<name>.py
    title: str
    command: str
    figures: list[Figure] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # free text after the table

    def add(self, figure: Figure) -> None:
        self.figures.append(figure)

    def note(self, line: str) -> None:
        self.lines.append(line)

    def markdown(self) -> str:
        parts = [f"## {self.title}", "", f"Kommando: `{self.command}`", ""]
        if self.figures:
            parts += [
                "| Måling | Inndata | Median | Grunnlinje (samme kjøring) | Forhold | Merknad |",
                "|---|---|---|---|---|---|",
                *(figure.row() for figure in self.figures),
                "",
            ]
        parts += self.lines
        return "\n".join(parts).rstrip() + "\n"

    def write(self) -> Path:
        folder = Path(os.environ.get(REPORT_ENV) or DEFAULT_FOLDER)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.name}.md"
        path.write_text(self.markdown(), encoding="utf-8")
        return path


def target(goal: str, met: bool) -> str:
    """The note on a figure with a target: ``mål: ≤ 3× gulvet — nådd`` (or ``ikke nådd``)."""
    return f"mål: {goal} — {'nådd' if met else 'ikke nådd'}"


def number(value: float) -> str:
    """A figure as docs/ytelse.md writes it (Norwegian decimal comma)."""
    return f"{value:.2f}".replace(".", ",")


def size(megabytes: float, persons: int | None = None) -> str:
    """An input size as docs/ytelse.md writes it: ``53,0 MB (110 000 personer)``."""
    text = f"{megabytes:.1f} MB".replace(".", ",")
    return text + (f" ({persons:,} personer)".replace(",", " ") if persons is not None else "")


def command_line(script: str, argv: list[str]) -> str:
    """How to run this measurement again, with the arguments this run had."""
    return " ".join([".venv/bin/python", script, *argv])


def machine() -> str:
    """The machine the figures were measured on, in one line."""
    model = ""
    try:
        found = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        model = found.group(1).strip() if found else ""
    except OSError:
        pass
    memory = ""
    try:
        found = re.search(r"MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text())
        memory = f", {int(found.group(1)) / 1024 / 1024:.0f} GiB minne" if found else ""
    except OSError:
        pass
    load = ", load {:.1f}/{:.1f}/{:.1f}".format(*os.getloadavg())
    return (f"{model or platform.processor()}, {os.cpu_count()} kjerner{memory}{load}; "
            f"Python {platform.python_version()}, {platform.system()} {platform.release()}")


def marker(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"


def splice(document: str, name: str, body: str) -> str:
    """Put ``body`` between the markers of ``name``, appending them when new."""
    start, end = marker(name)
    block = f"{start}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(document):
        return pattern.sub(lambda _m: block, document)
    return document.rstrip() + "\n\n" + block + "\n"
