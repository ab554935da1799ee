"""``ipis encrypt`` on the command line: the seed's messages, exit status, and no output file
(nor temporary file) left in the target folder on any fault."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest
from ipis_testlib import FNR, TODAY, VECTORS, document, person

from ipis_core.demo_data import document_bytes
from ipis_server.cli import main

FAULTS = json.loads((VECTORS / "iplos" / "faults.json").read_text(encoding="utf-8"))
CONTACT_ARGS = ["--email", "iplos@kommune.no", "--name", "Åse Ødegård", "--mobile", "912 34 567"]


@pytest.fixture
def folders(tmp_path: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    source, target = tmp_path / "inn", tmp_path / "ut"
    source.mkdir()
    target.mkdir()
    return source, target


def encrypt(capsys, *args: str) -> tuple[int, str, str]:
    status = main(["encrypt", *args, "--today", TODAY.isoformat()])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_fault(capsys, message: str, target: pathlib.Path, *args: str) -> None:
    status, _, err = encrypt(capsys, *args)
    assert status != 0
    assert err == message + "\n"
    assert "Traceback" not in err
    assert os.listdir(target) == []  # no output file, no .ipis-*.tmp


@pytest.mark.parametrize("case", FAULTS, ids=[c["file"] for c in FAULTS])
def test_data_file_fault_leaves_nothing(capsys, folders, key_file_path, case) -> None:
    _, target = folders
    data = VECTORS / "iplos" / "faults" / case["file"]
    assert_fault(capsys, case["message"], target, "--data", str(data), "--out",
                 str(target / "kryptert.xml"), "--keys", str(key_file_path), *CONTACT_ARGS)


def test_fault_after_megabytes_of_output_leaves_no_temp_file(
    capsys, folders, key_file_path
) -> None:
    source, target = folders
    data = document_bytes(12000, seed=2)  # ~6 MB: the temp file has been written to
    cut = data.rindex(b"</Vurdering>")
    broken = data[:cut] + b"</Vurd>" + data[cut + len(b"</Vurdering>"):]
    line = broken[:cut].count(b"\n") + 1
    (source / "data.xml").write_bytes(broken)
    status, _, err = encrypt(capsys, "--data", str(source / "data.xml"), "--out",
                             str(target / "kryptert.xml"), "--keys", str(key_file_path),
                             *CONTACT_ARGS)
    assert status == 1
    assert f"avslutningen Vurd på linje {line}." in err
    assert os.listdir(target) == []


def test_truncated_large_file_leaves_nothing(capsys, folders, key_file_path) -> None:
    source, target = folders
    data = document_bytes(5000, seed=4)
    (source / "data.xml").write_bytes(data[: len(data) // 2])
    status, _, err = encrypt(capsys, "--data", str(source / "data.xml"), "--out",
                             str(target / "k.xml"), "--keys", str(key_file_path), *CONTACT_ARGS)
    assert status == 1 and err.startswith("IPLOS filen er ufullstendig: Feltet ")
    assert os.listdir(target) == []


@pytest.mark.parametrize(
    "drop,message",
    [
        ("--data", "IPLOS datafil mangler"),
        ("--out", "Kryptert IPLOS fil mangler"),
        ("--keys", "Nøkkelfil mangler"),
        ("--email", "E-post adresse/Navn/MobilTelefonnr mangler"),
        ("--name", "E-post adresse/Navn/MobilTelefonnr mangler"),
        ("--mobile", "E-post adresse/Navn/MobilTelefonnr mangler"),
    ],
)
def test_missing_option_gives_the_seed_message(
    capsys, folders, key_file_path, drop, message
) -> None:
    source, target = folders
    (source / "data.xml").write_text(document(), encoding="utf-8")
    options = {"--data": str(source / "data.xml"), "--out": str(target / "k.xml"),
               "--keys": str(key_file_path), "--email": "iplos@kommune.no",
               "--name": "Åse", "--mobile": "91234567"}
    blanks = (None, "", "   ") if drop in ("--email", "--name", "--mobile") else (None, "")
    for blank in blanks:
        args = [x for k, v in options.items() for x in ((k, v) if k != drop else
                ((k, blank) if blank is not None else ()))]
        assert_fault(capsys, message, target, *args)


def test_missing_options_are_reported_in_the_seed_order(capsys, folders) -> None:
    _, target = folders
    assert_fault(capsys, "IPLOS datafil mangler", target)
    assert_fault(capsys, "Kryptert IPLOS fil mangler", target, "--data", "x.xml")
    assert_fault(capsys, "Nøkkelfil mangler", target, "--data", "x.xml", "--out", "y.xml")
    assert_fault(capsys, "E-post adresse/Navn/MobilTelefonnr mangler", target,
                 "--data", "x.xml", "--out", "y.xml", "--keys", "z.xml")


@pytest.mark.parametrize(
    "option,value,start",
    [
        ("--email", "ikke-en-adresse", "E-postadressen til kontaktpersonen er ikke gyldig."),
        ("--email", "a@b", "E-postadressen til kontaktpersonen er ikke gyldig."),
        ("--mobile", "12345", "Mobiltelefonnummeret til kontaktpersonen er ikke gyldig."),
        ("--mobile", "22 33 44 55", "Mobiltelefonnummeret til kontaktpersonen er ikke gyldig."),
    ],
)
def test_malformed_contact(capsys, folders, key_file_path, option, value, start) -> None:
    source, target = folders
    (source / "data.xml").write_text(document(), encoding="utf-8")
    options = dict(zip(CONTACT_ARGS[::2], CONTACT_ARGS[1::2], strict=True))
    options[option] = value
    status, _, err = encrypt(capsys, "--data", str(source / "data.xml"), "--out",
                             str(target / "k.xml"), "--keys", str(key_file_path),
                             *[x for kv in options.items() for x in kv])
    assert status == 1 and err.startswith(start)
    assert os.listdir(target) == []


@pytest.mark.parametrize("mobile", ["91234567", "912 34 567", "+47 912 34 567", "0047-91234567"])
def test_mobile_forms_accepted(capsys, folders, key_file_path, mobile) -> None:
    source, target = folders
    (source / "data.xml").write_text(document(), encoding="utf-8")
    status, _, err = encrypt(capsys, "--data", str(source / "data.xml"), "--out",
                             str(target / "k.xml"), "--keys", str(key_file_path),
                             "--email", "a@b.no", "--name", "Ola", "--mobile", mobile)
    assert status == 0, err


def test_data_file_cannot_be_opened(capsys, folders, key_file_path) -> None:
    source, target = folders
    for data in (source / "finnes-ikke.xml", source):  # missing, and a folder
        assert_fault(capsys, "IPLOS filen kunne ikke åpnes.", target, "--data", str(data),
                     "--out", str(target / "k.xml"), "--keys", str(key_file_path), *CONTACT_ARGS)


def test_key_file_faults(capsys, folders, key_file_path) -> None:
    source, target = folders
    (source / "data.xml").write_text(document(), encoding="utf-8")
    common = ["--data", str(source / "data.xml"), "--out", str(target / "k.xml"), *CONTACT_ARGS]
    assert_fault(capsys, "Nøkkelfilen kunne ikke åpnes.", target, *common, "--keys",
                 str(source / "nokler.xml"))
    expected = json.loads((VECTORS / "keyfiles" / "expected.json").read_text(encoding="utf-8"))
    for case in expected["invalid"]:
        assert_fault(capsys, case["message"], target, *common, "--keys",
                     str(VECTORS / "keyfiles" / case["file"]))
    status = main(["encrypt", *common, "--keys", str(key_file_path), "--today", "2030-01-01"])
    err = capsys.readouterr().err
    assert status == 1
    assert err == ("Nøkkelfilen er utløpt (gyldig til og med 2026-12-31). Hent den nye "
                   "nøkkelfilen som SSB publiserer 1. desember hvert år.\n")
    assert os.listdir(target) == []


def test_output_same_as_input_is_refused_and_input_kept(capsys, folders, key_file_path) -> None:
    source, _ = folders
    data = source / "data.xml"
    data.write_text(document(), encoding="utf-8")
    before = data.read_bytes()
    status, _, err = encrypt(capsys, "--data", str(data), "--out", str(data), "--keys",
                             str(key_file_path), *CONTACT_ARGS)
    assert status == 1 and err.startswith("Kryptert IPLOS-fil kan ikke være den samme filen")
    assert data.read_bytes() == before
    assert sorted(os.listdir(source)) == ["data.xml"]


def test_output_folder_missing(capsys, folders, key_file_path) -> None:
    source, target = folders
    (source / "data.xml").write_text(document(), encoding="utf-8")
    status, _, err = encrypt(capsys, "--data", str(source / "data.xml"), "--out",
                             str(target / "mangler" / "k.xml"), "--keys", str(key_file_path),
                             *CONTACT_ARGS)
    assert status == 1
    assert err == ("Den krypterte filen kunne ikke lagres. Kontroller at mappen finnes og at du "
                   "har skrivetilgang til den.\n")
    assert os.listdir(target) == []


def test_existing_output_is_kept_on_fault(capsys, folders, key_file_path) -> None:
    _, target = folders
    old = target / "kryptert.xml"
    old.write_bytes(b"forrige kryptering")
    data = VECTORS / "iplos" / "faults" / "missing-dato.xml"
    status, _, _ = encrypt(capsys, "--data", str(data), "--out", str(old), "--keys",
                           str(key_file_path), *CONTACT_ARGS)
    assert status == 1
    assert os.listdir(target) == ["kryptert.xml"] and old.read_bytes() == b"forrige kryptering"


def test_success_reports_persons_and_leaves_only_the_output(capsys, folders, key_file_path) -> None:
    source, target = folders
    (source / "data.xml").write_bytes(document_bytes(25, seed=9))
    status, out, err = encrypt(capsys, "--data", str(source / "data.xml"), "--out",
                               str(target / "kryptert.xml"), "--keys", str(key_file_path),
                               *CONTACT_ARGS)
    assert status == 0, err
    assert "Antall personer: 25\n" in out
    assert "TPF-nøkkel" in out and "IPLOS-nøkkel" in out
    assert os.listdir(target) == ["kryptert.xml"]
    assert err == ""


def test_check_digit_warning_names_lines_not_numbers(capsys, folders, key_file_path) -> None:
    source, target = folders
    cases = json.loads((VECTORS / "fodselsnummer.json").read_text(encoding="utf-8"))["cases"]
    numbers = [c["number"] for c in cases]
    (source / "data.xml").write_text(document([person(n) for n in numbers]), encoding="utf-8")
    status, out, err = encrypt(capsys, "--data", str(source / "data.xml"), "--out",
                               str(target / "k.xml"), "--keys", str(key_file_path), *CONTACT_ARGS)
    assert status == 0
    bad_lines = [21 + 8 * i for i, c in enumerate(cases) if not c["valid"]]
    assert len(bad_lines) == 4
    assert err == (
        "Advarsel: 4 fødselsnumre har feil kontrollsiffer (Person på linje "
        + ", ".join(map(str, bad_lines))
        + "). Filen er kryptert likevel; rett numrene i fagsystemet før neste uttrekk.\n"
    )
    for number in numbers:
        assert number not in out + err
    assert f"Antall personer: {len(numbers)}" in out


def test_one_wrong_check_digit_singular(capsys, folders, key_file_path) -> None:
    source, target = folders
    bad = FNR[0][:10] + str((int(FNR[0][10]) + 1) % 10)
    (source / "data.xml").write_text(document([person(FNR[1]), person(bad)]), encoding="utf-8")
    status, _, err = encrypt(capsys, "--data", str(source / "data.xml"), "--out",
                             str(target / "k.xml"), "--keys", str(key_file_path), *CONTACT_ARGS)
    assert status == 0
    assert err.startswith("Advarsel: 1 fødselsnummer har feil kontrollsiffer (Person på linje 29).")


def test_subprocess_exit_status_and_no_traceback(folders, key_file_path) -> None:
    _, target = folders
    data = VECTORS / "iplos" / "faults" / "mismatch-in-person.xml"
    result = subprocess.run(
        [sys.executable, "-m", "ipis_server", "encrypt", "--data", str(data), "--out",
         str(target / "k.xml"), "--keys", str(key_file_path), *CONTACT_ARGS,
         "--today", TODAY.isoformat()],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Feil i innholdet i IPLOS filen: Starten på feltet Vurdering")
    assert os.listdir(target) == []
    result = subprocess.run([sys.executable, "-m", "ipis_server", "encrypt"], capture_output=True,
                            text=True, timeout=60)
    assert (result.returncode, result.stderr) == (1, "IPLOS datafil mangler\n")


def test_key_file_expiring_soon_warns_but_encrypts(capsys, folders, key_file_path) -> None:
    source, target = folders
    (source / "data.xml").write_text(document(), encoding="utf-8")
    status = main(["encrypt", "--data", str(source / "data.xml"), "--out", str(target / "k.xml"),
                   "--keys", str(key_file_path), *CONTACT_ARGS, "--today", "2026-12-21"])
    err = capsys.readouterr().err
    assert status == 0
    assert err == ("Advarsel: Nøkkelfilen utløper 2026-12-31 (om 10 dager). Hent den nye "
                   "nøkkelfilen fra SSB før neste innsending.\n")
    assert os.listdir(target) == ["k.xml"]


def test_check_digit_warning_lists_at_most_20_lines() -> None:
    from ipis_core.message import check_digit_warning

    warning = check_digit_warning(list(range(21, 21 + 8 * 25, 8)))
    assert warning is not None
    assert warning.startswith("25 fødselsnumre har feil kontrollsiffer (Person på linje 21, 29,")
    assert ", 173 …). Filen er kryptert likevel;" in warning
    assert check_digit_warning([]) is None


def test_core_commands_do_not_import_the_server_stack() -> None:
    """``ipis encrypt`` is timed and memory-bound (issue 2: 50 MB in 3 s, under 150 MB): the
    send module's Flask/SQLAlchemy/alembic stack (~1.3 s and ~75 MB) must not load for it."""
    path = VECTORS / "keyfiles" / "utf-8.txt"
    code = (
        "import sys\n"
        "from ipis_server.cli import main\n"
        f"status = main(['keys', 'show', {str(path)!r}, '--today', '2026-06-01'])\n"
        "heavy = sorted(m for m in ('flask', 'sqlalchemy', 'alembic', 'argon2')"
        " if m in sys.modules)\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert "HEAVY []" in result.stderr, result.stderr


def test_interrupt_mid_file_leaves_no_temp_file(
    capsys, folders, key_file_path, monkeypatch
) -> None:
    from ipis_core.message import MessageEncryptor

    source, target = folders
    (source / "data.xml").write_bytes(document_bytes(6000, seed=6))  # ~3 MB: several chunks
    real_feed = MessageEncryptor.feed
    calls = {"n": 0}

    async def feed(self, chunk):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            assert [n for n in os.listdir(target) if n.startswith(".ipis-")]  # temp file exists
            raise KeyboardInterrupt
        return await real_feed(self, chunk)

    monkeypatch.setattr(MessageEncryptor, "feed", feed)
    status, _, err = encrypt(capsys, "--data", str(source / "data.xml"), "--out",
                             str(target / "k.xml"), "--keys", str(key_file_path), *CONTACT_ARGS)
    assert (status, err) == (130, "Avbrutt.\n")
    assert os.listdir(target) == []


def _writer_threads() -> list[str]:
    import threading

    return [t.name for t in threading.enumerate() if t.name == "ipis-writer"]


def test_the_sha256_shown_is_that_of_the_file_written(capsys, folders, key_file_path) -> None:
    """ipis encrypt hashes on its writer thread what that thread wrote."""
    import hashlib

    source, target = folders
    (source / "data.xml").write_bytes(document_bytes(5000, seed=4))  # several chunks
    status, out, err = encrypt(capsys, "--data", str(source / "data.xml"), "--out",
                               str(target / "kryptert.xml"), "--keys", str(key_file_path),
                               *CONTACT_ARGS)
    assert status == 0, err
    written = (target / "kryptert.xml").read_bytes()
    assert f"SHA-256: {hashlib.sha256(written).hexdigest()}\n" in out
    assert f"({len(written)} byte)" in out
    assert _writer_threads() == []


@pytest.mark.parametrize("failing_write", [1, 3])
def test_a_write_error_is_reported_and_leaves_nothing(
    capsys, folders, key_file_path, monkeypatch, failing_write: int
) -> None:
    """A disk that fills up (ENOSPC) on the writer thread: the seed-style message, no file,
    no temporary file, and the thread ended."""
    import errno

    from ipis_core import encrypt_file

    source, target = folders
    (source / "data.xml").write_bytes(document_bytes(6000, seed=8))  # ~3 MB: several writes
    real_init = encrypt_file.HashingWriter.__init__

    def init(self, sink):  # type: ignore[no-untyped-def]
        writes = {"n": 0}
        real_write = sink.write

        def write(data):  # type: ignore[no-untyped-def]
            writes["n"] += 1
            if writes["n"] == failing_write:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_write(data)

        sink.write = write
        real_init(self, sink)

    monkeypatch.setattr(encrypt_file.HashingWriter, "__init__", init)
    status, _, err = encrypt(capsys, "--data", str(source / "data.xml"), "--out",
                             str(target / "kryptert.xml"), "--keys", str(key_file_path),
                             *CONTACT_ARGS)
    assert status == 1
    assert err == ("Den krypterte filen kunne ikke lagres. Kontroller at mappen finnes og at du "
                   "har skrivetilgang til den.\n")
    assert os.listdir(target) == []
    assert _writer_threads() == []


def test_a_data_fault_ends_the_writer_thread(capsys, folders, key_file_path) -> None:
    source, target = folders
    data = document_bytes(6000, seed=6)
    (source / "data.xml").write_bytes(data[: len(data) * 2 // 3])  # cut short: a fault late
    status, _, err = encrypt(capsys, "--data", str(source / "data.xml"), "--out",
                             str(target / "kryptert.xml"), "--keys", str(key_file_path),
                             *CONTACT_ARGS)
    assert status == 1 and err.startswith("IPLOS filen er ufullstendig")
    assert os.listdir(target) == []
    assert _writer_threads() == []
