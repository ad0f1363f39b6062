"""Label Studio's ML-backend protocol: predictions from checks, reviews from annotations.

Predictions: each checkworthy claim with a verdict becomes a ``Labels`` region
over the response (code-point offsets, which are Python string indices, and its
``text``), scored by the claim's confidence; a ``TextArea`` item with the same
region id carries the rationale (the deciding evidence sentence and the
reasons); a ``Choices`` item judges the whole response. Every prediction is a
stored check, linked to its task, so that an annotation of the task can be
mapped back to its claims.

Annotations arrive by webhook. The route keeps each delivery in the database
and answers at once; :class:`DeliveryWorker` turns a delivery into reviews of
the claims whose regions it labels (``confirm`` when the trainer kept the
verdict, ``correct`` otherwise). A review's ``source`` names the delivery and the
claim, so a delivery processed twice (a redelivery, or a crash between two
claims) records each review once. ``START_TRAINING`` refits the confidence
calibration of the corpora the project's tasks were checked against.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from typing import Any
from xml.etree import ElementTree

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from claims.errors import ClaimsError
from claims.types import Label
from service import reviews
from service.errors import BadRequestError, ConflictError, ServiceError
from service.pipeline import Checker, Screened
from service.store import checks as check_store
from service.store import deliveries
from service.store.exchange import check_json, claim_json
from service.store.models import ClaimLease, Delivery, Review, utcnow
from service.store.reviews import ReviewDraft

log = logging.getLogger("claimsieve")

SOURCE = "label-studio"
CONFIG_FILE = "label-studio.xml"
ANNOTATION_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED")
TRAINING_ACTION = "START_TRAINING"

# Label values a config may use for each verdict, compared lower-case without spaces or
# punctuation; the shipped config's are the first.
VERDICT_WORDS: dict[Label, tuple[str, ...]] = {
    Label.SUPPORTED: ("supported", "true", "correct", "entailed", "entailment"),
    Label.REFUTED: ("refuted", "false", "incorrect", "contradicted", "contradiction"),
    Label.NOT_ENOUGH_INFO: (
        "notenoughinfo",
        "notenoughinformation",
        "nei",
        "unverifiable",
        "unverified",
        "neutral",
    ),
}
DEFAULT_LABELS = {
    Label.SUPPORTED: "Supported",
    Label.REFUTED: "Refuted",
    Label.NOT_ENOUGH_INFO: "Not enough info",
}
# The overall judgement of a response: any claim refuted, else any not enough info, else clean.
DEFAULT_OVERALL = {
    "clean": "No errors found",
    "errors": "Contains errors",
    "unverified": "Some claims unverified",
}


def _word(value: str) -> str:
    return re.sub(r"[^a-z]", "", value.lower())


def shipped_config() -> str:
    """The label config to paste into a Label Studio project (the README shows how)."""
    return resources.files("service.integrations").joinpath(CONFIG_FILE).read_text()


@dataclass(frozen=True)
class Config:
    """The names a project's label config gives to the parts the backend fills in."""

    text_name: str = "response"
    data_key: str = "response"
    labels_name: str = "claim_verdict"
    rationale_name: str | None = "rationale"
    overall_name: str | None = "overall"
    labels: tuple[tuple[Label, str], ...] = tuple(DEFAULT_LABELS.items())
    overall: tuple[tuple[str, str], ...] = tuple(DEFAULT_OVERALL.items())

    def label_value(self, verdict: Label) -> str:
        return dict(self.labels)[verdict]

    def verdict_of(self, value: str) -> Label | None:
        """The verdict a region's label names, by this config's values or the known words."""
        for verdict, named in self.labels:
            if named == value:
                return verdict
        word = _word(value)
        return next((v for v, words in VERDICT_WORDS.items() if word in words), None)


