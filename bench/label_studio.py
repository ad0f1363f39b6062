"""How fast the Label Studio backend answers, against Label Studio's own timeouts.

Serves the app in this process on a loopback port (the built-in corpus, real
models, no auth) and calls the backend over real HTTP as Label Studio does:
``/health`` (Label Studio waits 1 s) and ``/setup`` (3 s) 20 times each, then
``/predict`` with 20 tasks of about 150 words (``bench/bulk.py``'s responses
from the built-in corpus, a third with one word flipped), ``--runs`` times
(100 s). Prints and saves the times.

    python bench/label_studio.py [--tasks 20] [--runs 3] [--out bench/results/label_studio.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TIMEOUTS = {"health": 1.0, "setup": 3.0, "predict": 100.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/label_studio.json")
    args = parser.parse_args()

    import httpx

    from bench.bulk import responses
    from bench.latency import serve
    from service.integrations.label_studio import shipped_config
    from service.settings import get_settings

    config = shipped_config()
    tasks = [
        {"id": n + 1, "data": {"response": row["text"]}}
        for n, row in enumerate(responses(args.tasks))
    ]
    words = statistics.mean(len(t["data"]["response"].split()) for t in tasks)
    _, url, stop = serve(get_settings().model_copy(update={"job_workers": 0}))
    client = httpx.Client(base_url=f"{url}/integrations/label-studio", timeout=300)
    seconds: dict[str, list[float]] = {"health": [], "setup": [], "predict": []}
    regions = 0
    try:
        for _ in range(20):
            began = time.perf_counter()
            client.get("/health").raise_for_status()
            seconds["health"].append(time.perf_counter() - began)
            began = time.perf_counter()
            body = {"project": "1.1765000000", "schema": config}
            client.post("/setup", json=body).raise_for_status()
            seconds["setup"].append(time.perf_counter() - began)
        for run in range(args.runs):
            body = {"tasks": tasks, "project": "1.1765000000", "label_config": config}
            began = time.perf_counter()
            answer = client.post("/predict", json=body)
            answer.raise_for_status()
            seconds["predict"].append(time.perf_counter() - began)
            results = answer.json()["results"]
            assert len(results) == len(tasks)
            regions = sum(1 for r in results for item in r["result"] if item["type"] == "labels")
            print(
                f"predict run {run + 1}: {len(tasks)} tasks, {regions} claim regions, "
                f"{seconds['predict'][-1]:.1f} s",
                file=sys.stderr,
            )
    finally:
        client.close()
        stop()

    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
        "tasks": len(tasks),
        "mean_words": round(words, 1),
        "claim_regions": regions,
        "timings_s": {
            name: {
                "max": round(max(times), 4),
                "median": round(statistics.median(times), 4),
                "timeout": TIMEOUTS[name],
                "share_of_timeout": round(max(times) / TIMEOUTS[name], 3),
            }
            for name, times in seconds.items()
        },
    }
    print(json.dumps(report, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
