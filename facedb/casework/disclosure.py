"""What of a case a caller may see in its report: one rule, decided from the caller.

Today the rule is the audit's own: the audit extract (who searched, exported, decided)
is shown to those who may read the audit (``GET /v1/audit``: admins), and to no one else,
so a report never tells a caller more than the API would. The rest of the report follows
the permission to read records, which every role holds. The agencies issue extends this
value (another agency's record by its owner's sharing level) rather than the renderer.
"""

from __future__ import annotations

from dataclasses import dataclass

from facedb.domain import Permission, may
from facedb.records import Caller


@dataclass(frozen=True)
class Disclosure:
    """The parts of a case report a caller may see."""

    audit: bool  # the audit extract

    @classmethod
    def for_caller(cls, caller: Caller) -> Disclosure:
        return cls(audit=may(caller.role, Permission.ADMIN))


FULL = Disclosure(audit=True)  # the operator's own export (`facedb export --person`)
