"""The page's Python: drives the ipis core in the worker (imported by web/worker.js).

The same steps as ``ipis encrypt`` (ipis_core.encrypt_file): the seed's form checks in the
seed's order, the key file read and date-checked, then the file fed through
``MessageEncryptor`` slice by slice. Results go back to JavaScript as JSON; a fault is its
exact Norwegian message and the form field it concerns. Nothing here ever reports person data.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

from pyodide.ffi import JsException, to_js

import ipis_core

# The page starts from a memory snapshot made at build time after ``warm_up`` had imported the
# core (web/make_snapshot.js), so the core is loaded before the page says it is ready; web/
# worker.js still calls ``warm_up`` after ready, which then finds everything imported. Every
# entry point below imports what it uses, so nothing depends on either.

CHUNK_BYTES = 1 << 20
UNEXPECTED = (
    "Det oppstod en uventet feil i IPLOS Krypt, og ingen fil er lagret. Last siden på nytt og "
    "prøv igjen; kontakt SSB hvis feilen gjentar seg."
)


def warm_up() -> None:
    """Import the core now (web/worker.js calls this right after ready)."""
    import ipis_core.crypto.webcrypto
    import ipis_core.message  # noqa: F401 - imports reader, keyfile, contact, faults, xmlenc


def info() -> str:
    """Called once at every start (web/worker.js): the page's version, after reseeding."""
    _reseed()
    return json.dumps({"version": ipis_core.__version__, "python": sys.version.split()[0]})


def _reseed() -> None:
    """The snapshot holds the state ``random`` was seeded with at build time (Pyodide imports
    it while starting): seeded afresh here, so no two pages share it. The core itself draws
    only from ``secrets`` and WebCrypto, which ask the browser each time."""
    random = sys.modules.get("random")
    if random is not None:
        random.seed()


def _fault(fault: Any, started: bool = False) -> str:
    """A fault for the page; ``started``: the data file was being read (not a form fault)."""
    return json.dumps(
        {"fault": {"field": fault.field, "message": fault.message}, "started": started}
    )


def _today(value: str) -> dt.date:
    return dt.date.fromisoformat(value) if value else dt.date.today()


def inspect_keys(raw: Any, today: str) -> str:
    """A chosen key file's fingerprints and dates, at once, so the operator can check them."""
    from ipis_core.faults import IplosFault
    from ipis_core.keyfile import describe_key_file, parse_key_file

    try:
        key_file = parse_key_file(bytes(raw.to_bytes()))
        key_file.check_dates(_today(today))
    except IplosFault as fault:
        return _fault(fault)
    warning = key_file.expiry_warning(_today(today))
    return json.dumps({"lines": describe_key_file(key_file), "warning": warning})


def key_file_unreadable() -> str:
    from ipis_core.faults import KeyFileUnreadable

    return _fault(KeyFileUnreadable())


def check_contact(email: str, name: str, mobile: str) -> str:
    """The contact person's fields as a run would check them (the page clears a fixed fault)."""
    from ipis_core.contact import Contact
    from ipis_core.faults import IplosFault

    try:
        Contact.validated(email, name, mobile)
    except IplosFault as fault:
        return _fault(fault)
    return json.dumps({})


class _Progress:
    started = False  # the form and the key file were checked; the data file is being read


async def encrypt(run: Any) -> str:
    """One run; ``run`` is the JavaScript object of web/worker.js (read, write, progress)."""
    from ipis_core.faults import IplosFault

    params = json.loads(run.params)
    progress = _Progress()
    try:
        return await _encrypt(run, params, progress)
    except IplosFault as fault:
        return _fault(fault, progress.started)
    except Exception as error:  # never show details: they might hold person data
        print(f"IPLOS Krypt: uventet {type(error).__name__}", file=sys.stderr)
        return json.dumps({"fault": {"field": "form", "message": UNEXPECTED}, "started": True})


async def _encrypt(run: Any, params: dict[str, Any], progress: _Progress) -> str:
    from ipis_core.contact import Contact
    from ipis_core.crypto.webcrypto import WebCryptoBackend
    from ipis_core.faults import (
        DataFileUnreadable,
        KeyFileUnreadable,
        MissingDataFile,
        MissingKeyFile,
        MissingOutputFile,
    )
    from ipis_core.keyfile import parse_key_file
    from ipis_core.message import MessageEncryptor

    # The seed's checks in the seed's order (ipis_core.encrypt_file.check_form), before reading.
    if not params.get("data"):
        raise MissingDataFile()
    if not str(params.get("out") or "").strip():
        raise MissingOutputFile()
    if not params.get("keys"):
        raise MissingKeyFile()
    contact = Contact.validated(params.get("email"), params.get("name"), params.get("mobile"))
    today = _today(params.get("today") or "")
    try:
        raw_keys = bytes((await run.readKeys()).to_bytes())
    except JsException:
        raise KeyFileUnreadable() from None
    key_file = parse_key_file(raw_keys)
    key_file.check_dates(today)

    limit = params.get("maxCipherValueChars")  # tests only (docs/formater.md, "Size limit")
    encryptor = MessageEncryptor(
        key_file, contact, WebCryptoBackend(), today, max_cipher_value_chars=limit
    )
    progress.started = True
    size = int(run.dataSize)
    offset = 0
    while offset < size:
        if run.cancelled:
            encryptor.abandon()
            return json.dumps({"cancelled": True})
        try:
            chunk = bytes((await run.read(offset, CHUNK_BYTES)).to_bytes())
        except JsException:
            raise DataFileUnreadable() from None
        if not chunk:
            raise DataFileUnreadable()
        offset += len(chunk)
        out = await encryptor.feed(chunk)
        if out:
            await run.write(to_js(out))
        run.progress(encryptor.bytes_read, encryptor.persons, False)
    if run.cancelled:
        encryptor.abandon()
        return json.dumps({"cancelled": True})
    await run.write(to_js(await encryptor.finish()))
    run.progress(encryptor.bytes_read, encryptor.persons, True)
    summary = encryptor.summary
    sender = summary.sender
    return json.dumps(
        {
            "summary": {
                "persons": summary.persons,
                "kommunenummer": sender.kommunenummer if sender else "",
                "bydelsnummer": sender.bydelsnummer if sender else "",
                "organisasjonsnummer": sender.organisasjonsnummer if sender else "",
                "avsender": sender.navn if sender else "",
                "outputBytes": summary.output_bytes,
                "sha256": summary.sha256,
                "keyFileLines": summary.key_file_lines,
                "warnings": summary.warnings,
            }
        }
    )


def modules() -> str:
    """The modules loaded so far and where from (tests: is the trimmed stdlib enough?)."""
    loaded = sorted(
        name for name, module in sys.modules.items() if getattr(module, "__file__", None)
    )
    return json.dumps(loaded)
