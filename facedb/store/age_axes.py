"""Age axes: the directions `facedb reindex --remove-age-axis` learned, by the version they make."""

from __future__ import annotations

from sqlalchemy.orm import Session

from facedb.records import AgeAxis, unpack_directions
from facedb.store.models import AgeAxis as AgeAxisRow


class AgeAxisRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, version: str) -> AgeAxis | None:
        """Return the axis that makes embeddings of ``version``, if one was learned."""
        row = self._session.get(AgeAxisRow, version)
        if row is None:
            return None
        return AgeAxis(
            base_version=row.base_version,
            directions=unpack_directions(row.directions, row.part_dimensions),
            faces=row.faces,
            aged_faces=row.aged_faces,
            children=row.children,
            adults=row.adults,
            age_correlations=tuple(row.age_correlations),
        )

    def keep(self, axis: AgeAxis) -> None:
        """Store ``axis`` under its version (a version names its directions: kept once)."""
        if self._session.get(AgeAxisRow, axis.version) is not None:
            return
        self._session.add(
            AgeAxisRow(
                version=axis.version,
                base_version=axis.base_version,
                directions=axis.packed_directions(),
                part_dimensions=[len(d) for d in axis.directions],
                faces=axis.faces,
                aged_faces=axis.aged_faces,
                children=axis.children,
                adults=axis.adults,
                age_correlations=list(axis.age_correlations),
            )
        )
