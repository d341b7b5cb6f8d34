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

import argparse
import io
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from bench.pipeline_bench import write_section
from tests.api.conftest import free_port

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


def serve(env: dict[str, str], tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    full = {**os.environ, "FACEDB_DATA_DIR": str(tmp), "FACEDB_PORT": str(port), **env}
    subprocess.run([sys.executable, "-m", "facedb.cli", "db", "upgrade"], env=full, check=True,
                   capture_output=True)  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "facedb.cli", "serve"],
        env=full,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.kill()
    raise RuntimeError("the server did not start")


def measure(
    label: str, env: dict[str, str], png: bytes
) -> list[tuple[str, str, float, float, float]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        process, url = serve(env, Path(tmp))
        try:
            with httpx.Client(base_url=url, timeout=600) as client:
                idle, _ = memory_mb(process.pid)
                person = client.post("/v1/persons", json={"name": "bench"}).json()["id"]
                reset_peak(process.pid)
                files = [("files", (f"{i}.png", png, "image/png")) for i in range(10)]
                reply = client.post(f"/v1/persons/{person}/photos", files=files)
                after, peak = memory_mb(process.pid)
                rows.append((label, f"upload of 10 PNGs ({reply.status_code})", idle, peak, after))

                reset_peak(process.pid)
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
                after, peak = memory_mb(process.pid)
                rows.append(
                    (label, f"6 concurrent searches ({sorted(set(statuses))})", idle, peak, after)
                )
        finally:
            process.terminate()
            process.wait(30)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
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
    print(text)
    if args.write:
        write_section(text, SECTION)


if __name__ == "__main__":
    main()
