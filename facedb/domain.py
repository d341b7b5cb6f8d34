"""The closed vocabularies of FaceDB, in one place.

Schemas, CLI choices, role grants and stored values all derive from these enums; a string
that is not a member here is not a value FaceDB knows.
"""

from __future__ import annotations

from enum import StrEnum


class PersonStatus(StrEnum):
    """Where a person's case stands."""

    MISSING = "missing"
    FOUND = "found"
    CLOSED = "closed"
    UNIDENTIFIED = "unidentified"
    OTHER = "other"


class CaseDetail(StrEnum):
    """The case details a unit records on every person (keys of ``attributes``); a
    person's ``attributes`` may hold others too, shown under their own key."""

    LAST_SEEN = "last_seen"
    PLACE = "place"
    CIRCUMSTANCES = "circumstances"
    OFFICER = "officer"

    @property
    def label(self) -> str:
        return CASE_DETAIL_LABELS[self]


CASE_DETAIL_LABELS = {
    CaseDetail.LAST_SEEN: "Last seen",
    CaseDetail.PLACE: "Place",
    CaseDetail.CIRCUMSTANCES: "Circumstances",
    CaseDetail.OFFICER: "Officer in charge",
}


def detail_label(key: str) -> str:
    """The label a case detail is shown under: its own, or its key in words."""
    if key in CASE_DETAIL_LABELS:  # a StrEnum member is equal, and hashes equal, to its value
        return CASE_DETAIL_LABELS[CaseDetail(key)]
    words = key.replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:] if words else key


class EstimatedGender(StrEnum):
    """What the gender network says of a face; ``unknown`` when it is unsure."""

    MALE = "male"
    FEMALE = "female"
    UNKNOWN = "unknown"


class Register(StrEnum):
    """The two registers cross-matched against each other; a status decides a person's."""

    MISSING = "missing"  # reported missing: photos mostly from before the disappearance
    FOUND = "found"  # found or unidentified: in care, a patient, a body; photos from now

    @property
    def other(self) -> Register:
        return Register.FOUND if self is Register.MISSING else Register.MISSING

    @property
    def statuses(self) -> frozenset[PersonStatus]:
        return frozenset(s for s, r in REGISTER_OF.items() if r is self)


# `closed` and `other` take part in no cross-matching.
REGISTER_OF: dict[PersonStatus, Register] = {
    PersonStatus.MISSING: Register.MISSING,
    PersonStatus.FOUND: Register.FOUND,
    PersonStatus.UNIDENTIFIED: Register.FOUND,
}


def register_of(status: PersonStatus) -> Register | None:
    """Return the register a status places a person in, or None."""
    return REGISTER_OF.get(status)


class MatchState(StrEnum):
    """A cross-match candidate pair: waiting in the review queue, decided, or kept out of it."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    # One of its persons was linked to someone else by a confirmation; back to pending if
    # that confirmation is reversed.
    SUPERSEDED = "superseded"
    # The age check rules it out (the found photo predates the birth, or the face is far
    # too old or young); never in the queue, listed under its own filter.
    IMPOSSIBLE = "impossible"
    # A reviewer could not decide (a reason from InconclusiveReason, and a note): out of the
    # queue, listed under its own filter, back to pending when either person gets a photo.
    INCONCLUSIVE = "inconclusive"

    @property
    def decided(self) -> bool:
        return self in (MatchState.CONFIRMED, MatchState.REJECTED)

    @property
    def reviewable(self) -> bool:
        """A decision a reviewer may give: confirmed, rejected or inconclusive."""
        return self.decided or self is MatchState.INCONCLUSIVE

    @property
    def open(self) -> bool:
        """Undecided: the cross-matcher may still raise it."""
        return self in (MatchState.PENDING, MatchState.IMPOSSIBLE)


class InconclusiveReason(StrEnum):
    """Why a reviewer could not decide a pair (as examiners record it)."""

    BETTER_PHOTO = "better_photo"  # needs a better photo of either person
    SECOND_EXAMINER = "second_examiner"  # needs another examiner's eyes
    DNA_OR_DENTAL = "dna_or_dental"  # needs DNA or dental records


class PairOrder(StrEnum):
    """How the review queue lists pairs."""

    EVIDENCE = "evidence"  # fewest warnings first, then the most evidence (the queue's order)
    SCORE = "score"  # highest cosine first
    DATE = "date"  # most recently raised first


class AgeVerdict(StrEnum):
    """The age check of a face against a person's declared birth (``agecheck.py``)."""

    CONSISTENT = "consistent"  # within the age model's usual error at that age
    UNLIKELY = "unlikely"  # outside it: ranked lower in the queue, flagged at enrollment
    IMPOSSIBLE = "impossible"  # the photo predates the birth, or far beyond any error seen


