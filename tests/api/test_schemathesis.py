"""The OpenAPI contract, fuzzed: schemathesis against a real server over PostgreSQL (on the
fake analyzer: the contract is the routes', whichever networks answer).

Every check runs except ``positive_data_acceptance``: a request the schema allows may still
be refused by a rule no schema can state (a birth year that contradicts the birth date, a
"photo" of random bytes, a deployment's upload limits), and that refusal is correct.
Bounded in examples and time; fails on any server error or undocumented status.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.api.conftest import Server

pytestmark = [pytest.mark.postgres, pytest.mark.budget]
MAX_SECONDS = 60


@pytest.mark.parametrize("server", ["postgres"], indirect=True)
def test_schemathesis_finds_no_server_error_and_no_undocumented_status(
    server: Server, tmp_path: Path
) -> None:
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    if st is None:
        pytest.fail("schemathesis is not installed: run `make install` (it is a dev dependency)")
    command = [
        st, "run", f"{server.url}/openapi.json",
        "--checks", "all", "--exclude-checks", "positive_data_acceptance",
        "--header", f"Authorization: Bearer {server.keys['admin']}",
        "--max-examples", "8", "--max-time", str(MAX_SECONDS), "--seed", "1",
        "--request-timeout", "60", "--no-color",
    ]  # fmt: skip
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=MAX_SECONDS + 120, cwd=tmp_path
    )
    report = result.stdout[-6000:]
    assert "Test cases:" in result.stdout, report + result.stderr[-2000:]
    assert result.returncode == 0, report
