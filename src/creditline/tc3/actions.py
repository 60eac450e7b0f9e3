"""The intlpartnersmgt actions creditline answers, each a thin adapter over the ledger.

Every handler reads Tencent's fields, calls the same core functions as REST and the
console, and answers Tencent's fields. Amounts leave as :class:`Cents` (two-decimal JSON
numbers); times as ``YYYY-MM-DD HH:MM:SS`` UTC. Fields Tencent has and creditline has no
source for are answered with fixed values documented in docs/tencent-compatibility.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from creditline import audit
from creditline.auth import keys
from creditline.db.tables import Customer
from creditline.ledger import accounts, credit, customers, listings, pools, records
from creditline.tc3.callers import CUSTOMER, PARTNER, PLATFORM, WRITING_ROLES, Caller
from creditline.tc3.envelope import Cents, tencent_time
from creditline.tc3.errors import (
    INVALID_ACTION,
    INVALID_PARAMETER_VALUE,
    MISSING_PARAMETER,
    RESOURCE_NOT_FOUND,
    UIN_NOT_AGENT,
    UNAUTHORIZED_OPERATION,
    UNSUPPORTED_OPERATION,
    TencentError,
)
from creditline.tc3.params import Params

SOURCE = "tc3"
Handler = Callable[[Session, Caller, Params], dict[str, Any]]


@dataclass(frozen=True)
class Action:
    """One action: who may call it and what answers it."""

    name: str
    handler: Handler
    #: ``partner`` or ``customer``: the kind of key that may call it.
    caller_kind: str
    #: Whether it changes anything (a viewer key may not call it).
    writes: bool = False


#: QueryCustomersCredit's FilterType values and the core's search fields they name.
FILTER_TYPES = {"ClientUin": "uin", "Name": "name", "Remark": "remark", "Email": "email"}


def _partner_id(caller: Caller) -> int:
    assert caller.partner_id is not None  # authorize() admits only partner keys here
    return caller.partner_id


def origin_of(caller: Caller, remark: str = "") -> records.Origin:
    return records.Origin(operator=caller.key_name, source=SOURCE, remark=remark)


def _not_found(uins: Iterable[int]) -> TencentError:
    # Worded only from what the caller sent, so a UIN of another partner and a UIN of
    # no one answer alike.
    listed = ", ".join(str(uin) for uin in uins)
    return TencentError(RESOURCE_NOT_FOUND, f"no customer {listed}")


def _owned(session: Session, caller: Caller, uins: list[int]) -> list[Customer]:
    found = customers.by_uins(session, _partner_id(caller), uins)
    missing = [uin for uin in uins if uin not in found]
    if missing:
        raise _not_found(missing)
    return [found[uin] for uin in uins]


def allocate_customer_credit(session: Session, caller: Caller, params: Params) -> dict[str, Any]:
    """Allocate (positive) or withdraw (negative) credit for one customer."""
    uin = params.uin("ClientUin")
    amount = params.amount("AddedCredit")
    remark = params.text("Remark", required=False) or ""
    require = None
    if caller.key_id is not None:
        require = credit.Requirement(keys.LIVE_KEY, {"require_key_id": caller.key_id})
    change = credit.allocate_credit(
        session,
        partner_id=_partner_id(caller),
        customer_uin=uin,
        amount=amount,
        origin=origin_of(caller, remark),
        require=require,
    )
    audit.saw(session, change.changes)
    return {"TotalCredit": Cents(change.total_credit), "RemainingCredit": Cents(change.available)}


def allocate_credit_pool(session: Session, caller: Caller, params: Params) -> dict[str, Any]:
    """A distributor allocates (or takes back) pool of one of its second-level resellers."""
    sub_reseller = params.uin("SubAgentUin")
    amount = params.amount("Credit")
    if accounts.get_partner(session, _partner_id(caller)).kind != "distributor":
        raise TencentError(UIN_NOT_AGENT, "only a distributor allocates credit pools")
    change = pools.allocate_pool(
        session,
        distributor_id=_partner_id(caller),
        sub_reseller_id=sub_reseller,
        amount=amount,
        origin=origin_of(caller),
    )
    return {
        "RemainingCredit": Cents(change.pool.remaining),
        "TotalCredit": Cents(change.pool.total),
    }


def query_partner_credit(session: Session, caller: Caller, params: Params) -> dict[str, Any]:
    """The caller's own pool, and what its customers hold."""
    pool = accounts.pool_state(session, _partner_id(caller))
    held = customers.totals(session, _partner_id(caller))
    return {
        "AllocatedCredit": Cents(pool.allocated),
        "TotalCredit": Cents(pool.total),
        "RemainingCredit": Cents(pool.remaining),
        "CustomerTotalCredit": Cents(held.total_credit),
        "CustomerRemainingCredit": Cents(held.available),
    }


