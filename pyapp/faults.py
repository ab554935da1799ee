"""Faults the user can act on: one class per failure, each carrying its exact Norwegian message.

One hierarchy for the whole system (the encryption module, ``ipis inspect``, the send module,
the TPF and the register): ``IplosFault`` at the root, one abstract class per thing that can be
wrong (a form field, the IPLOS data file, the key file, an encrypted message), and under those
one concrete class per failure, named after what went wrong. Code catches the narrowest class
it can handle; the user sees ``message``; the page puts it next to the form ``field``.

The texts marked "seed" are fixed by docs/formater.md (from the historical user guide) and
must not change; the others follow the same style: one sentence, naming the element and the
line where there is one, saying what the user can do. No message ever contains a
fødselsnummer, any person data, or any value read from a file that could hold one.
"""

from __future__ import annotations


class IplosFault(Exception):
    """A fault that stops the run; ``message`` is shown to the user as it is."""

    field: str = "data"  # which form field the fault concerns (the page puts it there)

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- the encryption module's form (seed, in the seed's order) --------------------------------


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
    """Abstract: one of the contact person's fields has the wrong form."""

    field = "contact"


class InvalidContactEmail(InvalidContact):
    def __init__(self) -> None:
        super().__init__(
            "E-postadressen til kontaktpersonen er ikke gyldig. Skriv den på formen "
            "navn@kommune.no."
        )


class InvalidContactName(InvalidContact):
    def __init__(self, max_length: int) -> None:
        super().__init__(
            f"Navnet til kontaktpersonen er ikke gyldig. Skriv fullt navn, høyst {max_length} "
            "tegn."
        )


class InvalidContactMobile(InvalidContact):
    def __init__(self) -> None:
        super().__init__(
            "Mobiltelefonnummeret til kontaktpersonen er ikke gyldig. Skriv et norsk "
            "mobilnummer med åtte siffer, for eksempel 912 34 567."
        )


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


# --- the IPLOS data file ----------------------------------------------------------------------


class DataFileFault(IplosFault):
    """Abstract: the IPLOS data file cannot be encrypted as it is."""

    field = "data"


class DataFileUnreadable(DataFileFault):
    """Seed: the data file cannot be read at all."""

    def __init__(self) -> None:
        super().__init__("IPLOS filen kunne ikke åpnes.")


class RootNotIplos(DataFileFault):
    """Seed: the root element is not IPLOS (also: an empty file)."""

    def __init__(self) -> None:
        super().__init__("Feltet ”IPLOS” mangler")  # the seed's quotation marks (issue 10.7)


class TagMismatch(DataFileFault):
    """Seed: a start tag and the end tag that closes it differ."""

    def __init__(self, start_tag: str, start_line: int, end_tag: str, end_line: int) -> None:
        super().__init__(
            f"Feil i innholdet i IPLOS filen: Starten på feltet {start_tag} på linje "
            f"{start_line} stemmer ikke med avslutningen {end_tag} på linje {end_line}."
        )


class MissingElement(DataFileFault):
    """Seed: a required element is missing; ``path`` like ``IPLOS\\Avsender\\Kommunenummer``."""

    def __init__(self, path: str) -> None:
        super().__init__(f"IPLOS filen er mangelfull: Følgende felt mangler {path}")


class UnsupportedVersion(DataFileFault):
    """Seed: @versjon missing or not supported."""

    def __init__(self) -> None:
        super().__init__(
            "Ugyldig versjonsnummer for IPLOS meldingen. Kontakt leverandøren av fagsystemet "
            "som genererte IPLOS meldingen"
        )


class MalformedData(DataFileFault):
    """Abstract: the file's content breaks the export format; never raised itself."""


class NotIplosFile(MalformedData):
    """A Word, Excel, PDF, image or zip file (anything that cannot start an XML document)."""

    def __init__(self) -> None:
        super().__init__(
            "Filen er ikke en IPLOS XML-fil. Velg IPLOS-filen som fagsystemet eksporterte."
        )


