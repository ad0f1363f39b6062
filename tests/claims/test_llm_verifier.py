"""The LLM verifier: a validated JSON verdict, clear errors, and once over real HTTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from claims.llm import ChatClient, LLMError, LLMVerifier
from claims.types import Claim, Label, Passage, Span, Stance

PASSAGES = [
    Passage("p1", "eiffel", "Eiffel Tower", "The tower was completed in 1889.", Span(0, 32)),
    Passage("p2", "paris", "Paris", "Paris is the capital of France.", Span(0, 31)),
]
CLAIM = Claim("The Eiffel Tower was completed in 1920.", "x", (Span(0, 5),))


def reply(content: Any) -> dict[str, Any]:
    return {"choices": [{"message": {"role": "assistant", "content": json.dumps(content)}}]}


def verifier_with(
    handler: Callable[[httpx.Request], httpx.Response], retries: int = 1
) -> LLMVerifier:
    client = ChatClient(
        "http://llm.test/v1",
        "judge",
        retries=retries,
        backoff_s=0.0,
        transport=httpx.MockTransport(handler),
    )
    return LLMVerifier(client)


def test_a_valid_verdict_names_the_deciding_passage() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(
            200,
            json=reply({"label": "REFUTED", "confidence": 0.9, "evidence": 1, "reason": "1889"}),
        )

    verdict = verifier_with(handler).verify([CLAIM], [PASSAGES])[0]
    assert verdict.label is Label.REFUTED and verdict.confidence == pytest.approx(0.9)
    assert sum(verdict.scores.values()) == pytest.approx(1.0)
    assert verdict.reasons[0].passage_id == "p1" and verdict.reasons[0].message == "1889"
    assert [j.stance for j in verdict.evidence] == [Stance.REFUTES, Stance.NEUTRAL]
    prompt = seen[0]["messages"][1]["content"]
    assert CLAIM.text in prompt and "[2] Paris: Paris is the capital" in prompt


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        ({"label": "TRUE", "confidence": 0.9}, "label"),
        ({"label": "SUPPORTED", "confidence": 1.5}, "confidence"),
        ({"label": "SUPPORTED", "confidence": 0.8, "evidence": 7}, "cited passage 7"),
    ],
)
def test_an_invalid_verdict_is_a_clear_error(answer: dict[str, Any], says: str) -> None:
    verifier = verifier_with(lambda request: httpx.Response(200, json=reply(answer)))
    with pytest.raises(LLMError, match=says):
        verifier.verify([CLAIM], [PASSAGES])


def test_a_failing_endpoint_is_retried_then_reported() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503)

    with pytest.raises(LLMError, match="503 \\(after 3 attempts\\)"):
        verifier_with(handler, retries=2).verify([CLAIM], [PASSAGES])
    assert len(calls) == 3


def test_no_evidence_needs_no_request() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request expected")

    verdict = verifier_with(handler).verify([CLAIM], [[]])[0]
    assert verdict.label is Label.NOT_ENOUGH_INFO and verdict.reasons[0].code == "no_evidence"


@pytest.fixture
def judge_server() -> Iterator[str]:
    """A local OpenAI-compatible server that supports any claim with passage 2."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers["Content-Length"])
            json.loads(self.rfile.read(length))
            body = json.dumps(
                reply({"label": "SUPPORTED", "confidence": 0.7, "evidence": 2, "reason": "ok"})
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_over_real_http(judge_server: str) -> None:
    verifier = LLMVerifier(ChatClient(judge_server, "local", timeout_s=5))
    verdicts = verifier.verify([CLAIM, CLAIM], [PASSAGES, PASSAGES])
    assert [v.label for v in verdicts] == [Label.SUPPORTED, Label.SUPPORTED]
    assert verdicts[0].reasons[0].passage_id == "p2"


def test_an_unreachable_endpoint_is_a_clear_error(judge_server: str) -> None:
    closed = judge_server.rsplit(":", 1)[0] + ":9/v1"
    verifier = LLMVerifier(ChatClient(closed, "local", timeout_s=2, retries=0))
    with pytest.raises(LLMError, match="cannot reach the endpoint"):
        verifier.verify([CLAIM], [PASSAGES])
