"""Work as jobs: bulk screens (what a submission may hold) and large corpus changes, and
the worker that does both.

A submission is a list of items, each ``{id, text | claims, prompt?, corpus?,
metadata?}`` (``claimsieve screen`` reads the same rows). Every item is checked
before anything is written: one that is not an item, too long, or names a
corpus that does not exist makes the whole submission a 422 naming it.

Workers (threads of the service, or ``claimsieve worker``) lease a batch of
items of one job from the database (``service.store.jobs``), check them
together (``Checker.check_many``: one embedder and one verifier call) and record
each outcome with its lease. The queue lives in the database, so a restart
loses nothing: an item whose worker died is leased again when its lease runs out.

A corpus change too large to make inside one request (an upload of many
documents, a rebuild) is a job of kind ``corpus`` with one item, the change:
the upload is kept in a file beside the database until the change is recorded;
the worker reports how many documents it has read (``progress``), renewing its
lease as it goes, and a change cut short by a crash is made again from the
start (a version is recorded whole or not at all).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from claims.errors import ClaimsError
from claims.types import CheckResult
from retrieval.errors import RetrievalError
from retrieval.types import Document
from service.corpora import ChangeResult
from service.errors import BadRequestError, ServiceError, UnknownCorpusError
from service.pipeline import Checker, Screened
from service.settings import Settings
from service.store import corpora as corpus_store
from service.store import jobs as job_store
from service.store.exchange import result_json
from service.store.models import Job, JobItem, utcnow

log = logging.getLogger("claimsieve")

_ITEM_KEYS = {"id", "text", "claims", "prompt", "corpus", "metadata"}


class BadItem(BadRequestError):
    """An item of a submission (or a row of a screen) that is not one."""

    code = "invalid_item"


def item_from_row(row: Any, corpus: str | None = None, max_chars: int | None = None) -> Screened:
    """A checked item from one submitted row; ``corpus`` for rows that name none.

    Raises:
        BadItem: Not an object, no id, ``text`` and ``claims`` both or neither, a field of
            the wrong type, or (with ``max_chars``) a text or claim over the limit.
    """
    if not isinstance(row, dict):
        raise BadItem("an item is a JSON object")
    unknown = set(row) - _ITEM_KEYS
    if unknown:
        raise BadItem(f"unknown fields {sorted(unknown)} (an item has {sorted(_ITEM_KEYS)})")
    item_id = row.get("id")
    if not isinstance(item_id, str | int) or isinstance(item_id, bool) or item_id == "":
        raise BadItem("an item needs an 'id' (a string or an integer)")
    text, claims = row.get("text"), row.get("claims")
    if (text is None) == (claims is None):
        raise BadItem("an item needs 'text' or 'claims', not both")
    if text is not None and not isinstance(text, str):
        raise BadItem("'text' must be a string")
    if claims is not None and not (
        isinstance(claims, list) and claims and all(isinstance(c, str) for c in claims)
    ):
        raise BadItem("'claims' must be a non-empty list of strings")
    for key in ("prompt", "corpus"):
        if row.get(key) is not None and not isinstance(row[key], str):
            raise BadItem(f"'{key}' must be a string")
    metadata = row.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise BadItem("'metadata' must be an object")
    if max_chars is not None:
        for piece in [text] if text is not None else list(claims or []):
            if len(piece) > max_chars:
                raise BadItem(f"a text of {len(piece)} characters; the limit is {max_chars}")
    return Screened(
        item_id,
        text,
        tuple(claims) if claims is not None else None,
        row.get("prompt"),
        row.get("corpus") or corpus,
        metadata,
    )


@dataclass(frozen=True)
class Submission:
    """A job as submitted: its items (checked), options, and who sent it."""

    items: list[Screened]
    corpus: str | None = None
    top_k: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    callback_url: str | None = None

    def digest(self) -> str:
        """The body's fingerprint, for Idempotency-Key: the same items and options."""
        body = {
            "items": [[i.id, i.text, i.claims, i.prompt, i.corpus, i.metadata] for i in self.items],
            "corpus": self.corpus,
            "top_k": self.top_k,
            "metadata": self.metadata,
            "callback_url": self.callback_url,
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def read_items(
    rows: Sequence[Any], corpus: str | None, max_chars: int, max_items: int, where: str
) -> list[Screened]:
    """The items of a submission, every one checked; the first bad one is a 422 naming it.

    ``where`` names a row for the message: ``"line"`` (NDJSON) or ``"item"`` (a JSON list).
    """
    if not rows:
        raise BadItem("the job holds no items")
    if len(rows) > max_items:
        raise BadItem(f"the job holds {len(rows)} items; the limit is {max_items}")
    items: list[Screened] = []
    seen: set[str] = set()
    for number, row in enumerate(rows, start=1):
        try:
            item = item_from_row(row, corpus, max_chars)
        except BadItem as exc:
            raise BadItem(f"{where} {number}: {exc.message}") from exc
        if str(item.id) in seen:
            raise BadItem(f"{where} {number}: id {item.id!r} is repeated")
        seen.add(str(item.id))
        items.append(item)
    return items


def submit(
    db: Session, submission: Submission, created_by: str | None, idempotency_key: str | None
) -> tuple[Job, bool]:
    """Queue a job (every corpus it names must exist); ``(job, created)``.

    Raises:
        UnknownCorpusError: An item, or the job, names a corpus that does not exist.
        ConflictError: The Idempotency-Key was used for another body.
    """
    for name in sorted({i.corpus for i in submission.items if i.corpus}):
        if corpus_store.get_corpus(db, name) is None:
            raise UnknownCorpusError(f"no corpus named {name!r}")
    job = Job(
        id=f"job_{uuid.uuid4().hex}",
        status="queued",
        corpus=submission.corpus,
        top_k=submission.top_k,
        idempotency_key=idempotency_key,
        body_sha256=submission.digest(),
        items=len(submission.items),
        metadata_=submission.metadata,
        created_by=created_by,
        callback_url=submission.callback_url,
        callback_attempts=0,
    )
    rows = [
        JobItem(
            position=position,
            item_id=str(item.id),
            payload=payload(item),
            state="queued",
            attempts=0,
            claims=0,
        )
        for position, item in enumerate(submission.items)
    ]
    return job_store.create_job(db, job, rows)


def payload(item: Screened) -> dict[str, Any]:
    """An item as the row it came from (``item_from_row`` reads it back)."""
    return {
        "id": item.id,
        "text": item.text,
        "claims": list(item.claims) if item.claims is not None else None,
        "prompt": item.prompt,
        "corpus": item.corpus,
        "metadata": item.metadata,
    }


def result_body(item: Screened, found: CheckResult | ClaimsError | ServiceError) -> dict[str, Any]:
    """An item's result row: ``{id, check}`` (as stored checks are mapped) or ``{id, error}``."""
    if isinstance(found, ClaimsError | ServiceError):
        return {"id": item.id, "error": {"code": found.code, "message": found.message}}
    return {"id": item.id, "check": result_json(found, item.metadata)}


def submit_change(
    db: Session,
    uploads: Path,
    corpus: str,
    documents: Sequence[Document] | None,
    created_by: str | None,
    reembed: bool = False,
    total: int = 0,
) -> Job:
    """Queue a change of ``corpus``: adding ``documents``, or (None) rebuilding it.

    The documents are written to ``uploads`` (and synced) before the job exists, so an
    accepted upload survives a crash; ``total``: the documents a rebuild reads.
    """
    job_id = f"job_{uuid.uuid4().hex}"
    digest = hashlib.sha256(f"{corpus}\n{reembed}\n".encode())
    upload: Path | None = None
    if documents is not None:
        uploads.mkdir(parents=True, exist_ok=True)
        upload = uploads / f"{job_id}.jsonl"
        part = upload.with_suffix(".part")
        with part.open("w", encoding="utf-8") as out:
            for document in documents:
                line = json.dumps(asdict(document), ensure_ascii=False) + "\n"
                digest.update(line.encode())
                out.write(line)
            out.flush()
            os.fsync(out.fileno())
        os.replace(part, upload)
        total = len(documents)
    action = "add" if documents is not None else "rebuild"
    job = Job(
        id=job_id,
        kind="corpus",
        status="queued",
        corpus=corpus,
        body_sha256=digest.hexdigest(),
        items=1,
        metadata_={"action": action, "reembed": reembed},
        created_by=created_by,
        callback_attempts=0,
        progress={"stage": "queued", "done": 0, "total": total},
    )
    change = {
        "action": action,
        "corpus": corpus,
        "upload": str(upload) if upload else None,
        "reembed": reembed,
        "documents": total,
    }
    item = JobItem(position=0, item_id="change", payload=change, state="queued", attempts=0)
    try:
        created, _ = job_store.create_job(db, job, [item])
    except BaseException:
        if upload is not None:
            upload.unlink(missing_ok=True)
        raise
    return created


def _uploaded(path: Path) -> Iterator[Document]:
    with path.open(encoding="utf-8") as rows:
        for line in rows:
            yield Document(**json.loads(line))


class _LeaseLost(Exception):
    """Another worker holds the change now (this one was presumed dead): stop."""


class Tally:
    """What a screen or a job found, from its result rows: counts and factuality per item."""

    def __init__(self) -> None:
        self.items = self.failed = self.claims = self.flagged = 0
        self.verdicts: Counter[str] = Counter()
        self.factuality: list[float] = []

    def count(self, row: dict[str, Any]) -> None:
        """Add one result row (``{id, check}`` or ``{id, error}``)."""
        self.items += 1
        if "error" in row:
            self.failed += 1
            return
        claims, summary = row["check"]["claims"], row["check"]["summary"]
        self.claims += len(claims)
        self.flagged += summary["flagged"]
        self.verdicts.update(c["verdict"] for c in claims if c["verdict"])
        if summary["factuality"] is not None:
            self.factuality.append(summary["factuality"])

    def summary(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "failed": self.failed,
            "claims": self.claims,
            "verdicts": dict(sorted(self.verdicts.items())),
            "flagged_share": round(self.flagged / self.claims, 4) if self.claims else None,
        }

    def histogram(self) -> bytes:
        """A small PNG: how many items have each share of supported claims."""
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt

        figure, axes = plt.subplots(figsize=(5, 3), dpi=100)
        axes.hist(self.factuality, bins=10, range=(0, 1), color="#4c72b0", edgecolor="white")
        axes.set_xlabel("factuality (supported ÷ checkworthy claims)")
        axes.set_ylabel("items")
        axes.set_title(f"factuality of {len(self.factuality)} screened responses")
        figure.tight_layout()
        picture = io.BytesIO()
        figure.savefig(picture, format="png")
        plt.close(figure)
        return picture.getvalue()


def tally(db: Session, job_id: str) -> Tally:
    """The tally of a job's results so far."""
    found = Tally()
    for row in job_store.all_results(db, job_id):
        found.count(row.body)
    return found


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Claimsieve-Signature`` header of a callback: ``t=<unix seconds>,v1=<hex>``,
    where v1 is HMAC-SHA256 under the secret of ``"<t>." + body``. A receiver recomputes
    it, compares in constant time, and refuses an old ``t`` (a replay)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


@dataclass(frozen=True)
class Callbacks:
    """How finished jobs are told to their callback URL.

    Args:
        secret: Signs every body (``Claimsieve-Signature``).
        attempts: Tries before the callback is given up (``failed``).
        backoff_s: Wait after the first failed try; doubled after each, at most an hour.
        timeout_s: Per try.
    """

    secret: str
    attempts: int = 8
    backoff_s: float = 5.0
    timeout_s: float = 10.0

    def deliver_one(self, sessions: sessionmaker[Session]) -> bool:
        """Send the callback of one finished job that is due; whether there was one."""
        import httpx

        with sessions() as db:
            job = job_store.take_callback(db, hold_s=self.timeout_s + 30)
            if job is None:
                return False
            body = json.dumps(callback_body(db, job), ensure_ascii=False).encode()
            job_id, url, tried = job.id, job.callback_url or "", job.callback_attempts
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "claimsieve",
            "Claimsieve-Event": "job.finished",
            "Claimsieve-Delivery": f"{job_id}.{tried + 1}",
            "Claimsieve-Signature": sign(self.secret, int(time.time()), body),
        }
        error: str | None = None
        try:
            answer = httpx.post(url, content=body, headers=headers, timeout=self.timeout_s)
            if not answer.is_success:
                error = f"HTTP {answer.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        retry_at = None
        if error is not None and tried + 1 < self.attempts:
            wait = min(self.backoff_s * 2**tried, 3600.0)
            retry_at = utcnow() + timedelta(seconds=wait)
            log.warning("callback of %s failed (%s); next try in %.1f s", job_id, error, wait)
        elif error is not None:
            log.error("callback of %s failed %d times; giving up: %s", job_id, tried + 1, error)
        with sessions() as db:
            job_store.callback_tried(db, job_id, error, retry_at)
        return True


