"""What a caseworker sees and can trust, measured in a real Chromium (issue: console-trust):
every page at 1280 and 390 px without sideways scrolling or a policy violation, bars and
boxes drawn where the API says, errors beside the control that caused them and in view,
ages in completed years, a doubtful photo's warning on the review card, the case details
as labelled rows, and the words, dates and roles a caseworker expects."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Server, serve, shot, sign_in, unique
from tests.api.test_console_geometry import BARS, BOXES, WATCH_CSP
from tests.fakes import FakeAnalyzer, fake_photo

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("server", ["sqlite"], indirect=True)]

CHILD = 231  # the identities this module enrolls (tests/fakes.py)
DOUBTFUL = 232
DETAILED = 233
AGED = 234
REJECTED = 235
WIDTHS = (1280, 390)


def enroll(server: Server, person: dict[str, Any], photos: list[tuple[bytes, str | None]]) -> str:
    """Create a person and upload each (photo, date); return the person's id."""
    with server.client("enroller") as client:
        created = client.post("/v1/persons", json=person)
        assert created.status_code == 201, created.text
        pid = str(created.json()["id"])
        for i, (photo, day) in enumerate(photos):
            reply = client.post(f"/v1/persons/{pid}/photos",
                                files=[("files", (f"p{i}.png", photo, "image/png"))],
                                data={"taken_at": day} if day else {})  # fmt: skip
            assert reply.status_code == 201, reply.text
    return pid


def erase(server: Server, *person_ids: str) -> None:
    with server.client("admin") as client:
        for pid in person_ids:
            client.delete(f"/v1/persons/{pid}")


@pytest.fixture
def a_case(server: Server) -> Iterator[dict[str, str]]:
    """A missing child (two dated photos) and a found adult of the same face: one pair."""
    missing = enroll(server, {"name": "Asha Trust", "external_ref": unique("MP-TRUST"),
                              "birth_date": "2004-05-01", "status": "missing"},
                     [(fake_photo(CHILD, 0, age=6), "2010-06-01"),
                      (fake_photo(CHILD, 1, age=7), "2011-06-01")])  # fmt: skip
    found = enroll(server, {"name": "Resident Trust", "status": "found"},
                   [(fake_photo(CHILD, 2, age=20), "2024-09-01")])  # fmt: skip
    yield {"missing": missing, "found": found}
    erase(server, missing, found)


def fits(page: Any, width: int) -> None:
    """Nothing on the page reaches past the window's width (no sideways scrolling)."""
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= width, f"{page.url} is {overflow} px wide at {width} px"


def measured(page: Any, threshold: float) -> None:
    """Every score bar filled to its score with its mark at the threshold."""
    for bar in page.evaluate(BARS):
        assert bar["fill"] == pytest.approx(max(0.0, min(1.0, bar["score"])), abs=0.02), bar
        assert bar["mark"] == pytest.approx(threshold, abs=0.02), bar


