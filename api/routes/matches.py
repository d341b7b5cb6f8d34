"""The review queue: cross-match candidate pairs and the decisions on them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from starlette.concurrency import run_in_threadpool

from api.auth import require
from api.deps import Review
from api.envelope import documented
from api.routes.common import MAX_ID, Limit, Offset, strict_query
from api.schemas import DecisionIn, MatchOut, MatchPage, Text
from facedb.domain import MatchState, PairOrder, Permission
from facedb.records import Caller, PairFilter

router = APIRouter(prefix="/v1", tags=["review"], dependencies=[Depends(strict_query)])
Reader = Annotated[Caller, Depends(require(Permission.READ))]
Reviewer = Annotated[Caller, Depends(require(Permission.REVIEW))]
MatchId = Annotated[int, Path(ge=1, le=MAX_ID)]
COMMON = (401, 403, 422, 503)


@router.get("/matches", response_model=MatchPage, responses=documented(*COMMON))
def list_matches(
    review: Review,
    _: Reader,
    state: MatchState | None = None,
    min_score: Annotated[float | None, Query(ge=-1, le=1)] = None,
    person_id: Annotated[Text | None, Query(min_length=1, max_length=100)] = None,
    sort: Annotated[
        PairOrder,
        Query(
            description="`evidence`: the queue's order (pairs without warnings first, then "
            "by how far each stands above its persons' other candidates); `score`: highest "
            "cosine first; `date`: most recently raised first"
        ),
    ] = PairOrder.EVIDENCE,
    limit: Limit = 50,
    offset: Offset = 0,
) -> MatchPage:
    """Candidate pairs. `state=pending` is the review queue; `impossible` lists the pairs the
    age check keeps out of it, `superseded` those a confirmation took out."""
    where = PairFilter(state=state, min_score=min_score, person_id=person_id)
    items, total = review.page(where, sort, limit, offset)
    return MatchPage.of(items, total, limit, offset)


@router.get("/matches/{match_id}", response_model=MatchOut, responses=documented(*COMMON, 404))
def get_match(match_id: MatchId, review: Review, _: Reader) -> MatchOut:
    return MatchOut.model_validate(review.get(match_id))


@router.post(
    "/matches/{match_id}/decision",
    response_model=MatchOut,
    responses=documented(*COMMON, 400, 404, 409),
)
async def decide(match_id: MatchId, body: DecisionIn, review: Review, caller: Reviewer) -> MatchOut:
    """Confirm or reject a pair; a second decision replaces the first (both are audited)."""
    record = await run_in_threadpool(
        review.decide, caller, match_id, MatchState(body.decision), body.note
    )
    return MatchOut.model_validate(record)
