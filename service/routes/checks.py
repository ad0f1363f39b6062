"""Checks of responses and verification of bare claims."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy.orm import Session

from claims.types import CheckResult
from service.auth import Principal
from service.deps import AnyRoleDep, CheckerDep, MetricsDep, PipelineDep, SessionDep
from service.errors import NotFoundError
from service.metrics import Metrics
from service.schemas import (
    CheckOut,
    CheckRequest,
    ClaimOut,
    RankOut,
    RankRequest,
    VerifyRequest,
    problem_responses,
)
from service.store import checks as check_store

router = APIRouter(
    prefix="/v1", tags=["checks"], responses=problem_responses(400, 401, 403, 404, 413, 422, 500)
)


@router.post("/checks", status_code=201, responses={200: {"description": "Checked, not stored"}})
def create_check(
    response: Response,
    body: CheckRequest,
    checker: CheckerDep,
    db: SessionDep,
    principal: PipelineDep,
    metrics: MetricsDep,
) -> CheckOut:
    """Split a response into claims and verify each against the corpus."""
    result = checker.check(
        body.text, prompt=body.prompt, corpus=body.corpus, top_k=body.options.top_k, db=db
    )
    return _answer(response, body, result, db, principal, metrics)


@router.post(
    "/claims:verify", status_code=201, responses={200: {"description": "Verified, not stored"}}
)
def verify_claims(
    response: Response,
    body: VerifyRequest,
    checker: CheckerDep,
    db: SessionDep,
    principal: PipelineDep,
    metrics: MetricsDep,
) -> CheckOut:
    """Verify the given claims against the corpus without splitting them."""
    result = checker.verify(body.claims, corpus=body.corpus, top_k=body.options.top_k, db=db)
    return _answer(response, body, result, db, principal, metrics)


@router.post("/rank")
def rank_responses(body: RankRequest, checker: CheckerDep, _: PipelineDep) -> RankOut:
    """Order responses to one prompt by factuality, with DPO preference pairs (nothing stored)."""
    ranking = checker.rank(body.prompt, body.responses, body.corpus, body.options.top_k)
    return RankOut.from_ranking(ranking)


def _answer(
    response: Response,
    body: CheckRequest | VerifyRequest,
    result: CheckResult,
    db: Session,
    principal: Principal,
    metrics: Metrics,
) -> CheckOut:
    """Store the check (unless asked not to), count it, and answer it."""
    if body.store:
        out = CheckOut.from_row(check_store.record(db, result, body.metadata, principal.name))
    else:
        response.status_code = 200  # nothing was created
        out = CheckOut.from_result(result, body.metadata)
    metrics.observe(result)
    return out.timed(result) if body.options.timings else out


@router.get("/checks/{check_id}")
def read_check(check_id: str, db: SessionDep, _: AnyRoleDep) -> CheckOut:
    """Return a stored check with its claims, verdicts and evidence."""
    check = check_store.get_check(db, check_id)
    if check is None:
        raise NotFoundError(f"no check with id {check_id!r}", "check_not_found")
    return CheckOut.from_row(check)


@router.get("/claims/{claim_id}")
def read_claim(claim_id: str, db: SessionDep, _: AnyRoleDep) -> ClaimOut:
    """Return one stored claim with its verdict and evidence."""
    claim = check_store.get_claim(db, claim_id)
    if claim is None:
        raise NotFoundError(f"no claim with id {claim_id!r}", "claim_not_found")
    return ClaimOut.from_row(claim)