def test_every_page_fits_a_phone_and_draws_what_the_api_says(
    server: Server, page: Any, a_case: dict[str, str], tmp_path: Path
) -> None:
    with server.client("admin") as client:
        threshold = client.get("/v1/me").json()["match_threshold"]
        photos = client.get(f"/v1/persons/{a_case['missing']}/photos").json()
    corners = [(f["box"]["x"] / p["width"], f["box"]["y"] / p["height"])
               for p in photos for f in p["faces"]]  # fmt: skip
    expected = sorted(v for corner in corners for v in corner)
    probe = tmp_path / "probe.png"
    probe.write_bytes(fake_photo(CHILD, 5, age=21))
    page.add_init_script(WATCH_CSP)
    sign_in(page, server, "admin")
    pages = ["/console/persons", f"/console/persons/{a_case['missing']}", "/console/audit"]
    pages += [f"/console/review?state={s}" for s in
              ("pending", "confirmed", "rejected", "superseded", "impossible")]  # fmt: skip
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{server.url}/console/signin")
        page.get_by_label("API key").wait_for()
        fits(page, width)
        page.goto(f"{server.url}/console/search")
        page.get_by_label("Photo", exact=True).set_input_files(str(probe))
        page.get_by_role("button", name="Search").click()
        page.locator(".candidate").first.wait_for()
        fits(page, width)
        measured(page, threshold)
        shot(page, f"trust-search-{width}")
        for path in pages:
            page.goto(f"{server.url}{path}")
            page.wait_for_load_state("networkidle")
            page.locator("#content > :not(.muted)").first.wait_for()
            fits(page, width)
            measured(page, threshold)
            name = "person" if a_case["missing"] in path else re.sub(r"\W+", "-", path[9:])
            shot(page, f"trust-{name}-{width}")
        page.goto(f"{server.url}/console/persons/{a_case['missing']}")
        page.locator(".gallery .box").nth(1).wait_for()
        page.locator(".gallery img").nth(1).evaluate("img => img.decode()")
        drawn = sorted(v for b in page.evaluate(BOXES) for v in (b["x"], b["y"]))
        assert drawn == pytest.approx(expected, abs=0.015)
        page.goto(f"{server.url}/console/review?state=pending")
        card = page.locator(".pair", has=page.get_by_role("link", name="Resident Trust"))
        card.wait_for()
        sides = card.locator(".side").all()  # the two faces of a pair stay side by side
        first, second = sides[0].bounding_box(), sides[1].bounding_box()
        assert first and second and abs(first["y"] - second["y"]) < 2 and second["x"] > first["x"]
        tab = page.get_by_role("link", name="Impossible by age").bounding_box()
        assert tab and tab["x"] + tab["width"] <= width  # every tab on screen
        shot(page, f"trust-review-card-{width}")
    assert page.evaluate("window.__violations") == []


def test_errors_appear_beside_their_control_in_view(
    server: Server, page: Any, a_case: dict[str, str], tmp_path: Path
) -> None:
    sign_in(page, server, "admin")
    page.set_viewport_size({"width": 1280, "height": 700})
    page.goto(f"{server.url}/console/persons")
    form = page.locator("form", has=page.get_by_role("button", name="Create person"))
    form.get_by_label("Name", exact=True).fill("Future Born")
    form.get_by_label("Birth date").fill((date.today() + timedelta(days=30)).isoformat())
    form.get_by_role("button", name="Create person").click()
    said = form.locator(".field", has=page.get_by_label("Birth date")).get_by_role("alert")
    said.wait_for()
    assert "birth date" in said.inner_text() and "between 1900-01-01 and today" in said.inner_text()
    assert "Birth_date" not in said.inner_text() and "body." not in said.inner_text()
    in_view(page, said)
    shot(page, "trust-error-birth-date")

    form.get_by_label("Birth date").fill("")
    form.get_by_label("Name", exact=True).fill("   ")  # a blank name: refused, beside it
    form.get_by_role("button", name="Create person").click()
    blank = form.locator(".field", has=page.get_by_label("Name", exact=True)).get_by_role("alert")
    blank.wait_for()
    assert "blank" in blank.inner_text()
    in_view(page, blank)

    form.get_by_label("Name", exact=True).fill("Two Births")
    form.get_by_label("Birth date").fill("2001-02-03")
    form.get_by_label("or birth year").fill("2002")
    form.get_by_role("button", name="Create person").click()
    both = form.locator(".field", has=page.get_by_label("or birth year")).get_by_role("alert")
    both.wait_for()
    assert "agreeing" not in both.inner_text() and "Birth_year" not in both.inner_text()

    page.goto(f"{server.url}/console/persons/{a_case['missing']}")  # photos from 2010
    edit = page.locator("form", has=page.get_by_role("button", name="Save changes"))
    edit.get_by_label("Birth date").fill("2012-01-01")
    edit.get_by_role("button", name="Save changes").click()
    late = edit.locator(".field", has=page.get_by_label("Birth date")).get_by_role("alert")
    late.wait_for()
    assert "2010-06-01" in late.inner_text()
    in_view(page, late)
    shot(page, "trust-error-edit")

    # One good date and one before the birth: the good photo is stored, the other refused
    # by name, its reason beside its own date.
    good, early = tmp_path / "good.png", tmp_path / "early.png"
    good.write_bytes(fake_photo(CHILD, 8, age=9))
    early.write_bytes(fake_photo(CHILD, 9, age=9))
    page.get_by_label("Photos (one face each)").set_input_files([str(good), str(early)])
    page.get_by_label("Date of good.png").fill("2013-06-01")
    page.get_by_label("Date of early.png").fill("2003-06-01")
    page.get_by_role("button", name="Upload").click()
    page.get_by_text("1 stored, 0 already stored, 1 refused.").wait_for()
    refused = page.locator(".report li.error").all_inner_texts()
    assert any(t.startswith("early.png: refused") and "before the person's birth" in t
               for t in refused), refused  # fmt: skip
    beside = page.locator(".field", has=page.get_by_label("Date of early.png")).get_by_role("alert")
    assert "2003-06-01" in beside.inner_text()
    in_view(page, page.locator(".report"))
    shot(page, "trust-upload-one-bad-date")

    page.get_by_label("Photos (one face each)").set_input_files(
        files=[
            {"name": "huge.png", "mimeType": "image/png", "buffer": b"\x89PNG" + bytes(2_100_000)}
        ]
    )
    page.get_by_role("button", name="Upload").click()
    huge = page.locator(".report li.error", has_text="huge.png")
    huge.wait_for()
    assert "MB" in huge.inner_text() and "bytes" not in huge.inner_text()


