"""The one-shard judge (tests/shard_scope.py) on sample statements: it passes what names
one partner, and fails what does not — so an unscoped query added anywhere fails the
suite on PostgreSQL."""

from __future__ import annotations

import pytest
from tests.shard_scope import ALLOWED, DISTRIBUTED, UNIQUE_UNKEYED, judge, offence

from creditline.db.distribution import TABLE_CLASS

ONE_SHARD = [
    "SELECT * FROM customers WHERE customers.partner_id = %(p)s",
    "SELECT * FROM customers WHERE partner_id = %(p)s::BIGINT AND uin = %(u)s",
    "SELECT * FROM customers WHERE partner_id IN (%(p)s)",
    "SELECT * FROM partners WHERE partners.id = %(p)s",
    "SELECT * FROM customers WHERE partner_id = 7",
    # A join pinned through its ON.
    "SELECT * FROM alarms AS a JOIN customers AS c ON c.uin = a.customer_uin"
    " AND c.partner_id = a.partner_id WHERE a.partner_id = %(p)s",
    # CTEs and subqueries, each scoped.
    "WITH mine AS (SELECT uin FROM customers WHERE partner_id = %(p)s)"
    " SELECT * FROM alarms WHERE alarms.partner_id = %(p)s"
    " AND customer_uin IN (SELECT uin FROM mine)",
    "SELECT * FROM customers AS c WHERE c.partner_id = %(p)s AND EXISTS"
    " (SELECT 1 FROM alarms AS a WHERE a.customer_uin = c.uin AND a.partner_id = c.partner_id)",
    "SELECT n FROM (SELECT partner_id, count(*) AS n FROM alarms GROUP BY partner_id) AS s"
    " WHERE s.partner_id = %(p)s",
    # Writes.
    "INSERT INTO alarms (partner_id, customer_uin) VALUES (%(p)s, %(u)s) RETURNING alarms.id",
    "INSERT INTO alarms (partner_id, customer_uin) SELECT partner_id, uin FROM customers"
    " WHERE partner_id = %(p)s",
    "UPDATE customers SET consumed = consumed + %(x)s WHERE uin = %(u)s AND partner_id = %(p)s",
    "UPDATE customers SET consumed = 0 FROM partners"
    " WHERE partners.id = customers.partner_id AND customers.partner_id = %(p)s",
    "DELETE FROM deliveries WHERE deliveries.partner_id = %(p)s AND id = %(i)s",
    # Tables of no partner, and statements of no table.
    "SELECT * FROM users WHERE email = %(e)s",
    "SELECT * FROM api_keys",
    "SAVEPOINT sa_savepoint_1",
    "SELECT 1",
    # Nothing can match: no shard is read.
    "SELECT * FROM partners WHERE partners.id IN (NULL) AND (1 != 1)",
    "SELECT count(*) FROM customers WHERE false",
]

CROSS_SHARD = [
    ("SELECT * FROM customers", "customers"),
    ("SELECT * FROM customers WHERE uin = %(u)s", "customers"),
    ("SELECT * FROM partners ORDER BY id", "partners"),
    ("SELECT count(*) FROM customers GROUP BY partner_id", "customers"),
    # An OR or a NOT pins nothing.
    ("SELECT * FROM customers WHERE partner_id = %(p)s OR uin = %(u)s", "customers"),
    ("SELECT * FROM customers WHERE NOT partner_id = %(p)s", "customers"),
    ("SELECT * FROM customers WHERE partner_id <> %(p)s", "customers"),
    ("SELECT * FROM customers WHERE partner_id = ANY(%(ps)s)", "customers"),
    # One table pinned, the other joined only by the customer.
    (
        "SELECT * FROM alarms AS a JOIN customers AS c ON c.uin = a.customer_uin"
        " WHERE a.partner_id = %(p)s",
        "customers",
    ),
    # The filter inside a subquery does not pin the outer table.
    (
        "SELECT * FROM alarms WHERE customer_uin IN"
        " (SELECT uin FROM customers WHERE partner_id = %(p)s)",
        "alarms",
    ),
    # An unscoped CTE, read by a scoped query.
    (
        "WITH every AS (SELECT uin FROM customers) SELECT * FROM alarms"
        " WHERE partner_id = %(p)s AND customer_uin IN (SELECT uin FROM every)",
        "customers",
    ),
    ("UPDATE customers SET thresholds = %(t)s WHERE customers.uin = %(u)s", "customers"),
    ("DELETE FROM deliveries WHERE status = 'failed'", "deliveries"),
    ("INSERT INTO alarms (customer_uin) VALUES (%(u)s)", "alarms"),
    ("INSERT INTO alarms (partner_id, customer_uin) SELECT partner_id, uin FROM customers", ""),
]


