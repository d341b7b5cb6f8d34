"""HTTP search latency per recipe: what the fused recipes cost a caller, against FaceNet alone.

Run: .venv/bin/python -m bench.recipe_latency [--faces N] [--recipes NAME ...] [--write]

One real uvicorn server per recipe (in this process, SQLite, the 5-celebrity train photos
enrolled through the pipeline), each with its own analyzer built for its recipe
(FACEDB_RECIPE). The val photos are searched over HTTP (POST /v1/search) on every server in
turn, photo by photo, so load on the machine falls alike on each; two searches per server
warm it first. ``--faces N``: each server's index also holds N synthetic face-like vectors
of its recipe's length (inserted straight into its database, in no register, so the
background cross-match has nothing to do), as a register of that size would once matched. The age axis is off (FACEDB_AGE_AXIS=off): its first learning, a pass over every
stored embedding, would otherwise run during the searches; this measures a search in the
steady state. Reported: p50 and p90 of the round trip, and the ratio of p50s to FaceNet's.
"""

from __future__ import annotations

import tempfile
from contextlib import ExitStack
from pathlib import Path

import httpx
import numpy as np

from bench.common import arguments, face_like, report, table
from bench.serving import enroll_all, insert_synthetic, post_search, serving, sqlite_services
from facedb.config import Settings
from facedb.domain import AxisMode
from facedb.models.sample_data import celebrity_dataset, photos
from facedb.pipeline.analyzer import FaceAnalyzer

SECTION = "## Search latency per recipe"
RECIPES = ("facenet", "facenet+dlib", "facenet+dlib+sface")
ROUNDS = 2  # each val photo searched this many times per server


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--faces", type=int, default=0, help="synthetic faces in each index")
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), help="facenet first")
    args = parser.parse_args()
    recipes = args.recipes
    base = Settings()
    data = celebrity_dataset(base.cache_dir)
    train, val = photos(data / "train"), photos(data / "val")
    probes = [p for files in val.values() for p in files] * ROUNDS
    times: dict[str, list[float]] = {name: [] for name in recipes}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        clients = {}
        for name in recipes:
            analyzer = FaceAnalyzer(base.model_copy(update={"recipe": name}))
            services = sqlite_services(Path(tmp) / name.replace("+", "-"), analyzer,
                                       model_dir=base.models_path, recipe=name,
                                       age_axis=AxisMode.OFF)  # fmt: skip
            stack.callback(services.close)
            enroll_all(services, train, 8)
            if args.faces:
                # status "other": in no register, so no cross-match runs during the searches
                vectors = face_like(args.faces, 3, services.index.dimension)
                insert_synthetic(services, vectors, status="other")
            url = stack.enter_context(serving(services))
            clients[name] = stack.enter_context(httpx.Client(base_url=url, timeout=120))
            for path in probes[:2]:
                post_search(clients[name], path)
        for path in probes:
            for name in recipes:
                times[name].append(post_search(clients[name], path))
    base_p50 = float(np.median(times[recipes[0]]))
    rows = [[name, f"{1000 * np.median(t):.0f}", f"{1000 * np.percentile(t, 90):.0f}",
             f"{np.median(t) / base_p50:.2f}x"] for name, t in times.items()]  # fmt: skip
    section = SECTION + (f" at {args.faces:,} faces" if args.faces else "")
    text = "\n".join([
        section, "",
        "`python -m bench.recipe_latency` (see its docstring): one server per recipe, "
        f"{len(probes)} searches each of the celebrity val photos, the servers taken in turn "
        f"photo by photo; {args.faces:,} synthetic faces in each index beside the enrolled "
        "celebrities; 2-core CPU, SQLite, in-process uvicorn.", "",
        *table(["recipe", "search p50 ms", "p90 ms", f"p50 vs {recipes[0]}"], rows),
    ])  # fmt: skip
    report(text, section, args.write)


if __name__ == "__main__":
    main()