class AgeSource(StrEnum):
    """Where an age at a photo comes from: the birth date and the photo date, or the model."""

    DECLARED = "declared"
    ESTIMATED = "estimated"


class Gender(StrEnum):
    """A declared gender (a person's record). Faces carry an ``EstimatedGender``."""

    MALE = "male"
    FEMALE = "female"
    OTHER = "other"


class Permission(StrEnum):
    READ = "read"
    ENROLL = "enroll"
    SEARCH = "search"
    REVIEW = "review"  # decide cross-match candidates
    NOTE = "note"  # add case notes
    ADMIN = "admin"


class Role(StrEnum):
    ADMIN = "admin"
    ENROLLER = "enroller"
    SEARCHER = "searcher"
    REVIEWER = "reviewer"


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.ENROLLER: frozenset({Permission.READ, Permission.ENROLL, Permission.NOTE}),
    Role.SEARCHER: frozenset({Permission.READ, Permission.SEARCH}),
    Role.REVIEWER: frozenset(
        {Permission.READ, Permission.SEARCH, Permission.REVIEW, Permission.NOTE}
    ),
}


def may(role: Role | None, permission: Permission) -> bool:
    """Return whether a role holds a permission; no role holds none."""
    return role is not None and permission in GRANTS[role]


class ChangeOp(StrEnum):
    """An entry of the index change log."""

    ADD = "add"
    REMOVE = "remove"
    GENERATION = "generation"  # a re-embed switched the active generation


class UploadStatus(StrEnum):
    """What happened to one uploaded photo."""

    STORED = "stored"
    DUPLICATE = "duplicate"  # the same bytes were already stored for this person
    REFUSED = "refused"


class UploadOutcome(StrEnum):
    """What happened to a whole upload: at least one stored, nothing new, or all refused."""

    CREATED = "created"
    UNCHANGED = "unchanged"
    REFUSED = "refused"


class JobKind(StrEnum):
    REINDEX = "reindex"
    CROSSMATCH = "crossmatch"


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        return self in (JobState.QUEUED, JobState.RUNNING)


class AuditAction(StrEnum):
    """An action written to the audit trail, whether it succeeded or was refused: every
    biometric action and every write. At most 16 characters (the column's width)."""

    SEARCH = "search"
    VERIFY = "verify"
    DECISION = "decision"  # a reviewer confirmed or rejected a cross-match candidate
    IMPORT = "import"  # a register manifest was imported (`facedb import`)
    EXPORT = "export"  # persons' records and photos left the service (`facedb export`)
    PERSON_CREATE = "person_create"
    PERSON_UPDATE = "person_update"  # the changed fields, before and after
    PERSON_DELETE = "person_delete"
    PHOTO_UPLOAD = "photo_upload"
    PHOTO_DELETE = "photo_delete"
    PHOTO_UPDATE = "photo_update"  # a photo's date changed, before and after
    KEY_CREATE = "key_create"
    KEY_REVOKE = "key_revoke"
    CROSSMATCH = "crossmatch"  # a batch cross-match run
    REINDEX = "reindex"  # a re-index or re-embed job
    NOTE_CREATE = "note_create"  # a case note was added to a person
    CLAIM = "claim"  # a reviewer claimed a pair to work on it, or released it


class EventType(StrEnum):
    """What a webhook event announces (`FACEDB_WEBHOOK_URL`)."""

    PAIR_PENDING = "pair.pending"  # a new candidate pair waits in the review queue
    PAIR_DECIDED = "pair.decided"  # a reviewer confirmed or rejected a pair


class Delivery(StrEnum):
    """Where a webhook event stands in the outbox."""

    PENDING = "pending"  # not yet delivered: due now, or waiting for its next attempt
    DELIVERED = "delivered"  # the receiver answered 2xx
    PARKED = "parked"  # every attempt failed; kept, shown in health, sent again on request


