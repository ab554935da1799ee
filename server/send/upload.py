"""The upload page and the streamed upload (issue 4, points 4 and 5).

The request body is read here piece by piece with Werkzeug's sans-IO multipart decoder, never
through ``request.files``: the CSRF token is checked before the first byte of the file is
looked at, and each piece of the file is validated, hashed and written before the next is
read. A refused file is deleted at once; an accepted one is fsynced, then its record and its
outbox entry are committed together, and only then is ``Sending utført`` shown.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import unicodedata
from dataclasses import dataclass, field

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_wtf import FlaskForm  # type: ignore[import-untyped]
from flask_wtf.csrf import (  # type: ignore[import-untyped]
    ValidationError,
    same_origin,
    validate_csrf,
)
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData
from werkzeug.wrappers import Response as BaseResponse
from wtforms import FileField, SubmitField  # type: ignore[import-untyped]

from ipis_core.envelope import Envelope
from ipis_core.faults import EncryptedMessageFault, NotUtf8

from ..storage import IncomingFile, StorageError
from .auth import login_required
from .models import Account, OutboxItem, Submission, utcnow
from .prolog import Utf8Prolog
from .services import services
from .status import AWAITING_CONFIRMATION, RECEIVED
from .validation import UploadValidator, refusal_status

bp = Blueprint("upload", __name__)

READ_BYTES = 1 << 20
FILE_FIELD = "fil"
MAX_FIELD_BYTES = 4096
MAX_PARTS = 10  # csrf_token, fil and the button; anything more is not our form
# Headroom above the file limit for the multipart framing and the CSRF token.
MULTIPART_OVERHEAD = 64 * 1024

NO_FILE = "Velg den krypterte IPLOS-filen før du trykker «Send kryptert IPLOS-fil»."
CSRF_FAILED = "Skjemaet er utløpt eller ugyldig. Last siden på nytt og send filen igjen."
STORAGE_FAILED = (
    "Filen kunne ikke lagres på serveren, og den er ikke sendt. Prøv igjen senere, eller "
    "kontakt driftsansvarlig."
)
DISCONNECTED = "Overføringen ble avbrutt før hele filen var mottatt. Filen er ikke sendt."
TOO_MANY_PARTS = (
    "Forespørselen har flere felt enn skjemaet for opplasting. Last siden på nytt og send "
    "filen igjen."
)
DATABASE_FAILED = (
    "Filen kunne ikke registreres fordi databasen ikke svarte. Den er ikke lagret og ikke "
    "sendt. Prøv igjen om litt."
)
DATABASE_UNCERTAIN = (
    "Vi fikk ikke bekreftet at filen ble registrert fordi databasen ikke svarte. Se "
    "«Innsendinger» om noen minutter: står filen ikke der, send den på nytt."
)


class UploadForm(FlaskForm):  # type: ignore[misc]
    fil = FileField("Kryptert IPLOS-fil")
    submit = SubmitField("Send kryptert IPLOS-fil")


class ConfirmForm(FlaskForm):  # type: ignore[misc]
    send = SubmitField("Send likevel")
    cancel = SubmitField("Ikke send")


def too_large_message() -> str:
    limit = services().config.max_upload_bytes
    return (
        f"Filen er for stor. Største tillatte størrelse er {format_size(limit)}. "
        "Filen er ikke sendt."
    )


def format_size(size: int) -> str:
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("kB", 1024)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}".replace(".", ",")
    return f"{size} byte"


def clean_file_name(raw: str | None) -> str:
    """The browser's file name, for display only: base name, printable, at most 200 chars."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")
    return name.strip()[:200] or "uten-navn.xml"


@dataclass
class _Pipeline:
    """One file part: validated, hashed and written as it arrives.

    Only the bytes the validator returns (those it has checked) are hashed and written: a
    refused file's unchecked bytes never reach the disk."""

    validator: UploadValidator
    target: IncomingFile
    file_name: str
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)
    received: int = 0
    prolog: Utf8Prolog = field(default_factory=Utf8Prolog)

    def feed(self, data: bytes) -> None:
        if not self.prolog.feed(data):  # UTF-16 and the like, before the parser sees it
            raise NotUtf8("ikke UTF-8 (byte-rekkefølgemerke, NUL eller deklarasjon)")
        self.received += len(data)
        self._write(self.validator.feed(data))  # only validated bytes reach the disk

    def finish(self) -> Envelope:
        rest, envelope = self.validator.finish()
        self._write(rest)
        return envelope

    def _write(self, data: bytes) -> None:
        if data:
            self.digest.update(data)
            self.target.write(data)


