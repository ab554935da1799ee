"""The TPF's own writer held against the register (and against the register tests' writer):
``ipis tpf process`` → ``ipis register load`` → the exported data equals the input, field by
field."""

from __future__ import annotations

import os
from pathlib import Path

from register_testlib import KeySet, input_persons, register_config
from server_testlib import ipis

from ipis_server.register.export import rows
from ipis_server.register.services import open_services


def test_the_tpfs_output_loads_and_equals_the_input(tmp_path: Path, keys: KeySet, plain: bytes,
                                                    encrypted: bytes) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IPIS_")}
    tpf = tmp_path / "tpf"
    ipis("keys", "install", "--party", "tpf", "--instance", str(tpf), "--from",
         str(keys.folder), env=env)
    source, output = tmp_path / "kryptert.xml", tmp_path / "pseudonymisert.xml"
    source.write_bytes(encrypted)
    day = ("--today", "2026-06-02")
    ipis("tpf", "process", str(source), str(output), "--instance", str(tpf),
         "--register-key-file", str(keys.folder / "nokkelfil.xml"), "--test-numbers", *day,
         env=env)
    register = tmp_path / "register"
    ipis("keys", "install", "--party", "register", "--instance", str(register), "--from",
         str(keys.folder), env=env)
    loaded = ipis("register", "load", str(output), "--instance", str(register), *day, env=env)
    assert "Lastet i registeret: 120 personposter." in loaded.stdout
    config = register_config(tmp_path / "lest", f"sqlite:///{register / 'register.db'}", None)
    svc = open_services(config)
    try:
        exported = list(rows(svc.db))
    finally:
        svc.dispose()
    expected = input_persons(plain)
    assert [(r["husstand"], r["dodsdato"], r["vurderinger"], r["tjenester"], r["diagnoser"])
            for r in exported] == [
        (p.husstand, p.dodsdato, p.vurderinger, p.tjenester, p.diagnoser) for p in expected]
    pseudonyms = [r["pseudonym"] for r in exported]
    assert all(len(p) == 32 for p in pseudonyms)
    numbers = [p.fodselsnummer for p in expected]
    # One pseudonym per number: the same number, the same pseudonym; different, different.
    assert len(set(pseudonyms)) == len(set(numbers))