def _customer_credit_data(customer: Customer) -> dict[str, Any]:
    return {
        "Name": customer.name,
        "Type": customer.type,
        "Mobile": customer.mobile,
        "Email": customer.email,
        "Arrears": "0",
        "AssociationTime": tencent_time(customer.associated_at),
        "RecentExpiry": "",
        "ClientUin": customer.uin,
        "Credit": Cents(customer.total_credit),
        "RemainingCredit": Cents(customer.available),
        "IdentifyType": customer.identity_status,
        "Remark": customer.remark,
        "Force": 0,
    }


def query_customers_credit(session: Session, caller: Caller, params: Params) -> dict[str, Any]:
    """A page of the caller's customers with their credit, optionally searched."""
    filter_type = params.text("FilterType", required=False) or None
    filter_text = params.text("Filter", required=False, longest=320)
    if filter_type is None and filter_text:
        raise TencentError(MISSING_PARAMETER, "the parameter FilterType is missing")
    if filter_type is not None and filter_type not in FILTER_TYPES:
        raise TencentError(
            INVALID_PARAMETER_VALUE,
            f"FilterType must be one of {', '.join(FILTER_TYPES)}",
        )
    order = (params.text("Order", required=False) or "desc").lower()
    if order not in ("asc", "desc"):
        raise TencentError(INVALID_PARAMETER_VALUE, "Order must be asc or desc")
    page, size = params.page()
    found = customers.search(
        session,
        _partner_id(caller),
        text=(filter_text or "") if filter_type is not None else "",
        field=FILTER_TYPES[filter_type] if filter_type is not None else "any",
        sort="associated_at",
        descending=order == "desc",
        offset=(page - 1) * size,
        limit=size,
    )
    return {"Data": [_customer_credit_data(c) for c in found.rows], "Total": found.counted}


def query_credit_allocation_history(
    session: Session, caller: Caller, params: Params
) -> dict[str, Any]:
    """A page of one customer's allocations and withdrawals, newest first."""
    uin = params.uin("ClientUin")
    page, size = params.page()
    _owned(session, caller, [uin])
    history, total = listings.customer_history_page(
        session, _partner_id(caller), uin, page=page, size=size
    )
    return {
        "Total": total,
        "History": [
            {
                "AllocatedTime": tencent_time(record.created_at),
                "Operator": record.operator,
                "Credit": Cents(record.change),
                "AllocatedCredit": Cents(record.total_after),
                "ClientCreditAfter": Cents(record.available_after),
                "Remark": record.remark,
            }
            for record in history
        ],
    }


def _direct_credit_data(customer: Customer) -> dict[str, Any]:
    return {
        "Uin": customer.uin,
        "TotalCredit": Cents(customer.total_credit),
        "RemainingCredit": Cents(customer.available),
    }


def query_credit_by_uin_list(session: Session, caller: Caller, params: Params) -> dict[str, Any]:
    """The credit of up to 50 of the caller's customers, in the order asked."""
    uins = params.uin_list("UinList", most=50)
    return {"Data": [_direct_credit_data(c) for c in _owned(session, caller, uins)]}


def query_direct_customers_credit(
    session: Session, caller: Caller, params: Params
) -> dict[str, Any]:
    """The credit of every customer of the caller."""
    everyone = listings.all_customers(session, _partner_id(caller))
    return {"Data": [_direct_credit_data(c) for c in everyone]}


def query_customer_billing_quota(
    session: Session, caller: Caller, params: Params
) -> dict[str, Any]:
    """A customer key reads its own credit."""
    # Both are tags for Tencent's logs; read so a wrong type is still refused.
    params.integer("EventId", minimum=-(2**63), maximum=2**63 - 1, required=False)
    params.text("ComponentName", required=False)
    assert caller.customer_uin is not None  # authorize() admits only customer keys here
    customer = accounts.get_customer(session, None, caller.customer_uin)
    return {
        "Data": {
            "TotalCredit": Cents(customer.total_credit),
            "RemainingCredit": Cents(customer.available),
            "RemainingVoucher": Cents(0),
            "Force": 0,
            "PrepayFrozen": Cents(0),
            "PostpayFrozen": Cents(0),
        }
    }


def modify_client_remark(session: Session, caller: Caller, params: Params) -> dict[str, Any]:
    """Change one customer's remark."""
    uin = params.uin_text("ClientUin")
    remark = params.text("Remark")
    assert remark is not None
    _owned(session, caller, [uin])
    customer = accounts.set_remark(session, partner_id=_partner_id(caller), uin=uin, remark=remark)
    return {"ClientRemark": customer.remark}


#: Identity status (0 none, 1 personal, 2 company) as Tencent's AuthStatus and AuthType.
_AUTH_STATUS = {0: "-1", 1: "3", 2: "3"}
_AUTH_TYPE = {0: -1, 1: 0, 2: 1}


