"""Which face of a photo is enrolled: the only one, or one that clearly dominates."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from facedb.domain import UploadStatus
from facedb.models.sample_data import photos
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.services.uploads import Upload
from facedb.wiring import Services
from tests.factories import model_services

pytestmark = pytest.mark.models


@pytest.fixture
def db(tmp_path: Path, analyzer: FaceAnalyzer) -> Iterator[Services]:
    instance = model_services(f"sqlite:///{tmp_path / 'faces.sqlite3'}", tmp_path, analyzer)
    yield instance
    instance.close()


def composite(big: Path, small: Path, scale: float) -> bytes:
    """``big`` at full size with ``small`` pasted beside it at ``scale`` of its height."""
    a, b = Image.open(big).convert("RGB"), Image.open(small).convert("RGB")
    b = b.resize((round(b.width * a.height * scale / b.height), round(a.height * scale)))
    canvas = Image.new("RGB", (a.width + b.width + 40, a.height), (255, 255, 255))
    canvas.paste(a, (0, 0))
    canvas.paste(b, (a.width + 40, a.height - b.height))
    buffer = io.BytesIO()
    canvas.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def test_a_small_face_behind_the_person_does_not_stop_enrollment(
    db: Services, celebrity: Path, analyzer: FaceAnalyzer
) -> None:
    val = photos(celebrity / "val")
    person = db.persons.create({"name": "Madonna"})
    crowded = composite(val["madonna"][0], val["madonna"][0], 0.4)  # 1/6 of the area
    assert len(analyzer.analyze(crowded)) == 2
    result = db.enrollment.enroll(person.id, [Upload("crowd.jpg", io.BytesIO(crowded))]).results[0]
    assert result.status == UploadStatus.STORED and result.photo is not None
    face = result.photo.faces[0]
    assert face.box.x < Image.open(val["madonna"][0]).width  # the large face, on the left

    pair = composite(val["madonna"][0], val["madonna"][0], 1.0)
    refused = db.enrollment.enroll(person.id, [Upload("pair.jpg", io.BytesIO(pair))]).results[0]
    assert refused.status == UploadStatus.REFUSED and refused.error is not None
    assert refused.error.code == "multiple_faces"