def in_view(page: Any, locator: Any) -> None:
    box = locator.bounding_box()
    height = page.viewport_size["height"]
    assert box is not None and box["y"] >= 0 and box["y"] + min(box["height"], 40) <= height


def test_blank_names_already_stored_are_listed_and_openable(server: Server, page: Any) -> None:
    with server.services.store.unit() as unit:  # as an earlier release stored them
        ref = unique("MP-BLANK")
        blank = unit.persons.add(name=" \t", external_ref=ref).id
    sign_in(page, server, "admin")
    page.goto(f"{server.url}/console/persons?external_ref={ref}")
    link = page.get_by_role("link", name="(no name)").first
    link.wait_for()
    link.click()
    page.get_by_role("button", name="Erase (no name)…").wait_for()
    assert blank in page.url
    erase(server, blank)


def test_ages_are_completed_years_everywhere(server: Server, page: Any) -> None:
    today = date.today()
    born = date(today.year - 47, today.month, 1) + timedelta(days=45)  # 46.8 to 46.9 today
    taken = date(born.year + 30, born.month, born.day) - timedelta(days=70)  # 29.8 then
    pid = enroll(server, {"name": "Counted Years", "external_ref": unique("MP-AGE"),
                          "birth_date": born.isoformat()},
                 [(fake_photo(AGED, 0, age=30), taken.isoformat())])  # fmt: skip
    with server.client("admin") as client:
        assert 46.5 < client.get(f"/v1/persons/{pid}").json()["age"] < 47
    sign_in(page, server, "admin")
    page.goto(f"{server.url}/console/persons/{pid}")
    page.locator(".gallery figcaption").first.wait_for()
    facts = page.locator(".facts").first.inner_text()
    assert re.search(r"Age today\s+46\b", facts), facts
    caption = page.locator(".gallery figcaption").first.inner_text()
    assert "age 29 (from birth date)" in caption, caption
    page.goto(f"{server.url}/console/persons?name=Counted")
    age = page.locator("tbody tr", has_text="Counted Years").locator("td[data-label=Age]")
    assert age.inner_text() == "46"
    with server.client("admin") as client:
        report = client.get(f"/v1/persons/{pid}/report").text
    assert "age 29 (from the birth date)" in report
    erase(server, pid)


