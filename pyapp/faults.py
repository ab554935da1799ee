"""Faults the user can act on, each carrying the exact Norwegian message.

The texts marked "seed" are fixed by docs/formater.md (from the historical user guide) and
must not change; the others follow the same style: one sentence, naming the element and the
line where there is one, saying what the user can do. No message ever contains a
fødselsnummer or any person data.
"""

from __future__ import annotations


class IplosFault(Exception):
    """A fault that stops the run; ``message`` is shown to the user as it is."""

    field: str = "data"  # which form field the fault concerns (the page puts it there)

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- missing form fields (seed) -------------------------------------------------------------


class MissingDataFile(IplosFault):
    field = "data"

    def __init__(self) -> None:
        super().__init__("IPLOS datafil mangler")


class MissingOutputFile(IplosFault):
    field = "out"

    def __init__(self) -> None:
        super().__init__("Kryptert IPLOS fil mangler")


class MissingKeyFile(IplosFault):
    field = "keys"

    def __init__(self) -> None:
        super().__init__("Nøkkelfil mangler")


class MissingContact(IplosFault):
    field = "contact"

    def __init__(self) -> None:
        super().__init__("E-post adresse/Navn/MobilTelefonnr mangler")


class InvalidContact(IplosFault):
    field = "contact"


class OutputSameAsInput(IplosFault):
    field = "out"

    def __init__(self) -> None:
        super().__init__(
            "Kryptert IPLOS-fil kan ikke være den samme filen som IPLOS-datafilen. "
            "Velg et annet navn for den krypterte filen."
        )


class OutputNotWritable(IplosFault):
    field = "out"

    def __init__(self) -> None:
        super().__init__(
            "Den krypterte filen kunne ikke lagres. Kontroller at mappen finnes og at du har "
            "skrivetilgang til den."
        )


# --- the data file ----------------------------------------------------------------------------


class DataFileUnreadable(IplosFault):
    """Seed: the data file cannot be read at all."""

    def __init__(self) -> None:
        super().__init__("IPLOS filen kunne ikke åpnes.")


class RootNotIplos(IplosFault):
    """Seed: the root element is not IPLOS (also: an empty file)."""

    def __init__(self) -> None:
        super().__init__('Feltet "IPLOS" mangler')


class TagMismatch(IplosFault):
    """Seed: a start tag and the end tag that closes it differ."""

    def __init__(self, start_tag: str, start_line: int, end_tag: str, end_line: int) -> None:
        super().__init__(
            f"Feil i innholdet i IPLOS filen: Starten på feltet {start_tag} på linje "
            f"{start_line} stemmer ikke med avslutningen {end_tag} på linje {end_line}."
        )


class MissingElement(IplosFault):
    """Seed: a required element is missing; ``path`` like ``IPLOS\\Avsender\\Kommunenummer``."""

    def __init__(self, path: str) -> None:
        super().__init__(f"IPLOS filen er mangelfull: Følgende felt mangler {path}")


class UnsupportedVersion(IplosFault):
    """Seed: @versjon missing or not supported."""

    def __init__(self) -> None:
        super().__init__(
            "Ugyldig versjonsnummer for IPLOS meldingen. Kontakt leverandøren av fagsystemet "
            "som genererte IPLOS meldingen"
        )


class MalformedData(IplosFault):
    """Any other fault in the data file, in the seed's style."""


class DataFileTooLarge(IplosFault):
    """The TPF layer's CipherValue would pass the text limit of libxml2 (docs/formater.md)."""

    def __init__(self, limit: int) -> None:
        limit_text = f"{limit:,}".replace(",", "\u00a0")
        # The encrypted TPF layer is about 2.2 times the IPLOS file (docs/formater.md).
        about = round(limit / 2.2e6, -1)
        input_text = f" (om lag {about:.0f} MB IPLOS-data)" if about >= 10 else ""
        super().__init__(
            f"IPLOS filen er for stor: den krypterte delen for TPF ville blitt over {limit_text} "
            f"tegn, som er grensen for hva standard XML-programmer kan lese{input_text}. Del "
            "uttrekket i flere filer i fagsystemet, eller kontakt SSB."
        )


def truncated(tag: str, line: int) -> MalformedData:
    return MalformedData(
        f"IPLOS filen er ufullstendig: Feltet {tag} som starter på linje {line} blir aldri "
        "avsluttet. Filen kan være avkortet; eksporter den på nytt fra fagsystemet."
    )


