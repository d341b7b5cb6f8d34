"""Tables. SQLAlchemy 2.0 typed mappings; the same schema on PostgreSQL and SQLite."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, composite, mapped_column, relationship

from facedb.domain import (
    AgeSource,
    AgeVerdict,
    AuditAction,
    ChangeOp,
    Delivery,
    EstimatedGender,
    EventType,
    Gender,
    InconclusiveReason,
    MatchState,
    PersonStatus,
    Register,
    Role,
)
from facedb.records import EXTERNAL_REF_MAX_LENGTH, NAME_MAX_LENGTH, Box
from facedb.store.seal import Sealed

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
# 64-bit ids on PostgreSQL; SQLite only auto-increments a plain INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def closed_set(kind: type[StrEnum], name: str, check: bool = True) -> Enum:
    """Return the column type of a closed set of strings: stored as its values in a
    VARCHAR(16), read back as the enum, and (``check``) held to the set by a CHECK constraint
    named ``ck_<table>_<name>``. The audit action has no CHECK: its set grows with features,
    and a trail must never refuse an entry."""
    return Enum(
        kind,
        native_enum=False,
        length=16,
        values_callable=lambda members: [m.value for m in members],
        create_constraint=check,
        name=name,
        validate_strings=True,
    )


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_uuid() -> str:
    return str(uuid.uuid4())


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Person(Base):
    __tablename__ = "persons"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    external_ref: Mapped[str | None] = mapped_column(String(EXTERNAL_REF_MAX_LENGTH), unique=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX_LENGTH), index=True)
    gender: Mapped[Gender | None] = mapped_column(closed_set(Gender, "gender"))  # declared
    birth_date: Mapped[date | None] = mapped_column(Date)
    birth_year: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[PersonStatus] = mapped_column(
        closed_set(PersonStatus, "status"), default=PersonStatus.MISSING, index=True
    )
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The person a confirmed cross-match linked this one to (missing <-> found).
    linked_person_id: Mapped[str | None] = mapped_column(String(36))
    # When the linked person's record was erased (the link is then cleared, not left dead).
    linked_erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    photos: Mapped[list[Photo]] = relationship(
        back_populates="person", cascade="all, delete-orphan", passive_deletes=True, lazy="raise"
    )


class CaseNote(Base):
    """A caseworker's note on a person's case: append-only, erased with the person."""

    __tablename__ = "case_notes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(String(200))  # the key's name
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Photo(Base):
    __tablename__ = "photos"
    __table_args__ = (UniqueConstraint("person_id", "sha256", name="uq_photos_person_sha256"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str | None] = mapped_column(String(255))  # as uploaded, path dropped
    content: Mapped[bytes] = mapped_column(Sealed("photos.content"), deferred=True)
    media_type: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    taken_at: Mapped[date | None] = mapped_column(Date)
    age_at_photo: Mapped[float | None] = mapped_column(Float)
    # The declared age (birth and photo date) fits none of the photo's faces' estimated ages.
    age_conflict: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # The upload that stored it was answered "stored" (false from the photo's commit until
    # the upload's audited answer): a retry of an upload left unanswered (a 503 during an
    # outage) answers "stored" again, as the first success would have, not "duplicate".
    acknowledged: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    person: Mapped[Person] = relationship(back_populates="photos", lazy="raise")
    faces: Mapped[list[Face]] = relationship(
        back_populates="photo", cascade="all, delete-orphan", passive_deletes=True, lazy="raise"
    )


class Face(Base):
    __tablename__ = "faces"
    # Never reuse a face id (SQLite would): the index and the change log key on it.
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    photo_id: Mapped[str] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), index=True)
    box_x: Mapped[int] = mapped_column(Integer)
    box_y: Mapped[int] = mapped_column(Integer)
    box_w: Mapped[int] = mapped_column(Integer)
    box_h: Mapped[int] = mapped_column(Integer)
    landmarks: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    confidence: Mapped[float] = mapped_column(Float)
    age: Mapped[float | None] = mapped_column(Float)
    gender: Mapped[EstimatedGender | None] = mapped_column(closed_set(EstimatedGender, "gender"))
    gender_probability: Mapped[float | None] = mapped_column(Float)
    # ISO/IEC 29794-5 quality components as measured at enrolment (pipeline/quality.py);
    # NULL for faces stored before it was measured.
    quality: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))  # None: NULL
    crop_jpeg: Mapped[bytes] = mapped_column(Sealed("faces.crop_jpeg"), deferred=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # When this face was last searched against the other register; NULL: still to do.
    crossmatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)

    photo: Mapped[Photo] = relationship(back_populates="faces", lazy="raise")

    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012

    @property
    def box(self) -> Box:
        return Box(self.box_x, self.box_y, self.box_w, self.box_h)


class Embedding(Base):
    """A face's vector under one generation. A re-embed writes the next generation beside."""

    __tablename__ = "embeddings"

    face_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("faces.id", ondelete="CASCADE"), primary_key=True
    )
    generation: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(200))
    # float32 little-endian, L2-normalised; sealed at rest when a data key is set
    vector: Mapped[bytes] = mapped_column(Sealed("embeddings.vector"))