class DataFileTooLarge(DataFileFault):
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




class BadXmlVersion(MalformedData):
    """The XML declaration's version is not 1.x (expat does not check it; libxml2 does)."""

    def __init__(self, line: int) -> None:
        super().__init__(
            f"Feil i innholdet i IPLOS filen: XML-deklarasjonen på linje {line} har et ugyldig "
            "versjonsnummer (det skal være 1.0). Kontakt leverandøren av fagsystemet som "
            "genererte IPLOS meldingen."
        )


class DataFileTruncated(MalformedData):
    def __init__(self, tag: str, line: int) -> None:
        super().__init__(
            f"IPLOS filen er ufullstendig: Feltet {tag} som starter på linje {line} blir aldri "
            "avsluttet. Filen kan være avkortet; eksporter den på nytt fra fagsystemet."
        )


class DataNotXml(MalformedData):
    def __init__(self, line: int, column: int) -> None:
        super().__init__(
            f"Feil i innholdet i IPLOS filen: Ugyldig XML på linje {line}, kolonne {column}. "
            "Kontroller at filen er en IPLOS-fil i IPLOS eksportformat."
        )


class BadCharacters(MalformedData):
    def __init__(self, line: int) -> None:
        super().__init__(
            f"Feil i innholdet i IPLOS filen: Ugyldige tegn på linje {line}. Kontroller at filen "
            "er lagret med tegnsettet som står i XML-deklarasjonen."
        )


class UnknownEncoding(MalformedData):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"Feil i innholdet i IPLOS filen: Tegnsettet {name} støttes ikke. Bruk UTF-8, "
            "UTF-16, ISO-8859-1 eller windows-1252."
        )


class DoctypeRefused(MalformedData):
    def __init__(self, line: int) -> None:
        super().__init__(
            f"Feil i innholdet i IPLOS filen: Filen har en dokumenttypedefinisjon (DOCTYPE) på "
            f"linje {line}. Det er ikke tillatt i IPLOS eksportformat; kontakt leverandøren av "
            "fagsystemet."
        )


class UnknownField(MalformedData):
    def __init__(self, tag: str, line: int) -> None:
        super().__init__(
            f"Feil i innholdet i IPLOS filen: Ukjent felt {tag} på linje {line}. Kontakt "
            "leverandøren av fagsystemet som genererte IPLOS meldingen."
        )


class MisplacedField(MalformedData):
    def __init__(self, tag: str, line: int) -> None:
        super().__init__(
            f"Feil i innholdet i IPLOS filen: Feltet {tag} på linje {line} står på feil sted "
            "eller forekommer flere ganger."
        )


class UnexpectedText(MalformedData):
    def __init__(self, tag: str, line: int) -> None:
        super().__init__(
            f"Feil i innholdet i IPLOS filen: Uventet tekst i feltet {tag} på linje {line}."
        )


class UnexpectedAttribute(MalformedData):
    def __init__(self, tag: str, line: int) -> None:
        super().__init__(
            f"Feil i innholdet i IPLOS filen: Feltet {tag} på linje {line} har attributter som "
            "ikke hører til IPLOS eksportformat."
        )


class InvalidValue(MalformedData):
    """A value of the wrong form; ``expected`` says what it must be, never what it was."""

    def __init__(self, tag: str, line: int, expected: str) -> None:
        super().__init__(
            f"Feil i innholdet i IPLOS filen: Feltet {tag} på linje {line} {expected}."
        )


class FodselsnummerInClearField(MalformedData):
    """A field the encrypted file carries in clear holds what may be a fødselsnummer."""

    def __init__(self, tag: str, line: int, attribute: str = "") -> None:
        holds = f"har attributtet {attribute} med" if attribute else "inneholder"
        super().__init__(
            f"Feil i innholdet i IPLOS filen: Feltet {tag} på linje {line} {holds} et tall som "
            "kan være et fødselsnummer, og feltet sendes ukryptert; rett det i fagsystemet."
        )


