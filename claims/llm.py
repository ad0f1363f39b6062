"""Claims from any OpenAI-compatible chat endpoint (vLLM, Ollama, llama.cpp, hosted APIs).

The model is asked for JSON: each claim with the exact response text it comes
from. The answer is validated against a schema and every quoted piece is
aligned back to a span of the response; when anything fails (the endpoint is
down or slow, the JSON is malformed, a quote is not in the response) the
extractor falls back to the parse-based one and says so in a notice.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Sequence
from typing import Any

import httpx
from pydantic import BaseModel, Field, ValidationError

from claims.errors import UpstreamError
from claims.extraction import Extraction, Extractor, validate_text
from claims.types import (
    Claim,
    EvidenceJudgement,
    Label,
    Notice,
    Passage,
    Reason,
    Span,
    Stance,
    Verdict,
)

log = logging.getLogger("claimsieve")

REASONS = frozenset(
    "question opinion value_judgement hedged filler instruction heading code no_statement".split()
)

SYSTEM_PROMPT = """You split an assistant's response into atomic factual claims.
Return JSON only: {"claims": [{"text": ..., "source": [...], "checkworthy": ..., "reason": ...}]}
- text: one standalone fact, with pronouns replaced by what they name (use the prompt).
- source: the exact piece(s) of the response the claim comes from, copied character for
  character (several pieces if the claim joins words from different places).
- checkworthy: false for questions, opinions, value judgements, hedged speculation,
  greetings and filler, instructions, headings and code; then reason is one of
  question, opinion, value_judgement, hedged, filler, instruction, heading, code,
  no_statement. Otherwise reason is null.
Cover every sentence of the response."""


class LLMError(UpstreamError):
    """The chat endpoint did not give a usable answer."""

    code = "llm_error"


class _ClaimOut(BaseModel):
    text: str = Field(min_length=1)
    source: list[str] = Field(min_length=1)
    checkworthy: bool = True
    reason: str | None = None


class _Answer(BaseModel):
    claims: list[_ClaimOut] = Field(min_length=1)


class ChatClient:
    """A minimal OpenAI-compatible ``/chat/completions`` client that returns parsed JSON.

    Args:
        base_url: Endpoint root, e.g. ``http://127.0.0.1:8080/v1``.
        model: Model name the endpoint expects.
        api_key: Sent as a bearer token when given.
        timeout_s: Per-request timeout.
        retries: Extra attempts after a timeout, a connection error, a 429 or a 5xx.
        backoff_s: First wait between attempts; doubles each time.
        transport: An httpx transport (tests pass ``httpx.MockTransport``).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        retries: int = 2,
        backoff_s: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s, transport=transport
        )
        self.model = model
        self._retries = retries
        self._backoff_s = backoff_s

    def close(self) -> None:
        self._http.close()

    def complete_json(self, messages: list[dict[str, str]]) -> Any:
        """Send ``messages``; return the assistant's reply decoded as JSON.

        Raises:
            LLMError: After the last attempt fails, or when the reply is not JSON.
        """
        body = {
            "model": self.model,
            "messages": messages,
            "temperature": 0,
            "response_format": {"type": "json_object"},
        }
        problem = "no attempt made"
        for attempt in range(self._retries + 1):
            if attempt:
                time.sleep(self._backoff_s * 2 ** (attempt - 1))
            try:
                response = self._http.post("/chat/completions", json=body)
            except httpx.TimeoutException:
                problem = "the endpoint timed out"
                continue
            except httpx.TransportError as exc:
                problem = f"cannot reach the endpoint ({exc.__class__.__name__})"
                continue
            if response.status_code == 429 or response.status_code >= 500:
                problem = f"the endpoint answered {response.status_code}"
                continue
            if response.status_code >= 400:
                raise LLMError(f"the endpoint refused the request ({response.status_code})")
            return _content_json(response)
        raise LLMError(f"{problem} (after {self._retries + 1} attempts)")


_FENCED = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def _content_json(response: httpx.Response) -> Any:
    try:
        content = response.json()["choices"][0]["message"]["content"]
        fenced = _FENCED.match(content)
        return json.loads(fenced.group(1) if fenced else content)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise LLMError(f"the endpoint's answer is not the JSON asked for ({exc})") from exc


def align(text: str, quote: str, start: int = 0) -> Span | None:
    """Where ``quote`` sits in ``text``: exactly, else ignoring case and spacing."""
    quote = quote.strip()
    if not quote:
        return None
    found = text.find(quote, start)
    if found < 0:
        found = text.find(quote)
    if found >= 0:
        return Span(found, found + len(quote))
    pattern = r"\s+".join(re.escape(word) for word in quote.split())
    match = re.search(pattern, text, re.IGNORECASE)
    return Span(match.start(), match.end()) if match else None