def parse_config(xml: str | None) -> Config:
    """The :class:`Config` of a label config; the shipped names where it says nothing.

    Raises:
        BadRequestError: The config is not XML, or has no ``Labels`` over a ``Text``.
    """
    if not xml:
        return Config()
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as exc:
        raise BadRequestError(f"the label config is not XML: {exc}", "bad_label_config") from exc
    texts = {t.get("name"): t.get("value", "") for t in root.iter("Text")}
    labels = next((t for t in root.iter("Labels") if t.get("toName") in texts), None)
    if labels is None:
        raise BadRequestError(
            "the label config needs a <Labels> tag over a <Text> tag; "
            "use the shipped one (service/integrations/label-studio.xml)",
            "bad_label_config",
        )
    text_name = labels.get("toName", "")
    values = [label.get("value", "") for label in labels.iter("Label")]
    named: dict[Label, str] = {}
    for verdict, words in VERDICT_WORDS.items():
        found = next((v for v in values if _word(v) in words), None)
        named[verdict] = found or DEFAULT_LABELS[verdict]
    rationale = next(
        (t.get("name") for t in root.iter("TextArea") if t.get("toName") == text_name), None
    )
    choices = next((t for t in root.iter("Choices") if t.get("toName") == text_name), None)
    overall: dict[str, str] = dict(DEFAULT_OVERALL)
    if choices is not None:
        for value in (c.get("value", "") for c in choices.iter("Choice")):
            word = _word(value)
            kind = (
                "clean"
                if word.startswith("no") or "allsupported" in word
                else "errors"
                if "error" in word or "refuted" in word or "false" in word
                else "unverified"
            )
            overall[kind] = value
    return Config(
        text_name=text_name,
        data_key=texts[text_name].lstrip("$") or text_name,
        labels_name=labels.get("name", "claim_verdict"),
        rationale_name=rationale,
        overall_name=None if choices is None else choices.get("name"),
        labels=tuple(named.items()),
        overall=tuple(overall.items()),
    )


def project_id(value: Any) -> int:
    """Label Studio names a project ``"<id>.<created unix seconds>"``, an id, or an object."""
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, int):
        return value
    head = str(value or "0").split(".", 1)[0]
    return int(head) if head.isdigit() else 0


def model_version(checker: Checker, corpus: str, db: Session) -> str:
    """Changes whenever the verifier or the corpus version does (Label Studio then predicts
    again)."""
    snapshot = checker.corpora.searchable(corpus, db)
    version = "missing" if snapshot is None else f"v{snapshot.version}"
    return f"claimsieve-{checker.verifier.name}-{checker.verifier.version}-{corpus}-{version}"


def region_id(claim_id: str) -> str:
    """A short region id for a claim (unique within its check)."""
    return claim_id.removeprefix("clm_")[:10]


def region_of(claim: dict[str, Any]) -> tuple[int, int] | None:
    spans = claim["spans"]
    if not spans:
        return None
    return min(s["start"] for s in spans), max(s["end"] for s in spans)


def rationale(claim: dict[str, Any], config: Config) -> str:
    """The verdict, its reasons and the deciding evidence sentence, in a few lines."""
    lines = [f"{config.label_value(Label(claim['verdict']))} ({claim['confidence']:.2f})"]
    lines += [f"- {r['code']}: {r['message']}" for r in claim["reasons"]]
    cited = next((r["evidence"]["passage_id"] for r in claim["reasons"] if r.get("evidence")), None)
    evidence = claim["evidence"]
    deciding = next((e for e in evidence if e["passage_id"] == cited), None) or (
        evidence[0] if evidence else None
    )
    if deciding is not None:
        span = deciding["span"]
        sentence = deciding["text"][span["start"] : span["end"]]
        lines.append(f'Evidence ({deciding["title"]}): "{sentence}"')
    return "\n".join(lines)


def prediction(check: dict[str, Any], config: Config, version: str) -> dict[str, Any]:
    """One task's prediction from its stored check (the API's JSON form)."""
    text = check["text"] or ""
    result: list[dict[str, Any]] = []
    verdicts: list[Label] = []
    confidences: list[float] = []
    for claim in check["claims"]:
        region = region_of(claim)
        if claim["verdict"] is None or region is None:
            continue
        verdict, start, end = Label(claim["verdict"]), *region
        verdicts.append(verdict)
        confidences.append(claim["confidence"])
        place = {"start": start, "end": end, "text": text[start:end]}
        ids = {"id": region_id(claim["id"]), "from_name": config.labels_name}
        result.append(
            {
                **ids,
                "to_name": config.text_name,
                "type": "labels",
                "value": {**place, "labels": [config.label_value(verdict)]},
                "score": round(claim["confidence"], 4),
            }
        )
        if config.rationale_name:
            result.append(
                {
                    **ids,
                    "from_name": config.rationale_name,
                    "to_name": config.text_name,
                    "type": "textarea",
                    "value": {**place, "text": [rationale(claim, config)]},
                }
            )
    score = sum(confidences) / len(confidences) if confidences else 0.0
    if config.overall_name and verdicts:
        kind = (
            "errors"
            if Label.REFUTED in verdicts
            else "unverified"
            if Label.NOT_ENOUGH_INFO in verdicts
            else "clean"
        )
        result.append(
            {
                "id": f"overall-{check['id'][4:12]}",
                "from_name": config.overall_name,
                "to_name": config.text_name,
                "type": "choices",
                "value": {"choices": [dict(config.overall)[kind]]},
                "score": round(score, 4),
            }
        )
    return {"result": result, "score": round(score, 4), "model_version": version}


