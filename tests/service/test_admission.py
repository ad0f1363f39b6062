"""Rate limits and load shedding answer at once, with Retry-After, and let the rest in."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from service.admission import Admission


class Slow:
    """An app whose heavy requests wait until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.served = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] in ("/v1/checks", "/v1/corpora/docs/documents"):
            await self.release.wait()
        self.served += 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


def scope(path: str, method: str = "POST", key: bytes = b"Bearer cs_a") -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(b"authorization", key)],
        "client": ("127.0.0.1", 5000),
    }


async def call(app: Any, request: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(request, receive, send)
    start = sent[0]
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, b"".join(m.get("body", b"") for m in sent[1:])


def test_beyond_capacity_the_excess_gets_503_at_once_and_reads_still_pass() -> None:
    async def run() -> None:
        inner = Slow()
        app = Admission(inner, max_inflight=2, rate_limit_per_minute=0)
        running = [asyncio.create_task(call(app, scope("/v1/checks"))) for _ in range(2)]
        await asyncio.sleep(0.05)
        status, headers, body = await asyncio.wait_for(call(app, scope("/v1/checks")), 1)
        assert status == 503 and headers["retry-after"] == "1"
        assert headers["content-type"] == "application/problem+json"
        assert json.loads(body)["code"] == "overloaded"
        read, _, _ = await asyncio.wait_for(call(app, scope("/v1/checks/x", "GET")), 1)
        assert read == 200  # only the model-running requests are counted
        inner.release.set()
        assert [r[0] for r in await asyncio.gather(*running)] == [200, 200]
        assert app.inflight == 0
        again, _, _ = await call(app, scope("/v1/checks"))
        assert again == 200

    asyncio.run(run())


def test_a_caller_over_its_rate_gets_429_and_others_do_not() -> None:
    async def run() -> None:
        inner = Slow()
        inner.release.set()
        app = Admission(inner, max_inflight=8, rate_limit_per_minute=60)  # bursts of 15
        statuses = [(await call(app, scope("/v1/jobs/x", "GET")))[0] for _ in range(15)]
        assert statuses == [200] * 15
        status, headers, body = await call(app, scope("/v1/jobs/x", "GET"))
        assert status == 429 and int(headers["retry-after"]) >= 1
        assert json.loads(body)["code"] == "rate_limited"
        other, _, _ = await call(app, scope("/v1/jobs/x", "GET", key=b"Bearer cs_b"))
        assert other == 200

    asyncio.run(run())


def test_an_unanswered_request_gets_503_timeout_and_the_rest_are_left_alone() -> None:
    from service.admission import TimeLimit

    async def run() -> None:
        inner = Slow()  # /v1/checks waits until released
        app = TimeLimit(inner, seconds=0.2)
        began = asyncio.get_running_loop().time()
        status, headers, body = await call(app, scope("/v1/checks"))
        assert status == 503 and json.loads(body)["code"] == "timeout"
        assert headers["retry-after"] == "5"
        assert asyncio.get_running_loop().time() - began < 1
        assert (await call(app, scope("/v1/jobs", "GET")))[0] == 200  # quick ones pass
        inner.release.set()  # the abandoned work finishes; its answer goes nowhere
        await asyncio.sleep(0.05)
        assert inner.served == 2 and not app._running  # noqa: SLF001

        slow_change = Slow()
        untimed = TimeLimit(slow_change, seconds=0.05)
        waiting = asyncio.create_task(call(untimed, scope("/v1/corpora/docs/documents")))
        await asyncio.sleep(0.2)
        slow_change.release.set()
        assert (await waiting)[0] == 200  # a corpus change is never cut off

    asyncio.run(run())
