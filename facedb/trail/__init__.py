"""What every use case leaves behind, used by services and casework alike: the audit trail
(``audit.py``), a background job's progress (``jobs.py``) and what other systems are told
(``notices.py``: the webhook outbox rows, written in the use case's own transaction)."""
