"""IPLOS Krypt (dist/ipis-krypt.html) in headless Chromium, beside native ``ipis encrypt``.

Measured in one run on the same machine and the same generated files:
- ready: from opening the file (navigation start) to Python answering in the worker, the page's
  own figure (``data-ready-ms``), median of several fresh browser contexts;
- 50 MB: from the click on «Utfør kryptering» to the download saved, in the page; and native
  ``ipis encrypt`` on the same file (median of ``--runs``); the ratio browser/native;
- 500 MB (not with ``--quick``): completes in the page, with the peak memory (RSS) of all
  Chromium processes, and native for comparison;
- the HTML file's size.

Targets (issue 3): ready <= 3 s, 50 MB <= 8 s, browser/native <= 3x, file <= 12 MB, 500 MB
completes.

    python bench/bench_page.py            # ready x5, 50 MB x3, 500 MB x1
    python bench/bench_page.py --quick    # ready x3, 50 MB x1
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import pathlib
import statistics
import subprocess
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "browser"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from krypt_testlib import CHROMIUM, CHROMIUM_ARGS, CONTACT, PAGE, open_krypt  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from ipis_core.keyfile import render_key_file  # noqa: E402
from ipis_core.keygen import generate_keys  # noqa: E402

OUT = ROOT / "bench" / "out"
WORK = OUT / "page"
PERSONS = {50: 110_000, 500: 1_100_000}  # the same inputs as bench_encrypt.py (seed 7)
MB = 1_000_000
TARGETS = {"ready_s": 3.0, "50mb_s": 8.0, "ratio": 3.0, "html_mb": 12.0}


def ipis() -> list[str]:
    script = pathlib.Path(sys.executable).with_name("ipis")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ipis_server"]


def make_input(size: int) -> pathlib.Path:
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


class ChromiumMemory:
    """Peak RSS of Chromium, sampled from /proc (read only): the largest renderer (the page and
    its worker: the tab), the browser process (which holds Blob data and the download), and
    the sum over all Chromium processes."""

    def __init__(self) -> None:
        self.peak_renderer_mb = 0.0
        self.peak_browser_mb = 0.0
        self.peak_total_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> ChromiumMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            total = renderer = browser = 0.0
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                        cmdline = handle.read()
                    if b"chromium" not in cmdline[:200]:
                        continue
                    with open(f"/proc/{entry.name}/status") as handle:
                        rss = next(
                            (int(line.split()[1]) * 1024 / MB for line in handle
                             if line.startswith("VmRSS:")), 0.0,
                        )
                except OSError:
                    continue
                total += rss
                if b"--type=renderer" in cmdline:
                    renderer = max(renderer, rss)
                elif b"--type=" not in cmdline:
                    browser = max(browser, rss)
            self.peak_total_mb = max(self.peak_total_mb, total)
            self.peak_renderer_mb = max(self.peak_renderer_mb, renderer)
            self.peak_browser_mb = max(self.peak_browser_mb, browser)
            self._stop.wait(0.25)


def chromium_cpu_seconds() -> float:
    """User + system CPU seconds used so far by every Chromium process (from /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                if b"chromium" not in handle.read(200):
                    continue
            with open(f"/proc/{entry.name}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return total / ticks


def native_encrypt(source: pathlib.Path, key_file: pathlib.Path) -> tuple[float, float]:
    """Wall and CPU seconds of ``ipis encrypt`` (CPU: the child's own rusage)."""
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
    target.unlink()
    return seconds, usage.ru_utime + usage.ru_stime


def browser_encrypt(krypt: object, source: pathlib.Path, key_file: pathlib.Path) -> tuple[
    float, float, int, str, float
]:
    """Seconds from the click to the download saved; the page's own run time; output size;
    persons shown; CPU seconds used by all Chromium processes meanwhile."""
    from krypt_testlib import Krypt

    assert isinstance(krypt, Krypt)
    krypt.fill(data=source, out="kryptert.xml", keys=key_file)
    target = WORK / "browser.xml"
    target.unlink(missing_ok=True)
    cpu_before = chromium_cpu_seconds()
    started = time.perf_counter()
    with krypt.page.expect_download(timeout=900_000) as download_info:
        outcome = krypt.run(timeout=900)
    if outcome != "done":
        raise SystemExit(f"the page did not encrypt: {krypt.visible_errors()}")
    download_info.value.save_as(target)
    seconds = time.perf_counter() - started
    cpu = chromium_cpu_seconds() - cpu_before
    run_ms = float(krypt.page.get_attribute("html", "data-run-ms") or 0)
    size = target.stat().st_size
    persons = krypt.page.text_content("#r-persons") or ""
    print(f"  time in the worker (ms): {krypt.page.get_attribute('html', 'data-run-timings')}",
          flush=True)
    target.unlink()
    download_info.value.delete()
    return seconds, run_ms / 1000, size, persons, cpu


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, no 500 MB")
    parser.add_argument("--runs", type=int, default=0, help="50 MB runs (default 3, quick 1)")
    args = parser.parse_args(argv)
    runs = args.runs or (1 if args.quick else 3)
    if not PAGE.exists():
        print("dist/ipis-krypt.html mangler: kjør `make page`", file=sys.stderr)
        return 1
    html_mb = PAGE.stat().st_size / MB
    key_file = make_key_file()
    source_50 = make_input(50)
    source_50.read_bytes()  # page cache warm for both sides
    missed: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        ready = []
        for _ in range(3 if args.quick else 5):
            krypt = open_krypt(browser, PAGE.as_uri())
            ready.append(float(krypt.page.get_attribute("html", "data-ready-ms") or 0) / 1000)
            krypt.close()
        print(f"ready after opening: {', '.join(f'{r:.2f}' for r in ready)} s "
              f"(median {statistics.median(ready):.2f} s)", flush=True)

        krypt = open_krypt(browser, PAGE.as_uri())
        browser_runs, native_runs, browser_cpu, native_cpu = [], [], [], []
        for attempt in range(runs):
            native_wall, native_cpu_s = native_encrypt(source_50, key_file)
            native_runs.append(native_wall)
            native_cpu.append(native_cpu_s)
            seconds, in_page, size, persons, cpu = browser_encrypt(krypt, source_50, key_file)
            browser_runs.append(seconds)
            browser_cpu.append(cpu)
            print(f"50 MB run {attempt + 1}: browser {seconds:.2f} s wall, {cpu:.2f} s CPU (in "
                  f"page {in_page:.2f} s, {persons} persons, output {size / MB:.1f} MB); native "
                  f"{native_wall:.2f} s wall, {native_cpu_s:.2f} s CPU (load "
                  f"{os.getloadavg()[0]:.2f})", flush=True)
        krypt.close()
        browser_50 = statistics.median(browser_runs)
        native_50 = statistics.median(native_runs)
        browser_50_cpu = statistics.median(browser_cpu)
        native_50_cpu = statistics.median(native_cpu)

        large = None
        if not args.quick:
            source_500 = make_input(500)
            krypt = open_krypt(browser, PAGE.as_uri())
            with ChromiumMemory() as memory:
                seconds, in_page, size, persons, _ = browser_encrypt(krypt, source_500, key_file)
            krypt.close()
            native_500, _ = native_encrypt(source_500, key_file)
            large = (source_500.stat().st_size, seconds, in_page, size, persons, memory,
                     native_500)
        browser.close()

    print()
    print(f"IPLOS Krypt in headless Chromium ({os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.2f})")
    print(f"  HTML file:           {html_mb:.2f} MB")
    print(f"  ready after opening: {statistics.median(ready):.2f} s (median of {len(ready)})")
    print(f"  50 MB ({source_50.stat().st_size / MB:.1f} MB): browser {browser_50:.2f} s, "
          f"native {native_50:.2f} s, browser/native {browser_50 / native_50:.2f}x "
          f"(median of {runs})")
    print(f"    CPU time: browser {browser_50_cpu:.2f} s (all Chromium processes), native "
          f"{native_50_cpu:.2f} s, browser/native {browser_50_cpu / native_50_cpu:.2f}x (steadier "
          "than wall time when the machine is busy)")
    if large:
        size_in, seconds, in_page, size, persons, memory, native_500 = large
        print(f"  500 MB ({size_in / MB:.1f} MB): browser {seconds:.1f} s ({persons} persons, "
              f"output {size / MB:.0f} MB), native {native_500:.1f} s, browser/native "
              f"{seconds / native_500:.2f}x")
        print(f"    peak RSS: tab (renderer with worker) {memory.peak_renderer_mb:.0f} MB, "
              f"browser process (Blob store, download) {memory.peak_browser_mb:.0f} MB, all "
              f"Chromium {memory.peak_total_mb:.0f} MB")
    if statistics.median(ready) > TARGETS["ready_s"]:
        missed.append(f"ready {statistics.median(ready):.2f} s > {TARGETS['ready_s']} s")
    if browser_50 > TARGETS["50mb_s"]:
        missed.append(f"50 MB {browser_50:.2f} s > {TARGETS['50mb_s']} s")
    if browser_50 / native_50 > TARGETS["ratio"]:
        missed.append(f"browser/native {browser_50 / native_50:.2f}x > {TARGETS['ratio']}x")
    if html_mb > TARGETS["html_mb"]:
        missed.append(f"HTML {html_mb:.2f} MB > {TARGETS['html_mb']} MB")
    for line in missed:
        print(f"TARGET MISSED: {line}")
    if not missed:
        print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
