"""FaceDB: a face identification database (enroll, find, verify)."""

__version__ = "0.1.0"
