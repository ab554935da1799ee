"""``ipis tpf process IN OUT``: the TPF's work on one file, for operators who run no service.

The same stream-to-stream processing as the worker (processing.py), with the keys, the secret
and the register's key given as files or taken from a TPF instance folder. The output appears
whole or not at all (``AtomicOutput``): a temporary file beside it, fsynced and renamed only
after the input's GCM tag has been checked; on any fault it is removed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from ipis_core.atomic import AtomicOutput
from ipis_core.faults import IplosFault, KeyFileUnreadable
from ipis_core.keyfile import MAX_KEY_FILE_BYTES, parse_key_file
from ipis_core.rsakey import RsaPublicKey

from ..keyring import Keyring, overlap_days
from .processing import pseudonymise
from .pseudonyms import Pseudonymiser, SecretStore

ID_LENGTH = 32


class ProcessOptionsMissing(IplosFault):
    field = "tpf"

    def __init__(self, what: str) -> None:
        super().__init__(f"Oppgi {what}, eller --instance med TPF-ens instansmappe.")


class BadSubmissionId(IplosFault):
    field = "tpf"

    def __init__(self) -> None:
        super().__init__("--innsending-id må være 32 heksadesimale tegn (0-9, a-f).")


class _Hashing:
    def __init__(self, handle: object) -> None:
        self._handle = handle
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.digest.update(data)
        self.size += len(data)
        self._handle.write(data)  # type: ignore[attr-defined]


def _register_key(path: Path, day: dt.date) -> RsaPublicKey:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_KEY_FILE_BYTES + 1)
    except OSError:
        raise KeyFileUnreadable() from None
    key_file = parse_key_file(raw)
    key_file.check_dates(day)
    return key_file.iplos


def _from_instance(instance: Path, test_numbers: bool) -> tuple[Path, Pseudonymiser, Keyring]:
    from .config import TpfConfig
    from .secret_state import current_pseudonymiser
    from .services import open_services

    svc = open_services(TpfConfig.from_env(instance))
    try:
        pseudonymiser = current_pseudonymiser(svc.db, svc.secrets, test_numbers)
    finally:
        svc.dispose()
    return svc.config.keys_dir, pseudonymiser, svc.keyring


def process_file(
    source: Path,
    target: Path,
    *,
    instance: Path | None = None,
    keys_dir: Path | None = None,
    secret_file: Path | None = None,
    register_key_file: Path | None = None,
    innsending_id: str | None = None,
    test_numbers: bool = False,
    today: dt.date | None = None,
) -> list[str]:
    """Process ``source`` into ``target``; the lines to print (never a number)."""
    day = today or dt.date.today()
    submission_id = innsending_id or secrets.token_hex(16)
    if len(submission_id) != ID_LENGTH or submission_id.strip("0123456789abcdef"):
        raise BadSubmissionId()
    pseudonymiser: Pseudonymiser | None = None
    keyring: Keyring | None = None
    if instance is not None:
        _, pseudonymiser, keyring = _from_instance(instance, test_numbers)
    if keys_dir is not None:
        keyring = Keyring(keys_dir, "tpf", overlap_days("tpf"))
    if secret_file is not None:
        store = SecretStore(secret_file.parent)
        pseudonymiser = Pseudonymiser(
            secret_file.name, store.load(secret_file.name), {}, test_numbers
        )
    if keyring is None:
        raise ProcessOptionsMissing("--keys-dir")
    if pseudonymiser is None:
        raise ProcessOptionsMissing("--secret")
    if register_key_file is not None:
        register_key = _register_key(register_key_file, day)
    elif instance is not None:
        register_key = keyring.current(day).key_file.iplos
    else:
        raise ProcessOptionsMissing("--register-key-file")

    ring = keyring

    def choose(key_name: str) -> rsa.RSAPrivateKey:
        ring.accept(key_name, day)
        return ring.private_key(key_name)

    try:
        input_handle = source.open("rb")
    except OSError:
        raise IplosFault("Den krypterte filen kunne ikke åpnes.") from None
    with input_handle, AtomicOutput(str(target)) as output:
        sink = _Hashing(output)
        result = pseudonymise(
            input_handle,
            sink,
            private_key=choose,
            register_key=register_key,
            pseudonymiser=pseudonymiser,
            innsending_id=submission_id,
            key_names=ring.known_names(),
        )
    return [
        f"Antall personer: {result.persons}",
        f"Ugyldige fødselsnumre (ikke sendt videre): {result.invalid_numbers}",
        f"Avsender: kommunenummer {result.envelope.kommunenummer}, bydelsnummer "
        f"{result.envelope.bydelsnummer}, organisasjonsnummer "
        f"{result.envelope.organisasjonsnummer}",
        f"Pseudonymhemmelighet: {result.secret_id}",
        f"Kryptert for registernøkkelen {register_key.key_id} ({register_key.fingerprint()})",
        f"Innsendings-id: {submission_id}",
        f"Pseudonymisert fil: {target} ({sink.size} byte)",
        f"SHA-256: {sink.digest.hexdigest()}",
    ]
