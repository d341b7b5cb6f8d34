"""Embeddings: a face's vector under each generation (a re-embed writes the next beside)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from facedb.records import FaceRecord
from facedb.store.models import Embedding, Face
from facedb.store.rows import chunks, decode_vectors, encode_vector, face_record


@dataclass(frozen=True)
class Embedded:
    """Which embedding a face is stored under: the generation and the recipe that made it."""

    generation: int
    model_name: str
    model_version: str


Vectors = tuple[NDArray[np.int64], NDArray[np.float32]]  # (ids (n,), vectors (n, d))


class EmbeddingRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def of_faces(self, generation: int, face_ids: Sequence[int], dimension: int) -> Vectors:
        """Return (ids, vectors) of those faces that have an embedding of this generation."""
        found: list[tuple[int, bytes]] = []
        for chunk in chunks(face_ids):
            found.extend(
                (int(r[0]), r[1])
                for r in self._session.execute(
                    select(Embedding.face_id, Embedding.vector).where(
                        Embedding.generation == generation, Embedding.face_id.in_(chunk)
                    )
                ).all()
            )
        return np.array([f for f, _ in found], dtype=np.int64), decode_vectors(
            [v for _, v in found], dimension
        )

    def each(self, generation: int, dimension: int, batch: int = 20_000) -> Iterator[Vectors]:
        """Yield (ids, vectors) chunks of every embedding of one generation, by face id."""
        after = -1
        while True:
            rows = self._session.execute(
                select(Embedding.face_id, Embedding.vector)
                .where(Embedding.generation == generation, Embedding.face_id > after)
                .order_by(Embedding.face_id)
                .limit(batch)
            ).all()
            if not rows:
                return
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            yield ids, decode_vectors([r[1] for r in rows], dimension)
            after = int(ids[-1])

    def add(
        self, face_ids: Sequence[int], vectors: NDArray[np.float32], embedded: Embedded
    ) -> None:
        self._session.add_all(
            Embedding(
                face_id=int(face_id),
                generation=embedded.generation,
                model_name=embedded.model_name,
                model_version=embedded.model_version,
                vector=encode_vector(vector),
            )
            for face_id, vector in zip(face_ids, vectors, strict=True)
        )

    def faces_without(self, generation: int, limit: int) -> list[FaceRecord]:
        """Return faces (by photo, then id) that have no embedding of ``generation`` yet."""
        has = select(Embedding.face_id).where(Embedding.generation == generation)
        rows = self._session.execute(
            select(Face).where(Face.id.not_in(has)).order_by(Face.photo_id, Face.id).limit(limit)
        ).scalars()
        return [face_record(f) for f in rows]

    def drop_generations(self, keep: int, *, above: bool) -> None:
        """Delete embeddings of generations above (orphans of a crashed job) or below ``keep``."""
        condition = Embedding.generation > keep if above else Embedding.generation < keep
        self._session.execute(delete(Embedding).where(condition))
