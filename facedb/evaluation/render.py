"""The evaluation report as a readable table and as a PNG (DET curve, score histograms)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from facedb.evaluation.metrics import det_curve
from facedb.evaluation.sizes import SIZE_RANKS


def table(report: dict[str, Any]) -> str:
    """Return the report as aligned plain text; rates carry their 95% interval."""
    g, p, s = report["gallery"], report["probes"], report["scores"]
    lines = [
        f"dataset        {report['dataset']}  ({report['protocol']}, seed {report['seed']})",
        f"model          {report['model_version']}",
        f"age axis       {report.get('age_axis', 'not measured')}",
        f"gallery        {g['persons']} persons, {g['photos']} photos",
        f"probes         {p['mated']} mated, {p['nonmated']} non-mated "
        f"({p['nonmated_searches']} non-mated searches counting each mated search without "
        f"its mate), {len(report['skipped'])} photos skipped",
    ]
    for k, entry in report["ranks"].items():
        lines.append(f"rank-{k:<9} {_rate(entry)}")
    for far, point in report["tar_at_far"].items():
        note = "" if point["measurable"] else "  (too few non-mated pairs to measure)"
        lines.append(
            f"TAR @ FAR {far:<6} {point['value']:.4f}  threshold {point['threshold']:.4f}{note}"
        )
    for fpir, point in report["fnir_at_fpir"].items():
        note = "" if point["measurable"] else "  (too few non-mated searches to measure)"
        lines.append(
            f"FNIR @ FPIR {fpir:<5} {_rate(point)}  threshold {point['threshold']:.4f}{note}"
        )
    t = report["threshold"]
    lines.append(
        f"threshold      {t['value']:.4f} for FAR {t['far']} "
        f"(achieved {t['achieved_far']:.4f}, TAR {t['tar']:.4f})"
    )
    for name, c in report["configured"].items():
        lines.append(
            f"{name:<20} {c['threshold']:.3f}: TAR {c['tar']:.4f} FAR {c['far']:.5f} | "
            f"FNIR {c['fnir']:.4f} FPIR {c['fpir']:.4f} | "
            f"mates at or above {c['mates_at_or_above']:.4f}"
        )
    for bucket in report.get("by_age_gap", []):
        ranks = "  ".join(
            f"r{k} {_rate(bucket[f'rank{k}'])}" for k in (1, 5, 10, 20) if f"rank{k}" in bucket
        )
        lines.append(f"gap {bucket['years']:>5} y  n={bucket['searches']:<4} {ranks}")
    lines += _quality(report.get("quality"))
    lines += _sizes(report.get("by_size"))
    lines.append(f"score medians  mated {s['mated_median']}, non-mated {s['nonmated_median']}")
    for item in report["skipped"]:
        lines.append(f"skipped        {item['path']} ({item['stage']}: {item['reason']})")
    return "\n".join(lines)


def _sizes(by_size: dict[str, Any] | None) -> list[str]:
    """The register sizes measured and the fitted line's reach (``--sizes``)."""
    if not by_size:
        return []
    lines = []
    for row in by_size["sizes"]:
        rates = "  ".join(f"r{k} {_rate(row[f'rank{k}'])}" for k in SIZE_RANKS)
        lines.append(f"{row['distractors']:>7,} strangers ({row['persons']:,} persons)  {rates}")
    fit = by_size["fit"]
    if fit.get("lines"):
        at = f"at_{fit['extrapolated_to']}"
        reach = "  ".join(
            f"r{k} {line[at]:.3f} ({line['per_decade']:+.3f}/decade)"
            for k, line in ((k, fit["lines"][f"rank{k}"]) for k in SIZE_RANKS)
        )
        lines.append(
            f"at {fit['extrapolated_to']:,} persons (a straight line in log10 persons, measured "
            f"up to {fit['measured_up_to']:,}; a guess beyond): {reach}"
        )
    if by_size["left_out"]:
        left = ", ".join(str(s) for s in by_size["left_out"])
        lines.append(f"left out: {left} (more than the {by_size['distractors_enrolled']} enrolled)")
    return lines


def _quality(q: dict[str, Any] | None) -> list[str]:
    """The error-versus-discard lines: FNMR after setting aside the lowest-quality pairs."""
    if not q:
        return ["quality        not measured (faces stored before quality was)"]
    aside = ", ".join(
        f"{float(f):.0%} set aside {e['fnmr']:.3f} [{e['interval'][0]:.3f}, {e['interval'][1]:.3f}]"
        for f, e in q["set_aside"].items()
    )
    head = (f"quality        {q['pairs']} mated pairs, FNMR {q['fnmr']:.3f} at FMR {q['fmr']} "
            f"(threshold {q['threshold']:.3f}); {aside}")  # fmt: skip
    if q["lowest_10_ratio"] is None:
        return [head, "               no mated pair missed: no lowest-quality ratio to give"]
    low, high = q["lowest_10_interval"]
    interval = f"[{low:.2f}, {high:.2f}]" if low is not None else "[no interval]"
    return [
        head,
        f"               the lowest-quality 10% miss {q['lowest_10_ratio']:.2f}x as often "
        f"{interval} (random 1x, at most {q['ceiling']:.2f}x)",
    ]


def _rate(entry: dict[str, Any]) -> str:
    if entry.get("low") is None:
        return f"{entry['value']:.4f}"
    return f"{entry['value']:.4f} [{entry['low']:.3f}, {entry['high']:.3f}]"


def plot(report: dict[str, Any], path: Path) -> Path:
    """Write the DET curve and the mated / non-mated score histograms to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mated = np.asarray(report["scores"]["mated"], dtype=np.float64)
    nonmated = np.asarray(report["scores"]["nonmated"], dtype=np.float64)
    figure, (det, hist) = plt.subplots(1, 2, figsize=(11, 4.5))
    if len(mated) and len(nonmated):
        far, fnmr = det_curve(mated, nonmated)
        floor = 1.0 / max(len(nonmated), 1) / 2
        det.plot(np.maximum(far, floor), np.maximum(fnmr, floor), drawstyle="steps-post")
        det.set_xscale("log")
        det.set_yscale("log")
    det.set_xlabel("false match rate (FAR)")
    det.set_ylabel("false non-match rate (FNMR)")
    det.set_title("DET curve")
    det.grid(True, which="both", alpha=0.3)
    bins = np.linspace(-1, 1, 81)
    hist.hist(nonmated, bins=bins, alpha=0.6, label=f"non-mated ({len(nonmated)})", density=True)
    hist.hist(mated, bins=bins, alpha=0.6, label=f"mated ({len(mated)})", density=True)
    hist.axvline(report["threshold"]["value"], color="k", linestyle="--", label="threshold")
    hist.set_xlabel("cosine similarity")
    hist.set_title("score distributions")
    hist.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
