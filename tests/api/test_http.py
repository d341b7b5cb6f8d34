"""The HTTP API end to end: real server, real models, real photos, both databases."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facedb.sample_data import PERSON_GENDERS, photos
from tests.api.conftest import Server

pytestmark = pytest.mark.models


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def landscape() -> bytes:
    array = np.zeros((300, 400, 3), dtype=np.uint8)
    array[:150] = (135, 190, 235)
    array[150:] = (60, 120, 50)
    return jpeg(Image.fromarray(array))


def side_by_side(a: Path, b: Path) -> bytes:
    """Two portraits at one height: two faces of about the same size."""
    left, right = Image.open(a).convert("RGB"), Image.open(b).convert("RGB")
    height = max(left.height, right.height)
    left = left.resize((round(left.width * height / left.height), height))
    right = right.resize((round(right.width * height / right.height), height))
    canvas = Image.new("RGB", (left.width + right.width + 40, height), (255, 255, 255))
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width + 40, 0))
    return jpeg(canvas)


@pytest.fixture(scope="module")
def enrolled(server: Server, celebrity: Path) -> dict[str, str]:
    """Enroll the train photos as five persons; return {folder name: person id}."""
    ids: dict[str, str] = {}
    with server.client("enroller") as client:
        for person, files in photos(celebrity / "train").items():
            body = {"name": person.replace("_", " ").title(), "gender": PERSON_GENDERS[person],
                    "external_ref": f"CASE-{person}", "birth_year": 1970}  # fmt: skip
            created = client.post("/v1/persons", json=body)
            assert created.status_code == 201, created.text
            ids[person] = created.json()["id"]
            for start in range(0, len(files), 8):
                chunk = files[start : start + 8]
                uploads = [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in chunk]
                reply = client.post(f"/v1/persons/{ids[person]}/photos", files=uploads,
                                    data={"taken_at": "2019-06-01"})  # fmt: skip
                assert reply.status_code in (201, 422), reply.text
    return ids


def table_counts(server: Server) -> tuple[int, ...]:
    import sqlalchemy as sa

    with server.db.engine.connect() as c:
        return tuple(
            int(c.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one())
            for t in ("persons", "photos", "faces", "embeddings")
        )


def search(server: Server, data: bytes, role: str = "searcher", **form: object):  # type: ignore[no-untyped-def]
    with server.client(role) as client:
        return client.post(
            "/v1/search", files={"file": ("probe.jpg", data, "image/jpeg")}, data=form
        )


def test_search_finds_the_right_person_first(
    server: Server, enrolled: dict[str, str], celebrity: Path
) -> None:
    hits = total = 0
    for person, files in photos(celebrity / "val").items():
        for path in files:
            reply = search(server, path.read_bytes(), k=3)
            if reply.status_code == 422:
                assert reply.json()["error"]["code"] == "no_face"
                continue
            assert reply.status_code == 200, reply.text
            body = reply.json()
            face = max(body["faces"], key=lambda f: f["box"]["w"] * f["box"]["h"])
            assert face["age"] is not None and face["gender"] in ("male", "female")
            assert 0.5 <= face["gender_probability"] <= 1
            scores = [c["score"] for c in face["candidates"]]
            assert scores == sorted(scores, reverse=True)
            assert len({c["person"]["id"] for c in face["candidates"]}) == len(scores)
            total += 1
            hits += face["candidates"][0]["person"]["id"] == enrolled[person]
    assert total >= 23
    assert hits / total >= 0.95


def test_filters_restrict_candidates(
    server: Server, enrolled: dict[str, str], celebrity: Path
) -> None:
    probe = photos(celebrity / "val")["madonna"][0].read_bytes()
    reply = search(server, probe, k=5, gender="male")
    assert reply.status_code == 200
    people = {c["person"]["id"] for f in reply.json()["faces"] for c in f["candidates"]}
    assert enrolled["madonna"] not in people and enrolled["mindy_kaling"] not in people
    too_young = search(server, probe, k=5, max_age=20)
    assert all(f["candidates"] == [] for f in too_young.json()["faces"])


def test_verify_true_and_false_pairs(
    server: Server, enrolled: dict[str, str], celebrity: Path
) -> None:
    probe = photos(celebrity / "val")["jerry_seinfeld"][1].read_bytes()
    with server.client("searcher") as client:

        def verify(person: str) -> dict[str, object]:
            reply = client.post("/v1/verify", files={"file": ("p.jpg", probe, "image/jpeg")},
                                data={"person_id": enrolled[person]})  # fmt: skip
            assert reply.status_code == 200, reply.text
            return dict(reply.json())

        same, other = verify("jerry_seinfeld"), verify("madonna")
    assert same["match"] is True and other["match"] is False
    assert float(same["score"]) > float(other["score"])  # type: ignore[arg-type]


def test_roles_are_enforced(server: Server, enrolled: dict[str, str], celebrity: Path) -> None:
    probe = photos(celebrity / "val")["elton_john"][1].read_bytes()
    assert search(server, probe, role="enroller").status_code == 403
    with server.client("searcher") as client:
        assert client.post("/v1/persons", json={"name": "x"}).status_code == 403
        assert client.get("/v1/persons").status_code == 200
        assert client.post("/v1/admin/reindex").status_code == 403
    with server.client(None) as anonymous:
        reply = anonymous.get("/v1/persons")
        assert reply.status_code == 401 and reply.json()["error"]["code"] == "unauthenticated"
        bad = anonymous.get("/v1/persons", headers={"X-API-Key": "fdb_wrong"})
        assert bad.status_code == 401


def test_audit_trail_records_searches(
    server: Server, enrolled: dict[str, str], celebrity: Path
) -> None:
    from facedb.service.audit import recent

    search(server, photos(celebrity / "val")["mindy_kaling"][0].read_bytes())
    entry = recent(server.db, limit=1, action="search")[0]
    assert entry.key_name == "test-searcher" and entry.faces_found >= 1
    assert entry.results[0]["candidates"][0]["person_id"] == enrolled["mindy_kaling"]


BAD_INPUTS = [
    ("not an image", b"%PDF-1.4 definitely not a photo", 400, "not_an_image"),
    ("empty", b"", 400, "empty_image"),
    ("truncated", "truncated", 400, "truncated_image"),
    ("too large", b"\xff" * 2_000_001, 413, "image_too_large"),
    ("gif", "gif", 415, "unsupported_image_format"),
    ("no face", "landscape", 422, "no_face"),
    ("two faces", "two", 422, "multiple_faces"),
]


@pytest.mark.parametrize(
    ("label", "payload", "status", "code"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS]
)
def test_bad_photos_are_refused_and_change_nothing(
    server: Server, enrolled: dict[str, str], celebrity: Path,
    label: str, payload: bytes | str, status: int, code: str,
) -> None:  # fmt: skip
    val = photos(celebrity / "val")
    if payload == "truncated":
        data = val["madonna"][2].read_bytes()
        payload = data[: len(data) // 2]
    elif payload == "gif":
        buffer = io.BytesIO()
        Image.open(val["madonna"][2]).save(buffer, format="GIF")
        payload = buffer.getvalue()
    elif payload == "landscape":
        payload = landscape()
    elif payload == "two":
        payload = side_by_side(val["ben_afflek"][0], val["madonna"][0])
    assert isinstance(payload, bytes)
    before = table_counts(server)
    with server.client("enroller") as client:
        reply = client.post(f"/v1/persons/{enrolled['ben_afflek']}/photos",
                            files=[("files", ("bad.jpg", payload, "image/jpeg"))])  # fmt: skip
    assert reply.status_code == status, reply.text
    assert reply.json()["error"]["code"] == code
    assert table_counts(server) == before


def test_one_bad_file_does_not_sink_the_others(server: Server, celebrity: Path) -> None:
    val = photos(celebrity / "val")
    with server.client("enroller") as client:
        person = client.post("/v1/persons", json={"name": "Mixed Upload"}).json()["id"]
        files = [
            ("files", ("good.jpg", val["elton_john"][2].read_bytes(), "image/jpeg")),
            ("files", ("junk.txt", b"hello", "text/plain")),
            ("files", ("good-again.jpg", val["elton_john"][2].read_bytes(), "image/jpeg")),
        ]
        reply = client.post(f"/v1/persons/{person}/photos", files=files)
        assert reply.status_code == 201, reply.text
        statuses = [r["status"] for r in reply.json()["results"]]
        assert statuses == ["stored", "refused", "duplicate"]
        listed = client.get(f"/v1/persons/{person}/photos").json()
        assert len(listed) == 1 and len(listed[0]["faces"]) == 1
        face = listed[0]["faces"][0]
        assert client.get(face["crop_url"]).headers["content-type"] == "image/jpeg"
        image = client.get(listed[0]["image_url"])
        assert image.content == val["elton_john"][2].read_bytes()
        assert client.delete(f"/v1/persons/{person}").status_code == 204


def test_invalid_fields_missing_records_and_conflicts(
    server: Server, enrolled: dict[str, str]
) -> None:
    with server.client("admin") as client:
        invalid = client.post("/v1/persons", json={"name": "", "birth_date": "not-a-date"})
        assert invalid.status_code == 422 and invalid.json()["error"]["code"] == "invalid_input"
        missing = client.get("/v1/persons/00000000-0000-0000-0000-000000000000")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        twin = client.post("/v1/persons", json={"name": "Twin", "external_ref": "CASE-madonna"})
        assert twin.status_code == 409 and twin.json()["error"]["code"] == "conflict"
        page = client.get("/v1/persons", params={"external_ref": "CASE-madonna"}).json()
        assert page["total"] == 1 and page["items"][0]["id"] == enrolled["madonna"]


def test_concurrent_searches_and_enrollments(
    server: Server, enrolled: dict[str, str], celebrity: Path
) -> None:
    val = photos(celebrity / "val")
    probes = [(p, val[p][3].read_bytes()) for p in ("ben_afflek", "madonna", "jerry_seinfeld")]
    wrong: list[str] = []

    def searcher(person: str, data: bytes) -> None:
        for _ in range(3):
            reply = search(server, data, k=1)
            top = (
                reply.json()["faces"][0]["candidates"][0]["person"]["id"]
                if reply.status_code == 200
                else None
            )
            if top != enrolled[person]:
                wrong.append(f"{person}: {reply.status_code} {top}")

    def enroller() -> None:
        with server.client("enroller") as client:
            pid = client.post("/v1/persons", json={"name": "Concurrent"}).json()["id"]
            data = val["mindy_kaling"][4].read_bytes()
            reply = client.post(
                f"/v1/persons/{pid}/photos", files=[("files", ("m.jpg", data, "image/jpeg"))]
            )
            if reply.status_code != 201:
                wrong.append(f"enroll: {reply.status_code}")
            client.delete(f"/v1/persons/{pid}")

    threads = [threading.Thread(target=searcher, args=probe) for probe in probes]
    threads += [threading.Thread(target=enroller) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


def test_deleted_person_is_never_returned_again(server: Server, celebrity: Path) -> None:
    val = photos(celebrity / "val")
    with server.client("enroller") as client:
        pid = client.post("/v1/persons", json={"name": "To Delete"}).json()["id"]
        data = val["elton_john"][3].read_bytes()
        assert (
            client.post(
                f"/v1/persons/{pid}/photos", files=[("files", ("e.jpg", data, "image/jpeg"))]
            ).status_code
            == 201
        )
        found = search(server, data, k=10).json()
        assert pid in {c["person"]["id"] for c in found["faces"][0]["candidates"]}
        assert client.delete(f"/v1/persons/{pid}").status_code == 204
        assert client.get(f"/v1/persons/{pid}").status_code == 404
    after = search(server, data, k=50).json()
    assert pid not in {c["person"]["id"] for f in after["faces"] for c in f["candidates"]}


def test_reindex_job_and_health(server: Server, enrolled: dict[str, str], celebrity: Path) -> None:
    import time

    with server.client("admin") as client:
        before = client.get("/v1/health").json()
        assert before["database"] and before["models"]["embedder"]
        started = client.post("/v1/admin/reindex", params={"re_embed": "true"})
        assert started.status_code == 202
        job_id = started.json()["job"]["id"]
        probe = photos(celebrity / "val")["madonna"][1].read_bytes()
        while (job := client.get(f"/v1/admin/jobs/{job_id}").json()["job"])["state"] in (
            "queued",
            "running",
        ):
            top = search(server, probe, k=1).json()["faces"][0]["candidates"][0]
            assert top["person"]["id"] == enrolled["madonna"]  # searches keep working
            time.sleep(0.2)
        assert job["state"] == "succeeded", job
        after = client.get("/v1/health").json()
        assert after["index"]["generation"] == before["index"]["generation"] + 1
        assert after["index"]["faces"] == before["index"]["faces"]
        metrics = client.get("/metrics").text
        assert "facedb_index_faces" in metrics and 'route="/v1/search"' in metrics


def test_openapi_is_served(server: Server) -> None:
    with server.client(None) as client:
        assert client.get("/openapi.json").json()["paths"]["/v1/search"]["post"]
        assert "swagger" in client.get("/docs").text.lower()
