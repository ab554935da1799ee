"""A party's private keys by key id, with the yearly rollover (issue 9.6; docs/drift.md).

SSB publishes a new key file every 1 December. The TPF and the register each hold the private
key of their own key (``tpf-YYYY`` / ``iplos-YYYY``, the ``ds:KeyName`` a file names) for the
current year and the previous one, and take files encrypted for the previous year's key during
an overlap: a municipality that encrypted on 30 November uploads on 2 December. After the
overlap such a file is refused with a message saying which key, until when, and what to do
(``KeyOutsideOverlap``).

The keyring is a folder (``<instance>/nokler`` unless set otherwise), one pair of files per key:

- ``<key id>.pem``: the private key, PKCS#8 PEM, mode 0600;
- ``<key id>.nokkelfil.xml``: the public key file it was published in (its dates say when the
  key is valid, and it carries the other party's public key: the TPF encrypts its output to
  the register key of its current key file).

``ipis keys install`` checks that the private key belongs to the key file before it writes
anything, and writes the key file first and the private key last, each atomically: a key is
installed once its ``.pem`` exists. The folder is read again when it changes, so a rollover
needs no restart. Older keys stay until ``ipis keys remove``: they are no longer accepted for
new files, but the TPF still needs them to open the inputs it retains (``ipis tpf
rotate-secret``).
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives.asymmetric import rsa

from ipis_core.atomic import AtomicOutput
from ipis_core.clear_part import KEY_NAME
from ipis_core.decrypt import load_private_key
from ipis_core.faults import (
    IplosFault,
    KeyFileUnreadable,
    KeyNotYetInUse,
    KeyOutsideOverlap,
    UnknownKeyName,
)
from ipis_core.keyfile import IPLOS, MAX_KEY_FILE_BYTES, TPF, KeyFile, parse_key_file
from ipis_core.keygen import IPLOS_PRIVATE_FILE, KEY_FILE, TPF_PRIVATE_FILE
from ipis_core.rsakey import RsaPublicKey

from .settings import env_int

Party = Literal["tpf", "register"]
PARTIES: tuple[Party, ...] = ("tpf", "register")
# 30 November + 62 days = 31 January: a key published 1 December of the year before is
# accepted until the end of January after its successor's start (issue 9.6's default).
DEFAULT_OVERLAP_DAYS = 62
KEYS_FOLDER = "nokler"
PRIVATE_SUFFIX = ".pem"
KEY_FILE_SUFFIX = ".nokkelfil.xml"
MAX_PEM_BYTES = 64 * 1024
# Written by ``ipis serve`` in its instance folder, which holds the TPF in ``tpf/`` and the
# register in ``register/`` (party_instance).
SERVE_MARKER = "ipis-serve.txt"

_RECIPIENT = {"tpf": TPF, "register": IPLOS}  # the key file's mottaker of each party's key
_PRIVATE_FILE = {"tpf": TPF_PRIVATE_FILE, "register": IPLOS_PRIVATE_FILE}
_ENV_PREFIX = {"tpf": "IPIS_TPF", "register": "IPIS_REGISTER"}
_LABEL = {"tpf": "TPF", "register": "registeret"}


class KeyringError(IplosFault):
    """The operator's keyring cannot do what was asked (install, remove, no current key)."""

    field = "keys"


class NoCurrentKey(KeyringError):
    def __init__(self, party: Party, today: dt.date) -> None:
        super().__init__(
            f"Nøkkelringen til {_LABEL[party]} har ingen nøkkel som gjelder {today.isoformat()}. "
            f"Installer den nye nøkkelen med «ipis keys install --party {party}»."
        )


class PrivateKeyDoesNotMatch(KeyringError):
    def __init__(self, key_id: str) -> None:
        super().__init__(
            f"Den private nøkkelen hører ikke til nøkkelen {key_id} i nøkkelfilen. Kontroller "
            "at nøkkelfilen og den private nøkkelen er fra samme år."
        )


