"""The real models on real photos (the 5-celebrity set)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facedb.config import Settings
from facedb.domain import EstimatedGender
from facedb.errors import ModelsMissing, NotAnImage
from facedb.models.sample_data import PERSON_GENDERS, photos
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.pipeline.recipes import DEFAULT
from facedb.pipeline.types import Face

pytestmark = pytest.mark.models


def largest(faces: list[Face]) -> Face:
    return max(faces, key=lambda f: f.box.w * f.box.h)


@pytest.fixture(scope="module")
def embedded(analyzer: FaceAnalyzer, celebrity: Path) -> dict[str, list[tuple[str, Face]]]:
    """Every split's (person, largest face) pairs, embedded in batches of 16."""
    out: dict[str, list[tuple[str, Face]]] = {}
    for split in ("train", "val"):
        items = [(p, f) for p, files in photos(celebrity / split).items() for f in files]
        pairs: list[tuple[str, Face]] = []
        for start in range(0, len(items), 16):
            chunk = items[start : start + 16]
            results = analyzer.analyze_many([path.read_bytes() for _, path in chunk])
            for (person, _), result in zip(chunk, results, strict=True):
                assert isinstance(result, list)
                if result:
                    pairs.append((person, largest(result)))
        out[split] = pairs
    return out


def test_rank1_identification_val_against_train(
    embedded: dict[str, list[tuple[str, Face]]],
) -> None:
    gallery = np.stack([face.embedding for _, face in embedded["train"]])
    labels = [person for person, _ in embedded["train"]]
    probes = embedded["val"]
    assert len(probes) >= 23  # 25 val photos; a detector may miss at most two
    hits = sum(
        labels[int(np.argmax(gallery @ face.embedding))] == person for person, face in probes
    )
    assert hits / len(probes) >= 0.95


def test_embeddings_are_unit_float32(embedded: dict[str, list[tuple[str, Face]]]) -> None:
    for _, face in embedded["val"]:
        assert face.embedding.dtype == np.float32
        assert face.embedding.shape == (DEFAULT.dimension,)
        assert abs(float(np.linalg.norm(face.embedding)) - 1.0) < 1e-4


def test_gender_accuracy(embedded: dict[str, list[tuple[str, Face]]]) -> None:
    """Answered genders are right; an unsure network answers `unknown` instead."""
    faces = embedded["train"] + embedded["val"]
    answered = [(p, f) for p, f in faces if f.gender != EstimatedGender.UNKNOWN]
    correct = sum(face.gender == PERSON_GENDERS[person] for person, face in answered)
    assert correct / len(answered) >= 0.95
    assert len(answered) / len(faces) >= 0.8
    for _, face in faces:
        assert face.gender_probability is not None
        unsure = face.gender_probability < Settings().gender_min_probability
        assert (face.gender == EstimatedGender.UNKNOWN) == unsure


def test_age_and_landmarks_present(embedded: dict[str, list[tuple[str, Face]]]) -> None:
    for _, face in embedded["val"]:
        assert face.age is not None and 1 <= face.age <= 100
        assert face.gender_probability is not None and 0.5 <= face.gender_probability <= 1.0
        assert face.detection.left_eye is not None and face.detection.right_eye is not None
        assert face.chip.ndim == 3 and face.chip.shape[2] == 3


def test_photo_without_face_gives_empty_result(analyzer: FaceAnalyzer) -> None:
    rng = np.random.default_rng(1)
    landscape = np.zeros((480, 640, 3), dtype=np.uint8)
    landscape[:240] = (135, 190, 235)  # sky
    landscape[240:] = (60, 120, 50)  # grass
    landscape += rng.integers(0, 12, landscape.shape, dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(landscape).save(buffer, format="JPEG")
    assert analyzer.analyze(buffer.getvalue()) == []


def test_large_photo_is_detected_on_a_bounded_copy(analyzer: FaceAnalyzer, celebrity: Path) -> None:
    """A 4x upscaled photo gives the same face, boxes scaled to the original pixels."""
    path = photos(celebrity / "val")["jerry_seinfeld"][0]
    small = analyzer.analyze(path.read_bytes())
    image = Image.open(path).convert("RGB")
    big = image.resize((image.width * 4, image.height * 4), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    big.save(buffer, format="JPEG", quality=95)
    large = analyzer.analyze(buffer.getvalue())
    a, b = largest(small), largest(large)
    assert abs(b.box.x - 4 * a.box.x) <= 4 * 8 and abs(b.box.w - 4 * a.box.w) <= 4 * 8
    assert float(a.embedding @ b.embedding) > 0.8


def test_batch_analysis_reports_each_bad_photo(analyzer: FaceAnalyzer, celebrity: Path) -> None:
    good = photos(celebrity / "val")["madonna"][0].read_bytes()
    results = analyzer.analyze_many([good, b"not a photo", good])
    assert isinstance(results[1], NotAnImage)
    assert isinstance(results[0], list) and isinstance(results[2], list)
    assert np.allclose(results[0][0].embedding, results[2][0].embedding, atol=1e-5)


def test_missing_models_name_the_install_command(tmp_path: Path) -> None:
    empty = FaceAnalyzer(Settings(data_dir=tmp_path, model_dir=tmp_path / "none"))
    with pytest.raises(ModelsMissing, match="facedb models install"):
        empty.analyze(b"irrelevant")


def test_the_serving_path_never_imports_tensorflow(celebrity: Path) -> None:
    """Every network runs on ONNX Runtime: a process that analyses a photo loads no
    TensorFlow (a second of start-up and a gigabyte of memory it does not need)."""
    import subprocess
    import sys

    photo = photos(celebrity / "val")["madonna"][0]
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from facedb.config import Settings\n"
        "from facedb.pipeline.analyzer import FaceAnalyzer\n"
        "faces = FaceAnalyzer(Settings()).analyze(Path(sys.argv[1]).read_bytes())\n"
        "print(len(faces), 'tensorflow' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(photo)], capture_output=True,
                            text=True, timeout=300, check=True)  # fmt: skip
    assert result.stdout.split() == ["1", "False"], result.stderr[-2000:]
