"""Casework: the missing register cross-matched against the found one, and the people who
review the candidate pairs (``crossmatch.py``, ``review.py``)."""
