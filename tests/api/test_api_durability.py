"""Durability: every feedback write the server acknowledged survives a SIGKILL of the server."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import ADMIN_KEY, AGENT, AGENT_KEY

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``triage serve`` in a subprocess on a free localhost port."""

    def __init__(self, bundle: Path, db: Path, log: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "TRIAGE_DATABASE_URL": f"sqlite:///{db}",
               "TRIAGE_API_KEYS": f"{ADMIN_KEY}:admin,{AGENT_KEY}:agent",
               "TRIAGE_RELOAD_POLL_SECONDS": "0", "TRIAGE_LOG_LEVEL": "warning"}
        self.log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "training.cli", "serve", "--model", str(bundle),
             "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "server exited; see its log"
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"server not ready after {timeout}s")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.log.close()


@pytest.fixture
def servers(bundle_dir: Path, tmp_path: Path) -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.kill()


@pytest.mark.slow
def test_acknowledged_feedback_survives_sigkill(servers: list[Server], bundle_dir: Path,
                                                tmp_path: Path) -> None:
    db, log = tmp_path / "triage.db", tmp_path / "server.log"
    server = Server(bundle_dir, db, log)
    servers.append(server)
    server.wait_ready()
    with httpx.Client(base_url=server.url, headers=AGENT, timeout=10) as client:
        decision = client.post("/v1/analyze", json={"text": "I was charged twice",
                                                    "ticket_id": "D-1"}).json()

    acknowledged: dict[int, str] = {}  # feedback id -> agent_id marker
    errors: list[str] = []

    def stream_writes() -> None:
        with httpx.Client(base_url=server.url, headers=AGENT, timeout=10) as client:
            for i in range(5000):  # bounded; the server is killed long before
                marker = f"writer-{i}"
                try:
                    r = client.post("/v1/feedback", json={
                        "request_id": decision["request_id"], "urgency": "high",
                        "agent_id": marker})
                except httpx.TransportError:
                    return  # the server is gone
                if r.status_code == 201:
                    acknowledged[r.json()["id"]] = marker
                else:
                    errors.append(r.text)

    writer = threading.Thread(target=stream_writes)
    writer.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 100 and time.monotonic() < deadline and writer.is_alive():
        time.sleep(0.005)
    server.kill()  # SIGKILL mid-stream: no shutdown handler runs
    writer.join(30)
    assert not errors
    assert len(acknowledged) >= 100, log.read_text()

    restarted = Server(bundle_dir, db, log)
    servers.append(restarted)
    restarted.wait_ready()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = dict(conn.execute("SELECT id, agent_id FROM feedback").fetchall())
    missing = {fid: m for fid, m in acknowledged.items() if stored.get(fid) != m}
    assert not missing, f"{len(missing)} acknowledged writes lost"
    with httpx.Client(base_url=restarted.url, headers=AGENT, timeout=10) as client:
        r = client.post("/v1/feedback", json={"request_id": decision["request_id"],
                                              "urgency": "low"})
        assert r.status_code == 201 and r.json()["id"] > max(acknowledged)