def test_a_doubtful_photo_warns_on_the_review_card_and_in_the_dialog(
    server: Server, page: Any
) -> None:
    missing = enroll(
        server,
        {"name": "Misfiled Child", "birth_date": "2000-01-01", "status": "missing"},
        [(fake_photo(DOUBTFUL, 0, age=33), "2006-06-01")],
    )  # "33 at age 6"
    found = enroll(server, {"name": "Doubtful Found", "status": "found"},
                   [(fake_photo(DOUBTFUL, 1, age=35), None)])  # fmt: skip
    sign_in(page, server, "reviewer")
    page.goto(f"{server.url}/console/persons/{missing}")
    card = page.locator(".pair", has=page.get_by_role("link", name="Doubtful Found"))
    card.wait_for()
    warning = card.locator(".photo-warning")
    assert "missing side" in warning.inner_text() and "looks about 33" in warning.inner_text()
    card.get_by_role("button", name="Confirm: same person").click()
    dialog = page.get_by_role("dialog")
    assert "photo is in doubt" in dialog.inner_text()
    shot(page, "trust-doubtful-photo")
    dialog.get_by_role("button", name="Cancel").click()
    erase(server, missing, found)


def test_case_details_are_labelled_rows_shown_edited_and_printed(server: Server, page: Any) -> None:
    details = {"last_seen": "2019-04-02, 17:00", "place": "Central bus station",
               "circumstances": "Left school alone.", "officer": "Insp. R. Das",
               "shoe_size": "34"}  # fmt: skip
    pid = enroll(server, {"name": "Detailed Case", "attributes": details}, [])
    sign_in(page, server, "enroller")
    page.goto(f"{server.url}/console/persons/{pid}")
    shown = page.get_by_role("region", name="Case details")
    shown.get_by_text("Central bus station").wait_for()
    text = shown.inner_text()
    for label in ("Last seen", "Place", "Circumstances", "Officer in charge", "Shoe size"):
        assert label in text, text
    assert "{" not in text
    edit = page.locator("form", has=page.get_by_role("button", name="Save changes"))
    edit.get_by_label("Place").fill("North gate of the market")
    edit.get_by_label("Officer in charge").fill("")
    edit.get_by_role("button", name="Save changes").click()
    page.get_by_role("region", name="Case details").get_by_text("North gate").wait_for()
    with server.client("admin") as client:
        held = client.get(f"/v1/persons/{pid}").json()["attributes"]
        report = client.get(f"/v1/persons/{pid}/report").text
    expected = {**details, "place": "North gate of the market"}
    del expected["officer"]  # emptied: the detail goes
    assert held == expected
    assert "<dt>Place</dt><dd>North gate of the market</dd>" in report
    assert "<dt>Shoe size</dt><dd>34</dd>" in report and "{&quot;" not in report
    erase(server, pid)