def callbacks(settings: Settings) -> Callbacks | None:
    """The callbacks the settings allow (``None`` without a secret: jobs cannot ask for one)."""
    if settings.callback_secret is None:
        return None
    return Callbacks(
        settings.callback_secret.get_secret_value(),
        settings.callback_attempts,
        settings.callback_backoff_s,
    )


def callback_body(db: Session, job: Job) -> dict[str, Any]:
    """What a finished job's callback says: the job, its counts and the summary of results."""
    progress = job_store.progress(db, job.id)
    return {
        "event": "job.finished",
        "job": {
            "id": job.id,
            "status": job.status,
            "items": job.items,
            "counts": progress.states,
            "claims": progress.claims,
            "metadata": job.metadata_,
            "created_at": job.created_at.isoformat(),
            "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        },
        "summary": tally(db, job.id).summary(),
        "results": f"/v1/jobs/{job.id}/results",
    }


class Worker:
    """Checks job items a batch at a time until told to stop.

    Args:
        sessions: Database sessions (the queue).
        checker: The pipeline.
        name: This worker's name in leases (default: host, process, a random part).
        batch: Items leased and checked together.
        lease_s: How long a lease lasts: longer than a batch takes, or it is taken twice.
        max_attempts: Leases of one item before it fails (its workers kept dying).
        callbacks: Tells finished jobs' callback URLs (``None``: leaves them pending).
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        checker: Checker,
        name: str | None = None,
        batch: int = 16,
        lease_s: float = 300.0,
        max_attempts: int = 3,
        callbacks: Callbacks | None = None,
    ) -> None:
        self.sessions = sessions
        self.checker = checker
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.batch = batch
        self.lease_s = lease_s
        self.max_attempts = max_attempts
        self.callbacks = callbacks

    def run_once(self) -> int:
        """Lease, check and record one batch; how many items it held (0: nothing to do)."""
        with self.sessions() as db:
            leased = job_store.lease_items(
                db, self.name, self.batch, self.lease_s, self.max_attempts
            )
            if not leased:
                return 0
            job = job_store.get_job(db, leased[0].job_id)
            if job.kind == "corpus":
                change = (leased[0].id, dict(leased[0].payload))
            else:
                top_k = job.top_k
                pairs = [(row.id, item_from_row(row.payload)) for row in leased]
        if job.kind == "corpus":
            self._change(*change)
            return 1
        items = [item for _, item in pairs]
        found = self.checker.check_many(items, top_k)
        outcomes = [
            job_store.Outcome(
                pk,
                result_body(item, result),
                0 if isinstance(result, ClaimsError | ServiceError) else len(result.results),
                "failed" if isinstance(result, ClaimsError | ServiceError) else "done",
            )
            for (pk, item), result in zip(pairs, found, strict=True)
        ]
        with self.sessions() as db:
            job_store.finish_items(db, self.name, outcomes)
        return len(pairs)

    def _change(self, item_pk: int, change: dict[str, Any]) -> None:
        """Make a corpus change and record it (or its error) as the job's one result."""
        total = int(change["documents"])
        reported = [0.0]

        def report(read: int) -> None:
            now = time.monotonic()
            if now - reported[0] < 1.0 and read not in (0, total):
                return
            reported[0] = now
            with self.sessions() as db:
                held = job_store.report_progress(
                    db,
                    item_pk,
                    self.name,
                    self.lease_s,
                    {"stage": "indexing", "done": read, "total": total},
                )
            if not held:
                raise _LeaseLost(change["corpus"])

        corpora = self.checker.corpora
        name, upload = change["corpus"], change["upload"]
        try:
            report(0)
            found: ChangeResult
            if change["action"] == "add":
                found = corpora.change(name, add=_uploaded(Path(upload)), report=report)
            else:
                found = corpora.rebuild(name, reembed=bool(change["reembed"]), report=report)
            body: dict[str, Any] = {"id": "change", "change": asdict(found)}
            state = "done"
        except _LeaseLost:
            log.warning("corpus change of %s: another worker took it over", name)
            return
        except (ServiceError, ClaimsError, RetrievalError) as exc:
            body = {"id": "change", "error": {"code": exc.code, "message": exc.message}}
            state = "failed"
        except OSError as exc:  # the kept upload is gone or unreadable
            body = {"id": "change", "error": {"code": "upload_lost", "message": str(exc)}}
            state = "failed"
        with self.sessions() as db:
            if state == "done":
                done = {"stage": "done", "done": total, "total": total}
                job_store.report_progress(db, item_pk, self.name, self.lease_s, done)
            kept = job_store.finish_items(
                db, self.name, [job_store.Outcome(item_pk, body, 0, state)]
            )
        if kept and upload:
            Path(upload).unlink(missing_ok=True)

    def run(self, stop: threading.Event, idle_s: float = 0.5) -> None:
        """Work until ``stop`` is set; a batch that breaks is logged and left to its lease."""
        while not stop.is_set():
            try:
                busy = self.run_once()
                if self.callbacks is not None:
                    busy += self.callbacks.deliver_one(self.sessions)
            except Exception:
                log.exception(
                    "job worker %s: a batch failed; its items will be leased again", self.name
                )
                busy = 0
            if not busy:
                stop.wait(idle_s)
