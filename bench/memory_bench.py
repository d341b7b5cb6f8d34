"""Peak memory of a real server under the inputs that once grew it without bound.

Run: .venv/bin/python -m bench.memory_bench [--write]

A `facedb serve` process (SQLite, keyless local mode) receives (1) one upload of ten
7000x7000 PNGs of zeros (143 KB each, 147 MB each once decoded) and (2) six concurrent
searches with that PNG. Its resident memory (VmRSS) and peak (VmHWM, reset before each case
through /proc/PID/clear_refs) are read from /proc. The same script runs the server twice:
with the default bounds, and with the bounds lifted (inference_threads=6, request pixel and
file caps raised) as the baseline that shows what the bounds buy.
"""

from __future__ import annotations

import io
import tempfile
import threading
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from bench.common import arguments, report, serve_process

SECTION = "## Memory: bounded decoding under hostile uploads"
UNBOUNDED = {
    "FACEDB_INFERENCE_THREADS": "6",
    "FACEDB_MAX_REQUEST_PIXELS": "1000000000",
    "FACEDB_MAX_UPLOAD_FILES": "1000",
}


def zeros_png(side: int = 7000) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((side, side, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def memory_mb(pid: int) -> tuple[float, float]:
    """Return (VmRSS, VmHWM) in MB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def measure(
    label: str, env: dict[str, str], png: bytes
) -> list[tuple[str, str, float, float, float]]:
    rows = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        serve_process(env, Path(tmp)) as (pid, url),
        httpx.Client(base_url=url, timeout=600) as client,
    ):
        idle, _ = memory_mb(pid)
        person = client.post("/v1/persons", json={"name": "bench"}).json()["id"]
        reset_peak(pid)
        files = [("files", (f"{i}.png", png, "image/png")) for i in range(10)]
        reply = client.post(f"/v1/persons/{person}/photos", files=files)
        after, peak = memory_mb(pid)
        rows.append((label, f"upload of 10 PNGs ({reply.status_code})", idle, peak, after))

        reset_peak(pid)
        statuses: list[int] = []

        def one() -> None:
            with httpx.Client(base_url=url, timeout=600) as c:
                files = {"file": ("z.png", png, "image/png")}
                statuses.append(c.post("/v1/search", files=files).status_code)

        threads = [threading.Thread(target=one) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        after, peak = memory_mb(pid)
        rows.append((label, f"6 concurrent searches ({sorted(set(statuses))})", idle, peak, after))
    return rows


def main() -> None:
    parser = arguments(__doc__)
    args = parser.parse_args()
    png = zeros_png()
    rows = measure("default bounds", {}, png) + measure("bounds lifted", UNBOUNDED, png)
    lines = [
        SECTION,
        "",
        f"Command: `.venv/bin/python -m bench.memory_bench --write`. PNG: 7000x7000 zeros, "
        f"{len(png) // 1024} KB. Memory of the server process in MB (VmRSS / VmHWM).",
        "",
        "| server | case | idle RSS | peak RSS | RSS after | peak over idle |",
        "|---|---|---|---|---|---|",
    ]
    for label, case, idle, peak, after in rows:
        lines.append(
            f"| {label} | {case} | {idle:.0f} | {peak:.0f} | {after:.0f} | {peak - idle:+.0f} |"
        )
    lines += [
        "",
        "Default bounds: `FACEDB_INFERENCE_THREADS=2` photos decoded at once in the process, "
        "`FACEDB_MAX_REQUEST_PIXELS=150000000` per upload (later files are refused from their "
        "header, never decoded), `FACEDB_MAX_UPLOAD_FILES=20`. Each photo is decoded straight "
        "into one BGR buffer and released before the next.",
    ]
    text = "\n".join(lines)
    report(text, SECTION, args.write)


if __name__ == "__main__":
    main()
