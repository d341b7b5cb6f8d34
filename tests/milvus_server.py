"""A real Milvus standalone server for the tests: PyPI's ``milvus`` package (the embedded
server binary, not Milvus Lite), in its own data folder on a free port; killed (-9) and
restarted on the same port and folder by the outage tests.

The package picks its ports by trying to bind them, without SO_REUSEADDR: right after a
kill the proxy's port still has connections in TIME_WAIT, so it would move to another
port. Here the ports are tried with SO_REUSEADDR (as the server itself binds them), and
the proxy's port is pinned; the others are handed out by the system (the package takes the
first free one from each default, so two servers starting at once collide). A port counts
as taken when any address holds it (the server listens on its host's address too).
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

from pymilvus import MilvusClient

try:
    from milvus import MilvusServer, MilvusServerConfig
except ImportError:  # the test dependency is missing: the server tier skips, saying so
    MilvusServer = MilvusServerConfig = None  # type: ignore[assignment,misc]

START_TIMEOUT_S = 120.0
SESSION_TTL_S = 10  # seconds; the package's default is 30


def available() -> bool:
    return MilvusServer is not None


class _Config(MilvusServerConfig):  # type: ignore[misc,valid-type]
    """The package's configuration, with the embedded etcd's peer port of this server's own
    (etcd's default, 2380, is not configurable there, so two servers on one host clash)."""

    def __init__(self, peer_port: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.peer_port = peer_port

    def write_config(self) -> None:
        super().write_config()
        configs = Path(self.base_data_dir) / "configs"
        client = f"http://localhost:{self.get('etcd_port')}"
        peer = f"http://localhost:{self.peer_port}"
        (configs / "etcd.yaml").write_text(
            f"name: facedb-test\ndata-dir: {self.get('etcd_data_dir')}\n"
            f"listen-client-urls: {client}\nadvertise-client-urls: {client}\n"
            f"listen-peer-urls: {peer}\ninitial-advertise-peer-urls: {peer}\n"
            f"initial-cluster: facedb-test={peer}\n"
        )
        milvus = configs / "milvus.yaml"
        text = milvus.read_text().replace(
            "\netcd:\n", f"\netcd:\n  config:\n    path: {configs / 'etcd.yaml'}\n", 1
        )
        # A server restarted after kill -9 waits for its dead sessions' etcd leases to run
        # out (30 s each by default: about a minute per restart); the tests' run out sooner.
        session = "    ttl: 30 # ttl value when session granting a lease to register service"
        assert session in text, "the milvus package's config template changed"
        milvus.write_text(text.replace(session, f"    ttl: {SESSION_TTL_S}", 1))

    def resolve_port(self, port_start: int) -> tuple[int, socket.socket]:
        """An unpinned port: one the system hands out, not the first free one from the
        default (two test workers starting servers at once would both take 2379)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        return int(sock.getsockname()[1]), sock

    def try_bind_port(self, port: int) -> socket.socket | None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))  # the server listens on every address
            sock.listen()
            return sock
        except OSError:
            sock.close()
            return None


class EmbeddedMilvus:
    """One Milvus server process: ``start``, ``kill`` (SIGKILL), ``start`` again."""

    def __init__(self, folder: Path, port: int, peer_port: int) -> None:
        self.folder = folder
        self.port = port
        self.peer_port = peer_port  # the embedded etcd's, kept across restarts
        self._server: MilvusServer | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        config = _Config(self.peer_port, proxy_port=self.port)
        server = MilvusServer(config, wait_for_started=False)
        server.set_base_dir(str(self.folder))
        server.start()
        self._server = server
        self._wait_ready()

    def kill(self) -> None:
        """SIGKILL: no flush, no goodbye, as a crash."""
        server = self._server
        if server is None or server.server_proc is None:
            return
        server.server_proc.kill()
        server.server_proc.wait(30)
        server.server_proc = None
        for handle in server.proc_fds.values():
            handle.close()
        server.proc_fds.clear()
        self._server = None

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def _wait_ready(self) -> None:
        """Wait until a client can connect and list collections."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                client = MilvusClient(uri=self.uri, timeout=2)
                client.list_collections(timeout=2)
                client.close()
                return
            except Exception:
                proc = self._server.server_proc if self._server else None
                if proc is None or proc.poll() is not None:
                    raise RuntimeError(
                        f"the Milvus server exited; see {self.folder}/logs"
                    ) from None
                if time.monotonic() > deadline:
                    raise TimeoutError(f"Milvus did not start on {self.uri}") from None
                time.sleep(0.5)