# The reader raises these through the names it has always used (issue 8: the reader is being
# split in parallel, so its call sites stay as they were).
not_iplos_file = NotIplosFile
bad_xml_version = BadXmlVersion
truncated = DataFileTruncated
not_xml = DataNotXml
bad_characters = BadCharacters
unknown_encoding = UnknownEncoding
doctype_refused = DoctypeRefused
unknown_element = UnknownField
misplaced_element = MisplacedField
unexpected_text = UnexpectedText
unexpected_attribute = UnexpectedAttribute
invalid_value = InvalidValue


# --- the key file -----------------------------------------------------------------------------


class KeyFileFault(IplosFault):
    """Abstract: the key file cannot be used."""

    field = "keys"


class KeyFileUnreadable(KeyFileFault):
    def __init__(self) -> None:
        super().__init__("Nøkkelfilen kunne ikke åpnes.")


class KeyFileInvalid(KeyFileFault):
    def __init__(self, detail: str) -> None:
        super().__init__(
            f"Nøkkelfilen er ikke gyldig: {detail}. Hent nøkkelfilen på nytt fra SSB."
        )


class KeyFileDamaged(KeyFileFault):
    """The key file ends too early (cut short in a download or a copy)."""

    def __init__(self) -> None:
        super().__init__(
            "Nøkkelfilen er skadet eller ufullstendig. Hent nøkkelfilen på nytt fra SSB."
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


# --- an encrypted message (read by ipis inspect, the send module, the TPF, the register) --------


class EncryptedMessageFault(IplosFault):
    """Abstract: an encrypted message is refused. ``detail`` says why, for developers and
    tests only: it names elements and rules, never a value from the file."""

    field = "fil"  # the send module's file field

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


FORMAT_MESSAGE = "Ugyldig format på kryptert melding. Kjøringen avsluttes"


class NotEncryptedFormat(EncryptedMessageFault):
    """Seed (send module): not the encrypted format. Abstract: each cause is a subclass."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(FORMAT_MESSAGE, detail)


class CleartextIplosFile(NotEncryptedFormat):
    """An unencrypted IPLOS export, chosen by mistake instead of the encrypted file."""

    def __init__(self) -> None:
        super().__init__("rotelementet er IPLOS: en ukryptert IPLOS-fil")


class EmptyMessage(NotEncryptedFormat):
    def __init__(self) -> None:
        super().__init__("tom fil")


class WrongRootElement(NotEncryptedFormat):
    pass


class NotUtf8(NotEncryptedFormat):
    """The encrypted format is UTF-8 (formats §3); any other encoding is refused."""


class MarkupNotAllowed(NotEncryptedFormat):
    """A comment, processing instruction, DOCTYPE or CDATA section: nothing but fields."""


class TokenTooLarge(NotEncryptedFormat):
    """A tag, text or whitespace run longer than any the format has: refused before it is
    buffered, so memory stays flat."""


class StrayText(NotEncryptedFormat):
    pass


class MisplacedEnvelopeElement(NotEncryptedFormat):
    """A known element out of order, twice, or where it does not belong."""


class MissingEnvelopeElement(NotEncryptedFormat):
    pass


class UnexpectedEnvelopeAttribute(NotEncryptedFormat):
    """An attribute or namespace declaration the format does not have."""


class MissingEnvelopeAttribute(NotEncryptedFormat):
    pass


class InvalidEnvelopeValue(NotEncryptedFormat):
    """A clear value that breaks its pattern or bound, or a fixed value (version, Id,
    Recipient, Type) that is not the one the format fixes."""


class AlgorithmNotAllowed(NotEncryptedFormat):
    """A downgrade: any algorithm URI but the one the format fixes for its purpose."""


class CipherValueInvalid(NotEncryptedFormat):
    """Not base64, truncated, or too short to hold an IV and a tag."""


class TpfLayerMalformed(NotEncryptedFormat):
    """The decrypted TPF layer (or a register record) does not follow the format."""


class NotWellFormed(EncryptedMessageFault):
    """Seed (send module): not well-formed XML (also: a truncated or compressed file)."""

    def __init__(self, detail: str = "") -> None:
        super().__init__("Feil ved sending av fil; Ikke gyldig XML.", detail)


class UnknownEnvelopeElement(EncryptedMessageFault):
    """Seed (send module): an element the encrypted format does not know."""

    def __init__(self, tag: str) -> None:
        super().__init__(f"Valideringsfeil. Ukjent tag navn: {tag}", "ukjent element")
        self.tag = tag


class FodselsnummerInClearPart(EncryptedMessageFault):
    """What may be a fødselsnummer in the part of the file that is not encrypted."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            "Ugyldig format på kryptert melding: den ukrypterte delen av filen inneholder et tall "
            "som kan være et fødselsnummer. Filen er avvist og ikke sendt. Rett avsender- og "
            "mottakeropplysningene i fagsystemet, og krypter IPLOS-datafilen på nytt.",
            detail,
        )