@dataclass
class UploadOutcome:
    submission: Submission | None = None
    fault: str | None = None
    status: int = 400


class _Receiver:
    """Consumes multipart events; at most one file part (``fil``) is processed."""

    def __init__(self, account: Account) -> None:
        self.account = account
        self.started_at = utcnow()  # a first copy recorded after this is the same sending
        self.parts = 0
        self.part = ""  # "csrf", "file" or "ignore"
        self.csrf_token = bytearray()
        self.pipeline: _Pipeline | None = None
        self.seen_file = False
        self.outcome = UploadOutcome()

    def fail(self, message: str, status: int = 400) -> None:
        if self.pipeline is not None:
            self.pipeline.target.discard()
            self.pipeline = None
        if self.outcome.fault is None:
            self.outcome = UploadOutcome(fault=message, status=status)

    def on_event(self, event: object) -> None:
        if isinstance(event, Field | File):
            self.parts += 1
            if self.parts > MAX_PARTS:  # not our form; not a size problem either
                self.fail(TOO_MANY_PARTS)
                self.part = "ignore"
                return
        if isinstance(event, Field):
            self.part = "csrf" if event.name == "csrf_token" else "ignore"
        elif isinstance(event, File):
            self._start_file(event)
        elif isinstance(event, Data):
            if self.part == "csrf" and len(self.csrf_token) < MAX_FIELD_BYTES:
                self.csrf_token += event.data
            elif self.part == "file" and self.pipeline is not None:
                self._file_data(event.data)
            if not event.more_data:
                if self.part == "file" and self.pipeline is not None:
                    self._end_file()
                self.part = ""

    def _start_file(self, event: File) -> None:
        if event.name != FILE_FIELD or self.seen_file or self.outcome.fault:
            self.part = "ignore"
            return
        self.seen_file = True
        self.part = "file"
        if not _csrf_ok(bytes(self.csrf_token)):
            self.fail(CSRF_FAILED)
            return
        if not event.filename:
            return  # no file chosen: an empty part
        svc = services()
        today = dt.date.today()
        validator = UploadValidator(
            svc.key_names.current(today), self.account.kommunenummer, self.account.bydelsnummer,
            svc.key_names.retired(today),
        )
        self.pipeline = _Pipeline(
            validator, svc.storage.open_incoming(), clean_file_name(event.filename)
        )

    def _file_data(self, data: bytes) -> None:
        assert self.pipeline is not None
        if self.pipeline.target.size + len(data) > services().config.max_upload_bytes:
            self.fail(too_large_message(), 413)
            return
        try:
            self.pipeline.feed(data)
        except EncryptedMessageFault as refused:
            self.fail(refused.message, refusal_status(refused))

    def _end_file(self) -> None:
        assert self.pipeline is not None
        pipeline, self.pipeline = self.pipeline, None
        if pipeline.received == 0:
            pipeline.target.discard()
            return
        self.outcome = _finish(self.account, pipeline, self.started_at)

    def result(self) -> UploadOutcome:
        if self.pipeline is not None:  # the body ended inside the file part
            self.fail(DISCONNECTED)
        if self.outcome.fault is None and self.outcome.submission is None:
            self.outcome = UploadOutcome(fault=NO_FILE)
        return self.outcome


def _receive(account: Account) -> UploadOutcome:
    """Read the whole request body; validate and store the file part as it streams."""
    content_type, options = parse_options_header(request.content_type or "")
    boundary = options.get("boundary", "")
    if content_type != "multipart/form-data" or not boundary:
        _drain(request.stream)
        return UploadOutcome(fault=NO_FILE)
    decoder = MultipartDecoder(boundary.encode("ascii", "replace"), max_form_memory_size=None)
    receiver = _Receiver(account)
    stream = request.stream
    try:
        done = False
        while not done:
            chunk = stream.read(READ_BYTES)
            decoder.receive_data(chunk or None)
            event = decoder.next_event()
            while not isinstance(event, NeedData):
                if isinstance(event, Epilogue):
                    done = True
                    break
                receiver.on_event(event)
                event = decoder.next_event()
            if not chunk:
                done = True
    except RequestEntityTooLarge:
        receiver.fail(too_large_message(), 413)
    except StorageError:
        receiver.fail(STORAGE_FAILED, 507)
    except (ClientDisconnected, OSError, ValueError):
        receiver.fail(DISCONNECTED)
    outcome = receiver.result()
    if outcome.fault:
        _drain(stream)
    return outcome


