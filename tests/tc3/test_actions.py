"""Every action through Tencent's official Python SDK against a live server, on both
engines: a script written for Tencent runs with only the endpoint and keys changed."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, select
from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
    TencentCloudSDKException,
)
from tencentcloud.intlpartnersmgt.v20220928 import models
from tests.tc3.conftest import Client, World

from creditline.db import transaction
from creditline.db.tables import AllocationRecord
from creditline.ledger import accounts
from creditline.ledger.verify import verify

TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
Sdk = Callable[..., Client]


def _request(model: type[Any], **fields: Any) -> Any:
    request = model()
    request._deserialize(fields)
    return request


def refused(call: Callable[[], object]) -> tuple[str, str]:
    """The Tencent error code and message a call is refused with."""
    with pytest.raises(TencentCloudSDKException) as error:
        call()
    assert error.value.get_request_id()
    return error.value.get_code(), error.value.get_message()


def _allocate(client: Client, uin: int, amount: float, remark: str = "") -> Any:
    return client.AllocateCustomerCredit(
        _request(
            models.AllocateCustomerCreditRequest, ClientUin=uin, AddedCredit=amount, Remark=remark
        )
    )


def test_script_allocates_lists_customers_and_reads_history(
    sdk: Sdk, world: World, engine_with_server_key: Engine
) -> None:
    client = sdk(world.admin)
    answer = _allocate(client, world.second_customer, 150.25, "first")
    assert (answer.TotalCredit, answer.RemainingCredit) == (150.25, 150.25)
    answer = _allocate(client, world.second_customer, -50.0, "back")
    assert (answer.TotalCredit, answer.RemainingCredit) == (100.25, 100.25)

    listed = client.QueryCustomersCredit(
        _request(models.QueryCustomersCreditRequest, Page=1, PageSize=10)
    )
    assert listed.Total == 2
    by_uin = {row.ClientUin: row for row in listed.Data}
    assert set(by_uin) == {world.customer, world.second_customer}
    alpha = by_uin[world.customer]
    assert (alpha.Name, alpha.Email, alpha.Mobile, alpha.Remark) == (
        "Alpha Ltd",
        "ops@alpha.example",
        "+1 555 0100",
        "gold",
    )
    assert (alpha.Credit, alpha.RemainingCredit, alpha.IdentifyType) == (200.0, 200.0, 2)
    assert (alpha.Arrears, alpha.RecentExpiry, alpha.Force) == ("0", "", 0)
    assert TIME.match(alpha.AssociationTime)

    history = client.QueryCreditAllocationHistory(
        _request(
            models.QueryCreditAllocationHistoryRequest,
            ClientUin=world.second_customer,
            Page=1,
            PageSize=10,
        )
    )
    assert history.Total == 2
    newest, oldest = history.History
    assert (newest.Credit, newest.AllocatedCredit, newest.ClientCreditAfter) == (
        -50.0,
        100.25,
        100.25,
    )
    assert (oldest.Credit, oldest.Operator, oldest.Remark) == (150.25, "ci-admin", "first")
    assert TIME.match(oldest.AllocatedTime)

    with transaction(engine_with_server_key) as s:
        rows = s.execute(
            select(AllocationRecord.source, AllocationRecord.operator).where(
                AllocationRecord.customer_uin == world.second_customer
            )
        ).all()
        assert [tuple(row) for row in rows] == [("tc3", "ci-admin"), ("tc3", "ci-admin")]
        assert verify(s) == []


def test_search_order_and_pages(sdk: Sdk, world: World) -> None:
    client = sdk(world.viewer)

    def page(**fields: Any) -> Any:
        return client.QueryCustomersCredit(
            _request(models.QueryCustomersCreditRequest, Page=1, PageSize=10, **fields)
        )

    assert [r.ClientUin for r in page(FilterType="Name", Filter="alp").Data] == [world.customer]
    assert [r.ClientUin for r in page(FilterType="Email", Filter="ALPHA.ex").Data] == [
        world.customer
    ]
    assert page(FilterType="Remark", Filter="silver").Total == 0
    only = page(FilterType="ClientUin", Filter=str(world.second_customer))
    assert [r.ClientUin for r in only.Data] == [world.second_customer]
    assert page(FilterType="ClientUin", Filter=str(world.other_customer)).Total == 0
    assert [r.ClientUin for r in page(Order="asc").Data] == [world.customer, world.second_customer]
    assert [r.ClientUin for r in page(Order="desc").Data] == [
        world.second_customer,
        world.customer,
    ]
    second = client.QueryCustomersCredit(
        _request(models.QueryCustomersCreditRequest, Page=2, PageSize=1, Order="asc")
    )
    assert (second.Total, [r.ClientUin for r in second.Data]) == (2, [world.second_customer])
    code, _ = refused(lambda: page(FilterType="Phone", Filter="1"))
    assert code == "InvalidParameterValue"


def test_refused_allocations_change_nothing(sdk: Sdk, world: World) -> None:
    client = sdk(world.operator)
    code, message = refused(lambda: _allocate(client, world.customer, 800.01))
    assert code == "InvalidParameterValue.CreditAmountOutOfRange", message
    code, message = refused(lambda: _allocate(client, world.customer, -200.01))
    assert code == "InvalidParameterValue.CreditAmountOutOfRange", message
    for amount in (1.005, 0.001, -0.125):
        code, message = refused(lambda amount=amount: _allocate(client, world.customer, amount))
        assert code == "InvalidParameterValue", message
        assert "two decimal" in message
    code, _ = refused(lambda: _allocate(client, world.customer, 0.0))
    assert code == "InvalidParameterValue"
    partner = client.QueryPartnerCredit(models.QueryPartnerCreditRequest())
    assert (partner.TotalCredit, partner.AllocatedCredit, partner.RemainingCredit) == (
        1000.0,
        200.0,
        800.0,
    )
    assert (partner.CustomerTotalCredit, partner.CustomerRemainingCredit) == (200.0, 200.0)
    # The whole remaining pool, to the cent, is allowed.
    assert _allocate(client, world.customer, 800.0).TotalCredit == 1000.0


def test_queries_by_uin(sdk: Sdk, world: World) -> None:
    client = sdk(world.admin)
    by_list = client.QueryCreditByUinList(
        _request(
            models.QueryCreditByUinListRequest,
            UinList=[world.second_customer, world.customer, world.customer],
        )
    )
    assert [(d.Uin, d.TotalCredit, d.RemainingCredit) for d in by_list.Data] == [
        (world.second_customer, 0.0, 0.0),
        (world.customer, 200.0, 200.0),
    ]
    direct = client.QueryDirectCustomersCredit(models.QueryDirectCustomersCreditRequest())
    assert [d.Uin for d in direct.Data] == [world.customer, world.second_customer]

    info = client.DescribeCustomerInfo(
        _request(models.DescribeCustomerInfoRequest, CustomerUin=[world.customer])
    )
    (alpha,) = info.Data
    assert (alpha.CustomerUin, alpha.Name, alpha.Email, alpha.Phone, alpha.Mark) == (
        str(world.customer),
        "Alpha Ltd",
        "ops@alpha.example",
        "+1 555 0100",
        "gold",
    )
    assert (alpha.AccountStatus, alpha.AuthStatus, alpha.AuthType, alpha.HasExpense) == (
        "0",
        "3",
        1,
        0,
    )
    assert TIME.match(alpha.BindTime)

    uins = client.DescribeCustomerUin(
        _request(models.DescribeCustomerUinRequest, Page=1, PageSize=1)
    )
    assert (uins.Total, [d.CustomerUin for d in uins.Data]) == ("2", [str(world.customer)])

    changed = client.ModifyClientRemark(
        _request(models.ModifyClientRemarkRequest, ClientUin=str(world.customer), Remark="vip")
    )
    assert changed.ClientRemark == "vip"


def test_another_partners_uin_answers_like_a_missing_one(sdk: Sdk, world: World) -> None:
    client = sdk(world.admin)
    missing = world.other_customer + 1000
    calls: dict[str, Callable[[int], object]] = {
        "allocate": lambda uin: _allocate(client, uin, 1.0),
        "history": lambda uin: client.QueryCreditAllocationHistory(
            _request(models.QueryCreditAllocationHistoryRequest, ClientUin=uin, Page=1, PageSize=10)
        ),
        "by list": lambda uin: client.QueryCreditByUinList(
            _request(models.QueryCreditByUinListRequest, UinList=[world.customer, uin])
        ),
        "info": lambda uin: client.DescribeCustomerInfo(
            _request(models.DescribeCustomerInfoRequest, CustomerUin=[uin])
        ),
        "remark": lambda uin: client.ModifyClientRemark(
            _request(models.ModifyClientRemarkRequest, ClientUin=str(uin), Remark="x")
        ),
    }
    for name, call in calls.items():
        answers = []
        for uin in (world.other_customer, missing):
            code, message = refused(lambda call=call, uin=uin: call(uin))
            answers.append((code, message.replace(str(uin), "<uin>")))
        assert answers[0] == answers[1], name
        assert answers[0][0] == "ResourceNotFound", name

    distributor = sdk(world.distributor_admin)
    answers = []
    for uin in (world.other_sub_reseller, world.other_sub_reseller + 1000):
        code, message = refused(
            lambda uin=uin: distributor.AllocateCreditPool(
                _request(models.AllocateCreditPoolRequest, SubAgentUin=uin, Credit=1.0)
            )
        )
        answers.append((code, message.replace(str(uin), "<uin>")))
    assert answers[0] == answers[1]
    assert answers[0][0] == "ResourceNotFound"


def test_credit_pool_for_a_distributor_only(sdk: Sdk, world: World) -> None:
    distributor = sdk(world.distributor_admin)

    def pool(client: Client, uin: int, amount: float) -> Any:
        return client.AllocateCreditPool(
            _request(models.AllocateCreditPoolRequest, SubAgentUin=uin, Credit=amount)
        )

    answer = pool(distributor, world.sub_reseller, 120.5)
    assert (answer.TotalCredit, answer.RemainingCredit) == (120.5, 120.5)
    code, _ = refused(lambda: pool(distributor, world.sub_reseller, 379.51))
    assert code == "InvalidParameterValue.CreditAmountOutOfRange"
    code, _ = refused(lambda: pool(distributor, world.sub_reseller, 1.001))
    assert code == "InvalidParameterValue"
    code, _ = refused(lambda: pool(sdk(world.admin), world.sub_reseller, 1.0))
    assert code == "FailedOperation.UinNotAgent"


def test_roles(sdk: Sdk, world: World, engine_with_server_key: Engine) -> None:
    viewer = sdk(world.viewer)
    assert viewer.QueryPartnerCredit(models.QueryPartnerCreditRequest()).TotalCredit == 1000.0
    code, _ = refused(lambda: _allocate(viewer, world.customer, 1.0))
    assert code == "UnauthorizedOperation"
    code, _ = refused(
        lambda: viewer.ModifyClientRemark(
            _request(models.ModifyClientRemarkRequest, ClientUin=str(world.customer), Remark="x")
        )
    )
    assert code == "UnauthorizedOperation"

    customer = sdk(world.customer_key)
    quota = customer.QueryCustomerBillingQuota(
        _request(models.QueryCustomerBillingQuotaRequest, EventId=7, ComponentName="ci")
    ).Data
    assert (quota.TotalCredit, quota.RemainingCredit, quota.RemainingVoucher) == (
        200.0,
        200.0,
        0.0,
    )
    assert (quota.Force, quota.PrepayFrozen, quota.PostpayFrozen) == (0, 0.0, 0.0)
    for call in (
        lambda: customer.QueryPartnerCredit(models.QueryPartnerCreditRequest()),
        lambda: _allocate(customer, world.customer, 1.0),
        lambda: sdk(world.admin).QueryCustomerBillingQuota(
            models.QueryCustomerBillingQuotaRequest()
        ),
        lambda: sdk(world.platform).QueryPartnerCredit(models.QueryPartnerCreditRequest()),
        lambda: _allocate(sdk(world.platform), world.customer, 1.0),
    ):
        assert refused(call)[0] == "UnauthorizedOperation"
    with transaction(engine_with_server_key) as s:
        assert accounts.get_customer(s, world.reseller, world.customer).total_credit == 20_000
        assert accounts.get_customer(s, world.reseller, world.customer).remark == "gold"


def test_get_query_string_form(sdk: Sdk, world: World) -> None:
    client = sdk(world.admin, method="GET")
    assert _allocate(client, world.second_customer, 10.5, "via get").TotalCredit == 10.5
    code, _ = refused(lambda: _allocate(client, world.second_customer, 10.555))
    assert code == "InvalidParameterValue"
    by_list = client.QueryCreditByUinList(
        _request(
            models.QueryCreditByUinListRequest, UinList=[world.customer, world.second_customer]
        )
    )
    assert [d.TotalCredit for d in by_list.Data] == [200.0, 10.5]


def test_parameter_errors(sdk: Sdk, world: World) -> None:
    client = sdk(world.admin)
    assert refused(lambda: client.call("NoSuchThing", {}))[0] == "InvalidAction"
    assert refused(lambda: client.call("DescribeBillSummary", {}))[0] == "UnsupportedOperation"
    assert refused(lambda: client.call("QueryCustomersCredit", {"Page": 1}))[0] == (
        "MissingParameter"
    )
    assert refused(lambda: client.call("AllocateCustomerCredit", {"ClientUin": 1}))[0] == (
        "MissingParameter"
    )
    bad_type = {"ClientUin": "abc", "AddedCredit": 1}
    assert refused(lambda: client.call("AllocateCustomerCredit", bad_type))[0] == (
        "InvalidParameter"
    )
    text_amount = {"ClientUin": world.customer, "AddedCredit": "1"}
    assert refused(lambda: client.call("AllocateCustomerCredit", text_amount))[0] == (
        "InvalidParameter"
    )
    too_many = {"UinList": list(range(1, 52))}
    assert refused(lambda: client.call("QueryCreditByUinList", too_many))[0] == (
        "InvalidParameterValue"
    )
    big_page = {"Page": 1, "PageSize": 101}
    assert refused(lambda: client.call("DescribeCustomerUin", big_page))[0] == (
        "InvalidParameterValue"
    )
