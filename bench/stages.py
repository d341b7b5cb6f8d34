"""Where a search's time goes inside the service: each stage (decode, detect, age/gender,
chips, networks, index) timed by wrapping the service's own objects while searches run."""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Callable, Iterator
from functools import wraps
from types import ModuleType
from typing import Any

from api import schemas
from bench.common import Stopwatch
from facedb.pipeline import base as pipeline_base
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.wiring import Services


class StageTimer:
    """Times one in-process server's search by stage, wrapping its own objects in place."""

    def __init__(self, services: Services) -> None:
        self.clock = Stopwatch()
        analyzer = services.analyzer
        assert isinstance(analyzer, FaceAnalyzer)
        self.patches: list[tuple[Any, str, Any]] = [
            (pipeline_base, "decode_image", "decode"),  # locate decodes there
            (analyzer.detector, "detect", "detect"),
            (analyzer.attributes, "estimate", "age/gender"),
            (analyzer, "locate", "locate"),
            (analyzer.embedder, "embed", "embed"),
            (services.index, "catch_up", "database: change log"),
            (services.index, "top_persons", "top_persons"),
            (services.search, "_in_context", "database: faces and persons"),
            (services.search, "search", "service"),
            (schemas.SearchOut, "of", "serialisation"),
        ]

    def _wrap(self, call: Callable[..., Any], stage: str) -> Callable[..., Any]:
        @wraps(call)
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.clock(stage):
                return call(*args, **kwargs)

        return timed

    @contextlib.contextmanager
    def installed(self) -> Iterator[Stopwatch]:
        originals = [(owner, name, owner.__dict__.get(name)) for owner, name, _ in self.patches]
        for owner, name, stage in self.patches:
            _set(owner, name, self._wrap(getattr(owner, name), stage))
        try:
            yield self.clock
        finally:
            for owner, name, original in originals:
                if original is None:
                    object.__delattr__(owner, name)  # an instance's: the class's shows again
                else:
                    _set(owner, name, original)


def _set(owner: Any, name: str, value: Any) -> None:
    """Set an attribute on a module, a class or an instance (frozen dataclasses included)."""
    if isinstance(owner, type | ModuleType):
        setattr(owner, name, value)
    else:
        object.__setattr__(owner, name, value)


def stage_rows(clock: Stopwatch, windows: list[tuple[float, float]]) -> list[list[str]]:
    """Median ms of each stage per search: each search's stages are its own timings (those
    that started inside its request), the remainders worked out per search, then the median
    of each over the searches (medians do not add up; each is a real search's share)."""
    per_search: dict[str, list[float]] = {}
    for begin, end in windows:
        m = clock.within(begin, end)
        top, context = m["top_persons"], m["database: faces and persons"]
        http = 1000 * (end - begin)
        stages = {
            "decode": m["decode"],
            "detect (MTCNN)": m["detect"],
            "age/gender": m["age/gender"],
            "align (chip, mirror, thumbnail)": m["locate"] - m["decode"] - m["detect"]
            - m["age/gender"],
            "embed (FaceNet, chip + mirror)": m["embed"],
            "index (exact search, person grouping)": top - context,
            "database (change log, faces and persons)": m["database: change log"] + context,
            "audit and rules": m["service"] - m["locate"] - m["embed"] - top
            - m["database: change log"],
            "serialisation (response model)": m["serialisation"],
            "HTTP (multipart, JSON, transport)": http - m["service"] - m["serialisation"],
            "whole request (client)": http,
        }  # fmt: skip
        for name, ms in stages.items():
            per_search.setdefault(name, []).append(ms)
    medians = {name: statistics.median(ms) for name, ms in per_search.items()}
    whole = medians["whole request (client)"]
    return [[name, f"{ms:.1f}", f"{100 * ms / whole:.0f}%"] for name, ms in medians.items()]