class RowOutcome(StrEnum):
    """What `facedb import` did with one manifest row."""

    STORED = "stored"
    ALREADY_STORED = "already_stored"  # stored (or decided) here already: an earlier run, an upload
    DUPLICATE = "duplicate"  # the same photo appears earlier in this manifest
    REFUSED = "refused"
    VALID = "valid"  # --dry-run: the row would be imported (its faces are not looked for)
    RECORD = "record"  # a row without a photo: the person's record only
    RESTORED = "restored"  # an export's decision (matches.jsonl) written here


class PersonChange(StrEnum):
    """What `facedb import` did with the person a row belongs to."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    NONE = "none"  # the row was refused before its person was resolved


class AuthMode(StrEnum):
    """How requests are admitted: keyless local mode (no key was ever created) or keys."""

    KEYLESS_LOCAL = "keyless-local"
    KEYS = "keys"


class IndexBackend(StrEnum):
    """Where the vectors are searched (FACEDB_INDEX_BACKEND)."""

    FAISS = "faiss"  # each process holds the index in memory (a snapshot on disk)
    MILVUS = "milvus"  # one Milvus collection that every process shares (FACEDB_MILVUS_URI)


class IndexKind(StrEnum):
    """How the FAISS index holds the vectors (FACEDB_INDEX_KIND)."""

    FP16 = "fp16"  # exact search over half-precision copies; final scores re-read in float32
    FLAT = "flat"  # exact search over float32 copies (twice the memory)
    IVF = "ivf"  # approximate: only FACEDB_INDEX_IVF_NPROBE of FACEDB_INDEX_IVF_NLIST lists


class AxisMode(StrEnum):
    """Whether the service learns and removes its faces' age axis itself (FACEDB_AGE_AXIS)."""

    AUTO = "auto"  # learned once the faces pass the guard, learned again as they grow
    OFF = "off"  # only `facedb reindex --remove-age-axis` removes one


class AxisOutcome(StrEnum):
    """What the service's last attempt to learn the age axis came to."""

    LEARNED = "learned"
    REFUSED = "refused"  # the faces held cannot give one (the guard's reason is kept)
    FAILED = "failed"  # the job broke off (the error is kept); tried again as for refused


class NetworkName(StrEnum):
    """The networks recipes are built from."""

    FACENET = "facenet"
    DLIB = "dlib"
    SFACE = "sface"


class Layout(StrEnum):
    """Where the colour channels sit in a recogniser's input (a recogniser card)."""

    NHWC = "nhwc"
    NCHW = "nchw"


class Colour(StrEnum):
    """The colour order a recogniser expects."""

    RGB = "rgb"
    BGR = "bgr"


class Normalisation(StrEnum):
    """How a chip's pixels are scaled for a recogniser (models/cards.py says each)."""

    PREWHITEN = "prewhiten"
    UNIT = "unit"
    SYMMETRIC = "symmetric"


class Alignment(StrEnum):
    """How a face is cut out for a recogniser (models/cards.py says each)."""

    BOX = "box"
    ARCFACE = "arcface-112"


class QualityComponent(StrEnum):
    """The face image quality components FaceDB measures, each named after the ISO/IEC
    29794-5 component it approximates (``facedb/pipeline/quality.py`` says how)."""

    INTER_EYE_DISTANCE = "inter_eye_distance"
    SHARPNESS = "sharpness"
    LUMINANCE_MEAN = "luminance_mean"
    UNDER_EXPOSURE = "under_exposure_prevention"
    OVER_EXPOSURE = "over_exposure_prevention"
    DYNAMIC_RANGE = "dynamic_range"
    ILLUMINATION_UNIFORMITY = "illumination_uniformity"
    COMPRESSION = "compression_artifacts"
    HEAD_POSE_YAW = "head_pose_yaw"
    HEAD_POSE_ROLL = "head_pose_roll"
    DETECTION_CONFIDENCE = "detection_confidence"  # not in the standard: the detector's own
    # Not a 29794-5 component: the estimated age of the face, a subject characteristic that
    # predicts a photo's utility (ISO/IEC 29794-1) across years: children's faces change most.
    SUBJECT_AGE = "subject_age"
