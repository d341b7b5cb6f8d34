"""Face image quality with the real detector and age estimate on the celebrity photos,
degraded the ways a case file's photos are: each component moves the way its name says
(measured where the service measures it, when a face is located)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from facedb.domain import QualityComponent as C
from facedb.models.sample_data import photos
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.pipeline.base import LocatedFace

pytestmark = pytest.mark.models
Image = NDArray[np.uint8]


def downscaled(bgr: Image, factor: float = 2.0) -> Image:
    height, width = bgr.shape[:2]
    size = (round(width / factor), round(height / factor))
    return np.asarray(cv2.resize(bgr, size, interpolation=cv2.INTER_AREA))


def blurred(bgr: Image) -> Image:
    return np.asarray(cv2.GaussianBlur(bgr, (0, 0), 3))


def darkened(bgr: Image) -> Image:
    return (bgr.astype(np.float64) * 0.2).astype(np.uint8)


def rotated(bgr: Image) -> Image:
    height, width = bgr.shape[:2]
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), 25, 1.0)
    return np.asarray(cv2.warpAffine(bgr, turn, (width, height)))


def jpeg5(bgr: Image) -> Image:
    _, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 5])
    return np.asarray(cv2.imdecode(data, cv2.IMREAD_COLOR))


def found(analyzer: FaceAnalyzer, bgr: Image) -> bool:
    ok, png = cv2.imencode(".png", bgr)
    return ok and len(analyzer.locate(png.tobytes())) == 1


def face_of(analyzer: FaceAnalyzer, bgr: Image) -> LocatedFace:
    ok, png = cv2.imencode(".png", bgr)
    assert ok
    faces = analyzer.locate(png.tobytes())
    assert faces, "the detector still finds the face"
    return max(faces, key=lambda f: f.detection.box.w * f.detection.box.h)


@pytest.fixture(scope="module")
def originals(analyzer: FaceAnalyzer, celebrity: Path) -> list[Image]:
    """Three photos of different persons, each of the person's largest frontal face whose
    face the detector still finds after every degradation (what is tested here is how the
    components move, not how far the detector holds out)."""
    chosen = []
    for _, files in sorted(photos(celebrity / "train").items()):
        if len(chosen) == 3:
            break
        frontal = []
        for path in files:
            bgr = np.asarray(cv2.imread(str(path), cv2.IMREAD_COLOR))
            faces = analyzer.locate(path.read_bytes())
            if len(faces) == 1 and faces[0].quality is not None:
                yaw = faces[0].quality.components.get(C.HEAD_POSE_YAW)
                if yaw is not None and abs(yaw.value) < 15:
                    frontal.append((faces[0].detection.box.w, bgr))
        for _, bgr in sorted(frontal, key=lambda f: -f[0]):
            if all(found(analyzer, degrade(bgr)) for degrade in DEGRADATIONS):
                chosen.append(bgr)
                break
    assert len(chosen) >= 3, "three persons have a photo that survives every degradation"
    return chosen[:3]


DEGRADATIONS = (downscaled, blurred, darkened, rotated, jpeg5)
# (degradation, component, whether its value falls (else rises), its score falls too)
CASES: list[tuple[Callable[[Image], Image], C, bool]] = [
    (downscaled, C.INTER_EYE_DISTANCE, True),
    (blurred, C.SHARPNESS, True),
    (darkened, C.LUMINANCE_MEAN, True),
    (darkened, C.UNDER_EXPOSURE, False),
    (rotated, C.HEAD_POSE_ROLL, False),
    (jpeg5, C.COMPRESSION, False),
]


@pytest.mark.parametrize(("degrade", "component", "falls"), CASES,
                         ids=[f"{d.__name__}-{c.value}" for d, c, _ in CASES])  # fmt: skip
def test_each_component_moves_the_way_its_name_says(
    analyzer: FaceAnalyzer, originals: list[Image], degrade: Callable[[Image], Image],
    component: C, falls: bool,
) -> None:  # fmt: skip
    for bgr in originals:
        before, after = face_of(analyzer, bgr).quality, face_of(analyzer, degrade(bgr)).quality
        assert before is not None and after is not None
        was, now = before.components[component], after.components[component]
        value_moved = now.value < was.value if falls else abs(now.value) > abs(was.value)
        assert value_moved, (component, was, now)
        assert now.score < was.score, (component, was, now)


def test_a_degraded_face_says_what_was_done_to_it(
    analyzer: FaceAnalyzer, originals: list[Image]
) -> None:
    good = face_of(analyzer, originals[0]).quality
    assert good is not None and good.score >= 60, good
    dark = face_of(analyzer, darkened(originals[0])).quality
    assert dark is not None and dark.score < good.score
    assert dark.limiting is C.LUMINANCE_MEAN and "too dark" in dark.reason
    side = face_of(analyzer, originals[0]).detection.box.w
    tiny = face_of(analyzer, downscaled(originals[0], side / 28)).quality  # a 28-px face
    assert tiny is not None and tiny.score < 20 and tiny.limiting is C.INTER_EYE_DISTANCE
    assert "px apart: at least 60" in tiny.reason
    # Blur and compression did not tell misses on the dev sets: said, not scored.
    for degrade, component, words in ((blurred, C.SHARPNESS, "blurred"),
                                      (jpeg5, C.COMPRESSION, "JPEG blocks")):  # fmt: skip
        found = [face_of(analyzer, degrade(bgr)).quality for bgr in originals]
        severe = [q for q in found if q is not None and q.components[component].score < 20]
        assert severe, (component, found)
        assert all(words in q.reason for q in severe)
