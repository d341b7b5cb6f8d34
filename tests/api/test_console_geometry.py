"""What the console draws, measured in a real Chromium: a score bar filled as far as its
score, the threshold mark at the threshold, a face box over the face the API found, and no
Content-Security-Policy violation of any directive (a style the policy refuses leaves a
bar empty and a box a dot in the corner, with every text assertion still passing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Server, shot, sign_in, unique
from tests.fakes import fake_photo

pytestmark = pytest.mark.slow  # make test-fast leaves it out

MEASURED = 111  # the identity this module enrolls (tests/fakes.py)

# Records every violation the page reports, whatever its directive.
WATCH_CSP = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));
"""

BARS = """
() => [...document.querySelectorAll('.score .bar')].map((bar) => {
  const whole = bar.getBoundingClientRect();
  const fill = bar.querySelector('.fill').getBoundingClientRect();
  const mark = bar.querySelector('.threshold').getBoundingClientRect();
  const score = parseFloat(bar.closest('.score').querySelector('.verdict').textContent
    .split('·').pop());
  return {score, fill: fill.width / whole.width, mark: (mark.left - whole.left) / whole.width};
})
"""

BOXES = """
() => [...document.querySelectorAll('.photo')].flatMap((frame) => {
  const img = frame.querySelector('img').getBoundingClientRect();
  return [...frame.querySelectorAll('.box')].map((box) => {
    const r = box.getBoundingClientRect();
    return {x: (r.left - img.left) / img.width, y: (r.top - img.top) / img.height,
            w: r.width / img.width, h: r.height / img.height};
  });
})
"""


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_search_draws_bars_to_their_scores_and_boxes_over_the_faces(
    server: Server, page: Any, tmp_path: Path
) -> None:
    with server.client("enroller") as client:
        person = client.post("/v1/persons", json={"name": unique("Measured")}).json()["id"]
        for variant in range(2):
            stored = client.post(
                f"/v1/persons/{person}/photos",
                files=[("files", (f"m{variant}.png", fake_photo(MEASURED, variant), "image/png"))],
            )
            assert stored.status_code == 201, stored.text
    probe = tmp_path / "probe.png"
    probe.write_bytes(fake_photo(MEASURED, 5, size=(320, 240)))
    with server.client("searcher") as client:
        # k=5 is the console form's default: the page shows as many candidates.
        answer = client.post("/v1/search", files={"file": ("p.png", probe.read_bytes())},
                             data={"k": "5"}).json()  # fmt: skip
        threshold = client.get("/v1/me").json()["match_threshold"]

    page.add_init_script(WATCH_CSP)
    sign_in(page, server, "searcher")
    page.goto(f"{server.url}/console/search")
    page.get_by_label("Photo", exact=True).set_input_files(str(probe))
    page.get_by_role("button", name="Search").click()
    page.locator(".candidate").first.wait_for()
    page.locator(".photo img").first.evaluate("img => img.decode()")
    shot(page, "search-measured")

    bars = page.evaluate(BARS)
    assert len(bars) == len(answer["faces"][0]["candidates"])
    for bar in bars:
        assert bar["fill"] == pytest.approx(max(0.0, min(1.0, bar["score"])), abs=0.02), bar
        assert bar["mark"] == pytest.approx(threshold, abs=0.02), bar
    (drawn,) = page.evaluate(BOXES)
    found = answer["faces"][0]["box"]
    expected = {"x": found["x"] / 320, "y": found["y"] / 240, "w": found["w"] / 320,
                "h": found["h"] / 240}  # fmt: skip
    for key, value in expected.items():
        assert drawn[key] == pytest.approx(value, abs=0.01), (drawn, expected)
    assert page.evaluate("window.__violations") == []

    page.goto(f"{server.url}/console/persons/{person}")  # the case page's boxes too
    page.locator(".gallery .box").nth(1).wait_for()
    assert all(b["w"] > 0.05 and b["h"] > 0.05 for b in page.evaluate(BOXES))
    assert page.evaluate("window.__violations") == []
