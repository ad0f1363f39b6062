"""A Label Studio ML backend: connect a project to ``<service>/integrations/label-studio``.

With authentication on, Label Studio sends a key as the password of Basic
credentials (``/setup``, ``/predict``: a pipeline key, which may create checks)
and as a ``Bearer`` header set on its webhook (``/webhook``: a trainer key,
whose name, with the Label Studio user, becomes the reviewer). ``/health`` and
the label config are open.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from service.auth import Principal, authorize
from service.deps import CheckerDep, SessionDep, SettingsDep, require_basic
from service.integrations import label_studio as ls
from service.schemas import problem_responses
from service.store import deliveries

router = APIRouter(
    prefix="/integrations/label-studio",
    tags=["label studio"],
    responses=problem_responses(400, 401, 403, 413, 422, 500),
)
MAX_TASKS = 100

BackendDep = Annotated[Principal, Depends(require_basic("pipeline"))]
WebhookDep = Annotated[Principal, Depends(require_basic("trainer"))]
# Label Studio's "Start training" reaches /webhook with the backend's own credentials.
TrainingDep = Annotated[Principal, Depends(require_basic("trainer", "pipeline"))]


class Loose(BaseModel):
    """Label Studio sends more than is read here; the rest is ignored, never kept."""

    model_config = ConfigDict(extra="ignore")


class SetupIn(Loose):
    project: str | int | None = None
    schema_: str | None = Field(None, alias="schema")


class PredictIn(Loose):
    tasks: list[dict[str, Any]] = Field(max_length=MAX_TASKS)
    project: str | int | None = None
    label_config: str | None = None


def _corpus(settings: Any, checker: Any) -> str:
    return str(settings.label_studio_corpus or checker.default_corpus)


@router.get("/health")
def health() -> dict[str, str]:
    """What Label Studio polls (1 s timeout)."""
    return {"status": "UP", "model_class": "claimsieve"}


@router.get("/config", response_class=Response, responses={200: {"content": {"text/xml": {}}}})
def label_config() -> Response:
    """The label config to paste into the project (Settings → Labeling Interface → Code)."""
    return Response(ls.shipped_config(), media_type="text/xml")


@router.post("/setup")
def setup(
    body: SetupIn, db: SessionDep, checker: CheckerDep, settings: SettingsDep, _: BackendDep
) -> dict[str, str]:
    """Cheap and idempotent: the label config is read and the model version answered (it
    changes with the verifier or the corpus version)."""
    ls.parse_config(body.schema_)
    return {"model_version": ls.model_version(checker, _corpus(settings, checker), db)}


@router.post("/predict")
def predict(
    body: PredictIn,
    db: SessionDep,
    checker: CheckerDep,
    settings: SettingsDep,
    principal: BackendDep,
) -> dict[str, list[dict[str, Any]]]:
    """One prediction per task, in order: a region per claim, its rationale, an overall choice."""
    config = ls.parse_config(body.label_config)
    results = ls.predict(
        db,
        checker,
        body.tasks,
        config,
        ls.project_id(body.project),
        _corpus(settings, checker),
        principal.name,
    )
    return {"results": results}


@router.post("/webhook")
def webhook(
    body: Annotated[dict[str, Any], Body()],
    request: Request,
    db: SessionDep,
    principal: TrainingDep,
) -> dict[str, Any]:
    """Kept at once, processed in the background; a redelivery is recognised. Handles
    ANNOTATION_CREATED and ANNOTATION_UPDATED (a trainer key: they become reviews) and
    START_TRAINING (a trainer key, or the pipeline key Label Studio's backend connection
    sends); other events are ignored."""
    if body.get("action") not in (*ls.ANNOTATION_ACTIONS, ls.TRAINING_ACTION):
        return {"status": "ignored", "action": body.get("action")}
    if body["action"] in ls.ANNOTATION_ACTIONS:
        authorize(principal, ("trainer",))
    action, payload = ls.kept_payload(body)
    received = deliveries.receive(
        db,
        ls.SOURCE,
        ls.delivery_key(action, payload),
        action,
        payload,
        principal.name,
        principal.key_id,
    )
    worker = getattr(request.app.state, "label_studio", None)
    if worker is not None:
        worker.wake()
    status = "duplicate" if received.duplicate else "queued"
    return {"status": status, "delivery": received.id}


@router.get("/deliveries")
def recent_deliveries(
    db: SessionDep, _: WebhookDep, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> list[dict[str, Any]]:
    """The latest webhook deliveries, newest first, with their state and outcome."""
    return [
        {
            "id": d.id,
            "action": d.action,
            "state": d.state,
            "attempts": d.attempts,
            "task": d.payload.get("task"),
            "annotation": d.payload.get("annotation"),
            "outcome": d.outcome,
            "received_at": d.received_at,
            "finished_at": d.finished_at,
        }
        for d in deliveries.recent(db, ls.SOURCE, limit)
    ]
