"""The HTTP API: every route through a real server, on the fake analyzer, three backends.

The real networks go through the same routes in ``test_end_to_end.py``.
"""

from __future__ import annotations

import io
import threading
import time
from typing import Any

import httpx
import pytest
from PIL import Image

from facedb.domain import AuditAction
from tests.api.conftest import Server, unique
from tests.factories import table_counts
from tests.fakes import fake_photo, no_face_photo

# Five persons: identity, gender (the fake reads even identities as male).
PEOPLE = {"ben": (12, "male"), "elton": (14, "male"), "jerry": (16, "male"),
          "madonna": (11, "female"), "mindy": (13, "female")}  # fmt: skip


def png(identity: int, variant: int) -> tuple[str, bytes, str]:
    return (f"{identity}-{variant}.png", fake_photo(identity, variant), "image/png")


def search(server: Server, data: bytes, role: str = "searcher", **form: object) -> httpx.Response:
    with server.client(role) as client:
        return client.post(
            "/v1/search", files={"file": ("probe.png", data, "image/png")}, data=form
        )


def candidates(reply: httpx.Response) -> list[dict[str, Any]]:
    assert reply.status_code == 200, reply.text
    return [c for face in reply.json()["faces"] for c in face["candidates"]]


@pytest.fixture(scope="module")
def enrolled(server: Server) -> dict[str, str]:
    """Five persons with three photos each; return {name: person id}."""
    ids: dict[str, str] = {}
    with server.client("enroller") as client:
        for name, (identity, gender) in PEOPLE.items():
            body = {"name": name.title(), "gender": gender, "birth_year": 1970,
                    "external_ref": unique(f"CASE-{name}")}  # fmt: skip
            created = client.post("/v1/persons", json=body)
            assert created.status_code == 201, created.text
            ids[name] = created.json()["id"]
            files = [("files", png(identity, v)) for v in range(3)]
            reply = client.post(f"/v1/persons/{ids[name]}/photos", files=files,
                                data={"taken_at": "2019-06-01"})  # fmt: skip
            assert reply.status_code == 201, reply.text
    return ids


def test_search_finds_the_right_person_first(server: Server, enrolled: dict[str, str]) -> None:
    for name, (identity, _) in PEOPLE.items():
        reply = search(server, fake_photo(identity, 7), k=3)
        face = reply.json()["faces"][0]
        assert face["age"] == 30 and face["gender"] in ("male", "female")
        scores = [c["score"] for c in face["candidates"]]
        assert scores == sorted(scores, reverse=True)
        assert len({c["person"]["id"] for c in face["candidates"]}) == len(scores)
        assert face["candidates"][0]["person"]["id"] == enrolled[name]
        assert face["candidates"][0]["match"] is True


def test_every_face_of_a_group_photo_is_searched(server: Server, enrolled: dict[str, str]) -> None:
    group = fake_photo([PEOPLE["ben"][0], PEOPLE["madonna"][0]], 8, size=(300, 200))
    faces = search(server, group, k=1).json()["faces"]
    assert [f["candidates"][0]["person"]["id"] for f in faces] == [
        enrolled["ben"],
        enrolled["madonna"],
    ]


def test_filters_restrict_candidates(server: Server, enrolled: dict[str, str]) -> None:
    probe = fake_photo(PEOPLE["madonna"][0], 7)
    people = {c["person"]["id"] for c in candidates(search(server, probe, k=50, gender="male"))}
    assert enrolled["madonna"] not in people and enrolled["mindy"] not in people
    assert enrolled["ben"] in people
    too_young = search(server, probe, k=5, max_age=20)
    assert all(f["candidates"] == [] for f in too_young.json()["faces"])


def test_verify_true_and_false_pairs(server: Server, enrolled: dict[str, str]) -> None:
    probe = fake_photo(PEOPLE["jerry"][0], 9)
    with server.client("searcher") as client:

        def verify(person: str) -> dict[str, Any]:
            reply = client.post("/v1/verify", files={"file": ("p.png", probe, "image/png")},
                                data={"person_id": enrolled[person]})  # fmt: skip
            assert reply.status_code == 200, reply.text
            return dict(reply.json())

        same, other = verify("jerry"), verify("madonna")
    assert same["match"] is True and other["match"] is False
    assert float(same["score"]) > float(other["score"])


def test_roles_are_enforced(server: Server, enrolled: dict[str, str]) -> None:
    probe = fake_photo(PEOPLE["elton"][0], 7)
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


