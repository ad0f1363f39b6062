"""FastAPI dependencies and their ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from service.auth import Principal, authenticate, authorize
from service.corpora import Corpora
from service.metrics import Metrics
from service.pipeline import Checker
from service.settings import Settings
from service.store import audit as audit_store


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_db(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as db:
        yield db


def get_checker(request: Request) -> Checker:
    checker: Checker = request.app.state.checker
    return checker


def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


def get_corpora(request: Request) -> Corpora:
    corpora: Corpora = request.app.state.checker.corpora
    return corpora


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionDep = Annotated[Session, Depends(get_db)]
CheckerDep = Annotated[Checker, Depends(get_checker)]
CorporaDep = Annotated[Corpora, Depends(get_corpora)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


def _principal(request: Request, db: SessionDep, settings: SettingsDep) -> Principal:
    return authenticate(request, db, settings.auth)


def require(*roles: str) -> Callable[..., Principal]:
    """A dependency that lets a key of ``roles`` (or an admin's) through; its ``roles``
    attribute names them, so that a test can hold every route to what it declares."""

    def dependency(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
        return authorize(principal, roles)

    dependency.roles = roles  # type: ignore[attr-defined]
    return dependency


def require_basic(*roles: str) -> Callable[..., Principal]:
    """As :func:`require`, also taking the key as the password of Basic credentials."""

    def dependency(request: Request, db: SessionDep, settings: SettingsDep) -> Principal:
        return authorize(authenticate(request, db, settings.auth, basic=True), roles)

    dependency.roles = roles  # type: ignore[attr-defined]
    return dependency


def audit(
    request: Request,
    principal: Principal,
    action: str,
    target: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Append an admin action to the audit log, after it succeeded."""
    with request.app.state.sessions() as db:
        audit_store.record(db, principal.name, action, target, details)


AnyRoleDep = Annotated[Principal, Depends(require("trainer", "pipeline"))]
PipelineDep = Annotated[Principal, Depends(require("pipeline"))]
TrainerDep = Annotated[Principal, Depends(require("trainer"))]
AdminDep = Annotated[Principal, Depends(require())]
