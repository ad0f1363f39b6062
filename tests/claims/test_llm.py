"""The LLM extractor: schema, alignment, retries and fallback; once over real HTTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from claims.extraction import ParseExtractor
from claims.llm import ChatClient, LLMExtractor, align

TEXT = "Marie Curie was born in Warsaw. She won two Nobel Prizes. Hope this helps!"
GOOD = {
    "claims": [
        {"text": "Marie Curie was born in Warsaw.", "source": ["Marie Curie was born in Warsaw"]},
        {
            "text": "Marie Curie won two Nobel Prizes.",
            "source": ["She won two Nobel Prizes"],
            "checkworthy": True,
        },
        {
            "text": "Hope this helps!",
            "source": ["Hope this helps!"],
            "checkworthy": False,
            "reason": "filler",
        },
    ]
}


def reply(content: Any) -> dict[str, Any]:
    text = content if isinstance(content, str) else json.dumps(content)
    return {"choices": [{"message": {"role": "assistant", "content": text}}]}


def extractor_with(handler: Callable[[httpx.Request], httpx.Response], nlp, retries: int = 2):
    client = ChatClient(
        "http://llm.test/v1",
        "tiny",
        api_key="secret",
        retries=retries,
        backoff_s=0.0,
        transport=httpx.MockTransport(handler),
    )
    return LLMExtractor(client, ParseExtractor(nlp))


def test_a_good_answer_is_aligned_to_exact_spans(nlp) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=reply(GOOD))

    result = extractor_with(handler, nlp).extract(TEXT, prompt="Who was Marie Curie?")
    assert result.notices == () and result.made_by == "llm/1:tiny"
    assert [c.text for c in result.claims] == [c["text"] for c in GOOD["claims"]]
    assert [[s.slice(TEXT) for s in c.spans] for c in result.claims] == [
        ["Marie Curie was born in Warsaw"],
        ["She won two Nobel Prizes"],
        ["Hope this helps!"],
    ]
    assert result.claims[2].reason == "filler" and not result.claims[2].checkworthy
    body = json.loads(seen[0].content)
    assert seen[0].url.path == "/v1/chat/completions"
    assert seen[0].headers["authorization"] == "Bearer secret"
    assert body["model"] == "tiny" and "Who was Marie Curie?" in body["messages"][1]["content"]


@pytest.mark.parametrize(
    ("handler", "says"),
    [
        (lambda r: httpx.Response(200, json=reply("{not json")), "not the JSON"),
        (lambda r: httpx.Response(200, json={"unexpected": True}), "not the JSON"),
        (lambda r: httpx.Response(200, json=reply({"claims": []})), "schema"),
        (lambda r: httpx.Response(200, json=reply({"claims": [{"text": "x"}]})), "schema"),
        (
            lambda r: httpx.Response(
                200,
                json=reply({"claims": [{"text": "Curie won.", "source": ["Curie won a Fields"]}]}),
            ),
            "not in the response",
        ),
        (lambda r: httpx.Response(503, text="overloaded"), "answered 503"),
        (lambda r: httpx.Response(401, text="no"), "refused the request (401)"),
    ],
    ids=["malformed", "no-choices", "empty", "no-source", "unaligned", "5xx", "4xx"],
)
def test_any_failure_falls_back_to_the_parse_extractor_and_says_so(nlp, handler, says) -> None:
    result = extractor_with(handler, nlp).extract(TEXT)
    assert result.made_by == "parse/6"
    (notice,) = result.notices
    assert notice.code == "llm_fallback" and says in notice.message
    assert "Marie Curie won two Nobel Prizes." in [c.text for c in result.claims]


def test_timeouts_and_5xx_are_retried_then_succeed(nlp) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            raise httpx.ReadTimeout("slow", request=request)
        if len(calls) == 2:
            return httpx.Response(502)
        return httpx.Response(200, json=reply(GOOD))

    result = extractor_with(handler, nlp, retries=2).extract(TEXT)
    assert len(calls) == 3 and result.notices == ()


def test_a_timeout_on_every_attempt_falls_back(nlp) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectTimeout("down", request=request)

    result = extractor_with(handler, nlp, retries=1).extract(TEXT)
    assert len(calls) == 2
    assert "timed out (after 2 attempts)" in result.notices[0].message


def test_fenced_json_is_accepted_and_alignment_forgives_spacing() -> None:
    assert align("Paris  is\nthe capital.", "paris is the capital") is not None
    assert align("abc", "xyz") is None
    client = ChatClient(
        "http://llm.test",
        "m",
        transport=httpx.MockTransport(
            lambda r: httpx.Response(200, json=reply('```json\n{"a": 1}\n```'))
        ),
    )
    assert client.complete_json([]) == {"a": 1}


@pytest.fixture
def chat_server() -> Iterator[str]:
    """A small OpenAI-compatible server on a free local port, answering GOOD."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers["Content-Length"])
            request = json.loads(self.rfile.read(length))
            if self.path != "/v1/chat/completions" or request.get("model") != "local":
                self.send_response(404)
                self.end_headers()
                return
            body = json.dumps(reply(GOOD)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_over_real_http_against_a_local_server(nlp, chat_server: str) -> None:
    extractor = LLMExtractor(ChatClient(chat_server, "local", timeout_s=5), ParseExtractor(nlp))
    result = extractor.extract(TEXT)
    assert result.notices == ()
    assert [c.text for c in result.claims][:2] == [
        "Marie Curie was born in Warsaw.",
        "Marie Curie won two Nobel Prizes.",
    ]


def test_an_unreachable_endpoint_falls_back(nlp, chat_server: str) -> None:
    closed = chat_server.rsplit(":", 1)[0] + ":9/v1"  # the discard port: nothing listens
    extractor = LLMExtractor(
        ChatClient(closed, "local", timeout_s=2, retries=0), ParseExtractor(nlp)
    )
    result = extractor.extract(TEXT)
    assert result.notices[0].code == "llm_fallback"
    assert "cannot reach the endpoint" in result.notices[0].message
