"""Writes the envelope vectors (valid/ and invalid/) from the golden message by plain text edits.

Run once when a vector is added: ``python tests/vectors/envelope/make_vectors.py``. It imports
nothing of the code under test: every vector is the golden message (../message/kryptert.xml)
with one change, written out byte for byte, so a reviewer can read each file and each change.
The expected outcome of every file, for the code and for the XSD, is in expected.json (written
by hand, not by this script).
"""

from __future__ import annotations

import gzip
import io
import shutil
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOLDEN = (HERE.parent / "message" / "kryptert.xml").read_bytes()
CLEARTEXT = (HERE.parent / "iplos" / "valid" / "utf-8.xml").read_bytes()

# Numbers that pass the fødselsnummer check (tests/vectors/fodselsnummer.json): synthetic,
# D- and H-number. Never a real person's.
SYNTETISK = "15857010032"
D_NUMMER = "55057010060"
H_NUMMER = "15557010189"
NOT_FNR = "15857010033"  # eleven digits, wrong check digit

NAVN = "<Navn>Ålesund kommune, Pleie- og omsorgstjenesten Ærøy–Øksnes</Navn>"
FAGSYSTEM = '<Fagsystem navn="Profil" versjon="9.1"/>'
MOTTAKER = "<Mottaker><Navn>Statistisk sentralbyrå</Navn></Mottaker>"
TPF_CIPHER_END = "</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>"


def edit(old: str, new: str, count: int = 1) -> bytes:
    text = GOLDEN.decode("utf-8")
    assert old in text, old
    return text.replace(old, new, count).encode("utf-8")


def edit_many(*pairs: tuple[str, str]) -> bytes:
    text = GOLDEN.decode("utf-8")
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text.encode("utf-8")


def wrapped_key_with(digits: str) -> bytes:
    """The TPF key's CipherValue with 11 of its base64 characters replaced by ``digits``."""
    text = GOLDEN.decode("utf-8")
    start = text.index("<xenc:CipherValue>") + len("<xenc:CipherValue>") + 20
    return (text[:start] + digits + text[start + len(digits) :]).encode("utf-8")


def pretty() -> bytes:
    """Indented, the TPF layer's base64 in lines of 76 (as libxmlsec writes it)."""
    text = GOLDEN.decode("utf-8")
    gcm = '<xenc:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#aes256-gcm"'
    for tag in ("<Kommunenummer>", "<Bydelsnummer>", "<Organisasjonsnummer>", "<Navn>Å",
                "<Fagsystem", "</Avsender>", gcm, "<ds:KeyInfo><xenc", "</xenc:EncryptedData>"):
        text = text.replace(tag, "\n  " + tag, 1)
    head, _, rest = text.rpartition("<xenc:CipherValue>")
    body, _, tail = rest.partition("</xenc:CipherValue>")
    lines = "\n".join(body[i : i + 76] for i in range(0, len(body), 76))
    return (head + "<xenc:CipherValue>\n" + lines + "\n</xenc:CipherValue>" + tail).encode()


def zipped() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("kryptert.xml", GOLDEN)
    return buffer.getvalue()


VALID: dict[str, bytes] = {
    "golden.xml": GOLDEN,
    "minimal.xml": edit_many(
        (NAVN, ""), (FAGSYSTEM, "")),
    "indented.xml": pretty(),
    "no-declaration.xml": GOLDEN.split(b"\n", 1)[1],
    "utf-8-bom.xml": b"\xef\xbb\xbf" + GOLDEN,
    "names.xml": edit_many(
        (NAVN, "<Navn>Guovdageainnu suohkan – Kárášjohka &amp; Deanu (bydel 0123456789)</Navn>"),
        (FAGSYSTEM, '<Fagsystem navn="CosDoc (Tieto)" versjon="2026.2.1 (build 7)"/>'),
        ("<Navn>Statistisk sentralbyrå</Navn>",
         "<Navn>Statistisk sentralbyr&#xE5; (SSB)</Navn>")),
    "mottaker-organisasjonsnummer.xml": edit(
        MOTTAKER,
        "<Mottaker><Navn>Statistisk sentralbyrå</Navn>"
        "<Organisasjonsnummer>971526920</Organisasjonsnummer></Mottaker>"),
}

