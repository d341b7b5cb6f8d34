"""Start-up time and memory of a real server, and its peak under the inputs that once grew it
without bound, on the ONNX Runtime path and the TensorFlow path it replaced, in the same run.

Run: .venv/bin/python -m bench.memory_bench [--write]

A server process (SQLite, keyless local mode) is started and timed to its first answer
(models loaded); its RSS then is "cold". It is warmed with the searches a working server
has seen (each celebrity val photo, as it is and scaled to 2000 px wide like a phone photo)
and its RSS then is "idle", the level it should return to. Then it receives (1) one upload of ten 7000x7000 PNGs of zeros (143 KB each,
147 MB each once decoded) and (2) six concurrent searches with that PNG. Its resident memory
(VmRSS) and peak (VmHWM, reset before each case through /proc/PID/clear_refs) are read from
/proc, and after each case RSS is polled each second for a minute until it is back within
32 MiB of idle. Servers: `facedb serve` with the default bounds; the TensorFlow path
(`bench.tensorflow_path`) with the same bounds; `facedb serve` with the bounds lifted
(inference_threads=6, request pixel and file caps raised), which shows what the bounds buy.
"""

from __future__ import annotations

import io
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from bench.common import arguments, report, table
from bench.serving import FACEDB_SERVE, TENSORFLOW_SERVE, serve_process
from facedb.config import Settings
from facedb.models.sample_data import celebrity_dataset, photos

SECTION = "## Memory: start-up and bounded decoding under hostile uploads"
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


@dataclass(frozen=True)
class Case:
    server: str
    start_s: float
    case: str
    cold: float
    idle: float
    peak: float
    after: float
    back_s: float | None  # seconds until RSS was within 32 MiB of idle; None: not in 60 s

    def row(self) -> list[str]:
        back = f"{self.back_s:.0f}" if self.back_s is not None else "> 60"
        return [self.server, f"{self.start_s:.1f}", self.case, f"{self.cold:.0f}", f"{self.idle:.0f}",
                f"{self.peak:.0f}", f"{self.peak - self.idle:+.0f}", f"{self.after:.0f}",
                back]  # fmt: skip


def back_to_idle(pid: int, idle: float, within: float = 32, limit: float = 60) -> float | None:
    """Poll RSS each second; return the seconds until it is within ``within`` MiB of idle."""
    start = time.perf_counter()
    while time.perf_counter() - start <= limit:
        if memory_mb(pid)[0] <= idle + within:
            return time.perf_counter() - start
        time.sleep(1)
    return None


def warm_photos() -> list[bytes]:
    """The celebrity val photos, each as it is and scaled to 2000 px wide (JPEG)."""
    folder = celebrity_dataset(Settings().cache_dir) / "val"
    out = []
    for path in sorted(p for files in photos(folder).values() for p in files):
        out.append(path.read_bytes())
        with Image.open(path) as image:
            rgb = image.convert("RGB")
            big = rgb.resize((2000, round(2000 * rgb.height / rgb.width)))
        buffer = io.BytesIO()
        big.save(buffer, format="JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def measure(
    label: str, env: dict[str, str], server: list[str], png: bytes, warm: list[bytes]
) -> list[Case]:
    rows = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        serve_process(env, Path(tmp), server) as served,
        httpx.Client(base_url=served.url, timeout=600) as client,
    ):
        pid = served.pid
        time.sleep(2)  # let start-up settle
        cold, _ = memory_mb(pid)
        for photo in warm:
            client.post("/v1/search", files={"file": ("w.jpg", photo, "image/jpeg")})
        time.sleep(2)
        idle, _ = memory_mb(pid)
        person = client.post("/v1/persons", json={"name": "bench"}).json()["id"]

        def case(name: str, load: Callable[[], str]) -> None:
            reset_peak(pid)
            status = load()
            after, peak = memory_mb(pid)
            rows.append(Case(label, served.start_s, f"{name} ({status})", cold, idle, peak, after,
                             back_to_idle(pid, idle)))  # fmt: skip

        def upload() -> str:
            files = [("files", (f"{i}.png", png, "image/png")) for i in range(10)]
            return str(client.post(f"/v1/persons/{person}/photos", files=files).status_code)

        def searches() -> str:
            statuses: list[int] = []

            def one() -> None:
                with httpx.Client(base_url=served.url, timeout=600) as c:
                    files = {"file": ("z.png", png, "image/png")}
                    statuses.append(c.post("/v1/search", files=files).status_code)

            threads = [threading.Thread(target=one) for _ in range(6)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return str(sorted(set(statuses)))

        case("upload of 10 PNGs", upload)
        case("6 concurrent searches", searches)
    return rows


def main() -> None:
    parser = arguments(__doc__)
    args = parser.parse_args()
    png, warm = zeros_png(), warm_photos()
    rows = (
        measure("ONNX Runtime, default bounds", {}, FACEDB_SERVE, png, warm)
        + measure("TensorFlow, default bounds", {}, TENSORFLOW_SERVE, png, warm)
        + measure("ONNX Runtime, bounds lifted", UNBOUNDED, FACEDB_SERVE, png, warm)
    )
    lines = [
        SECTION,
        "",
        "Command: `.venv/bin/python -m bench.memory_bench --write` (2-core CPU). PNG: 7000x7000 "
        f"zeros, {len(png) // 1024} KB. Memory of the server process in MiB (VmRSS / VmHWM); "
        "start-up: seconds from launch to the first answer, models loaded.",
        "",
        *table(
            [
                "server",
                "start-up s",
                "case",
                "cold RSS",
                "idle RSS (warmed)",
                "peak RSS",
                "peak over idle",
                "RSS after",
                "s back to idle",
            ],
            [r.row() for r in rows],
        ),
        "",
        "Default bounds: `FACEDB_INFERENCE_THREADS=2` photos decoded at once in the process, "
        "`FACEDB_MAX_REQUEST_PIXELS=150000000` per upload (later files are refused from their "
        "header, never decoded), `FACEDB_MAX_UPLOAD_FILES=20`. Each photo is decoded straight "
        "into one BGR buffer and released before the next. The detector's ONNX sessions "
        "allocate per call (no memory arena: its image pyramid changes shape with every photo, "
        "and an arena would grow to the largest photo seen and keep it: 755 MiB warmed idle "
        "with it, measured, against 430 without, for 3 ms more per photo). Back to idle: RSS "
        "within 32 MiB of idle, polled each second for a minute.",
    ]
    text = "\n".join(lines)
    report(text, SECTION, args.write)


if __name__ == "__main__":
    main()