class UnknownKeyName(EncryptedMessageFault):
    """The file was encrypted for a TPF key that is not (or no longer) in use."""

    def __init__(self) -> None:
        super().__init__(
            "Ugyldig format på kryptert melding: filen er kryptert med en nøkkel som ikke er i "
            "bruk. Hent gjeldende nøkkelfil, og krypter IPLOS-datafilen på nytt.",
            "ds:KeyName er ikke en av de kjente nøklene",
        )


class SenderDiffersFromLogin(EncryptedMessageFault):
    """Seed (send module): the file's Kommunenummer is not the one the user logged in with."""

    def __init__(self, file_k: str, file_b: str, login_k: str, login_b: str) -> None:
        super().__init__(
            f"Kommunenummer {file_k} (bydelsnummer {file_b}) i den krypterte filen stemmer ikke "
            f"med kommunenummer {login_k} (bydelsnummer {login_b}) som du logget inn med. "
            "Filen er ikke sendt. Endre kommunenummeret i IPLOS-datafilen og krypter filen på "
            "nytt."
        )


# --- opening the layers (the TPF's and the register's side) --------------------------------------


class DecryptionFailed(EncryptedMessageFault):
    """Abstract: a layer could not be opened."""


class PrivateKeyNotRsa(DecryptionFailed):
    def __init__(self) -> None:
        super().__init__("Den private nøkkelen er ikke en RSA-nøkkel.")


class WrongPrivateKey(DecryptionFailed):
    """RSA-OAEP unwrapping failed: another recipient's key, or the wrapped key was altered."""

    def __init__(self, layer: str, key_name: str) -> None:
        super().__init__(
            f"Nøkkelen til {layer} kunne ikke dekrypteres: feil privat nøkkel "
            f"(filen er kryptert for {key_name}), eller filen er endret."
        )


class LayerAltered(DecryptionFailed):
    """The GCM tag does not match: the ciphertext was changed or damaged."""

    def __init__(self, layer: str) -> None:
        super().__init__(f"{layer} kunne ikke dekrypteres: filen er endret eller skadet.")


class SenderAltered(EncryptedMessageFault):
    """The clear Avsender differs from an encrypted copy: the file was changed on the way."""


class RecordBindingBroken(EncryptedMessageFault):
    """Abstract: the register detected a swapped, duplicated, dropped or moved person record."""


class RecordTooShort(RecordBindingBroken):
    def __init__(self, what: str) -> None:
        super().__init__(f"{what} er for kort.")


class RecordFromAnotherFile(RecordBindingBroken):
    def __init__(self, what: str) -> None:
        super().__init__(
            f"{what} kan ikke dekrypteres med denne filens registernøkkel: den hører til en "
            "annen fil, eller den er endret."
        )


