"""How many faces the age axis needs: learned from the first N faces of a register, judged
on the whole; what the service's relearning rule (FACEDB_AGE_AXIS_RELEARN_GROWTH) rests on.

Run: .venv/bin/python -m bench.axis_growth [--devsets DIR] [--lag DIR] [--strangers DIR]
     [--most N] [--cache DIR] [--write]

The register of ``bench.register_scale`` (lag-dev's childhood photos among the first N
UTKFace strangers; its cached embeddings), the served recipe's weights. The axis is learned
as the service learns it (``AxisLearner``, ``AxisGuard``) from the first 200, 500, … of the
register's faces in one fixed shuffle (as a register grows), then removed from every face
and search; lag-dev's adult photos are searched among all of the register. Reported: ranks
and each network's |cosine| between that axis and the one learned from all the faces.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.common import arguments, report, table
from bench.datasets import STRANGERS, add_devsets
from bench.embeddings import Embedded
from bench.registers import NETWORKS, cells, cosines_of, ranks, register_parts
from facedb.errors import AgeAxisRefused
from facedb.pipeline.age_axis import AxisGuard, AxisLearner, remove_axis
from facedb.pipeline.recipes import DEFAULT
from facedb.pipeline.vectors import join_parts
from facedb.records import AgeAxis

SECTION = "## Age axis: how many faces it needs"
STEPS = (200, 500, 1000, 2000, 4000)


def main() -> None:
    parser = arguments(__doc__)
    add_devsets(parser, lag=True, cache=True)
    parser.add_argument("--strangers", type=Path, default=STRANGERS)
    parser.add_argument("--most", type=int, default=5000, help="strangers in the register")
    args = parser.parse_args()
    lag, paths, parts = register_parts(args, None, args.most)
    weights = [p.weight for p in DEFAULT.parts]
    register = join_parts([np.concatenate([getattr(parts[k], n) for k in ("young", "strangers")])
                           for n in NETWORKS], [1 / 3] * 3)  # fmt: skip
    ages = np.concatenate([parts["young"].age, parts["strangers"].age]).astype(np.float64)
    known = np.where(~np.isnan(register[:, 0]))[0]
    shuffled = known[np.random.default_rng(1).permutation(len(known))]
    yo, ao = np.array(lag.young_owner), np.array(lag.adult_owner)

    def learned(n: int) -> AgeAxis:
        learner = AxisLearner(DEFAULT)
        learner.add(register[shuffled[:n]], ages[shuffled[:n]])
        return AxisGuard().keep(learner.learned())

    whole = learned(len(shuffled))
    rows = []
    for n in [s for s in STEPS if s < len(shuffled)] + [len(shuffled)]:
        try:
            axis = learned(n)
        except AgeAxisRefused as exc:
            rows.append([f"{n:,}", "refused: " + exc.message.split(":")[0], "", "", ""])
            continue
        out = {}
        for key, e in parts.items():
            f, d, s = remove_axis(axis, [e.facenet, e.dlib, e.sface])
            out[key] = Embedded(f, d, e.age, e.dlib_mirror, s)
        c = cosines_of(out["adult"], out["young"], out["strangers"])
        r = ranks(*c.fused(tuple(weights)), yo, ao, len(paths))  # type: ignore[arg-type]
        same = "/".join(
            f"{abs(float(a @ b)):.2f}"
            for a, b in zip(axis.directions, whole.directions, strict=True)
        )
        rows.append([f"{n:,}", same, *cells(r)])
    text = "\n".join([SECTION, "", f"`python -m bench.axis_growth` (see its docstring): {len(shuffled):,} "
                      f"register faces (lag-dev's childhood photos and {len(paths):,} strangers), the "
                      f"default recipe's weights {'/'.join(f'{w:.2f}' for w in weights)}.", "",
                      *table(["learned from faces", "|cos| with the whole's axis (FaceNet/dlib/SFace)",
                              "rank-1", "rank-10", "rank-50"], rows)])  # fmt: skip
    report(text + "\n", SECTION, args.write)


if __name__ == "__main__":
    main()
