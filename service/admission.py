"""Who gets in when the service is busy: a per-caller rate limit and load shedding.

Both answer at once, before any work, with ``Retry-After``:

- ``429 rate_limited``: a caller (its credentials, or its address without any) sent more
  than ``rate_limit_per_minute`` requests; a token bucket that holds a quarter of a
  minute's requests, so a short burst passes. Off when the limit is 0.
- ``503 overloaded``: ``max_inflight`` requests that run the models (checks,
  verification, ranking, Label Studio predictions, corpus changes) are already being
  served. Without it requests queue in the thread pool without bound and every caller
  waits longer and longer; with it the excess learns at once to come back.

:class:`TimeLimit` answers ``503 timeout`` to a request that has not begun its answer
after ``request_timeout_s``. The work it started may still finish (a thread cannot be
stopped), but the caller is not held. Corpus changes are exempt: they answer when the
new version is recorded, however long that takes, so that a caller never gives up on a
change that then happens.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import time
from collections import OrderedDict
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import problem

HEAVY = re.compile(
    r"^/v1/(checks|claims:verify|rank|jobs)$"
    r"|^/v1/corpora/[^/]+/(documents|rebuild)$"
    r"|^/integrations/label-studio/predict$"
)
UNTIMED = re.compile(r"^/v1/corpora/[^/]+/(documents|rebuild)(/.*)?$")
MAX_CALLERS = 10_000  # buckets kept; the least recently seen caller is forgotten first


class Bucket:
    __slots__ = ("tokens", "at")

    def __init__(self, tokens: float, at: float) -> None:
        self.tokens = tokens
        self.at = at


class Admission:
    """ASGI middleware; runs on the event loop, so its counters need no lock."""

    def __init__(self, app: ASGIApp, max_inflight: int, rate_limit_per_minute: int) -> None:
        self.app = app
        self.max_inflight = max_inflight
        self.rate = rate_limit_per_minute / 60.0
        self.capacity = max(1.0, rate_limit_per_minute / 4.0)
        self.buckets: OrderedDict[str, Bucket] = OrderedDict()
        self.inflight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.rate > 0:
            wait = self._spend(_caller(scope))
            if wait > 0:
                seconds = str(max(1, math.ceil(wait)))
                detail = f"too many requests from this caller; try again in {seconds} s"
                answer = problem(429, "rate_limited", detail, headers={"Retry-After": seconds})
                await answer(scope, receive, send)
                return
        heavy = scope["method"] == "POST" and HEAVY.match(scope["path"]) is not None
        if not heavy:
            await self.app(scope, receive, send)
            return
        if self.inflight >= self.max_inflight:
            detail = f"the service is busy ({self.inflight} checks running); try again shortly"
            answer = problem(503, "overloaded", detail, headers={"Retry-After": "1"})
            await answer(scope, receive, send)
            return
        self.inflight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight -= 1

    def _spend(self, caller: str) -> float:
        """Take a token from ``caller``'s bucket: 0, or the seconds until one is there."""
        now = time.monotonic()
        bucket = self.buckets.pop(caller, None) or Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        self.buckets[caller] = bucket  # most recently seen last
        if len(self.buckets) > MAX_CALLERS:
            self.buckets.popitem(last=False)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate


def _caller(scope: Scope) -> str:
    """A digest of the caller's credentials (never the credentials), or its address."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            return hashlib.sha256(value).hexdigest()[:32]
    client = scope.get("client")
    return f"address:{client[0] if client else '?'}"


class TimeLimit:
    """ASGI middleware: ``503 timeout`` for a request still unanswered after ``seconds``."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds
        self._running: set[asyncio.Task[None]] = set()  # abandoned work, kept until done

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or UNTIMED.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        state = {"started": False, "abandoned": False}

        async def tracked(message: Any) -> None:
            if state["abandoned"]:
                return  # the caller already has its answer
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, tracked))
        done, _ = await asyncio.wait({task}, timeout=self.seconds)
        if task in done or state["started"]:  # answered, or answering (a stream): let it be
            await task
            return
        state["abandoned"] = True
        self._running.add(task)
        task.add_done_callback(self._forget)
        detail = f"the request took longer than {self.seconds:g} s; try a smaller one"
        await problem(503, "timeout", detail, headers={"Retry-After": "5"})(scope, receive, send)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved, so that it is not reported as never retrieved