INVALID: dict[str, bytes] = {
    # --- hostile XML (issue 7.13) ---
    "xxe.xml": edit('<?xml version="1.0" encoding="UTF-8"?>\n',
                    '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE IPLOSKryptert '
                    '[<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n').replace(
                        b"<Meldingstype>IPLOS", b"<Meldingstype>&xxe;"),
    "parameter-entity.xml": edit('<?xml version="1.0" encoding="UTF-8"?>\n',
                                 '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE '
                                 'IPLOSKryptert [<!ENTITY % p SYSTEM '
                                 '"http://127.0.0.1:9/ekstern.dtd"> %p;]>\n'),
    "entity-bomb.xml": edit('<?xml version="1.0" encoding="UTF-8"?>\n',
                            '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE IPLOSKryptert [\n'
                            + '<!ENTITY a0 "ha">\n'
                            + "".join(f'<!ENTITY a{i} "{("&a" + str(i - 1) + ";") * 10}">\n'
                                      for i in range(1, 10))
                            + "]>\n").replace(b"<Meldingstype>IPLOS", b"<Meldingstype>&a9;"),
    "doctype.xml": edit('<?xml version="1.0" encoding="UTF-8"?>\n',
                        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE IPLOSKryptert>\n'),
    "downgrade-cbc.xml": edit("xmlenc11#aes256-gcm", "xmlenc#aes256-cbc"),
    "downgrade-rsa-1_5.xml": edit("xmlenc11#rsa-oaep", "xmlenc#rsa-1_5"),
    "downgrade-rsa-oaep-mgf1p.xml": edit("xmlenc11#rsa-oaep", "xmlenc#rsa-oaep-mgf1p"),
    "downgrade-oaep-sha1.xml": edit("http://www.w3.org/2001/04/xmlenc#sha256",
                                    "http://www.w3.org/2000/09/xmldsig#sha1"),
    "downgrade-mgf1-sha1.xml": edit("xmlenc11#mgf1sha256", "xmlenc11#mgf1sha1"),
    "downgrade-no-mgf.xml": edit(
        '<xenc11:MGF Algorithm="http://www.w3.org/2009/xmlenc11#mgf1sha256"/>', ""),
    "truncated-in-cipher-value.xml": GOLDEN[: len(GOLDEN) // 2],
    "truncated-in-header.xml": GOLDEN[: GOLDEN.index(b"<Bydelsnummer>") + 5],
    "gzip.xml.gz": gzip.compress(GOLDEN, mtime=0),
    "zip.zip": zipped(),
    # --- the clear part admits nothing but its fields (issue 7.1) ---
    "comment-in-root.xml": edit("</Meldingstype>", f"</Meldingstype><!-- {SYNTETISK} -->"),
    "comment-after-root.xml": GOLDEN + f"<!-- {SYNTETISK} -->\n".encode(),
    "comment-before-root.xml": edit(
        "\n<IPLOSKryptert", f"\n<!-- {SYNTETISK} -->\n<IPLOSKryptert"),
    "pi-in-root.xml": edit("</Avsender>", f"</Avsender><?notat {SYNTETISK}?>"),
    "pi-after-root.xml": GOLDEN + f"<?notat {SYNTETISK}?>\n".encode(),
    "cdata-in-navn.xml": edit(NAVN, "<Navn><![CDATA[Ålesund kommune]]></Navn>"),
    "fnr-avsender-navn.xml": edit(NAVN, f"<Navn>Ålesund kommune {SYNTETISK}</Navn>"),
    "fnr-spaced-avsender-navn.xml": edit(
        NAVN, f"<Navn>Ålesund kommune {D_NUMMER[:6]} {D_NUMMER[6:]}</Navn>"),
    "fnr-mottaker-navn.xml": edit("<Navn>Statistisk sentralbyrå</Navn>",
                                  f"<Navn>Statistisk sentralbyrå {H_NUMMER}</Navn>"),
    "fnr-fagsystem-navn.xml": edit('navn="Profil"', f'navn="Profil {SYNTETISK}"'),
    "fnr-fagsystem-versjon.xml": edit('versjon="9.1"', f'versjon="{SYNTETISK}"'),
    "fnr-meldingstype.xml": edit("<Meldingstype>IPLOS", f"<Meldingstype>IPLOS{SYNTETISK}"),
    "fnr-encrypted-data-id.xml": edit('Id="tpf-lag"', f'Id="tpf-lag-{SYNTETISK}"'),
    "fnr-encrypted-key-id.xml": edit('Id="tpf-nokkel"', f'Id="{SYNTETISK}"'),
    "fnr-recipient.xml": edit('Recipient="TPF"', f'Recipient="TPF {SYNTETISK}"'),
    "fnr-key-name.xml": edit("<ds:KeyName>tpf-vektor", f"<ds:KeyName>tpf-{SYNTETISK}"),
    "fnr-wrapped-key.xml": wrapped_key_with(SYNTETISK),
    "fnr-unknown-attribute.xml": edit("<Avsender>", f'<Avsender merknad="{SYNTETISK}">'),
    "fnr-element-name.xml": edit("</Meldingstype>", f"</Meldingstype><F{SYNTETISK}/>"),
    "fnr-stray-text.xml": edit("</Bydelsnummer>", f"</Bydelsnummer>{SYNTETISK}"),
    "fnr-namespace.xml": edit('versjon="1" ', f'versjon="1" xmlns:x="urn:{SYNTETISK}" '),
    "eleven-digits-not-fnr.xml": edit(NAVN, f"<Navn>Ålesund kommune {NOT_FNR}</Navn>"),
    "navn-too-long.xml": edit(NAVN, "<Navn>" + "Å" * 151 + "</Navn>"),
    "navn-markup-character.xml": edit(NAVN, "<Navn>Ålesund &lt;kommune&gt;</Navn>"),
    "navn-line-break.xml": edit(NAVN, "<Navn>Ålesund\nkommune</Navn>"),
    "fagsystem-versjon-too-long.xml": edit('versjon="9.1"',
                                           'versjon="' + "9" * 5 + "." * 26 + '"'),
    "fagsystem-text.xml": edit(FAGSYSTEM, '<Fagsystem navn="Profil">tekst</Fagsystem>'),
    "meldingstype-empty.xml": edit("<Meldingstype>IPLOS</Meldingstype>",
                                   "<Meldingstype></Meldingstype>"),
    "kommunenummer-three-digits.xml": edit("<Kommunenummer>1508", "<Kommunenummer>150"),
    "kommunenummer-spaces.xml": edit("<Kommunenummer>1508", "<Kommunenummer> 1508 "),
    "organisasjonsnummer-check-digit.xml": edit("974778874", "974778875"),
    "encrypted-data-id-other.xml": edit('Id="tpf-lag"', 'Id="lag"'),
    "encrypted-data-id-missing.xml": edit(' Id="tpf-lag"', ""),
    "recipient-other.xml": edit('Recipient="TPF"', 'Recipient="IPLOS"'),
    "type-other.xml": edit('Type="http://www.w3.org/2001/04/xmlenc#Element"',
                           'Type="http://www.w3.org/2001/04/xmlenc#Content"'),
    "key-name-unknown.xml": edit("<ds:KeyName>tpf-vektor", "<ds:KeyName>tpf-2025"),
    "key-name-characters.xml": edit("<ds:KeyName>tpf-vektor", "<ds:KeyName>tpf vektor"),
    "carried-key-name.xml": edit("</xenc:CipherData></xenc:EncryptedKey>",
                                 "</xenc:CipherData><xenc:CarriedKeyName>registerlag"
                                 "</xenc:CarriedKeyName></xenc:EncryptedKey>"),
    "unknown-element.xml": edit("</Mottaker>", "</Mottaker><Personer/>"),
    "element-twice.xml": edit("</Mottaker>", "</Mottaker><Meldingstype>IPLOS</Meldingstype>"),
    "avsender-missing.xml": GOLDEN.replace(
        GOLDEN[GOLDEN.index(b"<Avsender>") : GOLDEN.index(b"</Avsender>") + 11], b"", 1),
    "attribute-extra.xml": edit("<Avsender>", '<Avsender type="kommune">'),
    "version-2.xml": edit('versjon="1"', 'versjon="2"'),
    "other-prefix.xml": GOLDEN.replace(b"xenc:", b"e:").replace(b"xmlns:xenc=", b"xmlns:e="),
    "default-namespace.xml": edit('versjon="1" ', 'versjon="1" xmlns="urn:ipis" '),
    "namespace-on-child.xml": edit(
        "<Avsender>", '<Avsender xmlns:ds="http://www.w3.org/2000/09/xmldsig#">'),
    "utf-16.xml": b"\xff\xfe" + GOLDEN.decode("utf-8").replace(
        'encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16-le"),
    "latin-1-declared.xml": edit('encoding="UTF-8"', 'encoding="ISO-8859-1"').replace(
        "Å".encode(), "Å".encode("latin-1")).replace("Æ".encode(), "Æ".encode("latin-1")).replace(
        "Ø".encode(), "Ø".encode("latin-1")).replace("ø".encode(), "ø".encode("latin-1")).replace(
        "å".encode(), "å".encode("latin-1")).replace("–".encode(), b"-"),
    "cipher-value-not-base64.xml": edit(TPF_CIPHER_END, "A!A=" + TPF_CIPHER_END),
    "cipher-value-trailing-garbage.xml": edit(TPF_CIPHER_END, "!!" + TPF_CIPHER_END),
    "cipher-value-too-short.xml": GOLDEN[: GOLDEN.rindex(b"<xenc:CipherValue>") + 18]
    + b"AAAA" + GOLDEN[GOLDEN.rindex(b"</xenc:CipherValue>") :],
    "cipher-value-empty.xml": GOLDEN[: GOLDEN.rindex(b"<xenc:CipherValue>") + 18]
    + GOLDEN[GOLDEN.rindex(b"</xenc:CipherValue>") :],
    "wrapped-key-too-short.xml": GOLDEN[: GOLDEN.index(b"<xenc:CipherValue>") + 18]
    + b"AAAA" + GOLDEN[GOLDEN.index(b"</xenc:CipherValue>") :],
    "whitespace-run-too-long.xml": edit("</Meldingstype>", "</Meldingstype>" + " " * 3000),
    "attribute-too-long.xml": edit('navn="Profil"', 'navn="' + "P" * 3000 + '"'),
    "cleartext-iplos.xml": CLEARTEXT,
    "empty.xml": b"",
    "only-whitespace.xml": b"\n  \n",
    "text-before-root.xml": b"hei\n" + GOLDEN.split(b"\n", 1)[1],
    "element-after-root.xml": GOLDEN + b"<IPLOSKryptert/>\n",
    "root-other.xml": GOLDEN.replace(b"IPLOSKryptert", b"Annet"),
}


def main() -> None:
    for folder, vectors in (("valid", VALID), ("invalid", INVALID)):
        target = HERE / folder
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        for name, data in vectors.items():
            (target / name).write_bytes(data)
        print(f"{folder}: {len(vectors)} filer")


if __name__ == "__main__":
    main()