class RecordSwapped(RecordBindingBroken):
    def __init__(self, lopenummer: int, inside: int) -> None:
        super().__init__(
            f"Personposten med løpenummer {lopenummer} inneholder posten med løpenummer "
            f"{inside}: postene er byttet om eller flyttet."
        )


class RecordDuplicated(RecordBindingBroken):
    def __init__(self, lopenummer: int) -> None:
        super().__init__(f"Personposten med løpenummer {lopenummer} forekommer to ganger.")


class RecordOutOfRange(RecordBindingBroken):
    def __init__(self, lopenummer: int, expected: int) -> None:
        super().__init__(
            f"Personposten med løpenummer {lopenummer} finnes ikke i filen, som har "
            f"{expected} personer."
        )


class RecordsMissing(RecordBindingBroken):
    def __init__(self, missing: list[int]) -> None:
        shown = ", ".join(str(n) for n in missing[:20]) + (" …" if len(missing) > 20 else "")
        super().__init__(f"{len(missing)} personposter mangler (løpenummer {shown}).")


# --- a recipient's yearly keys (the TPF's and the register's keyring) -----------------------------


class KeyNotAccepted(EncryptedMessageFault):
    """Abstract: the recipient holds the key the file names, but does not take files for it
    on this date (issue 9.6: current and previous year, the previous during an overlap)."""


class KeyOutsideOverlap(KeyNotAccepted):
    """Encrypted for an older year's key whose overlap after the new key has ended."""

    def __init__(self, key_name: str, valid_to: str, accepted_until: str) -> None:
        super().__init__(
            f"Filen er kryptert med nøkkelen {key_name}, som gjaldt til og med {valid_to}. "
            f"Filer kryptert med den ble tatt imot til og med {accepted_until}. Hent "
            "gjeldende nøkkelfil fra SSB, og krypter IPLOS-datafilen på nytt.",
            "nøkkelen er utenfor overgangsperioden",
        )
        self.key_name = key_name


class KeyNotYetInUse(KeyNotAccepted):
    """Encrypted for a key whose year has not begun (a clock far ahead, or a test file)."""

    def __init__(self, key_name: str, valid_from: str) -> None:
        super().__init__(
            f"Filen er kryptert med nøkkelen {key_name}, som ikke gjelder før {valid_from}. "
            "Bruk nøkkelfilen som gjelder i dag, og krypter IPLOS-datafilen på nytt.",
            "nøkkelen gjelder ikke ennå",
        )
        self.key_name = key_name


# --- the register: loading a pseudonymised message from the TPF (docs/formater.md §4) ----------


class DeliveryRefused(EncryptedMessageFault):
    """Abstract: the register refuses a whole delivery from the TPF; nothing of it is loaded.
    The message reaches the municipality through the TPF's status (§5): it names the record
    (løpenummer) and the field, never a value."""


class DeliveryUnreadable(DeliveryRefused):
    """The pseudonymised message breaks its format (§4); ``detail`` names the rule."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"Registeret kunne ikke lese leveransen fra TPF: {detail}. Innsendingen er avvist.",
            detail,
        )


class DeliveryAlgorithmNotAllowed(DeliveryRefused):
    """A downgrade anywhere in the delivery: an algorithm URI the format does not fix."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"Leveransen fra TPF bruker en krypteringsalgoritme registeret ikke godtar ({detail}). "
            "Innsendingen er avvist.",
            detail,
        )


class TransportKeyNotAccepted(DeliveryRefused):
    """The TPF wrapped the delivery for a register key the register does not take now."""

    def __init__(self, key_name: str, reason: str) -> None:
        super().__init__(
            f"Leveransen fra TPF er kryptert for registernøkkelen {key_name}, som registeret ikke "
            f"tar imot: {reason} TPF må kryptere leveransen for registerets gjeldende nøkkel.",
            "transportnøkkelen tas ikke imot",
        )


