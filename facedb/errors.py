"""Domain errors. No HTTP here: `api/errors.py` maps each class to a status and code."""

from __future__ import annotations


class FaceDBError(Exception):
    """Base of every error FaceDB raises on purpose. ``code`` is stable and machine-readable."""

    code = "facedb_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- models -------------------------------------------------------------------------------
class ModelsMissing(FaceDBError):
    """A model file the pipeline needs is absent or corrupt."""

    code = "models_missing"


class UnknownModelVersion(FaceDBError):
    """The database's embeddings were made by a pipeline this release cannot reproduce."""

    code = "unknown_model_version"


class ModelInstallError(FaceDBError):
    """`facedb models install` could not obtain or verify a model."""

    code = "model_install_failed"


# --- images -------------------------------------------------------------------------------
class ImageError(FaceDBError):
    """Base of the errors about an uploaded photo."""

    code = "invalid_image"


class EmptyImage(ImageError):
    code = "empty_image"


class TruncatedImage(ImageError):
    code = "truncated_image"


class NotAnImage(ImageError):
    code = "not_an_image"


class UnsupportedImageFormat(ImageError):
    code = "unsupported_image_format"


class ImageTooLarge(ImageError):
    code = "image_too_large"


class FileUnreadable(ImageError):
    """A photo file named on the command line or in a manifest cannot be read."""

    code = "file_unreadable"


class PathOutsideImport(FileUnreadable):
    """A manifest row names a file outside the import's folder (or archive)."""

    code = "path_outside_import"


class RequestTooLarge(FaceDBError):
    """A request carries more files or pixels than one request may."""

    code = "request_too_large"


# --- faces --------------------------------------------------------------------------------
class NoFaceFound(FaceDBError):
    code = "no_face"


class MultipleFaces(FaceDBError):
    code = "multiple_faces"


class LowQuality(FaceDBError):
    """The face's image quality is below FACEDB_QUALITY_FLOOR (the message says why and
    which photo to look for instead)."""

    code = "low_quality"


# --- records ------------------------------------------------------------------------------
class NotFound(FaceDBError):
    code = "not_found"


class Conflict(FaceDBError):
    code = "conflict"


class AlreadyLinked(Conflict):
    """A confirmation would link a person who is linked to another record already."""

    code = "already_linked"


class Claimed(Conflict):
    """Another reviewer holds an unexpired claim on the pair."""

    code = "claimed"


class Contention(Conflict):
    """Another transaction changed the same records at the same moment (PostgreSQL chose
    this one to give way); the caller may look again and repeat."""

    code = "contention"


class AgeAxisRefused(Conflict):
    """An age axis cannot be learned from this database's faces (too few, ages too alike)."""

    code = "age_axis_refused"


class InvalidInput(FaceDBError):
    """A value breaks a rule; ``field`` names it (dotted, as in the request) when one does."""

    code = "invalid_input"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ConflictingRecord(InvalidInput):
    """A manifest row gives a person field another row of the same person gave otherwise."""

    code = "conflicting_record"


class DatabaseNotMigrated(FaceDBError):
    code = "database_not_migrated"


class DataKeyError(FaceDBError):
    """Sealed data cannot be opened: no data key, the wrong one, or an altered value."""

    code = "data_key_unavailable"


class DatabaseUnavailable(FaceDBError):
    code = "database_unavailable"


class IndexUnavailable(FaceDBError):
    """The vector index (a Milvus server or Milvus Lite file) cannot be reached or opened."""

    code = "index_unavailable"


# --- auth ---------------------------------------------------------------------------------
class Unauthenticated(FaceDBError):
    code = "unauthenticated"


class Forbidden(FaceDBError):
    code = "forbidden"


class HostNotAllowed(Forbidden):
    """Keyless local mode was reached under a name that is not a loopback one."""

    code = "host_not_allowed"


class CrossSiteWrite(Forbidden):
    """A write without a key came from another site's page."""

    code = "cross_site_write"
