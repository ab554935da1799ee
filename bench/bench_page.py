"""IPLOS Krypt (dist/ipis-krypt.html) in headless Chromium, beside native ``ipis encrypt``.

Everything in one run, on the same machine and the same generated files, so the ratios hold
even when the machine is busy:

- ready: from opening the file (navigation start) to Python answering in the worker, the
  page's own figure (``data-ready-ms``), median of several fresh browser contexts, with the
  page's start-up phases;
- 50 MB: native ``ipis encrypt`` and the page (click on «Utfør kryptering» to the download
  saved), interleaved run by run; medians, and the ratio page/CLI of the medians; wall and CPU
  (all Chromium processes; the CLI child's own rusage). With ``--baseline OLD.html`` an older
  build is measured in the same runs too;
- large, with the save dialog (not with ``--quick``): the largest input below the TPF layer's
  size limit (docs/formater.md), ~434 MB in, ~957 MB out, saved through the File System Access
  path. Headless Chromium cannot click its native save dialog, so ``showSaveFilePicker`` is
  replaced by a function returning a real FileSystemFileHandle of the origin private file system
  (OPFS): the page then writes through a real FileSystemWritableFileStream to a real file on
  disk, as it would to the chosen one. OPFS needs an http origin, so the page is served from
  127.0.0.1 here (the same bytes; the browser tests show it behaves the same from file://), and
  a persistent profile (Playwright's ordinary contexts are off the record, where Chromium keeps
  OPFS files in the browser process's memory).
  Measured: time, the peak RSS from the click on of the tab (renderer with both workers), of the
  browser process and of all Chromium processes (sampled from /proc every 0.25 s), the tab's and
  the browser process's RSS at the click, and the written file's size
  against the size the page reports. The download path on the same file is measured beside it.

Targets (issue 10): ready <= 1 s, page/CLI <= 2x on 50 MB, the large file saved with the save
dialog without holding its output in memory (the tab and the browser process together grow
during the run by less than half the output over their RSS at the click; the download path is
measured beside it, without a target).

    python bench/bench_page.py                  # ready x5, 50 MB x5, large x1 each way
    python bench/bench_page.py --quick          # ready x3, 50 MB x1
    python bench/bench_page.py --quick --sizes small   # ready x3, 300 persons x1: a quick look
    python bench/bench_page.py --baseline /tmp/old-ipis-krypt.html

``--sizes`` names the inputs as bench_encrypt.py does: ``small`` (300 persons) and ``50`` are
run interleaved with the CLI, ``500`` is the large file (not with ``--quick``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import http.server
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "browser"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from krypt_testlib import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    CONTACT,
    PAGE,
    Krypt,
    open_krypt,
    open_krypt_in,
)
from playwright.sync_api import Browser, Playwright, sync_playwright  # noqa: E402

from ipis_core.keyfile import render_key_file  # noqa: E402
from ipis_core.keygen import generate_keys  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from report import Figure, Section, command_line, number, target  # noqa: E402
from report import size as input_size  # noqa: E402

OUT = ROOT / "bench" / "out"
WORK = OUT / "page"
# The same inputs as bench_encrypt.py (seed 7); "500" is the largest below the size limit.
PERSONS = {"small": 300, "50": 110_000, "500": 900_000}
MB = 1_000_000
# html_mb: the limit tests/browser/test_build_page.py checks
TARGETS = {"ready_s": 1.0, "ratio": 2.0, "html_mb": 15.0}
OPFS_NAME = "bench-kryptert.xml"
# «Søk…» gives a real file handle of the origin private file system (see the docstring).
OPFS_PICKER = f"""
  window.showSaveFilePicker = async () => {{
    const folder = await navigator.storage.getDirectory();
    return folder.getFileHandle('{OPFS_NAME}', {{ create: true }});
  }};"""


def ipis() -> list[str]:
    script = pathlib.Path(sys.executable).with_name("ipis")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ipis_server"]


def make_input(size: str) -> pathlib.Path:
    persons = PERSONS[size]
    path = OUT / f"iplos-{persons}.xml"
    if not path.exists():
        print(f"  generating {path.name} ({persons} persons) ...", flush=True)
        OUT.mkdir(parents=True, exist_ok=True)
        subprocess.run([*ipis(), "demo-data", "--persons", str(persons), "--out", str(path),
                        "--seed", "7"], check=True, stdout=subprocess.DEVNULL)
    return path


def make_key_file() -> pathlib.Path:
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / "nokkelfil.xml"
    keys = generate_keys(dt.date.today(), bits=3072)
    path.write_bytes(render_key_file(keys.key_file))
    return path


# --- measuring Chromium from /proc (read only) ------------------------------------------------


def _parents() -> dict[str, str]:
    parents = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as handle:
                parents[entry.name] = handle.read().rsplit(")", 1)[1].split()[1]
        except (OSError, IndexError):
            continue
    return parents


def _chromium_processes() -> Iterator[tuple[str, bytes]]:
    """This benchmark's own Chromium processes (descendants of this process: Playwright's
    driver starts the browser), not those of other jobs on the machine."""
    parents = _parents()
    me = str(os.getpid())

    def ours(pid: str) -> bool:
        for _ in range(64):
            pid = parents.get(pid, "0")
            if pid == me:
                return True
            if pid in ("0", "1"):
                return False
        return False

    for pid in parents:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                cmdline = handle.read()
        except OSError:
            continue
        if b"chrom" in cmdline[:200] and ours(pid):
            yield pid, cmdline


class ChromiumMemory:
    """Peak RSS of Chromium: the largest renderer (the tab, with its workers), the browser
    process (which holds Blob data and downloads), and the sum over all Chromium processes;
    and the peak anonymous RSS of the sum (heap, not file pages mapped)."""

    def __init__(self) -> None:
        self.peak_renderer_mb = 0.0
        self.peak_browser_mb = 0.0
        self.peak_total_mb = 0.0
        self.peak_anonymous_mb = 0.0
        self.renderer_at_click_mb = 0.0  # the tab just before the run (``clicked``)
        self.browser_at_click_mb = 0.0  # the browser process then
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def clicked(self) -> None:
        """The run starts now: peaks count from here, and the tab's RSS now is the baseline
        its growth is measured against (Pyodide, the page and both workers, started)."""
        with self._lock:
            self.peak_renderer_mb = self.peak_browser_mb = 0.0
            self.peak_total_mb = self.peak_anonymous_mb = 0.0
            self._sample_once()
            self.renderer_at_click_mb = self.peak_renderer_mb
            self.browser_at_click_mb = self.peak_browser_mb

    @property
    def renderer_growth_mb(self) -> float:
        """How far the tab grew during the run above its RSS at the click."""
        return self.peak_renderer_mb - self.renderer_at_click_mb

    @property
    def growth_mb(self) -> float:
        """The tab's growth plus the browser process's (which holds Blob data and downloads):
        each peak above its RSS at the click, the peaks added even if they were not at the same
        time (so never less than the browser's memory grew at any one moment)."""
        return self.renderer_growth_mb + self.peak_browser_mb - self.browser_at_click_mb

    def __enter__(self) -> ChromiumMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                self._sample_once()
            self._stop.wait(0.25)

    def _sample_once(self) -> None:
        total = renderer = browser = anonymous = 0.0
        for pid, cmdline in _chromium_processes():
            try:
                with open(f"/proc/{pid}/status") as handle:
                    fields = {line.split(":")[0]: int(line.split()[1]) * 1024 / MB
                              for line in handle if line.startswith(("VmRSS:", "RssAnon:"))}
            except (OSError, IndexError, ValueError):
                continue
            rss = fields.get("VmRSS", 0.0)
            anonymous += fields.get("RssAnon", 0.0)
            total += rss
            if b"--type=renderer" in cmdline:
                renderer = max(renderer, rss)
            elif b"--type=" not in cmdline:
                browser = max(browser, rss)
        self.peak_total_mb = max(self.peak_total_mb, total)
        self.peak_anonymous_mb = max(self.peak_anonymous_mb, anonymous)
        self.peak_renderer_mb = max(self.peak_renderer_mb, renderer)
        self.peak_browser_mb = max(self.peak_browser_mb, browser)

    def line(self) -> str:
        return (f"peak RSS from the click: tab {self.peak_renderer_mb:.0f} MB (at the click "
                f"{self.renderer_at_click_mb:.0f} MB), browser process "
                f"{self.peak_browser_mb:.0f} MB (at the click {self.browser_at_click_mb:.0f} MB), "
                f"all Chromium {self.peak_total_mb:.0f} MB "
                f"(anonymous {self.peak_anonymous_mb:.0f} MB)")


def chromium_cpu_seconds() -> float:
    """User + system CPU seconds used so far by every Chromium process."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid, _ in _chromium_processes():
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return total / ticks


# --- one encryption each way ------------------------------------------------------------------


@dataclass
class Run:
    wall: float
    cpu: float
    output_bytes: int = 0
    persons: str = ""
    detail: str = ""
    wasm_heap_mb: float = 0.0  # Pyodide's heap after the run (the save dialog's runs)


def native_encrypt(source: pathlib.Path, key_file: pathlib.Path) -> Run:
    """``ipis encrypt``: wall seconds and the child's own CPU seconds (rusage)."""
    target = WORK / "native.xml"
    target.unlink(missing_ok=True)
    started = time.perf_counter()
    child = subprocess.Popen([*ipis(), "encrypt", "--data", str(source), "--out", str(target),
                              "--keys", str(key_file), "--email", CONTACT["email"], "--name",
                              CONTACT["name"], "--mobile", CONTACT["mobile"]],
                             stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("ipis encrypt failed")
    size = target.stat().st_size
    target.unlink()
    return Run(seconds, usage.ru_utime + usage.ru_stime, size)


def page_download(krypt: Krypt, source: pathlib.Path, key_file: pathlib.Path,
                  memory: ChromiumMemory | None = None) -> Run:
    """From the click to the download saved on disk (the download path)."""
    krypt.fill(data=source, out="kryptert.xml", keys=key_file)
    target = WORK / "browser.xml"
    target.unlink(missing_ok=True)
    if memory is not None:
        memory.clicked()
    cpu_before = chromium_cpu_seconds()
    started = time.perf_counter()
    with krypt.page.expect_download(timeout=1_800_000) as download_info:
        outcome = krypt.run(timeout=1800)
    if outcome != "done":
        raise SystemExit(f"the page did not encrypt: {krypt.visible_errors()}")
    download_info.value.save_as(target)
    seconds = time.perf_counter() - started
    cpu = chromium_cpu_seconds() - cpu_before
    size = target.stat().st_size
    target.unlink()
    download_info.value.delete()
    return Run(seconds, cpu, size, krypt.page.text_content("#r-persons") or "",
               krypt.page.get_attribute("html", "data-run-timings") or "")


def page_save_dialog(krypt: Krypt, source: pathlib.Path, key_file: pathlib.Path,
                     memory: ChromiumMemory | None = None) -> Run:
    """From the click to the file closed, written through the save dialog's path (OPFS)."""
    page = krypt.page
    page.evaluate(f"""async () => {{
        const folder = await navigator.storage.getDirectory();
        try {{ await folder.removeEntry('{OPFS_NAME}'); }} catch (error) {{}}
    }}""")
    krypt.fill(data=source, out="", keys=key_file)
    page.get_by_role("button", name="Søk…").click()
    deadline = time.monotonic() + 30
    while page.input_value("#out") != OPFS_NAME:
        if time.monotonic() > deadline:
            raise SystemExit("the save dialog did not answer")
        time.sleep(0.05)
    if memory is not None:
        memory.clicked()
    cpu_before = chromium_cpu_seconds()
    started = time.perf_counter()
    outcome = krypt.run(timeout=1800)
    # Builds before issue 10 said «ready» before the file was written: wait for the outcome.
    deadline = time.monotonic() + 1800
    while not outcome and time.monotonic() < deadline:
        time.sleep(0.05)
        outcome = page.get_attribute("html", "data-outcome") or ""
    seconds = time.perf_counter() - started
    cpu = chromium_cpu_seconds() - cpu_before
    if outcome != "done":
        raise SystemExit(f"the page did not encrypt: {krypt.visible_errors()}")
    written = page.evaluate(f"""async () => {{
        const folder = await navigator.storage.getDirectory();
        const file = await (await folder.getFileHandle('{OPFS_NAME}')).getFile();
        const size = file.size;
        await folder.removeEntry('{OPFS_NAME}');
        return size;
    }}""")
    reported = page.text_content("#r-size") or ""
    return Run(seconds, cpu, int(written), page.text_content("#r-persons") or "",
               f"reported size: {reported}", wasm_heap_mb=pyodide_heap_mb(krypt))


# Pyodide's WebAssembly memory in the worker (web/worker.js's ``pyodide``; ``_module`` is
# Pyodide's own, so a build without it reads 0): it only grows, so after a run it is the most
# the run's Python held at once.
_HEAP_SCRIPT = (
    "() => (typeof pyodide !== 'undefined' && pyodide && pyodide._module)"
    " ? pyodide._module.HEAP8.length : 0"
)


def pyodide_heap_mb(krypt: Krypt) -> float:
    """The largest Pyodide heap among the page's workers (the sealer has none)."""
    sizes = [0]
    for worker in krypt.page.workers:
        try:
            sizes.append(int(worker.evaluate(_HEAP_SCRIPT)))
        except Exception:  # a worker gone: nothing to read
            continue
    return max(sizes) / MB


# --- serving the page for OPFS ----------------------------------------------------------------


@contextmanager
def served(page: pathlib.Path) -> Iterator[str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(page.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{page.name}"
    finally:
        server.shutdown()
        server.server_close()


# --- the report -------------------------------------------------------------------------------


@dataclass
class Pages:
    """The page under test, and optionally a baseline build measured in the same run."""

    builds: dict[str, pathlib.Path]
    ready: dict[str, list[float]] = field(default_factory=dict)
    phases: dict[str, list[dict[str, int]]] = field(default_factory=dict)
    runs: dict[str, dict[str, list[Run]]] = field(default_factory=dict)  # size -> build -> runs
    native: dict[str, list[Run]] = field(default_factory=dict)  # size -> the CLI's runs


def measure_ready(browser: Browser, pages: Pages, count: int) -> None:
    for _ in range(count):
        for name, path in pages.builds.items():
            krypt = open_krypt(browser, path.as_uri())
            pages.ready.setdefault(name, []).append(
                float(krypt.page.get_attribute("html", "data-ready-ms") or 0) / 1000)
            pages.phases.setdefault(name, []).append(
                json.loads(krypt.page.get_attribute("html", "data-timings") or "{}"))
            krypt.close()


def median_phases(phases: list[dict[str, int]]) -> str:
    keys = [k for k in phases[0] if all(k in p for p in phases)]
    return ", ".join(f"{k} {statistics.median(p[k] for p in phases):.0f}" for k in keys)


@dataclass
class Large:
    """One build's large file, both ways, with the peak RSS lines."""

    name: str
    save_dialog: Run
    save_dialog_memory: ChromiumMemory
    download: Run
    download_memory: ChromiumMemory


def large_runs(playwright: Playwright, browser: Browser, pages: Pages, source: pathlib.Path,
               key_file: pathlib.Path) -> tuple[list[str], list[Large]]:
    lines = []
    measured = []
    for name, path in pages.builds.items():
        work = pathlib.Path(tempfile.mkdtemp(prefix="ipis-bench-"))
        staged = work / "ipis-krypt.html"
        shutil.copyfile(path, staged)
        with served(staged) as url:
            context = playwright.chromium.launch_persistent_context(
                work / "profil", executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context.add_init_script(OPFS_PICKER)
            krypt = open_krypt_in(context, url, served=True)
            with ChromiumMemory() as memory:
                run = page_save_dialog(krypt, source, key_file, memory)
            krypt.close()
        shutil.rmtree(work)
        lines.append(f"  {name}, save dialog (OPFS): {run.wall:.1f} s, {run.persons} persons, "
                     f"written {run.output_bytes / MB:.1f} MB ({run.detail}); {memory.line()}; "
                     f"Pyodide's heap after the run {run.wasm_heap_mb:.0f} MB")
        print(lines[-1], flush=True)
        saved, saved_memory = run, memory
        krypt = open_krypt(browser, path.as_uri())
        with ChromiumMemory() as memory:
            run = page_download(krypt, source, key_file, memory)
        krypt.close()
        lines.append(f"  {name}, download: {run.wall:.1f} s, output {run.output_bytes / MB:.1f} "
                     f"MB; {memory.line()}")
        print(lines[-1], flush=True)
        measured.append(Large(name, saved, saved_memory, run, memory))
    return lines, measured


def ram(memory: ChromiumMemory) -> str:
    """Peak RSS in docs/ytelse.md's words."""
    return (f"største RSS fra klikket: fanen {memory.peak_renderer_mb:.0f} MB (ved klikket "
            f"{memory.renderer_at_click_mb:.0f} MB), nettleserprosessen "
            f"{memory.peak_browser_mb:.0f} MB (ved klikket {memory.browser_at_click_mb:.0f} MB), "
            f"hele Chromium {memory.peak_total_mb:.0f} MB; vekst, fanen og nettleserprosessen "
            f"til sammen: {memory.growth_mb:.0f} MB")


def interleaved(browser: Browser, pages: Pages, size: str, runs: int, source: pathlib.Path,
                key_file: pathlib.Path) -> None:
    """The CLI and each page build in turn, run after run, so load hits them alike."""
    opened = {name: open_krypt(browser, path.as_uri()) for name, path in pages.builds.items()}
    native = pages.native.setdefault(size, [])
    builds = pages.runs.setdefault(size, {})
    for attempt in range(runs):
        native.append(native_encrypt(source, key_file))
        line = [f"{label(size)} run {attempt + 1}: CLI {native[-1].wall:.2f} s"]
        for name, krypt in opened.items():
            run = page_download(krypt, source, key_file)
            builds.setdefault(name, []).append(run)
            line.append(f"{name} {run.wall:.2f} s ({run.persons} persons)")
        print(", ".join(line) + f" (load {os.getloadavg()[0]:.1f})", flush=True)
        print(f"  in the page (ms): {builds['page'][-1].detail}", flush=True)
    for krypt in opened.values():
        krypt.close()


def label(size: str) -> str:
    return f"{size} MB" if size.isdigit() else f"{size} ({PERSONS[size]} persons)"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="ready x3, each size once, no large file")
    parser.add_argument("--runs", type=int, default=0,
                        help="runs of each interleaved size (default 5, quick 1)")
    parser.add_argument("--baseline", type=pathlib.Path, metavar="OLD.html",
                        help="an older build, measured beside")
    parser.add_argument("--sizes", nargs="+", default=["50", "500"],
                        help="small (300 persons) and/or 50 run interleaved with the CLI; 500 "
                             "is the large file")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--large-only", action="store_true", help="only the large file")
    args = parser.parse_args(argv)
    sizes = [s for a in args.sizes for s in a.split(",")]
    unknown = [s for s in sizes if s not in PERSONS]
    if unknown:
        parser.error(f"unknown size {unknown[0]!r}: one of {', '.join(PERSONS)}")
    runs = args.runs or (1 if args.quick else 5)
    beside = [] if args.large_only else [s for s in PERSONS if s in sizes and s != "500"]
    large_wanted = args.large_only or ("500" in sizes and not args.quick)
    if not PAGE.exists():
        print("dist/ipis-krypt.html mangler: kjør `make page`", file=sys.stderr)
        return 1
    builds = {"page": PAGE}
    if args.baseline:
        builds["baseline"] = args.baseline.resolve()
    pages = Pages(builds)
    key_file = make_key_file()
    sources = {size: make_input(size) for size in beside}
    for source in sources.values():
        source.read_bytes()  # page cache warm for every side
    large: list[str] = []
    measured_large: list[Large] = []
    native_large: Run | None = None
    source_large = make_input("500") if large_wanted else None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        if not args.large_only:
            measure_ready(browser, pages, 3 if args.quick else 5)
            for size, source in sources.items():
                interleaved(browser, pages, size, runs, source, key_file)
        if source_large is not None:
            large, measured_large = large_runs(playwright, browser, pages, source_large,
                                               key_file)
            native_large = native_encrypt(source_large, key_file)
            large.append(f"  CLI: {native_large.wall:.1f} s, output "
                         f"{native_large.output_bytes / MB:.1f} MB "
                         f"(input {source_large.stat().st_size / MB:.1f} MB)")
        browser.close()
    section = Section("page", "IPLOS Krypt i nettleseren mot ipis encrypt",
                      command_line("bench/bench_page.py", argv))
    if source_large is not None and native_large is not None:
        add_large(section, source_large, measured_large, native_large)
    if args.large_only:
        print("\n".join(["large file:", *large]))
        section.note(LARGE_NOTE)
        section.write()
        missed = large_missed(measured_large)
    else:
        missed = report(pages, sources, large, section) + large_missed(measured_large)
        section.write()
    for line in missed:
        print(f"TARGET MISSED: {line}")
    if not missed:
        print("all targets met")
    return 1 if missed and args.strict else 0


LARGE_NOTE = ("Den store filen skrives gjennom en ekte FileSystemFileHandle i opprinnelsens "
              "private filsystem (headless Chromium kan ikke klikke i den innebygde "
              "lagre-dialogen), med siden servert fra 127.0.0.1. Målet er at nettleseren ikke "
              "holder på utdataene: at fanen og nettleserprosessen til sammen vokser med mindre "
              "enn halvparten av den krypterte filens størrelse under kjøringen, over det de "
              "brukte da det ble klikket (Pyodide, siden og begge arbeiderne var da startet; "
              "samme kjøring). Nedlastingen er målt ved siden av, uten mål: der holder "
              "nettleserprosessen filen.")


def holds_output(memory: ChromiumMemory, run: Run) -> bool:
    """The target of the large file: during the run the tab and the browser process together
    grow by less than half the output over their RSS at the click, so the output is not held.
    Until 2026-11-26 the target was the tab's whole peak under half the output: that counted
    the ~300 MB the tab holds before any run (Pyodide, the page and both workers) against it,
    and it left out the browser process, where a download's data is kept."""
    return memory.growth_mb >= run.output_bytes / MB / 2


def large_missed(measured: list[Large]) -> list[str]:
    """The save dialog's path holds no output (the download path is measured beside it)."""
    missed = []
    for large in measured:
        if large.name == "page" and holds_output(large.save_dialog_memory, large.save_dialog):
            missed.append(f"large file, save dialog: the tab and browser process grew by "
                          f"{large.save_dialog_memory.growth_mb:.0f} MB for "
                          f"{large.save_dialog.output_bytes / MB:.0f} MB of output")
    return missed


def add_large(section: Section, source: pathlib.Path, measured: list[Large],
              native: Run) -> None:
    """The large file each way against the CLI on the same file, one run each."""
    size = input_size(source.stat().st_size / MB, PERSONS["500"])
    for large in measured:
        build = "siden" if large.name == "page" else "eldre bygg (--baseline)"
        for way, run, memory in (("lagre-dialogen (OPFS)", large.save_dialog,
                                  large.save_dialog_memory),
                                 ("nedlasting", large.download, large.download_memory)):
            note = f"skrevet {input_size(run.output_bytes / MB)}; {ram(memory)}"
            if run is large.save_dialog:
                if run.wasm_heap_mb:
                    note += f"; Pyodides minne etter kjøringen: {run.wasm_heap_mb:.0f} MB"
                note += "; " + target("veksten under halve utdataene",
                                      not holds_output(memory, run))
            section.add(Figure(f"{build}, stor fil gjennom {way}", size, run.wall, "s",
                               "ipis encrypt av samme fil", native.wall, note=note))


def report(pages: Pages, sources: dict[str, pathlib.Path], large: list[str],
           section: Section) -> list[str]:
    html_mb = PAGE.stat().st_size / MB
    print()
    print(f"IPLOS Krypt in headless Chromium ({os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.2f} at the end)")
    print(f"  HTML file: {html_mb:.2f} MB")
    for name in pages.builds:
        ready = pages.ready[name]
        print(f"  ready, {name}: median {statistics.median(ready):.2f} s of {len(ready)} "
              f"({', '.join(f'{r:.2f}' for r in ready)}); phases (ms): "
              f"{median_phases(pages.phases[name])}")
    missed = []
    for size, source in sources.items():
        native = pages.native[size]
        native_wall = statistics.median(r.wall for r in native)
        native_cpu = statistics.median(r.cpu for r in native)
        measured = input_size(source.stat().st_size / MB, PERSONS[size])
        print(f"  {label(size)} ({source.stat().st_size / MB:.1f} MB), median of {len(native)}: "
              f"CLI {native_wall:.2f} s wall, {native_cpu:.2f} s CPU")
        builds = pages.runs[size]
        for name, runs in builds.items():
            wall = statistics.median(r.wall for r in runs)
            cpu = statistics.median(r.cpu for r in runs)
            print(f"    {name}: {wall:.2f} s wall ({wall / native_wall:.2f}x the CLI), "
                  f"{cpu:.2f} s CPU ({cpu / native_cpu:.2f}x)")
            build = "siden" if name == "page" else "eldre bygg (--baseline)"
            met = wall / native_wall <= TARGETS["ratio"]
            section.add(Figure(f"{build}, klikk til nedlasting lagret", measured, wall, "s",
                               "ipis encrypt av samme fil", native_wall, runs=len(runs),
                               note=target("≤ 2× CLI", met) if size == "50"
                               else "målet ≤ 2× CLI gjelder 50 MB"))
            section.add(Figure(f"{build}, CPU (alle Chromium-prosesser)", measured, cpu, "s",
                               "ipis encrypt, CPU", native_cpu, runs=len(runs)))
        if "baseline" in builds:
            page = statistics.median(r.wall for r in builds["page"])
            baseline = statistics.median(r.wall for r in builds["baseline"])
            print(f"    page/baseline: {page / baseline:.2f}x")
            section.add(Figure("siden mot eldre bygg", measured, page, "s",
                               "eldre bygg (--baseline), samme kjøringer", baseline,
                               runs=len(builds["page"])))
        if size == "50":
            ratio = statistics.median(r.wall for r in builds["page"]) / native_wall
            if ratio > TARGETS["ratio"]:
                missed.append(f"page/CLI {ratio:.2f}x > {TARGETS['ratio']}x")
    if large:
        print("  large file:")
        for line in large:
            print(line)
    ready_s = statistics.median(pages.ready["page"])
    if ready_s > TARGETS["ready_s"]:
        missed.append(f"ready {ready_s:.2f} s > {TARGETS['ready_s']} s")
    if html_mb > TARGETS["html_mb"]:
        missed.append(f"HTML {html_mb:.2f} MB > {TARGETS['html_mb']} MB")
    if "baseline" in pages.ready:
        section.add(Figure("siden, klar (data-ready-ms)", "ingen fil",
                           ready_s, "s", "eldre bygg (--baseline), samme kjøringer",
                           statistics.median(pages.ready["baseline"]),
                           runs=len(pages.ready["page"]),
                           note=target("≤ 1 s", ready_s <= TARGETS["ready_s"])))
    section.note(f"Klar (fra åpning til Python svarer i arbeideren, sidens `data-ready-ms`): "
                 f"median {number(ready_s)} s av {len(pages.ready['page'])} nye "
                 f"nettleserkontekster; {target('≤ 1 s', ready_s <= TARGETS['ready_s'])}. "
                 f"Fasene (ms): {median_phases(pages.phases['page'])}.")
    section.note("")
    html_target = f"≤ {TARGETS['html_mb']:g} MB"  # the label names the limit checked
    section.note(f"HTML-filen: {number(html_mb)} MB; "
                 f"{target(html_target, html_mb <= TARGETS['html_mb'])}.")
    if large:
        section.note("")
        section.note(LARGE_NOTE)
    return missed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
