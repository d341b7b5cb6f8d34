"""The operator console in a real headless Chromium, against a real server with the models.

Needs Debian's `chromium` (`apt-get install chromium`; `.ci/run` installs it) and the
`playwright` package (a dev dependency): Playwright drives the system browser, as its own
browser download does not work offline. Without the browser these tests skip, saying so.
A screenshot of every page is saved under test-artifacts/console/.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import ARTIFACTS, Server, shot, sign_in
from tests.fakes import fake_photo, no_face_photo

pytestmark = pytest.mark.slow  # make test-fast leaves it out

JERRY = 101  # the identities this module enrolls (tests/fakes.py)
REPORTED = 102


def photo_file(folder: Path, name: str, identity: int, variant: int, age: int = 30) -> Path:
    path = folder / name
    path.write_bytes(fake_photo(identity, variant, age=age))
    return path


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_a_caseworker_enrolls_searches_and_reviews(
    server: Server, page: Any, tmp_path: Path
) -> None:
    train = [photo_file(tmp_path, f"jerry-{v}.png", JERRY, v, age=36) for v in range(2)]
    val = [photo_file(tmp_path, f"now-{v}.png", JERRY, 10 + v, age=68) for v in range(3)]
    page.goto(f"{server.url}/console/signin")
    shot(page, "signin")
    sign_in(page, server, "admin")

    page.goto(f"{server.url}/console/persons")
    page.get_by_label("Name", exact=True).fill("Jerry Console")
    page.get_by_label("Case number").last.fill("MP-CONSOLE-1")
    page.get_by_label("Birth date").fill("1954-04-29")
    page.get_by_role("button", name="Create person").click()
    page.wait_for_url("**/console/persons/*")
    page.get_by_label("Photos (one face each)").set_input_files([str(p) for p in train])
    page.get_by_label(f"Date of {train[0].name}").fill("1990-05-01")
    page.get_by_label(f"Date of {train[1].name}").fill("1992-07-01")
    page.get_by_role("button", name="Upload").click()
    page.get_by_text("2 stored, 0 already stored, 0 refused.").wait_for()
    page.locator(".gallery figure").nth(1).wait_for()
    assert page.locator(".gallery .box").count() == 2  # each photo with its face boxed
    shot(page, "person")

    misfiled = photo_file(tmp_path, "misfiled.png", JERRY, 3, age=5)  # a child, "at 36"
    page.get_by_label("Photos (one face each)").set_input_files(str(misfiled))
    page.get_by_label(f"Date of {misfiled.name}").fill("1991-01-01")
    page.get_by_role("button", name="Upload").click()
    warned = page.locator(".report li.warning")
    warned.wait_for()
    assert "the age does not fit" in warned.inner_text() and "looks about 5" in warned.inner_text()
    page.locator(".gallery figure.conflict").wait_for()
    shot(page, "person-age-conflict")

    page.get_by_label("Photos (one face each)").set_input_files(
        files=[
            {"name": "notes.jpg", "mimeType": "image/jpeg", "buffer": b"this is not a photo"},
            {"name": "landscape.png", "mimeType": "image/png", "buffer": no_face_photo()},
            {"name": "group.png", "mimeType": "image/png", "buffer": fake_photo([JERRY, 7])},
        ]
    )
    page.get_by_role("button", name="Upload").click()
    page.locator(".report").get_by_role("alert").get_by_text("No photo was stored").wait_for()
    refused = page.locator(".report li.error").all_inner_texts()
    for name, why in [("notes.jpg", "not a photo FaceDB can read"), ("landscape.png", "No face"),
                      ("group.png", "The photo shows 2 faces")]:  # fmt: skip
        assert any(t.startswith(f"{name}: refused") and why in t for t in refused), refused
    assert all("{" not in t for t in refused)  # sentences, never raw JSON
    assert page.locator(".report").is_visible()
    box = page.locator(".report").bounding_box()
    assert box is not None and box["y"] < page.viewport_size["height"]  # scrolled into view
    shot(page, "person-upload-error")

    # The misfiled photo's date corrected on its card: first a date before the birth (said
    # next to the form, once), then the right year: the age conflict clears.
    redate = page.locator(".gallery figure.conflict form.date-form")
    redate.get_by_label("Date of misfiled.png").fill("1950-01-01")
    redate.get_by_role("button", name="Save date").click()
    problem = redate.get_by_role("alert")
    problem.wait_for()
    assert problem.inner_text().count("1950-01-01") == 1 and "before the person's birth" in (
        problem.inner_text()
    )
    shot(page, "person-redate-error")
    redate.get_by_label("Date of misfiled.png").fill("1959-06-01")
    redate.get_by_role("button", name="Save date").click()
    page.get_by_text("misfiled.png is now dated 1959-06-01").wait_for()
    page.wait_for_function("!document.querySelector('.gallery figure.conflict')")
    assert (
        page.locator(".gallery figcaption")
        .first.inner_text()
        .startswith("misfiled.png · 1959-06-01 · age 5 (from birth date)")
    )

    page.get_by_role("button", name="Delete misfiled.png…").click()  # the misfiled photo goes
    ask = page.get_by_role("dialog")
    assert "misfiled.png (1959-06-01)" in ask.inner_text()
    ask.get_by_role("button", name="Delete the photo").click()
    page.get_by_text("misfiled.png (1959-06-01) deleted.").wait_for()
    assert page.locator(".gallery figure").count() == 2
    captions = page.locator(".gallery figcaption").all_inner_texts()
    assert captions[0].startswith(f"{train[0].name} · 1990-05-01")  # by date, with file names

    page.goto(f"{server.url}/console/search")
    page.get_by_label("Photo", exact=True).set_input_files(str(val[0]))
    page.get_by_role("button", name="Search").click()
    first = page.locator(".candidate").first
    first.wait_for()
    assert first.get_by_role("link").inner_text() == "Jerry Console"
    assert "Age at that photo" in first.inner_text() and "from birth date" in first.inner_text()
    assert page.locator(".photo .box").count() >= 1
    said = page.locator("#searched").inner_text()  # the register's size, to read deep enough
    assert re.match(r"Searched [\d,]+ enrolled persons \([\d,]+ faces\)", said), said
    axis = page.locator("#age-axis")  # a handful of faces: the age axis waits for 200
    page.get_by_text("Age axis not removed (cross-age search): not learned yet").wait_for()
    assert "once the database holds 200 faces with an age" in axis.inner_text()
    shot(page, "search")

    found = _found_person(server, val[1], "Unidentified man 12")
    other = _found_person(server, val[2], "Unidentified man 13")
    page.goto(f"{server.url}/console/review")
    pair = page.locator(".pair", has=page.get_by_role("link", name=found["name"])).first
    pair.wait_for()
    text = pair.inner_text()
    assert "years between the photos" in text and "Age fits" in text
    shot(page, "review")
    pair.get_by_label("Note").fill("same ears")
    pair.get_by_role("button", name="Confirm: same person").click()
    ask = page.get_by_role("dialog")
    assert "Jerry Console (case MP-CONSOLE-1)" in ask.inner_text()  # names both records
    assert found["name"] in ask.inner_text() and "both records closed" in ask.inner_text()
    shot(page, "review-confirm-dialog")
    ask.get_by_role("button", name="Yes, confirm").click()
    page.get_by_text(re.compile(r"Pair \d+ confirmed: Jerry Console")).wait_for()
    page.goto(f"{server.url}/console/review?state=confirmed")
    page.get_by_text("same ears").first.wait_for()

    page.goto(f"{server.url}/console/review?state=superseded")
    taken = page.locator(".pair", has=page.get_by_role("link", name=other["name"])).first
    taken.wait_for()
    assert "Out of the queue since pair" in taken.inner_text()
    assert taken.get_by_role("button").count() == 0  # nothing to decide on a superseded pair
    taken.get_by_role("link", name=re.compile(r"open pair \d+")).click()
    page.get_by_text("same ears").wait_for()  # the confirmation that took it out
    shot(page, "review-superseded-by")

    page.goto(f"{server.url}/console/persons/{found['id']}")  # the case file of the found side
    page.get_by_role("link", name="Jerry Console (case MP-CONSOLE-1)").wait_for()  # by name
    history = page.get_by_role("region", name="Candidate pairs")
    history.get_by_text("confirmed by test-admin").wait_for()
    assert "same ears" in history.inner_text()
    shot(page, "person-case-file")

    page.goto(f"{server.url}/console/audit")
    page.locator("tbody tr").first.wait_for()
    trail = page.locator("tbody").inner_text()
    assert "search" in trail
    assert "re-dated a photo of Jerry Console: 1991-01-01 → 1950-01-01" not in trail  # refused
    assert "re-dated a photo of Jerry Console: 1991-01-01 → 1959-06-01" in trail  # by name
    assert "photo misfiled.png of Jerry Console" in trail
    shot(page, "audit")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{server.url}/console/persons")
    page.locator("tbody tr").first.wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing off-screen
    gender = page.locator("tbody td[data-label=Gender]").first.bounding_box()
    assert gender is not None and gender["x"] + gender["width"] <= 390
    shot(page, "persons-phone")


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_a_searcher_is_not_offered_enrollment(server: Server, page: Any) -> None:
    with server.client("enroller") as client:  # at least one person to open
        assert client.post("/v1/persons", json={"name": "Seen By A Searcher"}).status_code == 201
    sign_in(page, server, "searcher")
    page.goto(f"{server.url}/console/persons")
    page.locator("table").wait_for()
    assert page.get_by_role("button", name="Create person").count() == 0
    link = page.locator("tbody a").first
    link.click()
    page.locator(".facts").wait_for()
    assert page.get_by_role("button", name="Upload").count() == 0
    assert page.get_by_text("Erase").count() == 0
    assert page.get_by_role("link", name="Audit").count() == 0
    shot(page, "person-as-searcher")


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_case_notes_on_the_person_page_under_the_security_policy(server: Server, page: Any) -> None:
    violations: list[str] = []
    page.on("console", lambda m: "Content Security" in m.text and violations.append(m.text))
    with server.client("enroller") as client:
        pid = client.post("/v1/persons", json={"name": "Noted In Console"}).json()["id"]
    sign_in(page, server, "reviewer")
    page.goto(f"{server.url}/console/persons/{pid}")
    page.get_by_text("No note yet.").wait_for()
    page.get_by_label("New note").fill("Seen at the bus station, 14:00.\nCalled the family.")
    page.get_by_role("button", name="Add note").click()
    note = page.locator(".notes li").first
    note.get_by_text("Seen at the bus station").wait_for()
    assert "test-reviewer" in note.inner_text()
    page.get_by_label("New note").fill("   ")
    page.get_by_role("button", name="Add note").click()
    problem = page.locator("form [role=alert]")
    problem.wait_for()
    said = problem.inner_text()
    assert said.count("empty") == 1 and "{" not in said  # a sentence, said once
    assert page.locator(".notes li").count() == 1
    shot(page, "person-notes")
    assert violations == []


def _found_person(server: Server, photo: Path, name: str) -> dict[str, Any]:
    with server.client("enroller") as client:
        body = {"name": name, "status": "unidentified"}
        person = client.post("/v1/persons", json=body).json()
        files = [("files", (photo.name, photo.read_bytes(), "image/png"))]
        reply = client.post(
            f"/v1/persons/{person['id']}/photos", files=files, data={"taken_at": "2022-01-10"}
        )
        assert reply.status_code == 201, reply.text
    return dict(person)


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_an_exported_case_report_opens_offline_and_prints(
    server: Server, page: Any, tmp_path: Path
) -> None:
    with server.client("admin") as client:
        body = {"name": "Report Child", "status": "missing", "birth_date": "2001-03-04",
                "external_ref": "MP-REPORT-1"}  # fmt: skip
        missing = client.post("/v1/persons", json=body).json()["id"]
        files = [("files", (f"school-{v}.png", fake_photo(REPORTED, v, age=8), "image/png"))
                 for v in range(2)]  # fmt: skip
        client.post(f"/v1/persons/{missing}/photos", files=files, data={"taken_at": "2009-06-01"})
        found = client.post("/v1/persons", json={"name": "Resident 7", "status": "found"}).json()
        now = [("files", ("intake.png", fake_photo(REPORTED, 5, age=24), "image/png"))]
        client.post(f"/v1/persons/{found['id']}/photos", files=now, data={"taken_at": "2025-02-01"})
        pair = client.get("/v1/matches", params={"person_id": missing}).json()["items"][0]
        client.post(f"/v1/matches/{pair['id']}/decision",
                    json={"decision": "confirmed", "note": "scar on the left hand"})  # fmt: skip
        client.post(f"/v1/persons/{missing}/notes", json={"text": "Mother confirmed by phone."})
    archive = tmp_path / "case.zip"
    ids = server.services.exporter.select([missing], None, False)
    assert found["id"] in ids  # the other side of the pair travels with the case
    server.services.exporter.export(ids, archive, reports=[missing])
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(tmp_path / "case")
    report = tmp_path / "case" / f"case-{missing}.html"
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(report.as_uri())
    text = page.locator("body").inner_text()
    expected = [
        "Case file: Report Child (MP-REPORT-1)",
        "Resident 7",
        "scar on the left hand",
        "Mother confirmed by phone.",
        "school-0.png",
        "2009-06-01",
        "confirmed by",
    ]
    for words in expected:
        assert words in text, words
    images = page.locator("img")  # two photos, and the other record's face in the pairs table
    assert page.locator("figure img").count() == 2 and page.locator("td img.face").count() == 1
    assert all(images.nth(i).evaluate("i => i.naturalWidth > 0") for i in range(images.count()))
    assert "age fits" in page.locator("table").first.inner_text()  # the verdict, in words
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []  # offline
    shot(page, "case-report")
    pdf = page.pdf(path=str(ARTIFACTS / "case-report.pdf"), format="A4")
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page") >= 1

    sign_in(page, server, "searcher")  # the same report from the case page
    page.goto(f"{server.url}/console/persons/{missing}")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the case report").click()
    saved = tmp_path / "downloaded.html"
    download.value.save_as(saved)
    assert download.value.suggested_filename == "case-MP-REPORT-1.html"
    assert "Mother confirmed by phone." in saved.read_text()


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_photo_quality_is_shown_beside_each_face_and_the_register_says_whom_to_ask(
    server: Server, page: Any, tmp_path: Path
) -> None:
    child = photo_file(tmp_path, "school-portrait.png", 103, 0, age=3)  # quality 19
    with server.client("enroller") as client:
        body = {"name": "Quality Console", "status": "missing", "external_ref": "MP-Q-1"}
        person = client.post("/v1/persons", json=body).json()["id"]
    sign_in(page, server, "admin")
    page.goto(f"{server.url}/console/persons/{person}")
    page.get_by_label("Photos (one face each)").set_input_files(str(child))
    page.get_by_role("button", name="Upload").click()
    warned = page.locator(".report li.warning")
    warned.wait_for()
    assert "face quality 19/100 — a young child's face (about 3)" in warned.inner_text()
    assert "Look for a photo taken as close as possible" in warned.inner_text()
    page.locator("#photo-quality").wait_for()  # the whole record: nothing to search by
    assert (
        page.locator("#photo-quality")
        .inner_text()
        .startswith("No photo of good enough quality: searches will miss")
    )
    line = page.locator(".gallery figcaption .quality.low")
    assert "Quality 19/100: a young child's face" in line.inner_text()
    assert page.locator("#photo-quality").is_visible() and line.is_visible()
    shot(page, "person-quality")

    page.get_by_role("link", name="Photo quality").click()
    page.wait_for_url("**/console/quality")
    missing = page.get_by_role("region", name="missing register")
    row = missing.locator("tr", has=page.get_by_role("link", name="Quality Console"))
    row.wait_for()
    assert "19/100" in row.inner_text() and "most recent one the family has" in row.inner_text()
    assert missing.get_by_role("img").get_attribute("aria-label").count("faces scoring") == 5
    shot(page, "quality")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the list as CSV").click()
    assert "Quality Console" in Path(download.value.path()).read_text()
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    row.wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "quality-phone")
