"""Use cases: each service owns its rules, works through the store, the index and the
analyzer it is given, and hands back records. ``facedb.wiring`` builds them once."""
