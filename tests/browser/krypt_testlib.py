"""Helpers for the browser tests of IPLOS Krypt (dist/ipis-krypt.html)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import io
import os
import pathlib
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chromium_launch import CHROMIUM, CHROMIUM_ARGS  # noqa: F401 - re-exported for the bench
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from playwright.sync_api import Browser, BrowserContext, Page, Route

from ipis_core.contact import Contact
from ipis_core.crypto.native import NativeBackend
from ipis_core.decrypt import OpenedMessage, open_message
from ipis_core.keyfile import KeyFile
from ipis_core.message import MessageEncryptor
from ipis_core.reader import IplosReader, PersonRecord

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAGE = ROOT / "dist" / "ipis-krypt.html"
DOCS_IMG = ROOT / "docs" / "img"
SCRATCH_IMG = pathlib.Path(tempfile.gettempdir()) / "ipis-skjermbilder"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

READY_TIMEOUT_S = 60
CONTACT = {"email": "iplos@kommune.no", "name": "Åse Øvrebø", "mobile": "912 34 567"}
LOCAL_SCHEMES = ("file:", "blob:", "data:")
TODAY = dt.date.today()


@dataclass
class Keys:
    key_file: KeyFile
    tpf_pem: bytes
    iplos_pem: bytes

    def private(self, which: str) -> rsa.RSAPrivateKey:
        pem = self.tpf_pem if which == "tpf" else self.iplos_pem
        key = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key


@dataclass
class Network:
    """Requests that got past the page: anything but file:, blob: and data: reaching the
    browser's network layer is aborted by the route and counted. (A request the CSP refuses
    never gets there, though Playwright's "request" event may still report it.)"""

    allowed: tuple[str, ...] = ()  # e.g. the page itself when a server delivers it
    blocked: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)

    def route(self, route: Route) -> None:
        url = route.request.url
        if url.startswith(LOCAL_SCHEMES) or url in self.allowed:
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def on_finished(self, request: Any) -> None:
        if not request.url.startswith(LOCAL_SCHEMES) and request.url not in self.allowed:
            self.finished.append(request.url)

    @property
    def outside(self) -> list[str]:
        return self.blocked + self.finished


@dataclass
class Krypt:
    """One opened page of IPLOS Krypt."""

    context: BrowserContext
    page: Page
    network: Network
    downloads: list[Any] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def state(self) -> str | None:
        return self.page.get_attribute("html", "data-state")

    def wait_state(self, *states: str, timeout: float = READY_TIMEOUT_S) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state()
            if state in states:
                return state
            time.sleep(0.05)
        raise AssertionError(f"page state {self.state()!r}, waited for {states}: {self.console}")

    def fill(
        self,
        data: pathlib.Path | None = None,
        out: str = "",
        keys: pathlib.Path | None = None,
        contact: dict[str, str] | None = None,
    ) -> None:
        """Set every field of the form (empty where None)."""
        page = self.page
        page.set_input_files("#data", [str(data)] if data else [])
        page.fill("#out", out)
        page.set_input_files("#keys", [str(keys)] if keys else [])
        values = CONTACT if contact is None else contact
        for name in ("email", "name", "mobile"):
            page.fill(f"#{name}", values.get(name, ""))

    def run(self, timeout: float = 120) -> str:
        """Click "Utfør kryptering" and wait for the outcome: done, fault or cancelled."""
        before = self.page.get_attribute("html", "data-runs")
        self.page.get_by_role("button", name="Utfør kryptering").click()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.state() == "ready" and self.page.get_attribute("html", "data-runs") != before:
                return self.page.get_attribute("html", "data-outcome") or ""
            time.sleep(0.05)
        raise AssertionError("the run did not finish")

    def error(self, field_name: str) -> str | None:
        locator = self.page.locator(f"#{field_name}-error")
        if locator.is_hidden():
            return None
        return locator.text_content()

    def visible_errors(self) -> dict[str, str]:
        errors = {}
        for name in ("data", "out", "keys", "contact", "form"):
            text = self.error(name)
            if text is not None:
                errors[name] = text
        return errors

    def close(self) -> None:
        self.context.close()


