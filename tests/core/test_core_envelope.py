"""The one envelope reader (ipis_core.envelope) against tests/vectors/envelope, the hostile inputs
of issue 7.13, and the bound on memory of issue 7.2 (refused early, proved by counting bytes).

The XSD is held to the same vectors in tests/docs/test_schemas.py.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from ipis_testlib import VECTORS

from ipis_core import decrypt, faults
from ipis_core.envelope import MAX_TOKEN_BYTES, EnvelopeReader, read_envelope
from ipis_core.inspect import inspect_file

FOLDER = VECTORS / "envelope"
EXPECTED = json.loads((FOLDER / "expected.json").read_text(encoding="utf-8"))
KEY_NAMES = frozenset(EXPECTED["key_names"])
GOLDEN = (FOLDER / "valid" / "golden.xml").read_bytes()


def read(data: bytes, chunk: int, key_names: frozenset[str] | None = KEY_NAMES) -> bytes:
    """Feed ``data`` in chunks; return what the reader handed back as validated."""
    reader = EnvelopeReader(key_names)
    out = []
    for start in range(0, len(data), chunk):
        out.append(reader.feed(data[start : start + chunk]))
    out.append(reader.close())
    return b"".join(out)


@pytest.mark.parametrize("chunk", [1, 97, 1 << 20])
@pytest.mark.parametrize("case", EXPECTED["valid"], ids=[c["file"] for c in EXPECTED["valid"]])
def test_valid_vector_is_accepted_and_handed_back_whole(case: dict[str, str], chunk: int) -> None:
    data = (FOLDER / "valid" / case["file"]).read_bytes()
    assert read(data, chunk) == data


@pytest.mark.parametrize("chunk", [1, 4096, 1 << 20])
@pytest.mark.parametrize(
    "case", EXPECTED["invalid"], ids=[c["file"] for c in EXPECTED["invalid"]]
)
def test_invalid_vector_gives_its_fault_at_any_chunk_size(
    case: dict[str, str], chunk: int
) -> None:
    data = (FOLDER / "invalid" / case["file"]).read_bytes()
    with pytest.raises(faults.EncryptedMessageFault) as caught:
        read(data, chunk)
    assert type(caught.value).__name__ == case["fault"]
    assert caught.value.message == case["message"]


def test_every_vector_file_is_listed() -> None:
    for folder in ("valid", "invalid"):
        listed = {c["file"] for c in EXPECTED[folder]}
        assert listed == {p.name for p in (FOLDER / folder).iterdir()}


def test_no_message_or_detail_repeats_a_number_from_the_file() -> None:
    for case in EXPECTED["invalid"]:
        data = (FOLDER / "invalid" / case["file"]).read_bytes()
        with pytest.raises(faults.EncryptedMessageFault) as caught:
            read(data, 1 << 20)
        for number in ("15857010032", "55057010060", "15557010189", "550570"):
            assert number not in caught.value.message
            assert number not in caught.value.detail


def test_without_a_key_name_set_any_well_formed_name_passes() -> None:
    """ipis inspect does not know the served keys; the rule for the name still holds."""
    data = (FOLDER / "invalid" / "key-name-unknown.xml").read_bytes()
    assert read(data, 1 << 20, key_names=None) == data
    with pytest.raises(faults.FodselsnummerInClearPart):
        read((FOLDER / "invalid" / "fnr-key-name.xml").read_bytes(), 1 << 20, key_names=None)


def test_inspect_and_decryption_use_the_same_reader(tmp_path: object) -> None:
    import pathlib

    folder = pathlib.Path(str(tmp_path))
    commented = folder / "kommentar.xml"
    commented.write_bytes((FOLDER / "invalid" / "comment-in-root.xml").read_bytes())
    with pytest.raises(faults.MarkupNotAllowed):
        inspect_file(str(commented))
    message = VECTORS / "message"
    tpf = decrypt.load_private_key((message / "tpf-privat.pem").read_bytes())
    register = decrypt.load_private_key((message / "iplos-privat.pem").read_bytes())
    smuggled = (FOLDER / "invalid" / "fnr-avsender-navn.xml").read_bytes()
    with pytest.raises(faults.FodselsnummerInClearPart):
        decrypt.open_message(io.BytesIO(smuggled), tpf, register)
    with pytest.raises(faults.UnknownKeyName):  # the TPF passes its own key ids
        decrypt.open_tpf_layer(io.BytesIO(GOLDEN), tpf, io.BytesIO(), key_names={"tpf-2031"})
    envelope = decrypt.open_tpf_layer(io.BytesIO(GOLDEN), tpf, io.BytesIO(), {"tpf-vektor"})
    assert envelope == read_envelope(io.BytesIO(GOLDEN))


# --- hostile inputs (issue 7.13) and flat memory (issue 7.2) -----------------------------------


class CountingStream:
    """A huge input made on the fly, in chunks; counts the bytes handed out. Nothing is ever
    held whole, so a test can feed 100 MB without allocating it."""

    def __init__(self, head: bytes, filler: bytes, size: int, chunk: int = 1 << 16) -> None:
        self.head, self.filler, self.size, self.chunk = head, filler, size, chunk
        self.handed_out = 0

    def __iter__(self) -> Iterator[bytes]:
        self.handed_out += len(self.head)
        yield self.head
        block = self.filler * (self.chunk // len(self.filler))
        left = self.size
        while left > 0:
            piece = block[: min(len(block), left)]
            left -= len(piece)
            self.handed_out += len(piece)
            yield piece


def _refused_after(stream: CountingStream) -> tuple[faults.EncryptedMessageFault, int]:
    reader = EnvelopeReader(KEY_NAMES)
    with pytest.raises(faults.EncryptedMessageFault) as caught:
        for piece in stream:
            reader.feed(piece)
        reader.close()
    return caught.value, stream.handed_out


def _head_until(marker: bytes) -> bytes:
    return GOLDEN[: GOLDEN.index(marker) + len(marker)]


HUNDRED_MB = 100 * 1000 * 1000
HOSTILE = {
    "attribute": (_head_until(b'<Fagsystem navn="'), b"P", faults.TokenTooLarge),
    "comment": (_head_until(b"</Meldingstype>") + b"<!--", b"x", faults.MarkupNotAllowed),
    "text-in-navn": (_head_until(b"<Organisasjonsnummer>974778874</Organisasjonsnummer><Navn>"),
                     b"A", faults.TokenTooLarge),
    "whitespace": (_head_until(b"</Meldingstype>"), b" ", faults.TokenTooLarge),
    "element-name": (_head_until(b"</Meldingstype>") + b"<A", b"A", faults.TokenTooLarge),
    "declaration": (b'<?xml version="1.0" encoding="UTF-8"', b" ", faults.TokenTooLarge),
    "processing-instruction": (_head_until(b"</Avsender>") + b"<?x ", b"y",
                               faults.MarkupNotAllowed),
    "nesting-known": (_head_until(b"<Meldingstype>"), b"<Meldingstype>",
                      faults.MisplacedEnvelopeElement),
    "nesting-unknown": (_head_until(b"</Meldingstype>"), b"<a>", faults.UnknownEnvelopeElement),
    "cipher-value-garbage": (_head_until(b"</xenc:EncryptedKey></ds:KeyInfo><xenc:CipherData>"
                                         b"<xenc:CipherValue>"), b"AAA*",
                             faults.CipherValueInvalid),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_input_is_refused_within_one_token_of_its_start(name: str) -> None:
    """100 MB of hostile input is refused after at most the head, one token bound and one
    chunk: the reader never buffers what it refuses (issue 7.2; counted, not timed)."""
    head, filler, kind = HOSTILE[name]
    stream = CountingStream(head, filler, HUNDRED_MB)
    fault, fed = _refused_after(stream)
    assert isinstance(fault, kind)
    assert fed <= len(head) + MAX_TOKEN_BYTES + stream.chunk


def test_nesting_100000_deep_is_refused_at_the_first_level() -> None:
    head = _head_until(b"</Meldingstype>")
    data = head + b"<a>" * 100_000 + b"</a>" * 100_000
    for chunk in (7, 1 << 16):
        reader = EnvelopeReader(KEY_NAMES)
        fed = 0
        with pytest.raises(faults.UnknownEnvelopeElement):
            for start in range(0, len(data), chunk):
                fed += chunk
                reader.feed(data[start : start + chunk])
        assert fed <= len(head) + MAX_TOKEN_BYTES + chunk


def test_a_large_cipher_value_is_handed_back_as_it_arrives() -> None:
    """The 1 GB case in small: 50 MB of base64 passes with at most one token held back."""
    head, _, rest = GOLDEN.rpartition(b"<xenc:CipherValue>")
    tail = rest[rest.index(b"</xenc:CipherValue>") :]
    reader = EnvelopeReader(KEY_NAMES)
    fed = handed = 0
    for piece in [head + b"<xenc:CipherValue>", *([b"QUJD" * (1 << 18)] * 50), tail]:
        fed += len(piece)
        handed += len(reader.feed(piece))
        assert fed - handed <= 2 * MAX_TOKEN_BYTES
    handed += len(reader.close())
    assert handed == fed
    assert reader.envelope.size == fed


def test_cipher_text_reaches_the_consumer_and_never_the_parser() -> None:
    seen: list[bytes] = []
    reader = EnvelopeReader(KEY_NAMES, on_cipher_text=seen.append)
    for start in range(0, len(GOLDEN), 1000):
        reader.feed(GOLDEN[start : start + 1000])
    reader.close()
    body = GOLDEN[GOLDEN.rindex(b"<xenc:CipherValue>") + 18 : GOLDEN.rindex(b"</xenc:CipherValue>")]
    assert b"".join(seen) == body


def test_the_sender_hook_runs_before_the_tpf_layer_is_read() -> None:
    calls: list[str] = []

    def on_sender(sender: object) -> None:
        calls.append(sender.kommunenummer)  # type: ignore[attr-defined]
        raise faults.SenderDiffersFromLogin("1508", "00", "0301", "00")

    reader = EnvelopeReader(KEY_NAMES, on_sender=on_sender)
    handed = b""
    with pytest.raises(faults.SenderDiffersFromLogin):
        for start in range(0, len(GOLDEN), 64):
            handed += reader.feed(GOLDEN[start : start + 64])
    assert calls == ["1508"]
    assert b"</Avsender>" not in handed


def test_a_stopped_reader_refuses_more_input() -> None:
    reader = EnvelopeReader(KEY_NAMES)
    with pytest.raises(faults.NotWellFormed):
        reader.feed(b"hei og hopp")
    with pytest.raises(RuntimeError):
        reader.feed(b"<")
