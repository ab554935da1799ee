"""Helpers for the browser tests of IPLOS Krypt (dist/ipis-krypt.html)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import io
import pathlib
import time
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