class LLMExtractor:
    """Claims from a chat model, aligned to exact spans; the parse extractor when that fails.

    Args:
        client: The chat endpoint.
        fallback: Used whenever the endpoint's answer cannot be used.
        max_chars: Longest response accepted.
    """

    name = "llm"
    version = "1"

    def __init__(self, client: ChatClient, fallback: Extractor, max_chars: int = 20_000) -> None:
        self._client = client
        self._fallback = fallback
        self._max_chars = max_chars

    def extract(self, text: str, prompt: str | None = None) -> Extraction:
        validate_text(text, self._max_chars)
        try:
            claims = self._ask(text, prompt)
        except LLMError as exc:
            log.warning("LLM extractor failed, using %s: %s", self._fallback.name, exc.message)
            fallback = self._fallback.extract(text, prompt)
            notice = Notice(
                "llm_fallback",
                f"the LLM extractor failed ({exc.message}); claims come from the "
                f"{self._fallback.name} extractor",
            )
            return Extraction(fallback.claims, fallback.made_by, (notice, *fallback.notices))
        return Extraction(claims, f"{self.name}/{self.version}:{self._client.model}")

    def _ask(self, text: str, prompt: str | None) -> list[Claim]:
        user = f"Prompt: {prompt}\n\nResponse:\n{text}" if prompt else f"Response:\n{text}"
        raw = self._client.complete_json(
            [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]
        )
        try:
            answer = _Answer.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise LLMError(
                f"the answer does not fit the schema at {where}: {first['msg']}"
            ) from exc
        claims = []
        cursor = 0
        for item in answer.claims:
            spans = []
            for quote in item.source:
                span = align(text, quote, cursor)
                if span is None:
                    raise LLMError(f"a quoted source is not in the response: {quote[:80]!r}")
                spans.append(span)
            spans.sort()
            cursor = spans[0].start
            reason = (
                None
                if item.checkworthy
                else (item.reason if item.reason in REASONS else "no_statement")
            )
            source = " ".join(s.slice(text) for s in spans)
            claims.append(Claim(item.text.strip(), source, tuple(spans), item.checkworthy, reason))
        return claims


VERIFY_PROMPT = """You check one claim against numbered evidence passages.
Return JSON only: {"label": ..., "confidence": ..., "evidence": ..., "reason": ...}
- label: SUPPORTED if the passages state the claim, REFUTED if they contradict it,
  NOT_ENOUGH_INFO if they do neither. Use only the passages, not what you know.
- confidence: a number from 0 to 1, how likely your label is right.
- evidence: the number of the passage that decided (null for NOT_ENOUGH_INFO).
- reason: one short sentence."""


class _VerdictOut(BaseModel):
    label: Label
    confidence: float = Field(ge=0.0, le=1.0)
    evidence: int | None = None
    reason: str = ""


class LLMVerifier:
    """Verdicts from an OpenAI-compatible chat endpoint, one request per claim.

    The answer is validated (label, confidence in [0, 1], a passage number that
    exists); an endpoint that is down or answers badly raises ``LLMError`` with
    what went wrong, after the client's retries.

    Args:
        client: The chat client (timeouts and retries are its settings).
        max_passage_chars: Each passage is cut to this length in the prompt.
    """

    name = "llm"

    def __init__(self, client: ChatClient, max_passage_chars: int = 1500) -> None:
        self._client = client
        self._max = max_passage_chars
        self.version = client.model

    def verify(
        self, claims: Sequence[Claim], evidence: Sequence[Sequence[Passage]]
    ) -> list[Verdict]:
        if len(claims) != len(evidence):
            raise ValueError("verify() needs one evidence list per claim")
        return [self._one(c, list(e)) for c, e in zip(claims, evidence, strict=True)]

    def _one(self, claim: Claim, passages: list[Passage]) -> Verdict:
        if not passages:
            reason = Reason("no_evidence", "retrieval found no passage for this claim")
            scores = {Label.SUPPORTED: 0.0, Label.REFUTED: 0.0, Label.NOT_ENOUGH_INFO: 1.0}
            return Verdict(Label.NOT_ENOUGH_INFO, 1.0, scores, (reason,), ())
        listing = "\n".join(
            f"[{i}] {p.title}: {p.text[: self._max]}" for i, p in enumerate(passages, start=1)
        )
        answer = self._client.complete_json(
            [
                {"role": "system", "content": VERIFY_PROMPT},
                {"role": "user", "content": f"Claim: {claim.text}\n\nPassages:\n{listing}"},
            ]
        )
        try:
            out = _VerdictOut.model_validate(answer)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "answer"
            raise LLMError(f"the endpoint's verdict is not valid: {where}: {first['msg']}") from exc
        if out.evidence is not None and not 1 <= out.evidence <= len(passages):
            raise LLMError(f"the endpoint cited passage {out.evidence}; there are {len(passages)}")
        label = Label(out.label)
        rest = (1.0 - out.confidence) / 2
        scores = {lab: (out.confidence if lab is label else rest) for lab in Label}
        deciding = passages[out.evidence - 1] if out.evidence else None
        stance = {
            Label.SUPPORTED: Stance.SUPPORTS,
            Label.REFUTED: Stance.REFUTES,
            Label.NOT_ENOUGH_INFO: Stance.NEUTRAL,
        }[label]
        judgements = tuple(
            EvidenceJudgement(
                p, Span(0, len(p.text)), stance if p is deciding else Stance.NEUTRAL, 0.0
            )
            for p in passages
        )
        reason = Reason(
            "llm",
            out.reason or f"the model judged the claim {label.value}",
            evidence_text=deciding.text if deciding else None,
            evidence_span=Span(0, len(deciding.text)) if deciding else None,
            passage_id=deciding.passage_id if deciding else None,
        )
        return Verdict(label, out.confidence, scores, (reason,), judgements)
