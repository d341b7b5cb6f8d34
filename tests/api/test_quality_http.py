"""Face image quality through the HTTP API (the fake analyzer: a marker's quality is the
real rating of its eyes' distance, confidence and age, tests/fakes.py): stored with each
face, said in search answers, warned about at enrolment, refused below a floor, summed up
per register."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from facedb.domain import QualityComponent
from facedb.services.quality import NOTHING_GOOD
from tests.api.conftest import Server, serve, unique
from tests.fakes import FakeAnalyzer, fake_photo

ADULT, CHILD = 30, 3  # marker ages: quality 85, and 19 (a young child's face)


def enroll(server: Server, identity: int, age: int) -> tuple[str, dict[str, object]]:
    """Create a person with one photo; return their id and the file's upload result."""
    with server.client("enroller") as client:
        body = {"name": f"Quality {identity}", "status": "missing",
                "external_ref": unique("Q")}  # fmt: skip
        person = client.post("/v1/persons", json=body).json()["id"]
        files = [("files", (f"{identity}.png", fake_photo(identity, age=age), "image/png"))]
        reply = client.post(f"/v1/persons/{person}/photos", files=files)
        assert reply.status_code == 201, reply.text
    return person, reply.json()["results"][0]


# Quality is the store's and the routes', not the index's: the two databases are enough.
ON_DATABASES = pytest.mark.parametrize(
    "server", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@ON_DATABASES
def test_each_face_is_stored_with_its_quality_and_a_poor_one_is_warned_about(
    server: Server,
) -> None:
    good, fine = enroll(server, 171, ADULT)
    poor, warned = enroll(server, 172, CHILD)
    assert fine["warning"] is None
    quality = fine["photo"]["faces"][0]["quality"]  # type: ignore[index]
    assert quality["score"] == 85 and quality["limiting"] == "inter_eye_distance"
    assert set(quality["components"]) >= {c.value for c in QualityComponent} - {
        "head_pose_yaw"  # the markers have no nose
    }
    assert quality["components"]["inter_eye_distance"]["value"] == pytest.approx(32, abs=1)
    assert "face quality 19/100 — a young child's face (about 3)" in str(warned["warning"])
    assert "Look for a photo taken as close as possible" in str(warned["warning"])
    with server.client("reviewer") as client:
        assert client.get(f"/v1/persons/{good}/quality").json()["warning"] is None
        said = client.get(f"/v1/persons/{poor}/quality").json()
        assert said["best"]["score"] == 19 and said["faces"] == said["measured"] == 1
        assert said["warning"].startswith(NOTHING_GOOD)
        report = client.get(f"/v1/persons/{poor}/report").text
        assert NOTHING_GOOD in report and "quality 19/100" in report


@ON_DATABASES
def test_a_search_says_how_good_the_searched_face_and_each_candidate_are(
    server: Server,
) -> None:
    person, _ = enroll(server, 173, CHILD)
    with server.client("searcher") as client:
        files = {"file": ("probe.png", fake_photo(173, 5, age=ADULT), "image/png")}
        face = client.post("/v1/search", files=files, data={"k": 3}).json()["faces"][0]
    assert face["quality"]["score"] == 85
    mine = next(c for c in face["candidates"] if c["person"]["id"] == person)
    assert mine["quality"]["score"] == 19 and "child's face" in mine["quality"]["reason"]


@ON_DATABASES
def test_the_register_overview_lists_whom_to_ask_for_another_photo(server: Server) -> None:
    good, _ = enroll(server, 174, ADULT)
    poor, _ = enroll(server, 175, CHILD)
    with server.client("admin") as client:
        registers = client.get("/v1/admin/quality", params={"register": "missing"}).json()
        table = client.get("/v1/admin/quality.csv").text
        audit = client.get("/v1/audit", params={"action": "export", "limit": 5}).json()
    assert [r["name"] for r in registers] == ["missing"]
    missing = registers[0]
    assert sum(missing["bands"].values()) == missing["measured"] >= 2
    assert missing["bands"]["80-100"] >= 1 and missing["bands"]["0-19"] >= 1
    below = {p["person_id"]: p for p in missing["below"]}
    assert poor in below and good not in below
    assert below[poor]["best"]["score"] == 19 and "most recent" in below[poor]["advice"]
    rows = list(csv.DictReader(io.StringIO(table)))
    assert any(r["person_id"] == poor and r["best_score"] == "19" for r in rows)
    assert not any(r["person_id"] == good for r in rows)
    assert any(r["table"] == "quality" for e in audit for r in e["results"])
    with server.client("reviewer") as client:
        assert client.get("/v1/admin/quality").status_code == 403


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server that refuses faces below quality 40."""
    folder: Path = tmp_path_factory.mktemp("api-quality-floor")
    yield from serve("sqlite", folder, FakeAnalyzer, quality_floor=40)


def test_below_the_floor_a_face_is_refused_saying_why_and_nothing_is_stored(
    strict: Server,
) -> None:
    with strict.client("enroller") as client:
        person = client.post("/v1/persons", json={"name": "Floor", "external_ref": unique("F")})
        pid = person.json()["id"]
        files = [("files", ("child.png", fake_photo(176, age=CHILD), "image/png")),
                 ("files", ("adult.png", fake_photo(176, 1, age=ADULT), "image/png"))]  # fmt: skip
        reply = client.post(f"/v1/persons/{pid}/photos", files=files)
        photos = client.get(f"/v1/persons/{pid}/photos").json()
    assert reply.status_code == 201, reply.text
    child, adult = reply.json()["results"]
    assert child["status"] == "refused" and child["error"]["code"] == "low_quality"
    assert "FACEDB_QUALITY_FLOOR is 40" in child["error"]["message"]
    assert adult["status"] == "stored"
    assert [p["filename"] for p in photos] == ["adult.png"]


@ON_DATABASES
def test_the_review_queue_shows_each_sides_quality(server: Server) -> None:
    missing, _ = enroll(server, 177, CHILD)
    with server.client("enroller") as client:
        found = client.post("/v1/persons", json={"name": "Found 177", "status": "found"})
        fid = found.json()["id"]
        files = [("files", ("now.png", fake_photo(177, 9, age=ADULT), "image/png"))]
        assert client.post(f"/v1/persons/{fid}/photos", files=files).status_code == 201
    with server.client("reviewer") as client:
        items = client.get("/v1/matches", params={"person_id": missing}).json()["items"]
    pair = next(i for i in items if i["found"]["person_id"] == fid)
    assert pair["missing"]["quality"]["score"] == 19
    assert pair["found"]["quality"]["score"] == 85
