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


class Gender(StrEnum):
    """A declared gender. Estimated genders (per face) are ``male`` or ``female``."""

    MALE = "male"
    FEMALE = "female"
    OTHER = "other"


class Permission(StrEnum):
    READ = "read"
    ENROLL = "enroll"
    SEARCH = "search"
    ADMIN = "admin"


class Role(StrEnum):
    ADMIN = "admin"
    ENROLLER = "enroller"
    SEARCHER = "searcher"


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.ENROLLER: frozenset({Permission.READ, Permission.ENROLL}),
    Role.SEARCHER: frozenset({Permission.READ, Permission.SEARCH}),
}


def may(role: str, permission: Permission) -> bool:
    """Return whether a role (as stored) holds a permission; unknown roles hold none."""
    return role in Role.__members__.values() and permission in GRANTS[Role(role)]


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


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        return self in (JobState.QUEUED, JobState.RUNNING)


class AuditAction(StrEnum):
    """A biometric action written to the audit trail, whether it succeeded or was refused."""

    SEARCH = "search"
    VERIFY = "verify"


class AuthMode(StrEnum):
    """How requests are admitted: keyless local mode (no key was ever created) or keys."""

    KEYLESS_LOCAL = "keyless-local"
    KEYS = "keys"