def _drain(stream: object) -> None:
    """Read what the client is still sending so it gets our answer, not a reset connection."""
    read = getattr(stream, "read", None)
    if read is None:
        return
    try:
        while read(READ_BYTES):
            pass
    except (ClientDisconnected, OSError, RequestEntityTooLarge, ValueError):
        pass


def refuse_unread(message: str, status: int) -> BaseResponse:
    """The upload page with ``message``, the connection closed after it: the body may not have
    been read to its end, and the server must not read on to a next request inside it."""
    page = render_template("upload.html", form=UploadForm(formdata=None), error=message)
    response = current_app.make_response((page, status))
    response.headers["Connection"] = "close"
    return response


def _referer_ok() -> bool:
    """Over HTTPS the Referer must be this site, as Flask-WTF's SSL-strict check demands of
    every other form (the upload checks its CSRF token itself; issue 7, point 12)."""
    if not request.is_secure:
        return True
    referrer = request.referrer
    return bool(referrer) and bool(same_origin(referrer, f"https://{request.host}/"))


def _csrf_ok(token: bytes) -> bool:
    try:
        validate_csrf(token.decode("ascii", "replace"))
    except ValidationError:
        return False
    return True


class _CommitUncertain(Exception):
    """The COMMIT itself failed: the database may or may not have the record."""


def _finish(account: Account, pipeline: _Pipeline, started_at: dt.datetime) -> UploadOutcome:
    """End of the file part: the end of the envelope checked, then fsync, then the record
    (receipt) is committed.

    A database failure after the file is stored removes the file again and tells the user in
    Norwegian (issue 7, point 7), unless the commit's outcome cannot be known: then the file
    stays, since a committed record may point at it, and the user is told to look.
    """
    svc = services()
    try:
        envelope = pipeline.finish()
    except EncryptedMessageFault as refused:
        pipeline.target.discard()
        return UploadOutcome(fault=refused.message, status=refusal_status(refused))
    if pipeline.target.size == 0:
        pipeline.target.discard()
        return UploadOutcome(fault=NO_FILE)
    sha256 = pipeline.digest.hexdigest()
    public_id = secrets.token_hex(16)
    storage_name = f"{public_id}.xml"
    try:
        pipeline.target.commit(storage_name)
    except StorageError:
        return UploadOutcome(fault=STORAGE_FAILED, status=507)
    submission = Submission(
        public_id=public_id,
        account_id=account.id,
        file_name=pipeline.file_name,
        size_bytes=pipeline.target.size,
        sha256=sha256,
        storage_name=storage_name,
        kommunenummer=envelope.kommunenummer,
        bydelsnummer=envelope.bydelsnummer,
        organisasjonsnummer=envelope.organisasjonsnummer,
        tpf_key_name=envelope.tpf_key.key_name,
    )
    try:
        recorded = _record(submission, started_at)
    except _CommitUncertain:
        if _recorded(public_id) is not False:
            current_app.logger.error(
                "Innsending %s: usikkert om posten ble lagret (databasefeil); filen er beholdt",
                public_id,
            )
            return UploadOutcome(fault=DATABASE_UNCERTAIN, status=503)
        svc.storage.remove(storage_name)
        return UploadOutcome(fault=DATABASE_FAILED, status=503)
    except SQLAlchemyError as error:
        svc.storage.remove(storage_name)
        current_app.logger.error(
            "Innsending fra konto %s ikke registrert, filen er fjernet: %s",
            account.id,
            type(error).__name__,
        )
        return UploadOutcome(fault=DATABASE_FAILED, status=503)
    if recorded is not submission:  # the same file, sent at the same moment: one receipt
        svc.storage.remove(storage_name)
        current_app.logger.info(
            "Samtidig lik innsending fra konto %s: samme kvittering som %s",
            account.id,
            recorded.public_id,
        )
        return UploadOutcome(submission=recorded)
    current_app.logger.info(
        "Mottatt innsending %s fra konto %s: %d byte, sha256 %s%s",
        recorded.public_id,
        account.id,
        recorded.size_bytes,
        sha256,
        " (lik tidligere innsending, venter på bekreftelse)"
        if recorded.status == AWAITING_CONFIRMATION
        else "",
    )
    return UploadOutcome(submission=recorded)


