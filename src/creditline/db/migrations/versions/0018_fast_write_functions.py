"""fast write functions: what PostgreSQL's one-statement allocation needs (api/fast.py)

Two small functions, PostgreSQL only (SQLite runs the allocation's steps in-process):

- ``creditline_fired_after(thresholds, total_credit, consumed, fired)``: the fired list
  the alarm rule leaves when it raises no alarm (the distinct reached thresholds of the
  list, ascending, a threshold reached when ``consumed > 0`` and ``consumed * 100 >=
  threshold * total_credit``: thresholds re-armed drop out), or NULL when a threshold is
  newly reached and an alarm is to be raised — the SQL twin of ``ledger.alarms.decide``
  (tests/ledger/test_alarm_rule_sql.py holds the two equal), so that the statement
  changes a customer only when no alarm is to be raised;
- ``creditline_refuse(reason)``: raises SQLSTATE ``CL001`` with ``reason``, so that a
  statement that has already changed rows is undone whole (a customer refusing after the
  pool gave, an idempotency key taken meanwhile).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

FUNCTIONS = {
    "creditline_fired_after(json, bigint, bigint, json)": """
CREATE FUNCTION creditline_fired_after(
  thresholds json, total_credit bigint, consumed bigint, fired json
) RETURNS json LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  reached integer[] := '{}';
  had integer[];
  t integer;
BEGIN
  IF consumed > 0 AND thresholds IS NOT NULL THEN
    FOREACH t IN ARRAY ARRAY(SELECT value::integer FROM json_array_elements_text(thresholds))
    LOOP
      IF consumed::numeric * 100 >= t::numeric * total_credit AND NOT t = ANY(reached) THEN
        reached := reached || t;
      END IF;
    END LOOP;
  END IF;
  had := ARRAY(SELECT DISTINCT value::integer FROM json_array_elements_text(coalesce(fired, '[]')));
  IF NOT reached <@ had THEN
    RETURN NULL;  -- a threshold newly reached: an alarm to raise
  END IF;
  RETURN to_json(ARRAY(SELECT x FROM unnest(reached) AS x ORDER BY x));
END
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