def test_audit_trail_records_searches(server: Server, enrolled: dict[str, str]) -> None:
    search(server, fake_photo(PEOPLE["mindy"][0], 7))
    entry = server.services.audit.recent(limit=1, action=AuditAction.SEARCH)[0]
    assert entry.key_name == "test-searcher" and entry.faces_found == 1
    assert entry.results[0]["candidates"][0]["person_id"] == enrolled["mindy"]


def _truncated() -> bytes:
    data = fake_photo(1, 2)
    return data[: len(data) // 2]


def _gif() -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(fake_photo(1, 2))).save(buffer, format="GIF")
    return buffer.getvalue()


BAD_INPUTS = [
    ("not an image", b"%PDF-1.4 definitely not a photo", 400, "not_an_image"),
    ("empty", b"", 400, "empty_image"),
    ("truncated", _truncated(), 400, "truncated_image"),
    ("too large", b"\xff" * 2_000_001, 413, "image_too_large"),
    ("gif", _gif(), 415, "unsupported_image_format"),
    ("no face", no_face_photo(), 422, "no_face"),
    ("two faces", fake_photo([1, 2], 3, size=(300, 200)), 422, "multiple_faces"),
]


@pytest.mark.parametrize(
    ("label", "payload", "status", "code"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS]
)
def test_bad_photos_are_refused_and_change_nothing(
    server: Server, enrolled: dict[str, str], label: str, payload: bytes, status: int, code: str
) -> None:
    before = table_counts(server.services)
    with server.client("enroller") as client:
        reply = client.post(f"/v1/persons/{enrolled['ben']}/photos",
                            files=[("files", ("bad.jpg", payload, "image/jpeg"))])  # fmt: skip
    assert reply.status_code == status, reply.text
    assert reply.json()["error"]["code"] == code
    assert table_counts(server.services) == before


def test_one_bad_file_does_not_sink_the_others(server: Server) -> None:
    good = fake_photo(20, 0)
    with server.client("enroller") as client:
        person = client.post("/v1/persons", json={"name": "Mixed Upload"}).json()["id"]
        files = [
            ("files", ("good.png", good, "image/png")),
            ("files", ("junk.txt", b"hello", "text/plain")),
            ("files", ("good-again.png", good, "image/png")),
        ]
        reply = client.post(f"/v1/persons/{person}/photos", files=files)
        assert reply.status_code == 201, reply.text
        statuses = [r["status"] for r in reply.json()["results"]]
        assert statuses == ["stored", "refused", "duplicate"]
        listed = client.get(f"/v1/persons/{person}/photos").json()
        assert len(listed) == 1 and len(listed[0]["faces"]) == 1
        face = listed[0]["faces"][0]
        assert client.get(face["crop_url"]).headers["content-type"] == "image/jpeg"
        assert client.get(listed[0]["image_url"]).content == good
        assert client.delete(f"/v1/persons/{person}").status_code == 204


def test_invalid_fields_missing_records_and_conflicts(server: Server) -> None:
    ref = unique("TWIN")
    with server.client("admin") as client:
        first = client.post("/v1/persons", json={"name": "One", "external_ref": ref}).json()
        invalid = client.post("/v1/persons", json={"name": "", "birth_date": "not-a-date"})
        assert invalid.status_code == 422 and invalid.json()["error"]["code"] == "invalid_input"
        missing = client.get("/v1/persons/00000000-0000-0000-0000-000000000000")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        twin = client.post("/v1/persons", json={"name": "Twin", "external_ref": ref})
        assert twin.status_code == 409 and twin.json()["error"]["code"] == "conflict"
        page = client.get("/v1/persons", params={"external_ref": ref}).json()
        assert page["total"] == 1 and page["items"][0]["id"] == first["id"]