def not_xml(line: int, column: int) -> MalformedData:
    return MalformedData(
        f"Feil i innholdet i IPLOS filen: Ugyldig XML på linje {line}, kolonne {column}. "
        "Kontroller at filen er en IPLOS-fil i IPLOS eksportformat."
    )


def bad_characters(line: int) -> MalformedData:
    return MalformedData(
        f"Feil i innholdet i IPLOS filen: Ugyldige tegn på linje {line}. Kontroller at filen "
        "er lagret med tegnsettet som står i XML-deklarasjonen."
    )


def unknown_encoding(name: str) -> MalformedData:
    return MalformedData(
        f"Feil i innholdet i IPLOS filen: Tegnsettet {name} støttes ikke. Bruk UTF-8, UTF-16, "
        "ISO-8859-1 eller windows-1252."
    )


def doctype_refused(line: int) -> MalformedData:
    return MalformedData(
        f"Feil i innholdet i IPLOS filen: Filen har en dokumenttypedefinisjon (DOCTYPE) på linje "
        f"{line}. Det er ikke tillatt i IPLOS eksportformat; kontakt leverandøren av fagsystemet."
    )


def unknown_element(tag: str, line: int) -> MalformedData:
    return MalformedData(
        f"Feil i innholdet i IPLOS filen: Ukjent felt {tag} på linje {line}. Kontakt "
        "leverandøren av fagsystemet som genererte IPLOS meldingen."
    )


def misplaced_element(tag: str, line: int) -> MalformedData:
    return MalformedData(
        f"Feil i innholdet i IPLOS filen: Feltet {tag} på linje {line} står på feil sted eller "
        "forekommer flere ganger."
    )


def unexpected_text(tag: str, line: int) -> MalformedData:
    return MalformedData(
        f"Feil i innholdet i IPLOS filen: Uventet tekst i feltet {tag} på linje {line}."
    )


def unexpected_attribute(tag: str, line: int) -> MalformedData:
    return MalformedData(
        f"Feil i innholdet i IPLOS filen: Feltet {tag} på linje {line} har attributter som "
        "ikke hører til IPLOS eksportformat."
    )


def invalid_value(tag: str, line: int, expected: str) -> MalformedData:
    return MalformedData(
        f"Feil i innholdet i IPLOS filen: Feltet {tag} på linje {line} {expected}."
    )


# --- the key file -----------------------------------------------------------------------------


class KeyFileFault(IplosFault):
    field = "keys"


class KeyFileUnreadable(KeyFileFault):
    def __init__(self) -> None:
        super().__init__("Nøkkelfilen kunne ikke åpnes.")


class KeyFileInvalid(KeyFileFault):
    def __init__(self, detail: str) -> None:
        super().__init__(
            f"Nøkkelfilen er ikke gyldig: {detail}. Hent nøkkelfilen på nytt fra SSB."
        )


class KeyFileExpired(KeyFileFault):
    def __init__(self, valid_to: str) -> None:
        super().__init__(
            f"Nøkkelfilen er utløpt (gyldig til og med {valid_to}). Hent den nye nøkkelfilen "
            "som SSB publiserer 1. desember hvert år."
        )


class KeyFileNotYetValid(KeyFileFault):
    def __init__(self, valid_from: str) -> None:
        super().__init__(
            f"Nøkkelfilen er ikke gyldig ennå (gyldig fra {valid_from}). Bruk nøkkelfilen som "
            "gjelder i dag."
        )


# --- encrypted messages (read side) -------------------------------------------------------------


class EncryptedFormatFault(IplosFault):
    """Seed (send module): the file is not an encrypted IPLOS message."""

    def __init__(self, detail: str = "") -> None:
        super().__init__("Ugyldig format på kryptert melding. Kjøringen avsluttes")
        self.detail = detail  # for developers and tests; never person data


class DecryptionFailed(IplosFault):
    """A layer could not be decrypted: wrong key, or the ciphertext was altered."""


class SenderMismatch(IplosFault):
    """The clear Avsender differs from the encrypted copy: the file was changed."""


class RecordBindingBroken(IplosFault):
    """The register detected a swapped, duplicated, dropped or moved person record."""