def _record(submission: Submission, started_at: dt.datetime) -> Submission:
    """Commit the submission; returns it, or the first copy when that is the same sending.

    First as the first copy of its content (with its outbox entry, in one transaction); the
    unique index refuses that when the account sent the same bytes before. Then, if the first
    copy was recorded after this upload began, both are one sending (a double click, two
    tabs): its receipt is the answer and nothing more is forwarded. Otherwise this is a later
    re-send, kept waiting for the user's confirmation as before.
    """
    db_handle = services().db
    now = utcnow()
    submission.received_at = now
    submission.status_at = now
    submission.status = RECEIVED
    submission.first_sha256 = submission.sha256
    with db_handle.session() as db:
        db.add(submission)
        try:
            db.flush()
        except IntegrityError:
            db.rollback()
        else:
            db.add(OutboxItem(submission_id=submission.id, next_attempt_at=now))
            db.flush()
            _commit(db)
            return submission
    with db_handle.session() as db:
        first = db.scalar(
            select(Submission).where(
                Submission.account_id == submission.account_id,
                Submission.first_sha256 == submission.sha256,
            )
        )
        if first is None:  # the unique index refused it for another reason
            raise IntegrityError("first copy not found", None, Exception())
        if first.received_at >= started_at:
            return first
        duplicate = Submission(
            **{
                column: getattr(submission, column)
                for column in (
                    "public_id", "account_id", "file_name", "size_bytes", "sha256",
                    "storage_name", "kommunenummer", "bydelsnummer", "organisasjonsnummer",
                    "tpf_key_name",
                )
            },
            received_at=now,
            status=AWAITING_CONFIRMATION,
            status_at=now,
            duplicate_of=first.id,
            first_sha256=None,
        )
        db.add(duplicate)
        db.flush()
        _commit(db)
        return duplicate


def _commit(db: Session) -> None:
    try:
        db.commit()
    except SQLAlchemyError:
        raise _CommitUncertain() from None


def _recorded(public_id: str) -> bool | None:
    """After a failed COMMIT: is the record there? None when the database cannot say."""
    try:
        with services().db.session() as db:
            found = db.scalar(select(Submission.id).where(Submission.public_id == public_id))
    except SQLAlchemyError:
        return None
    return found is not None


@bp.route("/send", methods=["GET"])
@login_required
def form() -> str:
    return render_template("upload.html", form=UploadForm(), error=None)


@bp.route("/send", methods=["POST"])
@login_required
def submit() -> BaseResponse:
    limit = services().config.max_upload_bytes + MULTIPART_OVERHEAD
    if request.content_length is not None and request.content_length > limit:
        return refuse_unread(too_large_message(), 413)  # before any byte is read or written
    if not _referer_ok():
        return refuse_unread(CSRF_FAILED, 400)
    outcome = _receive(g.account)
    if outcome.submission is None:
        # Closed after the answer: a refused body may not have been read to its end.
        return refuse_unread(outcome.fault or NO_FILE, outcome.status)
    submission = outcome.submission
    if submission.status == AWAITING_CONFIRMATION:
        return redirect(url_for("upload.confirm", public_id=submission.public_id), code=303)
    return redirect(url_for("receipts.receipt", public_id=submission.public_id), code=303)


@bp.route("/send/<public_id>/bekreft", methods=["GET", "POST"])
@login_required
def confirm(public_id: str) -> BaseResponse | str:
    """A file identical to an earlier one: the user decides before it is sent again."""
    svc = services()
    confirm_form = ConfirmForm()
    with svc.db.session() as db:
        submission = db.scalar(
            select(Submission).where(
                Submission.public_id == public_id, Submission.account_id == g.account.id
            )
        )
        if submission is None:
            abort(404)
        if submission.status != AWAITING_CONFIRMATION:
            return redirect(url_for("receipts.receipt", public_id=public_id))
        earlier = db.get(Submission, submission.duplicate_of) if submission.duplicate_of else None
        if request.method == "POST" and confirm_form.validate_on_submit():
            if confirm_form.send.data:
                now = utcnow()
                submission.status = RECEIVED
                submission.status_at = now
                db.add(OutboxItem(submission_id=submission.id, next_attempt_at=now))
                db.commit()
                return redirect(url_for("receipts.receipt", public_id=public_id), code=303)
            storage_name = submission.storage_name
            db.delete(submission)
            db.commit()
            svc.storage.remove(storage_name)
            return redirect(url_for("upload.form", avbrutt="1"), code=303)
        return render_template(
            "confirm.html", form=confirm_form, submission=submission, earlier=earlier
        )


def register_csrf_exemption(csrf: object) -> None:
    """The upload checks its CSRF token itself, before reading the file (see module doc)."""
    exempt = getattr(csrf, "exempt")  # noqa: B009 - CSRFProtect.exempt
    exempt(submit)

