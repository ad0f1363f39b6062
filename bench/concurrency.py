"""Claims/s of 1 client against N concurrent clients, and the service's start-up time.

The service runs in its own process (``claimsieve serve --no-auth``, built-in
corpus). The requests are 150-word responses made of the true statements of
``bench/contrast/python_reference.jsonl`` (13 each, drawn with a fixed seed),
so that no two requests are the same text. Each phase starts on a freshly
started service (so neither inherits the other's remembered claims or
evidence), is warmed with a few other responses, and then sends the same list
of requests: one client one after another, then ``--clients`` at once. Prints
and saves claims/s, p50/p95/p99 latency for each, their ratio, and the seconds
from start to ready for the first start and for the warm restart.

    python bench/concurrency.py [--clients 8] [--requests 48]
        [--out bench/results/concurrency.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import start  # noqa: E402

STATEMENTS = ROOT / "bench" / "contrast" / "python_reference.jsonl"
PER_RESPONSE = 13


def responses(count: int, seed: int) -> list[str]:
    """``count`` responses of PER_RESPONSE true statements each, none the same."""
    rows = [json.loads(line) for line in STATEMENTS.read_text().splitlines() if line.strip()]
    true = [r["claim"] for r in rows if r["label"] == "SUPPORTED"]
    draw = random.Random(seed)
    return [" ".join(draw.sample(true, PER_RESPONSE)) for _ in range(count)]


def _post(url: str, text: str) -> tuple[float, int]:
    import httpx

    began = time.perf_counter()
    answer = httpx.post(f"{url}/v1/checks", json={"text": text}, timeout=300)
    answer.raise_for_status()
    return time.perf_counter() - began, len(answer.json()["claims"])


def phase(url: str, texts: list[str], clients: int) -> dict[str, Any]:
    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        done = list(pool.map(lambda t: _post(url, t), texts))
    wall = time.perf_counter() - began
    seconds = sorted(s for s, _ in done)
    cuts = statistics.quantiles(seconds, n=100)
    claims = sum(n for _, n in done)
    return {
        "clients": clients,
        "requests": len(texts),
        "claims": claims,
        "wall_s": round(wall, 2),
        "claims_per_s": round(claims / wall, 2),
        "p50_ms": round(statistics.median(seconds) * 1000, 1),
        "p95_ms": round(cuts[94] * 1000, 1),
        "p99_ms": round(cuts[98] * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/concurrency.json")
    args = parser.parse_args()

    from service.settings import get_settings

    data = get_settings().data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True)
    texts, warm = responses(args.requests, 1), responses(args.warmup, 2)
    log = Path(tempfile.mkdtemp()) / "service.log"
    env = {"CLAIMSIEVE_JOB_WORKERS": "0", "CLAIMSIEVE_MAX_INFLIGHT": str(max(args.clients, 8))}
    report: dict[str, Any] = {"machine": f"{os.cpu_count()} cores", "ready_s": []}
    phases = []
    for clients in (1, args.clients):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        began = time.monotonic()
        server = start(data, port, log, env, "--no-auth")
        report["ready_s"].append(round(time.monotonic() - began, 1))
        url = f"http://127.0.0.1:{port}"
        try:
            for text in warm:
                _post(url, text)
            phases.append(phase(url, texts, clients))
            print(json.dumps(phases[-1]), flush=True)
        finally:
            server.terminate()
            server.wait(timeout=60)
    one, many = phases
    report |= {
        "phases": phases,
        "claims_per_s_ratio": round(many["claims_per_s"] / one["claims_per_s"], 2),
        "note": "ready_s: the first start, then the restart (models and corpus on disk)",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(f"saved to {args.out}")


if __name__ == "__main__":
    main()
