"""fast write functions: what PostgreSQL's one-statement allocation needs (api/fast.py)

Three small functions, PostgreSQL only (SQLite runs the allocation's steps in-process):

- ``creditline_reached(thresholds, total_credit, consumed)``: the thresholds of a list
  that are reached, ascending and distinct — the SQL twin of ``ledger.alarms.reached``
  (a threshold is reached when ``consumed > 0`` and ``consumed * 100 >= threshold *
  total_credit``), so that the statement changes a customer only when the alarm rule
  leaves its fired set as it is (tests/ledger/test_alarm_rule_sql.py holds the two
  equal);
- ``creditline_int_set(list)``: a JSON list of integers as a sorted, distinct array;
- ``creditline_refuse(reason)``: raises SQLSTATE ``CL001`` with ``reason``, so that a
  statement that has already changed rows is undone whole (a customer refusing after the
  pool gave, an idempotency key taken meanwhile).

Revision ID: 0018
Revises: 0015
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0015"
branch_labels = None
depends_on = None

FUNCTIONS = {
    "creditline_reached(json, bigint, bigint)": """
CREATE FUNCTION creditline_reached(thresholds json, total_credit bigint, consumed bigint)
RETURNS integer[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(DISTINCT t ORDER BY t), '{}')
  FROM (SELECT value::integer AS t
        FROM json_array_elements_text(coalesce(thresholds, '[]'::json))) AS listed
  WHERE consumed > 0 AND consumed::numeric * 100 >= t::numeric * total_credit
$$""",
    "creditline_int_set(json)": """
CREATE FUNCTION creditline_int_set(list json)
RETURNS integer[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(DISTINCT value::integer ORDER BY value::integer), '{}')
  FROM json_array_elements_text(coalesce(list, '[]'::json))
$$""",
    "creditline_refuse(text)": """
CREATE FUNCTION creditline_refuse(reason text)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'CL001', MESSAGE = reason;
END
$$""",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for create in FUNCTIONS.values():
        op.execute(create)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for signature in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