def predict(
    db: Session,
    checker: Checker,
    tasks: Sequence[dict[str, Any]],
    config: Config,
    project: int,
    corpus: str,
    created_by: str,
) -> list[dict[str, Any]]:
    """Check every task's response together, store each check linked to its task, and
    answer one prediction per task in order (an empty one for a task that cannot be checked,
    with the reason logged)."""
    items = []
    for task in tasks:
        given = task.get("data")
        data: dict[str, Any] = given if isinstance(given, dict) else {}
        text = data.get(config.data_key)
        prompt = data.get("prompt")
        own = data.get("corpus")
        items.append(
            Screened(
                task.get("id", 0),
                text=text if isinstance(text, str) else "",
                prompt=prompt if isinstance(prompt, str) else None,
                corpus=own if isinstance(own, str) else corpus,
            )
        )
    out = []
    versions: dict[str, str] = {}  # one lookup per corpus, not per task
    for task, item, found in zip(tasks, items, checker.check_many(items), strict=True):
        task_id = task.get("id")
        if isinstance(found, ClaimsError | ServiceError):
            log.warning("label studio task %s not predicted: %s", task_id, found.message)
            out.append({"result": [], "score": 0.0, "model_version": ""})
            continue
        name = item.corpus or corpus
        if name not in versions:
            versions[name] = model_version(checker, name, db)
        version = versions[name]
        metadata = {"label_studio": {"project": project, "task": task_id}}
        stored = check_store.record(db, found, metadata, created_by)
        check = check_json(stored)
        if isinstance(task_id, int):
            deliveries.link_task(db, project, task_id, stored.id, version)
        out.append(prediction(check, config, version))
    return out


# Webhooks ----------------------------------------------------------------------------