def open_krypt(
    browser: Browser, url: str, bypass_csp: bool = False, served: bool = False, **options: Any
) -> Krypt:
    """The page in a fresh context; ``served``: ``url`` is a server's, which may be fetched."""
    context = browser.new_context(accept_downloads=True, bypass_csp=bypass_csp, **options)
    return open_krypt_in(context, url, served)


def open_krypt_in(context: BrowserContext, url: str, served: bool = False) -> Krypt:
    """The page in ``context`` (also a persistent one: bench/bench_page.py), network watched."""
    network = Network(allowed=(url,) if served else ())
    context.route("**/*", network.route)
    context.on("requestfinished", network.on_finished)
    page = context.new_page()
    krypt = Krypt(context, page, network)
    page.on("download", lambda download: krypt.downloads.append(download))
    page.on("console", lambda message: krypt.console.append(f"{message.type}: {message.text}"))
    page.goto(url)
    assert krypt.wait_state("ready", "failed") == "ready", krypt.console
    return krypt


def native_encrypt(data: bytes, key_file: KeyFile, today: dt.date) -> bytes:
    contact = Contact.validated(CONTACT["email"], CONTACT["name"], CONTACT["mobile"])

    async def run() -> bytes:
        encryptor = MessageEncryptor(key_file, contact, NativeBackend(), today)
        out = [await encryptor.feed(data[i : i + 65536]) for i in range(0, len(data), 65536)]
        out.append(await encryptor.finish())
        return b"".join(out)

    # Playwright's sync API keeps an event loop running in this thread: use another thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


def input_records(data: bytes) -> list[PersonRecord]:
    reader = IplosReader()
    events = reader.feed(data) + reader.close()
    return [e for e in events if isinstance(e, PersonRecord)]


def decrypt(encrypted: bytes, keys: Keys) -> OpenedMessage:
    return open_message(io.BytesIO(encrypted), keys.private("tpf"), keys.private("iplos"))


def person_data(opened: OpenedMessage) -> list[tuple[str, bytes]]:
    """(fødselsnummer, the person's data without the lopenummer wrapper) per person."""
    result = []
    for number, record in zip(opened.fodselsnumre, opened.records, strict=True):
        xml = record.person_xml
        start = xml.index(b">") + 1
        end = xml.rindex(b"</Person>")
        result.append((number, xml[start:end]))
    return result


# --- waiting, without fixed sleeps --------------------------------------------------------------


def wait_until(
    condition: Callable[[], object],
    what: str,
    timeout: float = 30,
    pump: Callable[[], object] | None = None,
) -> None:
    """Poll ``condition`` until it is true; fail naming ``what`` after a generous deadline.

    Playwright's sync API takes in browser events (dialogs, a page closing) only during its own
    calls: ``pump`` is such a call, for a condition that makes none itself."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        if pump is not None:
            pump()
        time.sleep(0.02)


# --- accessibility and the user guide's screenshots -------------------------------------------


def axe_violations(page: Page) -> list[dict[str, object]]:
    """axe-core's WCAG 2.1 AA violations of the page as it is now."""
    if not page.evaluate("() => Boolean(window.axe)"):
        page.add_script_tag(content=AXE.read_text())  # inline: allowed by the page's CSP
    return page.evaluate(
        """async (tags) => {
          const result = await axe.run(document, { runOnly: { type: 'tag', values: tags } });
          return result.violations.map((v) => ({
            id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')),
          }));
        }""",
        WCAG_TAGS,
    )