def describe_customer_info(session: Session, caller: Caller, params: Params) -> dict[str, Any]:
    """Contact and identity details of up to 20 of the caller's customers."""
    uins = params.uin_list("CustomerUin", most=20)
    customers = _owned(session, caller, uins)
    spent = listings.customers_with_usage(session, _partner_id(caller), uins)
    return {
        "Data": [
            {
                "CustomerUin": str(c.uin),
                "Email": c.email,
                "Phone": c.mobile,
                "Mark": c.remark,
                "Name": c.name,
                "BindTime": tencent_time(c.associated_at),
                "AccountStatus": "0",
                "AuthStatus": _AUTH_STATUS[c.identity_status],
                "AuthType": _AUTH_TYPE[c.identity_status],
                "CidRegisterTime": "",
                "UinRegisterTime": tencent_time(c.associated_at),
                "AuthPassTime": "",
                "HasExpense": 1 if c.uin in spent else 0,
            }
            for c in customers
        ]
    }


def describe_customer_uin(session: Session, caller: Caller, params: Params) -> dict[str, Any]:
    """A page of the caller's customer UINs."""
    page, size = params.page()
    uins, total = listings.customer_uins_page(session, _partner_id(caller), page=page, size=size)
    return {"Data": [{"CustomerUin": str(uin)} for uin in uins], "Total": str(total)}


ACTIONS: dict[str, Action] = {
    action.name: action
    for action in (
        Action("AllocateCustomerCredit", allocate_customer_credit, PARTNER, writes=True),
        Action("AllocateCreditPool", allocate_credit_pool, PARTNER, writes=True),
        Action("QueryPartnerCredit", query_partner_credit, PARTNER),
        Action("QueryCustomersCredit", query_customers_credit, PARTNER),
        Action("QueryCreditAllocationHistory", query_credit_allocation_history, PARTNER),
        Action("QueryCreditByUinList", query_credit_by_uin_list, PARTNER),
        Action("QueryDirectCustomersCredit", query_direct_customers_credit, PARTNER),
        Action("QueryCustomerBillingQuota", query_customer_billing_quota, CUSTOMER),
        Action("ModifyClientRemark", modify_client_remark, PARTNER, writes=True),
        Action("DescribeCustomerInfo", describe_customer_info, PARTNER),
        Action("DescribeCustomerUin", describe_customer_uin, PARTNER),
    )
}

#: The service's other actions (as of SDK 3.1): known to Tencent, not offered here.
UNSUPPORTED = frozenset(
    {
        "ApproveClientApply",
        "ApproveSubAgentApply",
        "CreateAccount",
        "CreateAndSendClientInvitationMail",
        "DescribeBillDetail",
        "DescribeBillDownloadUrl",
        "DescribeBillSummary",
        "DescribeBillSummaryByPayMode",
        "DescribeBillSummaryByProduct",
        "DescribeBillSummaryByRegion",
        "DescribeCustomerBillDetail",
        "DescribeCustomerBillDetailByDay",
        "DescribeCustomerBillDownloadUrl",
        "DescribeCustomerBillSummary",
        "DescribeCustomerOwnCostExplorerFilter",
        "DescribeCustomerOwnCostExplorerSummary",
        "DescribeCustomerOwnVoucherList",
        "DescribeCustomerOwnVoucherUsageDetails",
        "DescribeCustomerVoucherList",
        "DescribeCustomerVoucherUsageDetails",
        "DescribeRebateDownloadUrl",
        "ForceQN",
        "GetCountryCodes",
        "GetTradeConfigList",
        "QueryAccountVerificationStatus",
        "QueryInvitationInfo",
        "QueryPendingClientsV2",
        "QueryPendingSubAgentsV2",
        "QueryPolicyProductListByCode",
        "QuerySubAgentsDetailV2",
        "QueryT1IndirectCustomersDetail",
        "QueryVoucherAmountByUin",
        "QueryVoucherListByUin",
        "QueryVoucherPool",
        "SendVerifyCode",
    }
)


def resolve(name: str) -> Action:
    """The action called ``name``: ``UnsupportedOperation`` for the service's others,
    ``InvalidAction`` for names the service does not have."""
    action = ACTIONS.get(name)
    if action is not None:
        return action
    if name in UNSUPPORTED:
        raise TencentError(UNSUPPORTED_OPERATION, f"creditline does not offer {name}")
    raise TencentError(INVALID_ACTION, f"{name!r} is not an action of intlpartnersmgt")


def authorize(action: Action, caller: Caller) -> None:
    """Refuse a key whose principal or role may not call ``action``.

    Platform keys call none: every action is a partner's or a customer's own view.
    A viewer key may only read; a customer key may only read its own quota.
    """
    if caller.kind == PLATFORM:
        raise TencentError(
            UNAUTHORIZED_OPERATION,
            f"a platform key cannot call {action.name}; use a partner or customer key",
        )
    if caller.kind != action.caller_kind:
        who = "customer" if caller.kind == CUSTOMER else "partner"
        raise TencentError(UNAUTHORIZED_OPERATION, f"a {who} key cannot call {action.name}")
    if caller.kind == PARTNER and action.writes and caller.role not in WRITING_ROLES:
        raise TencentError(
            UNAUTHORIZED_OPERATION, f"the key's role {caller.role} cannot call {action.name}"
        )