class KeyIdTaken(KeyringError):
    def __init__(self, key_id: str) -> None:
        super().__init__(
            f"Nøkkelringen har allerede en annen nøkkel med id {key_id}. Fjern den først med "
            "«ipis keys remove» hvis den skal byttes."
        )


class KeyIdUnusable(KeyringError):
    def __init__(self) -> None:
        super().__init__(
            "Nøkkelfilens id kan ikke brukes som navn i nøkkelringen (bare bokstaver, siffer, "
            "punktum, bindestrek og understrek)."
        )


class PrivateKeyUnreadable(KeyringError):
    def __init__(self) -> None:
        super().__init__(
            "Den private nøkkelen kunne ikke leses. Den skal være en RSA-nøkkel i PEM-format "
            "uten passord, slik «ipis keys generate» lager den."
        )


class KeyNotInKeyring(KeyringError):
    def __init__(self, key_id: str) -> None:
        super().__init__(f"Nøkkelringen har ingen nøkkel med id {key_id}.")


def default_instance(party: Party) -> Path:
    """``IPIS_TPF_INSTANCE`` / ``IPIS_REGISTER_INSTANCE``, else ``./instance/tpf`` or
    ``./instance/register`` (beside the send module's ``./instance``)."""
    configured = os.environ.get(f"{_ENV_PREFIX[party]}_INSTANCE")
    return Path(configured) if configured else Path("instance") / party


def party_instance(party: Party, given: str | Path | None = None) -> Path:
    """The party's instance folder: ``given``, else the default above; when that folder is
    the instance folder of ``ipis serve`` (it holds the marker file serve writes and the
    party's subfolder), the party's subfolder in it. So ``ipis register export --instance DIR``
    reads the register of ``ipis serve --instance DIR``."""
    folder = Path(given) if given else default_instance(party)
    if (folder / SERVE_MARKER).is_file() and (folder / party).is_dir():
        return folder / party
    return folder


def keys_dir(party: Party, instance_dir: Path) -> Path:
    """The party's keyring folder: ``IPIS_TPF_KEYS_DIR`` / ``IPIS_REGISTER_KEYS_DIR``, else
    ``<instance>/nokler``. The party's config and ``ipis keys`` both use this."""
    configured = os.environ.get(f"{_ENV_PREFIX[party]}_KEYS_DIR")
    return Path(configured) if configured else instance_dir / KEYS_FOLDER


def overlap_days(party: Party) -> int:
    """``IPIS_TPF_KEY_OVERLAP_DAYS`` / ``IPIS_REGISTER_KEY_OVERLAP_DAYS``, default 62."""
    name = f"{_ENV_PREFIX[party]}_KEY_OVERLAP_DAYS"
    return env_int(name, DEFAULT_OVERLAP_DAYS)


@dataclass(frozen=True)
class KeyEntry:
    """One installed key: the party's own key of one year's key file."""

    key_id: str
    public_key: RsaPublicKey
    key_file: KeyFile
    private_path: Path

    @property
    def valid_from(self) -> dt.date:
        return self.key_file.valid_from

    @property
    def valid_to(self) -> dt.date:
        return self.key_file.valid_to

    def accepted_until(self, overlap: int) -> dt.date:
        """The last day a file encrypted for this key is taken in."""
        return self.valid_to + dt.timedelta(days=overlap)

    def accepted_on(self, day: dt.date, overlap: int) -> bool:
        return self.valid_from <= day <= self.accepted_until(overlap)


def _stamp(folder: Path) -> tuple[tuple[str, int, int], ...] | None:
    try:
        found = []
        for entry in os.scandir(folder):
            if entry.name.endswith((PRIVATE_SUFFIX, KEY_FILE_SUFFIX)):
                status = entry.stat()
                found.append((entry.name, status.st_mtime_ns, status.st_size))
    except FileNotFoundError:
        return None
    return tuple(sorted(found))


def _read_limited(path: Path, limit: int) -> bytes:
    with path.open("rb") as handle:
        return handle.read(limit + 1)