class DeliverySenderDiffers(DeliveryRefused):
    """The delivery's Avsender is not the one the encryption module wrote in the
    Registerkontroll: changed on the way, or the TPF mixed up two files."""

    def __init__(self, where: str) -> None:
        super().__init__(
            f"Avsenderen i {where} er ikke den samme som i registerkontrollen som "
            "krypteringsmodulen skrev. Innsendingen er avvist."
        )


class DeliveryCountDiffers(DeliveryRefused):
    def __init__(self, what: str, stated: int, found: int) -> None:
        super().__init__(
            f"Leveransen fra TPF oppgir {stated} {what}, men har {found}. Innsendingen er avvist."
        )


class DeliverySubmissionIdDiffers(DeliveryRefused):
    """Delivered under another submission id than the one inside the message."""

    def __init__(self) -> None:
        super().__init__(
            "Leveransen fra TPF er levert under en annen innsendings-id enn den som står i "
            "meldingen. Innsendingen er avvist."
        )


class PersonDataInvalid(DeliveryRefused):
    """Abstract: a person's IPLOS data does not follow the export format (formats §1)."""


class PersonFieldUnknown(PersonDataInvalid):
    def __init__(self, lopenummer: int, tag: str) -> None:
        super().__init__(
            f"Personposten med løpenummer {lopenummer} har et felt registeret ikke kjenner: "
            f"{tag}. Innsendingen er avvist; kontakt leverandøren av fagsystemet."
        )


class PersonFieldInvalid(PersonDataInvalid):
    """A value of the wrong form; ``expected`` says what it must be, never what it was."""

    def __init__(self, lopenummer: int, where: str, expected: str) -> None:
        super().__init__(
            f"Personposten med løpenummer {lopenummer} har en ugyldig verdi i {where}: "
            f"{expected}. Innsendingen er avvist; rett det i fagsystemet og send filen på nytt."
        )


class PersonFieldRepeated(PersonDataInvalid):
    def __init__(self, lopenummer: int, where: str) -> None:
        super().__init__(
            f"Personposten med løpenummer {lopenummer} har {where} mer enn én gang. "
            "Innsendingen er avvist; rett det i fagsystemet og send filen på nytt."
        )


class PersonFieldMissing(PersonDataInvalid):
    def __init__(self, lopenummer: int, where: str) -> None:
        super().__init__(
            f"Personposten med løpenummer {lopenummer} mangler {where}. Innsendingen er "
            "avvist; rett det i fagsystemet og send filen på nytt."
        )


class MappingRefused(EncryptedMessageFault):
    """Abstract: the register refuses a secret-rotation mapping from the TPF (§6): nothing of
    it is applied, and the TPF's operator sees the message."""


class MappingUnreadable(MappingRefused):
    def __init__(self, detail: str) -> None:
        super().__init__(
            f"Registeret kunne ikke lese pseudonymbyttet fra TPF: {detail}. Byttet er ikke "
            "utført.",
            detail,
        )


class MappingAlgorithmNotAllowed(MappingRefused):
    def __init__(self, detail: str) -> None:
        super().__init__(
            "Pseudonymbyttet fra TPF bruker en krypteringsalgoritme registeret ikke godtar "
            f"({detail}). Byttet er ikke utført.",
            detail,
        )


class MappingCountDiffers(MappingRefused):
    def __init__(self, stated: int, found: int) -> None:
        super().__init__(
            f"Pseudonymbyttet fra TPF oppgir {stated} bytter, men har {found}. Byttet er ikke "
            "utført."
        )


class MappingPseudonymRepeated(MappingRefused):
    def __init__(self) -> None:
        super().__init__(
            "Pseudonymbyttet fra TPF har samme gamle pseudonym mer enn én gang. Byttet er ikke "
            "utført."
        )
