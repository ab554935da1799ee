"""``ipis keys publish``: the send module's side of the yearly key rollover (issue 9.6).

The send module holds no private key: it serves SSB's key file under ``/last-ned`` and takes in
uploads encrypted for its TPF key. Publishing a new key file keeps the one it replaces as last
year's (``forrige-nokkelfil.xml``), whose key the send module accepts during the TPF's overlap
(``ServedKeyNames``). Both files are written atomically, the old one first: at every moment the
folder holds a whole current file, and a failed publish changes nothing.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from ipis_core.atomic import AtomicOutput
from ipis_core.faults import KeyFileUnreadable
from ipis_core.keyfile import MAX_KEY_FILE_BYTES, KeyFile, describe_key_file, parse_key_file

from .config import Config


def _read(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(MAX_KEY_FILE_BYTES + 1)
    except OSError:
        raise KeyFileUnreadable() from None


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with AtomicOutput(str(path)) as handle:
        os.fchmod(handle.fileno(), 0o644)  # public: it is what the download page serves
        handle.write(data)


def publish(config: Config, new_file: Path) -> list[str]:
    """Serve ``new_file`` from now on; returns the lines to show the operator."""
    raw = _read(new_file)
    new = parse_key_file(raw)  # a damaged or invalid file is refused before anything changes
    lines: list[str] = []
    current_raw = _read(config.key_file) if config.key_file.exists() else None
    current: KeyFile | None = parse_key_file(current_raw) if current_raw is not None else None
    if current is not None and current_raw == raw:
        lines.append(f"Allerede publisert: {new.tpf.key_id} i {config.key_file}")
        return lines
    if current is not None and current.tpf.key_id != new.tpf.key_id:
        assert current_raw is not None
        previous = config.previous_key_file or config.key_file.with_name("forrige-nokkelfil.xml")
        _write(previous, current_raw)
        until = current.valid_to + dt.timedelta(days=config.key_overlap_days)
        lines.append(
            f"Forrige nøkkelfil ({current.tpf.key_id}) er lagt i {previous}: filer kryptert "
            f"for den tas imot til og med {until.isoformat()}."
        )
    _write(config.key_file, raw)
    lines.insert(0, f"Publiserte {new.tpf.key_id} i {config.key_file} (lastes ned fra /last-ned)")
    lines.extend(describe_key_file(new))
    return lines