@pytest.mark.parametrize("sql", ONE_SHARD)
def test_statements_naming_one_partner_pass(sql: str) -> None:
    assert judge(sql).problems_with({"p": 1, "u": 2, "x": 3, "i": 4, "e": "a"}) == []


@pytest.mark.parametrize(("sql", "table"), CROSS_SHARD)
def test_statements_across_partners_fail_naming_the_table(sql: str, table: str) -> None:
    problems = judge(sql).problems_with({"p": 1, "u": 2, "ps": [1, 2], "t": "[]"})
    assert problems
    assert table in " ".join(problems)


def test_two_partners_in_one_statement_fail_by_their_values() -> None:
    sql = (
        "INSERT INTO usage_events (partner_id, customer_uin) VALUES"
        " (%(partner_id__0)s, %(u0)s), (%(partner_id__1)s, %(u1)s)"
    )
    verdict = judge(sql)
    assert verdict.problems_with({"partner_id__0": 1, "partner_id__1": 1}) == []
    assert verdict.problems_with({"partner_id__0": 1, "partner_id__1": 2})
    # An executemany: every row's partner counts.
    single = judge("INSERT INTO alarms (partner_id, customer_uin) VALUES (%(p)s, %(u)s)")
    assert single.problems_with([{"p": 1, "u": 1}, {"p": 1, "u": 2}]) == []
    assert single.problems_with([{"p": 1, "u": 1}, {"p": 2, "u": 2}])
    assert judge("SELECT * FROM customers WHERE partner_id IN (1, 2)").problems


def test_an_offence_names_the_creditline_function_that_issued_it() -> None:
    # Issued from test code alone, the statement is the test's own and not judged.
    assert offence("SELECT * FROM customers", {}) is None
    namespace = {"__name__": "creditline.ledger.example", "offence": offence}
    exec("def lookup():\n    return offence('SELECT * FROM customers', {})", namespace)
    found = namespace["lookup"]()  # type: ignore[operator]
    assert found is not None
    assert "creditline.ledger.example.lookup" in str(found)
    assert "SELECT * FROM customers" in str(found)


def test_allowed_code_says_why() -> None:
    namespace = {"__name__": "creditline.ledger.verify", "offence": offence}
    exec("def check():\n    return offence('SELECT * FROM customers', {})", namespace)
    assert namespace["check"]() is None  # type: ignore[operator]
    assert all(reason.strip() for reason in ALLOWED.values())


def test_every_distributed_table_has_its_distribution_column() -> None:
    distributed = {name for name, kind in TABLE_CLASS.items() if kind == "distributed"}
    assert set(DISTRIBUTED) == distributed


def test_a_lookup_by_a_unique_key_without_partner_id_waits_for_the_key() -> None:
    # Until idempotent_requests(api_key_id, key) holds partner_id, a row is found by that
    # key alone; once it does, the same lookup is judged like any other.
    sql = "SELECT * FROM idempotent_requests WHERE api_key_id = %(a)s AND key = %(k)s"
    namespace = {"__name__": "creditline.auth.example", "offence": offence}
    exec(f"def lookup():\n    return offence({sql!r}, {{}})", namespace)
    found = namespace["lookup"]()  # type: ignore[operator]
    if "idempotent_requests" in UNIQUE_UNKEYED:
        assert found is None
    else:
        assert found is not None
    assert judge(sql).unpinned == {"idempotent_requests"}