def test_concurrent_searches_and_enrollments(server: Server, enrolled: dict[str, str]) -> None:
    probes = [(name, fake_photo(PEOPLE[name][0], 10)) for name in ("ben", "madonna", "jerry")]
    wrong: list[str] = []

    def searcher(name: str, data: bytes) -> None:
        for _ in range(5):
            reply = search(server, data, k=1)
            top = (
                reply.json()["faces"][0]["candidates"][0]["person"]["id"]
                if reply.status_code == 200
                else None
            )
            if top != enrolled[name]:
                wrong.append(f"{name}: {reply.status_code} {top}")

    def enroller(n: int) -> None:
        with server.client("enroller") as client:
            pid = client.post("/v1/persons", json={"name": "Concurrent"}).json()["id"]
            files = [("files", png(30 + n, 0))]
            reply = client.post(f"/v1/persons/{pid}/photos", files=files)
            if reply.status_code != 201:
                wrong.append(f"enroll: {reply.status_code}")
            client.delete(f"/v1/persons/{pid}")

    threads = [threading.Thread(target=searcher, args=probe) for probe in probes]
    threads += [threading.Thread(target=enroller, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


def test_deleted_person_is_never_returned_again(server: Server) -> None:
    data = fake_photo(40, 0)
    with server.client("enroller") as client:
        pid = client.post("/v1/persons", json={"name": "To Delete"}).json()["id"]
        reply = client.post(f"/v1/persons/{pid}/photos", files=[("files", png(40, 0))])
        assert reply.status_code == 201
        assert pid in {c["person"]["id"] for c in candidates(search(server, data, k=10))}
        assert client.delete(f"/v1/persons/{pid}").status_code == 204
        assert client.get(f"/v1/persons/{pid}").status_code == 404
    assert pid not in {c["person"]["id"] for c in candidates(search(server, data, k=50))}


def test_reindex_job_and_health(server: Server, enrolled: dict[str, str]) -> None:
    with server.client("admin") as client:
        before = client.get("/v1/health").json()
        assert before["database"] and before["models"]["embedder"]
        axis = before["age_axis"]  # a handful of faces: on by default, waiting for 200
        assert axis["mode"] == "auto" and axis["on"] is False and axis["next_attempt_at"] == 200
        assert axis["faces"] == before["index"]["faces"]
        assert "once the database holds 200 faces with an age" in axis["reason"]
        started = client.post("/v1/admin/reindex", params={"re_embed": "true"})
        assert started.status_code == 202
        job_id = started.json()["job"]["id"]
        probe = fake_photo(PEOPLE["madonna"][0], 7)
        while (job := client.get(f"/v1/admin/jobs/{job_id}").json()["job"])["state"] in (
            "queued",
            "running",
        ):
            top = candidates(search(server, probe, k=1))[0]
            assert top["person"]["id"] == enrolled["madonna"]  # searches keep working
            time.sleep(0.05)
        assert job["state"] == "succeeded", job
        after = client.get("/v1/health").json()
        assert after["index"]["generation"] == before["index"]["generation"] + 1
        assert after["index"]["faces"] == before["index"]["faces"]
        metrics = client.get("/metrics").text
        assert "facedb_index_faces" in metrics and 'route="/v1/search"' in metrics

        # A handful of faces cannot give an age axis: the job fails saying so, nothing moves.
        refused = client.post("/v1/admin/reindex", params={"remove_age_axis": "true"})
        assert refused.json()["job"]["params"] == {"re_embed": False, "remove_age_axis": True}
        job_id = refused.json()["job"]["id"]
        while (job := client.get(f"/v1/admin/jobs/{job_id}").json()["job"])["state"] in (
            "queued",
            "running",
        ):
            time.sleep(0.05)
        assert job["state"] == "failed", job
        assert "AgeAxisRefused: the age axis is learned from at least 200" in job["errors"][0]
        unchanged = client.get("/v1/health").json()["index"]
        assert unchanged["generation"] == after["index"]["generation"]
        assert unchanged["model_version"] == after["index"]["model_version"]


def test_openapi_is_served(server: Server) -> None:
    with server.client(None) as client:
        assert client.get("/openapi.json").json()["paths"]["/v1/search"]["post"]
        assert "swagger" in client.get("/docs").text.lower()


def test_a_photo_keeps_the_name_it_was_uploaded_as(server: Server) -> None:
    with server.client("enroller") as client:
        pid = client.post("/v1/persons", json={"name": "Named Files"}).json()["id"]
        files = [("files", ("C:\\scans\\Anna-2009.png", fake_photo(71, 0), "image/png"))]
        reply = client.post(f"/v1/persons/{pid}/photos", files=files)
        assert reply.status_code == 201, reply.text
        assert reply.json()["results"][0]["photo"]["filename"] == "Anna-2009.png"  # no path
        assert [p["filename"] for p in client.get(f"/v1/persons/{pid}/photos").json()] == [
            "Anna-2009.png"
        ]
