"""The review queue: cross-match candidate pairs and the decisions on them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from starlette.concurrency import run_in_threadpool

from api.auth import require
from api.deps import Review, TableExports
from api.envelope import documented
from api.routes.common import CSV_RESPONSES, MAX_ID, CsvResponse, Limit, Offset, strict_query
from api.schemas import DecisionIn, MatchOut, MatchPage, Text
from facedb.domain import MatchState, PairOrder, Permission
from facedb.records import Caller, PairFilter

router = APIRouter(prefix="/v1", tags=["review"], dependencies=[Depends(strict_query)])
Reader = Annotated[Caller, Depends(require(Permission.READ))]
Reviewer = Annotated[Caller, Depends(require(Permission.REVIEW))]
MatchId = Annotated[int, Path(ge=1, le=MAX_ID)]
COMMON = (401, 403, 422, 503)


def pair_filter(
    state: MatchState | None = None,
    min_score: Annotated[float | None, Query(ge=-1, le=1)] = None,
    person_id: Annotated[Text | None, Query(min_length=1, max_length=100)] = None,
    external_ref: Annotated[
        Text | None, Query(min_length=1, max_length=200, description="a case number, either side")
    ] = None,
    warned: Annotated[
        bool | None,
        Query(description="`true`: only pairs with a warning (age, gender); `false`: none"),
    ] = None,
    max_years_between: Annotated[
        float | None, Query(ge=0, le=150, description="the most years between the two photos")
    ] = None,
) -> PairFilter:
    return PairFilter(state=state, min_score=min_score, person_id=person_id,
                      external_ref=external_ref, warned=warned,
                      max_years_between=max_years_between)  # fmt: skip


Where = Annotated[PairFilter, Depends(pair_filter)]
Order = Annotated[
    PairOrder,
    Query(
        description="`evidence`: the queue's order (pairs without warnings first, then "
        "by how far each stands above its persons' other candidates); `score`: highest "
        "cosine first; `date`: most recently raised first"
    ),
]


@router.get("/matches", response_model=MatchPage, responses=documented(*COMMON))
def list_matches(
    review: Review,
    _: Reader,
    where: Where,
    sort: Order = PairOrder.EVIDENCE,
    limit: Limit = 50,
    offset: Offset = 0,
) -> MatchPage:
    """Candidate pairs. `state=pending` is the review queue; `impossible` lists the pairs the
    age check keeps out of it, `superseded` those a confirmation took out, `inconclusive`
    those a reviewer could not decide (back in the queue with a new photo of either)."""
    items, total = review.page(where, sort, limit, offset)
    return MatchPage.of(items, total, limit, offset)


@router.get("/exports/pairs.csv", responses=CSV_RESPONSES)
def pairs_csv(
    tables: TableExports, caller: Reader, where: Where, sort: Order = PairOrder.EVIDENCE
) -> CsvResponse:
    """The pairs `GET /v1/matches` lists with these filters, every one, as CSV for a
    spreadsheet (a cell that would run as a formula is defused); audited as an export."""
    return CsvResponse.download(tables.pairs(where, sort, caller), "pairs.csv")


@router.get("/matches/{match_id}", response_model=MatchOut, responses=documented(*COMMON, 404))
def get_match(match_id: MatchId, review: Review, _: Reader) -> MatchOut:
    return MatchOut.model_validate(review.get(match_id))


@router.put("/matches/{match_id}/claim", response_model=MatchOut,
            responses=documented(*COMMON, 404, 409))  # fmt: skip
def claim(match_id: MatchId, review: Review, caller: Reviewer) -> MatchOut:
    """Claim a pending pair for 30 minutes (again: renewed) so no other reviewer works on it
    unknowingly: their claim or decision is refused (409 `claimed`) until it lapses."""
    return MatchOut.model_validate(review.claim(caller, match_id))


@router.delete("/matches/{match_id}/claim", response_model=MatchOut,
               responses=documented(*COMMON, 404, 409))  # fmt: skip
def release(match_id: MatchId, review: Review, caller: Reviewer) -> MatchOut:
    """Release one's claim on a pair (a decision releases it too)."""
    return MatchOut.model_validate(review.claim(caller, match_id, claim=False))


@router.post(
    "/matches/{match_id}/decision",
    response_model=MatchOut,
    responses=documented(*COMMON, 400, 404, 409),
)
async def decide(match_id: MatchId, body: DecisionIn, review: Review, caller: Reviewer) -> MatchOut:
    """Confirm or reject a pair, or find it `inconclusive` with a `reason` (it leaves the
    queue until a new photo of either person arrives); a second decision replaces the first
    (both are audited)."""
    record = await run_in_threadpool(
        review.decide, caller, match_id, MatchState(body.decision), body.note, body.reason
    )
    return MatchOut.model_validate(record)
