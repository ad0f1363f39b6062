"""Load on loopback: 20 and 50 clients of mixed traffic, then a flood of checks.

Starts ``claimsieve serve`` (authentication on, the built-in corpus in the data folder
of the settings, built on first use) with a per-key rate limit, gives every client keys of
its own, and for ``--seconds`` lets each client loop over mixed traffic: checks of short
responses (stored), review-queue reads, reviews of the claims it was handed, claim reads.
Prints and saves, per number of clients: requests/s, p50/p95/p99 per kind of request,
the answers by status, and errors (anything but 2xx, the deliberate 409/429/503).
Then ``--flood`` clients send nothing but checks, to show the service shedding the excess
with 503 + Retry-After at once instead of queueing it.

    python bench/load.py [--clients 20 50] [--seconds 60] [--flood 50] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TEXTS = [
    "Python lists are mutable. Tuples are immutable sequences.",
    "The break statement terminates the nearest enclosing loop.",
    "Python lists are immutable. The for statement iterates over a sequence.",
    "The len function returns the number of items of an object.",
    "Dictionaries map keys to values. The pass statement does nothing.",
]
DELIBERATE = {409, 429, 503}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def client(
    url: str, keys: dict[str, str], stop: float, log: list[tuple[str, int, float]], flood: bool
) -> None:
    import httpx

    rng = random.Random(keys["trainer"])
    handed: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        while time.monotonic() < stop:
            pick = "check" if flood else rng.choices(
                ["check", "queue", "review", "claim"], weights=[25, 35, 25, 15]
            )[0]  # fmt: skip
            if pick in ("review", "claim") and not handed:
                pick = "queue"
            pipeline = {"Authorization": f"Bearer {keys['pipeline']}"}
            trainer = {"Authorization": f"Bearer {keys['trainer']}"}
            began = time.monotonic()
            try:
                if pick == "check":
                    body = {"text": rng.choice(TEXTS), "metadata": {"load": "1"}}
                    answer = await http.post("/v1/checks", json=body, headers=pipeline)
                elif pick == "queue":
                    answer = await http.get("/v1/review-queue?limit=3", headers=trainer)
                    if answer.status_code == 200:
                        handed = [i["claim"] for i in answer.json()["items"]]
                elif pick == "review":
                    claim = handed.pop()
                    body = {"action": "confirm", "expected_version": claim["version"]}
                    if claim["verdict"] is None:
                        body = {**body, "action": "correct", "label": "NOT_ENOUGH_INFO"}
                    answer = await http.post(
                        f"/v1/claims/{claim['id']}/reviews", json=body, headers=trainer
                    )
                else:
                    claim = rng.choice(handed)
                    answer = await http.get(f"/v1/claims/{claim['id']}", headers=trainer)
                status = answer.status_code
                if status in (429, 503):
                    await asyncio.sleep(float(answer.headers.get("retry-after", "1")) / 10)
            except httpx.HTTPError:
                status = 0
            log.append((pick, status, time.monotonic() - began))


def summary(log: list[tuple[str, int, float]], seconds: float) -> dict[str, Any]:
    by_kind: dict[str, list[float]] = defaultdict(list)
    for kind, status, took in log:
        if 200 <= status < 300:
            by_kind[kind].append(took * 1000)
    every = [t * 1000 for _, s, t in log if 200 <= s < 300]
    statuses = Counter(s for _, s, _ in log)
    errors = sum(n for s, n in statuses.items() if not (200 <= s < 300) and s not in DELIBERATE)
    refused = [t * 1000 for _, s, t in log if s in (429, 503)]
    return {
        "requests": len(log),
        "rps": round(len(log) / seconds, 1),
        "ok_rps": round(len(every) / seconds, 1),
        "p50_ms": round(percentile(every, 0.50), 1),
        "p95_ms": round(percentile(every, 0.95), 1),
        "p99_ms": round(percentile(every, 0.99), 1),
        "by_kind_ms": {
            kind: {
                "n": len(times),
                "p50": round(percentile(times, 0.5), 1),
                "p95": round(percentile(times, 0.95), 1),
                "p99": round(percentile(times, 0.99), 1),
            }
            for kind, times in sorted(by_kind.items())
        },
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": errors,
        "refusals_p50_ms": round(statistics.median(refused), 1) if refused else None,
    }


async def run(url: str, keys: list[dict[str, str]], seconds: float, flood: bool) -> dict[str, Any]:
    log: list[tuple[str, int, float]] = []
    stop = time.monotonic() + seconds
    await asyncio.gather(*(client(url, k, stop, log, flood) for k in keys))
    return summary(log, seconds)


def start(
    data: Path, port: int, log: Path, env: dict[str, str], *options: str
) -> subprocess.Popen[bytes]:
    """``claimsieve serve`` on ``port`` (with ``options``), ready (its /readyz answered 200)."""
    import httpx

    environment = {**os.environ, "CLAIMSIEVE_DATA_DIR": str(data), **env}
    with log.open("ab") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(port), *options],
            cwd=ROOT,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    began = time.monotonic()
    while time.monotonic() - began < 900:
        if server.poll() is not None:
            raise SystemExit(f"the service exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    server.kill()
    raise SystemExit(f"the service was not ready in 900 s:\n{log.read_text()[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[20, 50])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--flood", type=int, default=50, help="clients sending only checks")
    parser.add_argument("--flood-seconds", type=float, default=20)
    parser.add_argument("--rate", type=int, default=600, help="requests a minute per key")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/load.json")
    args = parser.parse_args()

    import httpx

    from service.settings import get_settings

    data = get_settings().data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True)
    made = subprocess.run(
        [sys.executable, "-m", "service.cli", "keys", "create", "--role", "admin"]
        + ["--name", "load-admin"],
        cwd=ROOT,
        env={**os.environ, "CLAIMSIEVE_DATA_DIR": str(data)},
        capture_output=True,
        text=True,
        check=True,
    )
    admin = {"Authorization": f"Bearer {made.stdout.strip().splitlines()[-1]}"}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    log = Path(tempfile.mkdtemp()) / "service.log"
    env = {"CLAIMSIEVE_RATE_LIMIT_PER_MINUTE": str(args.rate), "CLAIMSIEVE_JOB_WORKERS": "0"}
    began = time.monotonic()
    server = start(data, port, log, env)
    url = f"http://127.0.0.1:{port}"
    report: dict[str, Any] = {
        "machine": f"{os.cpu_count()} cores",
        "seconds": args.seconds,
        "rate_limit_per_minute_per_key": args.rate,
        "max_inflight": get_settings().max_inflight,
        "ready_s": round(time.monotonic() - began, 1),
    }
    try:
        keys = []
        with httpx.Client(base_url=url, headers=admin, timeout=120) as http:
            for n in range(max([*args.clients, args.flood])):
                pair = {}
                for role in ("pipeline", "trainer"):
                    key = http.post("/v1/keys", json={"name": f"load-{role}-{n}", "role": role})
                    key.raise_for_status()
                    pair[role] = key.json()["key"]
                keys.append(pair)
            for text in TEXTS:  # something in the review queue from the start
                http.post("/v1/checks", json={"text": text}).raise_for_status()
        for count in args.clients:
            result = asyncio.run(run(url, keys[:count], args.seconds, flood=False))
            report[f"mixed_{count}_clients"] = result
            print(f"{count} clients: {json.dumps(result)}", file=sys.stderr)
        result = asyncio.run(run(url, keys[: args.flood], args.flood_seconds, flood=True))
        report[f"flood_{args.flood}_clients_checks_only"] = result
        print(f"flood: {json.dumps(result)}", file=sys.stderr)
    finally:
        server.terminate()
        server.wait(timeout=60)
    print(json.dumps(report, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
