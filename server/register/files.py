"""File-based operation (``ipis register load``): what the TPF would deliver, read from disk.

For operators who do not run the services: ``ipis tpf process IN OUT`` writes the §4 message,
and this loads it as the worker would load a delivery (one transaction, loaded once); a §6
mapping file is applied the same way. The id is the one inside the file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from .layer import HEAD_LIMIT, kind_of
from .loading import LoadOutcome, load_delivery
from .mapping import apply_mapping
from .models import MAPPING
from .services import RegisterServices


def load_file(svc: RegisterServices, path: Path, received_at: dt.datetime) -> LoadOutcome:
    with path.open("rb") as source:
        kind = kind_of(source.read(HEAD_LIMIT))
        source.seek(0)
        if kind == MAPPING:
            return apply_mapping(svc.db, svc.keyring, source, None, svc.today())
        return load_delivery(svc.db, svc.keyring, source, None, received_at, svc.today())