def screenshot(page: Page, name: str) -> None:
    """Taken on every run (and size-checked); written into docs/img only when
    IPIS_SKJERMBILDER=1, so a test run leaves the checkout clean."""
    folder = DOCS_IMG if os.environ.get("IPIS_SKJERMBILDER") == "1" else SCRATCH_IMG
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    page.screenshot(path=str(path), full_page=True)
    # 250 KB: the whole form with its result (issue 10 added the consent and the honest texts)
    assert path.stat().st_size < 250_000, f"{name} is too large for the docs"


# --- the browser's own file dialogs and drag and drop -------------------------------------------

# The save dialog of the File System Access API, as an init script: a test cannot click a native
# dialog. The handle records what the page does with the file: the parts written, close, abort,
# remove. ``window.__holdClose`` and ``window.__holdWrites`` (promises) keep close() and
# write() waiting (a run held where the test wants it); ``window.__failWrites``
# makes writing fail as a full disk would. The writable is a WritableStream with the methods of
# FileSystemWritableFileStream, so any way of writing to it works.
SAVE_DIALOG = """
  window.__files = {};
  window.__pickName = 'valgt-av-bruker.xml';
  window.showSaveFilePicker = async (options) => {
    window.__suggested = options.suggestedName;
    const name = window.__pickName;
    const file = { parts: [], writes: 0, closing: false, closed: false, aborted: false,
                   removed: false };
    window.__files[name] = file;
    const sink = {
      async write(chunk) {
        if (window.__failWrites) throw new DOMException('Disken er full', 'QuotaExceededError');
        file.writes += 1;
        if (window.__holdWrites) await window.__holdWrites;
        file.parts.push(new Uint8Array(chunk instanceof Blob ? await chunk.arrayBuffer() : chunk));
      },
      async close() {
        file.closing = true;
        if (window.__holdClose) await window.__holdClose;
        file.closed = true;
      },
      async abort() { file.aborted = true; file.parts = []; },
    };
    return {
      kind: 'file',
      name,
      async createWritable() {
        const stream = new WritableStream(sink);
        stream.write = (chunk) => sink.write(chunk);
        stream.close = () => sink.close();
        stream.abort = () => sink.abort();
        return stream;
      },
      async remove() { file.removed = true; },
    };
  };
  window.__saved = async (name) => {
    const blob = new Blob(window.__files[name].parts);
    return Array.from(new Uint8Array(await blob.arrayBuffer()));
  };
"""


# Keeps the chosen file's close() waiting until ``RELEASE_CLOSE``: a run held in its last step.
HOLD_CLOSE = "() => { window.__holdClose = new Promise((r) => { window.__release = r; }); }"
RELEASE_CLOSE = "() => window.__release()"
HOLD_WRITES = "() => { window.__holdWrites = new Promise((r) => { window.__releaseWrites = r; }); }"
RELEASE_WRITES = "() => { window.__holdWrites = null; window.__releaseWrites(); }"


def chosen_file(page: Page, name: str) -> dict[str, Any]:
    """What the page did with the file chosen in the (stubbed) save dialog."""
    return page.evaluate(
        """(name) => {
          const f = window.__files[name];
          return f && { writes: f.writes, closing: f.closing, closed: f.closed,
                        aborted: f.aborted, removed: f.removed, parts: f.parts.length };
        }""",
        name,
    )


def drop_files(page: Page, selector: str, paths: Sequence[pathlib.Path]) -> None:
    """Drag files from the desktop and drop them on ``selector``: real, trusted drag events
    from the browser (Chrome DevTools Protocol), so a folder arrives as a folder."""
    target = page.locator(selector)
    target.scroll_into_view_if_needed()
    box = target.bounding_box()
    assert box is not None, selector
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    data = {"items": [], "files": [str(p) for p in paths], "dragOperationsMask": 1}
    session = page.context.new_cdp_session(page)
    try:
        for kind in ("dragEnter", "dragOver", "drop"):
            session.send("Input.dispatchDragEvent", {"type": kind, "x": x, "y": y, "data": data})
    finally:
        session.detach()