class Keyring:
    """The keys of one party in one folder; thread-safe, re-read when the folder changes."""

    def __init__(self, folder: Path, party: Party, overlap: int = DEFAULT_OVERLAP_DAYS) -> None:
        self.folder = folder
        self.party = party
        self.overlap = overlap
        self._lock = threading.Lock()
        self._seen: tuple[tuple[str, int, int], ...] | None = ()
        self._entries: dict[str, KeyEntry] = {}
        self._private: dict[str, rsa.RSAPrivateKey] = {}

    # --- reading ------------------------------------------------------------------------------

    def _load(self) -> dict[str, KeyEntry]:
        stamp = _stamp(self.folder)
        with self._lock:
            if stamp != self._seen:
                self._entries = self._scan()
                self._private = {}
                self._seen = stamp
            return self._entries

    def _scan(self) -> dict[str, KeyEntry]:
        entries: dict[str, KeyEntry] = {}
        if not self.folder.is_dir():
            return entries
        for private in sorted(self.folder.glob(f"*{PRIVATE_SUFFIX}")):
            key_id = private.name.removesuffix(PRIVATE_SUFFIX)
            try:
                key_file = parse_key_file(
                    _read_limited(self.folder / f"{key_id}{KEY_FILE_SUFFIX}", MAX_KEY_FILE_BYTES)
                )
            except (OSError, IplosFault):
                continue  # not (yet) a complete entry: install writes the key file first
            public = self._own_key(key_file)
            if public.key_id != key_id:
                continue
            entries[key_id] = KeyEntry(key_id, public, key_file, private)
        return entries

    def _own_key(self, key_file: KeyFile) -> RsaPublicKey:
        return key_file.tpf if self.party == "tpf" else key_file.iplos

    def entries(self) -> list[KeyEntry]:
        """Every installed key, oldest first."""
        return sorted(self._load().values(), key=lambda e: (e.valid_from, e.key_id))

    def known_names(self) -> frozenset[str]:
        """Every installed key id: what the envelope reader lets through to ``accept``."""
        return frozenset(self._load())

    def accepted_names(self, day: dt.date) -> frozenset[str]:
        return frozenset(k for k, e in self._load().items() if e.accepted_on(day, self.overlap))

    def accept(self, key_name: str, day: dt.date) -> KeyEntry:
        """The entry for a file encrypted for ``key_name`` received on ``day``, or the fault
        that tells the municipality why it is refused."""
        entry = self._load().get(key_name)
        if entry is None:
            raise UnknownKeyName()
        if day < entry.valid_from:
            raise KeyNotYetInUse(key_name, entry.valid_from.isoformat())
        if day > entry.accepted_until(self.overlap):
            raise KeyOutsideOverlap(
                key_name,
                entry.valid_to.isoformat(),
                entry.accepted_until(self.overlap).isoformat(),
            )
        return entry

    def current(self, day: dt.date) -> KeyEntry:
        """The key of the year ``day`` is in (the newest one begun by then and still valid)."""
        valid = [e for e in self._load().values() if e.valid_from <= day <= e.valid_to]
        if not valid:
            raise NoCurrentKey(self.party, day)
        return max(valid, key=lambda e: (e.valid_from, e.key_id))

    def private_key(self, key_name: str) -> rsa.RSAPrivateKey:
        """The private key of any installed key (dates are checked by ``accept`` at intake,
        on the day the file came in; retained inputs are opened again years later)."""
        entries = self._load()
        entry = entries.get(key_name)
        if entry is None:
            raise UnknownKeyName()
        with self._lock:
            cached = self._private.get(key_name)
        if cached is not None:
            return cached
        try:
            key = load_private_key(_read_limited(entry.private_path, MAX_PEM_BYTES))
        except (OSError, ValueError, TypeError, IplosFault):
            raise PrivateKeyUnreadable() from None
        with self._lock:
            self._private[key_name] = key
        return key

    # --- changing -----------------------------------------------------------------------------

    def install(self, key_file_path: Path, private_key_path: Path) -> tuple[KeyEntry, bool]:
        """Add this year's key; (entry, False) when exactly this key was installed before."""
        try:
            raw_key_file = _read_limited(key_file_path, MAX_KEY_FILE_BYTES)
        except OSError:
            raise KeyFileUnreadable() from None
        key_file = parse_key_file(raw_key_file)
        public = self._own_key(key_file)
        if not KEY_NAME.accepts(public.key_id) or public.key_id.startswith("."):
            raise KeyIdUnusable()
        try:
            pem = _read_limited(private_key_path, MAX_PEM_BYTES)
            private = load_private_key(pem)
        except (OSError, ValueError, TypeError, IplosFault):
            raise PrivateKeyUnreadable() from None
        numbers = private.public_key().public_numbers()
        if (numbers.n, numbers.e) != (public.modulus, public.exponent):
            raise PrivateKeyDoesNotMatch(public.key_id)
        existing = self._load().get(public.key_id)
        if existing is not None:
            if existing.public_key != public:
                raise KeyIdTaken(public.key_id)
            return existing, False
        self.folder.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # the instance
        self.folder.mkdir(exist_ok=True, mode=0o700)
        for name, data in (
            (f"{public.key_id}{KEY_FILE_SUFFIX}", raw_key_file),
            (f"{public.key_id}{PRIVATE_SUFFIX}", pem),  # last: the entry exists from here
        ):
            with AtomicOutput(str(self.folder / name)) as handle:
                os.fchmod(handle.fileno(), 0o600)  # before any key byte is written
                handle.write(data)
        entry = self._load().get(public.key_id)
        assert entry is not None
        return entry, True

    def install_from_folder(self, folder: Path) -> tuple[KeyEntry, bool]:
        """From a folder made by ``ipis keys generate`` (``nokkelfil.xml`` and the party's
        ``tpf-privat.pem`` / ``iplos-privat.pem``)."""
        return self.install(folder / KEY_FILE, folder / _PRIVATE_FILE[self.party])

    def remove(self, key_id: str) -> None:
        """Forget a key: files encrypted for it (retained inputs too) can no longer be opened."""
        entry = self._load().get(key_id)
        if entry is None:
            raise KeyNotInKeyring(key_id)
        entry.private_path.unlink(missing_ok=True)  # first: the entry is gone from here
        (self.folder / f"{key_id}{KEY_FILE_SUFFIX}").unlink(missing_ok=True)

    def describe(self, day: dt.date) -> list[str]:
        """One line per key for ``ipis keys list``: id, dates, whether accepted, fingerprint."""
        lines = []
        current = {e.key_id for e in self._load().values() if e.valid_from <= day <= e.valid_to}
        newest_current = max(
            (e for e in self._load().values() if e.key_id in current),
            key=lambda e: (e.valid_from, e.key_id),
            default=None,
        )
        for entry in self.entries():
            until = entry.accepted_until(self.overlap).isoformat()
            if newest_current is not None and entry.key_id == newest_current.key_id:
                state = "gjeldende"
            elif entry.accepted_on(day, self.overlap):
                state = f"forrige, tas imot til og med {until}"
            elif day < entry.valid_from:
                state = f"ikke gyldig ennå (fra {entry.valid_from.isoformat()})"
            else:
                state = f"tas ikke imot lenger (sluttet {until}); beholdt for lagrede filer"
            lines.append(
                f"{entry.key_id}  gyldig {entry.valid_from.isoformat()} til og med "
                f"{entry.valid_to.isoformat()}  {state}\n"
                f"    fingeravtrykk {entry.public_key.fingerprint()} "
                f"({entry.public_key.bits} biter)"
            )
        return lines


def party_keyring(party: Party, instance_dir: Path) -> Keyring:
    """The keyring a party's config and ``ipis keys`` use for this instance folder."""
    return Keyring(keys_dir(party, instance_dir), party, overlap_days(party))
