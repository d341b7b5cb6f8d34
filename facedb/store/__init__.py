"""The system of record: SQLAlchemy models, sessions and repositories."""