def test_words_dates_roles_and_decisions_as_a_caseworker_expects(
    server: Server, page: Any, a_case: dict[str, str]
) -> None:
    page.goto(f"{server.url}/console/persons/{a_case['missing']}")  # a link, a new tab
    page.wait_for_url("**/console/signin?next=*")
    page.get_by_label("API key").fill(server.keys["enroller"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/console/persons/{a_case['missing']}")  # back where it began
    assert page.locator("#nav").get_by_role("link", name="Search").count() == 0
    page.get_by_label("New note").fill("Called the school.")
    page.get_by_role("button", name="Add note").click()
    stamp = page.locator(".notes li", has_text="Called the school.").inner_text()
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", stamp), stamp
    with page.expect_download():
        page.get_by_role("button", name="Download the case report").click()

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, server, "enroller")
    page.wait_for_url("**/console/persons")  # an enroller lands where they may work

    sign_in(page, server, "admin")
    page.goto(f"{server.url}/console/audit?action=export")
    row = page.locator("tbody tr").first
    row.wait_for()
    assert "case report of Asha Trust" in row.inner_text() and "NaN" not in row.inner_text()

    page.goto(f"{server.url}/console/review")
    count = pending(page)
    card = page.locator(".pair", has=page.get_by_role("link", name="Resident Trust"))
    card.get_by_role("button", name="Reject…").click()
    ask = page.get_by_role("dialog")
    assert "two different people" in ask.inner_text()
    ask.get_by_role("button", name="Yes, reject").click()
    page.get_by_text(re.compile(r"Pair \d+ rejected: Asha Trust")).wait_for()
    page.locator("[data-nav=review]", has_text=f"({count - 1})").wait_for()  # at once

    page.goto(f"{server.url}/console/persons/{a_case['found']}")
    page.get_by_role("button", name="Erase Resident Trust…").click()
    page.get_by_role("dialog").get_by_role("button", name="Erase for good").click()
    page.wait_for_url("**/console/persons")
    page.get_by_text("Erased the record of Resident Trust, 1 photo(s) and 1 face(s)").wait_for()


def pending(page: Any) -> int:
    counted = page.locator("[data-nav=review]", has_text=re.compile(r"\(\d+\)"))
    counted.wait_for()
    text = counted.inner_text()
    return int(re.search(r"\((\d+)\)", text).group(1))  # type: ignore[union-attr]


def test_a_unit_that_asks_for_a_note_gets_one_with_every_rejection(
    page: Any, tmp_path: Path, server: Server
) -> None:
    strict = serve("sqlite", tmp_path, FakeAnalyzer, reject_note_required=True)
    unit = next(strict)
    try:
        enroll(unit, {"name": "Strict Missing", "birth_date": "2001-01-01"},
               [(fake_photo(REJECTED, 0, age=8), "2009-01-01")])  # fmt: skip
        enroll(unit, {"name": "Strict Found", "status": "found"},
               [(fake_photo(REJECTED, 1, age=22), "2023-01-01")])  # fmt: skip
        with unit.client("reviewer") as client:
            pair = client.get("/v1/matches", params={"state": "pending"}).json()["items"][0]
            bare = client.post(f"/v1/matches/{pair['id']}/decision", json={"decision": "rejected"})
            assert bare.status_code == 422 and bare.json()["error"]["details"][0]["field"] == "note"
        sign_in(page, unit, "reviewer")
        page.goto(f"{unit.url}/console/review")
        page.get_by_role("button", name="Reject…").click()
        ask = page.get_by_role("dialog")
        ask.get_by_role("button", name="Yes, reject").click()
        ask.get_by_role("alert").get_by_text("asks for a note").wait_for()
        ask.get_by_label("Why (this unit asks for a note)").fill("Different ear shape.")
        ask.get_by_role("button", name="Yes, reject").click()
        page.get_by_text(re.compile(r"Pair \d+ rejected")).wait_for()
        with unit.client("reviewer") as client:
            decided = client.get(f"/v1/matches/{pair['id']}").json()
        assert (
            decided["state"] == "rejected" and decided["decision"]["note"] == "Different ear shape."
        )
    finally:
        strict.close()


def test_a_search_goes_to_a_case_and_lists_leave_as_csv(
    server: Server, page: Any, a_case: dict[str, str], tmp_path: Path
) -> None:
    probe = tmp_path / "intake.png"
    probe.write_bytes(fake_photo(CHILD, 6, age=21))
    sign_in(page, server, "admin")
    page.goto(f"{server.url}/console/search")
    page.get_by_label("Photo", exact=True).set_input_files(str(probe))
    page.get_by_label("Photo taken on").fill("2025-03-01")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("button", name="Save this search to Asha Trust's case").click()
    page.get_by_text("Saved to the case notes of").wait_for()

    page.goto(f"{server.url}/console/persons/{a_case['missing']}")
    saved = page.locator(".notes li", has_text="Search by test-admin")
    saved.wait_for()
    assert "intake.png (taken 2025-03-01)" in saved.inner_text()
    assert "Asha Trust" in saved.inner_text() and "(match)" in saved.inner_text()
    timeline = page.get_by_role("list", name="Timeline")
    timeline.locator("li[data-kind=search]").wait_for()
    kinds = timeline.locator("li").evaluate_all("items => items.map(i => i.dataset.kind)")
    assert kinds[0] == "photo"  # taken in 2010, years before the record was made
    assert {"record", "photo", "pair", "search"} <= set(kinds)
    stamps = timeline.locator(".when").all_inner_texts()
    assert [s[:10] for s in stamps] == sorted(s[:10] for s in stamps)  # in date order
    shot(page, "trust-timeline")

    page.goto(f"{server.url}/console/review?external_ref={page_ref(server, a_case)}")
    cards = page.locator(".pair")
    cards.first.wait_for()
    assert cards.count() == 1 and "Resident Trust" in cards.first.inner_text()
    with page.expect_download() as queue:
        page.get_by_role("button", name="Download these 1 pairs as CSV").click()
    assert "Resident Trust" in Path(queue.value.path()).read_text()

    page.goto(f"{server.url}/console/persons?name=Asha%20Trust")
    with page.expect_download() as listed:
        page.get_by_role("button", name=re.compile(r"Download these \d+ persons as CSV")).click()
    assert "Asha Trust" in Path(listed.value.path()).read_text()

    page.goto(f"{server.url}/console/search")  # the searched photo, enrolled in one step
    page.get_by_label("Photo", exact=True).set_input_files(str(probe))
    page.get_by_role("button", name="Search").click()
    page.get_by_role("button", name="Enroll this photo as a new unidentified record").click()
    page.wait_for_url("**/console/persons/*")
    page.locator(".gallery figure").first.wait_for()
    assert "Unidentified person, searched" in page.locator("h1").inner_text()
    erase(server, page.url.rsplit("/", 1)[1])


def page_ref(server: Server, a_case: dict[str, str]) -> str:
    with server.client("admin") as client:
        return str(client.get(f"/v1/persons/{a_case['missing']}").json()["external_ref"])


def test_a_claimed_pair_is_shown_to_the_other_reviewer(
    server: Server, page: Any, browser: Any, a_case: dict[str, str]
) -> None:
    sign_in(page, server, "reviewer")
    page.goto(f"{server.url}/console/review?external_ref={page_ref(server, a_case)}")
    page.get_by_role("button", name="Claim for 30 minutes").click()
    page.get_by_text("You are working on this pair until").wait_for()
    other = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    try:
        sign_in(other, server, "admin")
        other.goto(f"{server.url}/console/review?external_ref={page_ref(server, a_case)}")
        other.get_by_text("Being reviewed by test-reviewer until").wait_for()
        assert other.get_by_role("button", name="Confirm: same person").is_disabled()
        shot(other, "trust-claimed")
    finally:
        other.context.close()
    page.get_by_role("button", name="Release").click()
    page.get_by_role("button", name="Claim for 30 minutes").wait_for()


def test_why_this_pair_shows_every_photo_and_the_other_candidates(
    server: Server, page: Any, a_case: dict[str, str]
) -> None:
    sign_in(page, server, "reviewer")
    page.goto(f"{server.url}/console/persons/{a_case['missing']}")
    page.get_by_role("link", name="Why this pair?").click()
    why = page.get_by_role("region", name="Why this pair")
    why.locator(".evidence-face").nth(2).wait_for()
    missing, found = why.locator(".card").all()
    assert missing.locator(".evidence-face").count() == 2
    assert (
        "2010-06-01 · age 6" in missing.inner_text()
        and "2011-06-01 · age 7" in missing.inner_text()
    )
    assert found.locator(".evidence-face").count() == 1 and "2024-09-01" in found.inner_text()
    assert "other candidate" in missing.inner_text().lower()
    assert "at or above the match threshold" in page.locator(".pair .meaning").inner_text()
    shot(page, "trust-why-this-pair")
