"""`facedb eval --sizes`: registers of several sizes from one enrolment of the distractors.

On the fake pipeline (the evaluation's counting, not the networks, is under test): a
childhood/adult layout of 12 persons, and 30 distractors of whom some are look-alikes (the
same marker identity as a person's), so ranks fall as the register grows. The largest size
must rank exactly as the whole enrolment does, the empty one as a run without distractors."""

from __future__ import annotations

from pathlib import Path

import pytest

from facedb.evaluation import protocol
from facedb.evaluation.sizes import Above
from tests.factories import make_settings
from tests.fakes import FakeAnalyzer, fake_photo

PERSONS = range(12)


def layout(root: Path) -> tuple[Path, Path]:
    people, distractors = root / "people", root / "distractors"
    for who in PERSONS:
        (people / f"p{who}" / "y").mkdir(parents=True)
        (people / f"p{who}" / "y" / "young.png").write_bytes(fake_photo(10 + who, 0, age=8))
        for n in (1, 2):
            (people / f"p{who}" / f"adult{n}.png").write_bytes(fake_photo(10 + who, n, age=40))
    distractors.mkdir()
    for n in range(30):  # every third one shares a person's marker: a look-alike
        who = 10 + n % 12 if n % 3 == 0 else 100 + n
        (distractors / f"d{n:02}.png").write_bytes(fake_photo(who, 7 + n))
    return people, distractors


def test_each_size_ranks_within_its_subset_and_the_ends_agree_with_whole_runs(
    tmp_path: Path,
) -> None:
    people, distractors = layout(tmp_path / "set")
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'unused.sqlite3'}")
    quiet = {"young": "y", "progress": False, "bootstrap": 50}
    config = protocol.EvalConfig(distractors=distractors, sizes=(0, 10, 30, 99), **quiet)
    report = protocol.run(people, settings, config, FakeAnalyzer(settings))
    sizes = report["by_size"]
    assert [r["distractors"] for r in sizes["sizes"]] == [0, 10, 30]
    assert sizes["left_out"] == [99] and sizes["distractors_enrolled"] == 30
    assert [r["persons"] for r in sizes["sizes"]] == [12, 22, 42]
    rank1 = [r["rank1"]["value"] for r in sizes["sizes"]]
    assert rank1 == sorted(rank1, reverse=True) and rank1[0] > rank1[-1]  # falls as it grows
    for k in (1, 10, 20):  # the whole enrolment is the largest size
        assert sizes["sizes"][-1][f"rank{k}"]["value"] == report["ranks"][str(k)]["value"]
    alone = protocol.run(people, settings, protocol.EvalConfig(**quiet), FakeAnalyzer(settings))
    assert sizes["sizes"][0]["rank1"]["value"] == alone["ranks"]["1"]["value"]
    line = sizes["fit"]["lines"]["rank1"]
    assert line["per_decade"] < 0 and 0.0 <= line["at_100000"] <= rank1[-1]
    assert "guess" in sizes["fit"]["trust"]


def test_a_search_whose_photo_showed_no_face_misses_at_every_size() -> None:
    missed, found = Above(0, ()), Above(2, (0, 5, 9))
    assert [missed.rank_within(n) for n in (0, 10)] == [0, 0]
    assert [found.rank_within(n) for n in (0, 1, 6, 10)] == [2, 3, 4, 5]


def test_the_command_refuses_sizes_without_distractors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from facedb.cli import main

    assert main(["eval", str(tmp_path), "--young", "y", "--sizes", "100"]) != 0
    assert "--sizes counts distractors" in capsys.readouterr().err
