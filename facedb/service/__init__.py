"""Use cases: where a database commit and an index update meet."""