class IndexState(Base):
    """One row: which embedding generation the indexes serve."""

    __tablename__ = "index_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    generation: Mapped[int] = mapped_column(Integer, default=1)
    model_name: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class AgeAxis(Base):
    """A direction `facedb reindex --remove-age-axis` learned from the database's own faces:
    embeddings of ``version`` are those of ``base_version`` with it removed. Kept for every
    version made, so any process can embed a search the way the served faces were."""

    __tablename__ = "age_axes"

    version: Mapped[str] = mapped_column(String(200), primary_key=True)
    base_version: Mapped[str] = mapped_column(String(200))
    # One unit vector per part of the base recipe, float32 little-endian, end to end.
    directions: Mapped[bytes] = mapped_column(LargeBinary)
    part_dimensions: Mapped[list[int]] = mapped_column(JSON)
    faces: Mapped[int] = mapped_column(Integer)  # the faces it was learned from
    aged_faces: Mapped[int] = mapped_column(Integer)  # of them, with an age to check it on
    children: Mapped[int] = mapped_column(Integer)  # of those, under 13
    adults: Mapped[int] = mapped_column(Integer)  # and 20 or over
    # |r| between each part's position along its direction and the faces' ages
    age_correlations: Mapped[list[float]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AgeAxisAttempt(Base):
    """One row: the service's last attempt to learn the age axis by itself (FACEDB_AGE_AXIS=
    auto), and the process running one now (a lease, so only one process runs it)."""

    __tablename__ = "age_axis_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    faces: Mapped[int | None] = mapped_column(Integer)  # the faces held when it was tried
    outcome: Mapped[str | None] = mapped_column(String(20))  # domain.AxisOutcome
    reason: Mapped[str | None] = mapped_column(Text)  # the guard's refusal or the error
    attempted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    running_by: Mapped[str | None] = mapped_column(String(200))
    running_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Change(Base):
    """Append-only log of index changes, written in the same transaction as the data.

    Every service process tails it to keep its in-memory index equal to the database.
    ``op``: ``add`` / ``remove`` (face_id set) or ``generation`` (a re-embed switched in).
    """

    __tablename__ = "changes"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    op: Mapped[ChangeOp] = mapped_column(closed_set(ChangeOp, "op"))
    face_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SharedIndex(Base):
    """A vector collection every process shares (Milvus): the collection serving the
    active generation, and the last change of the log applied to it.

    A process applies changes while it holds this row's lock (taken by an UPDATE) and moves
    the mark in the same transaction, so one process applies at a time; a crash mid-apply
    leaves the old mark and the next applier repeats the batch, which is idempotent.
    """

    __tablename__ = "shared_indexes"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    collection: Mapped[str] = mapped_column(String(255), default="")
    generation: Mapped[int] = mapped_column(Integer, default=0)
    model_version: Mapped[str] = mapped_column(String(200), default="")
    last_change: Mapped[int] = mapped_column(BigInteger, default=0)
    # Change ids below ``last_change`` not yet visible, with when they were first missed.
    gaps: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class ApiKey(Base):
    """An API key, stored as the sha256 of the secret; the secret is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(closed_set(Role, "role"))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """One audited action: who, when, what was found or refused."""

    __tablename__ = "audit_log"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    action: Mapped[AuditAction] = mapped_column(closed_set(AuditAction, "action", check=False))
    key_id: Mapped[str | None] = mapped_column(String(36))
    key_name: Mapped[str | None] = mapped_column(String(200))
    client: Mapped[str | None] = mapped_column(String(100))
    faces_found: Mapped[int] = mapped_column(Integer)
    results: Mapped[list[Any]] = mapped_column(JSON, default=list)
    took_ms: Mapped[float] = mapped_column(Float)


@dataclass(frozen=True)
class PairSideColumns:
    """What a candidate pair records of one side: the columns ``<side>_<field>``. Once the
    side's person is erased, a decided pair keeps only the person id."""

    person_id: str
    face_id: int | None
    photo_id: str | None
    taken_at: date | None
    age: float | None
    age_source: AgeSource | None

    def values(self) -> tuple[Any, ...]:
        return (self.person_id, self.face_id, self.photo_id, self.taken_at, self.age,
                self.age_source)  # fmt: skip

    def columns(self, side: str) -> dict[str, Any]:
        """Return this side as the pair's column values (``missing_face_id``, …)."""
        return {f"{side}_{name}": value for name, value in vars(self).items()}


class MatchCandidate(Base):
    """A pair of persons, one per register, for people to review.

    No foreign keys: a decided pair outlives the deletion of either person, as audit
    history. What each side looked like when the pair was last raised is kept in the row.
    The queue reads pending pairs by ``warnings`` then ``evidence`` (``casework/checks.py``,
    ``casework/crossmatch.py``).
    """

    __tablename__ = "match_candidates"
    __table_args__ = (
        UniqueConstraint("missing_person_id", "found_person_id", name="uq_match_candidates_pair"),
        Index("ix_match_candidates_queue", "state", "warnings", "evidence"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    state: Mapped[MatchState] = mapped_column(
        closed_set(MatchState, "state"), default=MatchState.PENDING
    )
    score: Mapped[float] = mapped_column(Float)
    # The score's margin over each person's next-best candidate (mean of the two).
    evidence: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    # How many checks speak against the pair: an unlikely age, a gender that differs.
    warnings: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    age_verdict: Mapped[AgeVerdict | None] = mapped_column(closed_set(AgeVerdict, "age_verdict"))
    expected_age: Mapped[float | None] = mapped_column(Float)  # missing person, at found photo
    estimated_age: Mapped[float | None] = mapped_column(Float)  # the found face's reading
    gender_conflict: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    missing_person_id: Mapped[str] = mapped_column(String(36))
    found_person_id: Mapped[str] = mapped_column(String(36), index=True)
    missing_face_id: Mapped[int | None] = mapped_column(BigInteger)
    found_face_id: Mapped[int | None] = mapped_column(BigInteger)
    missing_photo_id: Mapped[str | None] = mapped_column(String(36))
    found_photo_id: Mapped[str | None] = mapped_column(String(36))
    missing_taken_at: Mapped[date | None] = mapped_column(Date)
    found_taken_at: Mapped[date | None] = mapped_column(Date)
    missing_age: Mapped[float | None] = mapped_column(Float)
    found_age: Mapped[float | None] = mapped_column(Float)
    missing_age_source: Mapped[AgeSource | None] = mapped_column(
        closed_set(AgeSource, "missing_age_source")
    )
    found_age_source: Mapped[AgeSource | None] = mapped_column(
        closed_set(AgeSource, "found_age_source")
    )
    # Each side's six columns read (and compared) as one value.
    missing: Mapped[PairSideColumns] = composite(
        missing_person_id, missing_face_id, missing_photo_id, missing_taken_at, missing_age,
        missing_age_source,
    )  # fmt: skip
    found: Mapped[PairSideColumns] = composite(
        found_person_id, found_face_id, found_photo_id, found_taken_at, found_age,
        found_age_source,
    )  # fmt: skip
    years_between: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(String(2000))
    # Why an inconclusive decision could not decide (kept when the pair is back in the queue).
    reason: Mapped[InconclusiveReason | None] = mapped_column(
        closed_set(InconclusiveReason, "reason")
    )
    # Statuses before a confirmation changed them, restored if the decision is reversed.
    statuses_before: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The confirmed pair that took this one out of the queue (state superseded).
    superseded_by: Mapped[int | None] = mapped_column(BigInteger)
    # When the pair was first pending at or above FACEDB_NOTIFY_MIN_SCORE and so announced
    # (an outbox event, when a webhook is set): a pair is announced once.
    announced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A reviewer working the pair (``casework/review.py``: claims expire, decisions clear them).
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CrossmatchRun(Base):
    """One row: the batch cross-match in progress (resumed after a crash), or the last one."""

    __tablename__ = "crossmatch_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The register whose faces are being matched (missing first), done up to the face id.
    register: Mapped[Register] = mapped_column(
        closed_set(Register, "register"), default=Register.MISSING, server_default="missing"
    )
    after_face_id: Mapped[int] = mapped_column(BigInteger, default=0)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OutboxEvent(Base):
    """A webhook event, written in the same transaction as what it announces and delivered
    at least once by the sender (``services/webhooks.py``)."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("ix_outbox_events_due", "state", "next_attempt_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    type: Mapped[EventType] = mapped_column(closed_set(EventType, "type"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[Delivery] = mapped_column(closed_set(Delivery, "state"), default=Delivery.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Due from then: a failed attempt pushes it back, a sender claiming it leases it.
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
