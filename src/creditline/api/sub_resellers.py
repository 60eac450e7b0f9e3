"""A distributor's second-level resellers and the pool it allocates to them."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from creditline import money
from creditline.api.context import Call, call, write_call
from creditline.api.errors import ERROR_RESPONSES
from creditline.api.pool import Body, Pool, RecordOut, Remark, SignedAmount
from creditline.db.tables import MAX_BIGINT, Partner
from creditline.ledger import accounts, pools
from creditline.ledger.accounts import PoolState

router = APIRouter(tags=["sub-resellers"], responses=ERROR_RESPONSES)

SubId = Path(ge=1, le=MAX_BIGINT, description="The second-level reseller's partner id")


class SubResellerOut(BaseModel):
    partner_id: int
    name: str
    pool: Pool
    given: str = Field(
        description="what the distributor has given it, net: the most it can take back "
        "(the rest of the pool's total the platform granted)"
    )

    @classmethod
    def of(cls, p: Partner) -> SubResellerOut:
        return cls(
            partner_id=p.id,
            name=p.name,
            pool=Pool.of(PoolState(p.id, p.pool_total, p.pool_allocated)),
            given=money.to_text(p.pool_from_distributor),
        )


class SubResellerList(BaseModel):
    data: list[SubResellerOut]


class SubResellerIn(Body):
    name: str = Field(min_length=1, max_length=200)


class PoolAllocationIn(Body):
    amount: SignedAmount = Field(
        description="positive gives pool; negative takes back, at most what the "
        "distributor has given (given) and what the sub-reseller has remaining",
    )
    remark: Remark = ""


class PoolAllocationOut(BaseModel):
    record: RecordOut
    sub_reseller: SubResellerOut
    pool: Pool


@router.get("/sub-resellers", response_model=SubResellerList)
def list_sub_resellers(c: Call = Depends(call)) -> SubResellerList:
    """The distributor's second-level resellers and their pools."""
    distributor_id = c.principal.distributor("viewer")
    with c.read() as s:
        rows = accounts.sub_resellers(s, distributor_id)
        return SubResellerList(data=[SubResellerOut.of(p) for p in rows])


@router.get("/sub-resellers/{sub_id}", response_model=SubResellerOut)
def get_sub_reseller(sub_id: int = SubId, c: Call = Depends(call)) -> SubResellerOut:
    """One second-level reseller."""
    distributor_id = c.principal.distributor("viewer")
    with c.read() as s:
        return SubResellerOut.of(accounts.get_sub_reseller(s, distributor_id, sub_id))


@router.post("/sub-resellers", status_code=201, response_model=SubResellerOut)
def create_sub_reseller(body: SubResellerIn, c: Call = Depends(write_call)) -> Response:
    """Create a second-level reseller under the distributor, with an empty pool."""
    distributor_id = c.principal.distributor("admin")
    return c.write(
        lambda s: SubResellerOut.of(
            accounts.create_partner(
                s, name=body.name, kind="sub-reseller", parent_id=distributor_id
            )
        ),
        status_code=201,
    )


def _allocate(
    s: Session, c: Call, distributor_id: int, sub_id: int, amount: int, remark: str
) -> PoolAllocationOut:
    change = pools.allocate_pool(
        s,
        distributor_id=distributor_id,
        sub_reseller_id=sub_id,
        amount=amount,
        origin=c.origin(remark),
    )
    return PoolAllocationOut(
        record=RecordOut.of(change.record),
        sub_reseller=SubResellerOut.of(accounts.get_sub_reseller(s, distributor_id, sub_id)),
        pool=Pool.of(accounts.pool_state(s, distributor_id)),
    )


@router.post("/sub-resellers/{sub_id}/pool-allocations", response_model=PoolAllocationOut)
def allocate_pool(
    body: PoolAllocationIn, sub_id: int = SubId, c: Call = Depends(write_call)
) -> Response:
    """Move pool to a second-level reseller (negative: take back)."""
    distributor_id = c.principal.distributor("operator")
    amount = money.parse_amount(body.amount, allow_negative=True)
    return c.write(lambda s: _allocate(s, c, distributor_id, sub_id, amount, body.remark))