def kept_payload(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """What a webhook delivery is kept as: its action and only the fields it is processed
    with (never a token: Label Studio's payloads carry the project's).

    Raises:
        BadRequestError: An annotation action without an annotation id, a task or a result.
    """
    action = body.get("action")
    if not isinstance(action, str) or not action:
        raise BadRequestError("a webhook names its action", "bad_webhook")
    project = project_id(body.get("project"))
    if action == TRAINING_ACTION:
        return action, {"project": project}
    annotation = body.get("annotation")
    if not isinstance(annotation, dict):
        raise BadRequestError(f"{action} without an annotation object", "bad_webhook")
    task = annotation.get("task")
    if isinstance(task, dict):
        task = task.get("id")
    if task is None and isinstance(body.get("task"), dict):
        task = body["task"].get("id")
    result = annotation.get("result")
    if not isinstance(annotation.get("id"), int) or not isinstance(task, int):
        raise BadRequestError(f"{action}: the annotation needs an id and a task", "bad_webhook")
    if not isinstance(result, list) or not all(isinstance(r, dict) for r in result):
        raise BadRequestError(f"{action}: the annotation's result is a list", "bad_webhook")
    completed_by = annotation.get("completed_by")
    if isinstance(completed_by, dict):
        completed_by = completed_by.get("id")
    return action, {
        "project": project or project_id(annotation.get("project")),
        "task": task,
        "annotation": annotation["id"],
        "completed_by": completed_by if isinstance(completed_by, int | str) else None,
        "updated_at": str(annotation.get("updated_at") or annotation.get("created_at") or ""),
        "result": result,
    }


def delivery_key(action: str, payload: dict[str, Any]) -> str:
    """The same annotation state delivered again has the same key; each training request
    is new."""
    if action == TRAINING_ACTION:
        return uuid.uuid4().hex
    body = json.dumps([action, payload], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass
class Postponed(Exception):
    """The delivery cannot be finished now (another trainer holds a claim): try later."""

    seconds: float
    reason: str


def apply_annotation(db: Session, delivery: Delivery) -> dict[str, Any]:
    """Record a review for every claim the annotation labels; the outcome, for the record.

    Raises:
        Postponed: A claim is leased to a trainer in the review queue.
    """
    payload = delivery.payload
    check_id = deliveries.task_check(db, payload["project"], payload["task"])
    if check_id is None:
        return {"skipped": "no prediction of this task was made here"}
    check = check_store.get_check(db, check_id)
    if check is None:
        return {"skipped": "the task's check was deleted"}
    by_region = {region_id(c.id): c for c in check.claims}
    by_place = {}
    for stored in check.claims:
        spans = stored.spans or []
        if spans:
            by_place[(min(s["start"] for s in spans), max(s["end"] for s in spans))] = stored
    notes = {
        r.get("id"): r["value"]["text"]
        for r in payload["result"]
        if r.get("type") == "textarea" and isinstance(r.get("value"), dict)
    }
    reviewer = f"{delivery.sender}:user-{payload['completed_by']}"
    made, unchanged, unmatched = [], 0, 0
    for region in payload["result"]:
        value = region.get("value")
        if region.get("type") != "labels" or not isinstance(value, dict):
            continue
        labels = value.get("labels") or []
        found = by_region.get(region.get("id")) or by_place.get(
            (value.get("start"), value.get("end"))
        )
        label = Config().verdict_of(str(labels[0])) if labels else None
        if found is None or label is None or found.verdict is None:
            unmatched += 1
            continue
        claim = found
        latest = db.scalar(
            select(Review.label)
            .where(Review.claim_id == claim.id, Review.reviewer == reviewer)
            .order_by(Review.id.desc())
            .limit(1)
        )
        if latest == label:
            unchanged += 1
            continue
        note = f"Label Studio annotation {payload['annotation']} of task {payload['task']}"
        written = notes.get(region.get("id"))
        if isinstance(written, list) and written:
            said = "\n".join(str(t) for t in written)
            # The predicted rationale kept as it was is not the trainer's note.
            ours = rationale(claim_json(claim), Config()).split("\n")[1:]
            if said.split("\n")[1:] != ours or not ours:
                note += f": {said[:2000]}"
        draft = ReviewDraft(
            claim.id,
            reviewer,
            "confirm" if label == claim.verdict else "correct",
            label,
            claim.version,
            api_key_id=delivery.api_key_id,
            note=note,
            source=f"ls:{delivery.key[:40]}:{claim.id}",
        )
        try:
            review, _ = reviews.submit(db, draft)
        except ConflictError as exc:
            db.rollback()
            if exc.code == "claim_leased":
                held = db.scalar(
                    select(ClaimLease.expires_at).where(ClaimLease.claim_id == claim.id)
                )
                wait = (held - utcnow()).total_seconds() + 1 if held else 1.0
                raise Postponed(max(wait, 1.0), exc.message) from exc
            raise Postponed(1.0, exc.message) from exc  # stale: read the claim again
        made.append({"claim": claim.id, "action": review.action, "label": review.label})
    return {"reviews": made, "unchanged": unchanged, "unmatched": unmatched}


def start_training(db: Session, delivery: Delivery) -> dict[str, Any]:
    """Refit the calibration of every corpus the project's tasks were checked against."""
    fitted: dict[str, Any] = {}
    for corpus in deliveries.project_corpora(db, delivery.payload["project"]):
        try:
            row = reviews.calibrate(db, corpus, "auto", 0.5, delivery.sender)
        except (ClaimsError, ServiceError) as exc:
            fitted[corpus] = {"error": exc.message}
            continue
        fitted[corpus] = {"calibration": row.id, "method": row.method}
    return {"calibrated": fitted}


class DeliveryWorker:
    """Processes kept webhook deliveries, oldest first; :meth:`wake` after a new one."""

    def __init__(self, sessions: sessionmaker[Session], lease_s: float = 60.0) -> None:
        self.sessions = sessions
        self.lease_s = lease_s
        self._woken = threading.Event()

    def wake(self) -> None:
        self._woken.set()

    def run(self, stop: threading.Event, idle_s: float = 2.0) -> None:
        while not stop.is_set():
            try:
                while not stop.is_set() and self.process_one():
                    pass
            except Exception:  # the database went away a moment; try again
                log.exception("label studio deliveries: worker error")
            self._woken.wait(idle_s)
            self._woken.clear()

    def process_one(self) -> bool:
        """Process the next due delivery; False when there is none."""
        with self.sessions() as db:
            delivery = deliveries.lease_next(db, SOURCE, self.lease_s)
            if delivery is None:
                return False
            handle: Callable[[Session, Delivery], dict[str, Any]] = (
                start_training if delivery.action == TRAINING_ACTION else apply_annotation
            )
            try:
                outcome = handle(db, delivery)
            except Postponed as wait:
                db.rollback()
                until = utcnow() + timedelta(seconds=wait.seconds)
                deliveries.postpone(db, delivery.id, until, {"waiting": wait.reason}, counted=False)
                return True
            except Exception as exc:
                db.rollback()
                log.exception("label studio delivery %s failed", delivery.id)
                if delivery.attempts >= deliveries.MAX_ATTEMPTS:
                    deliveries.finish(db, delivery.id, "failed", {"error": repr(exc)[:2000]})
                else:
                    until = utcnow() + timedelta(seconds=2**delivery.attempts)
                    deliveries.postpone(db, delivery.id, until, {"error": repr(exc)[:2000]})
                return True
            deliveries.finish(db, delivery.id, "done", outcome)
            log.info("label studio delivery %s (%s): %s", delivery.id, delivery.action, outcome)
            return True
