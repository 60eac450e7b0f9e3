"""what each distributor gave each sub-reseller, net

Revision ID: 0007
Revises: 0010
Create Date: 2026-11-30

A sub-reseller's pool may be granted by the platform and by its distributor; each takes
back only what it gave (DESIGN §2). ``partners.pool_from_distributor`` keeps the
distributor's part, filled here from the pool allocation records. A database in which a
distributor already took back more than it gave (or the platform reduced a sub-reseller
below what its distributor gave) cannot satisfy the new constraints: the upgrade stops and
names each such sub-reseller, so that it is corrected by new records, never by an edit.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0010"
branch_labels = None
depends_on = None

#: The part of each sub-reseller's pool its distributor gave it, by the records.
GIVEN = (
    "COALESCE((SELECT SUM(r.change) FROM allocation_records r"
    " WHERE r.kind = 'pool_allocation' AND r.sub_partner_id = partners.id"
    " AND r.partner_id = partners.parent_id), 0)"
)

CHECKS = {
    "ck_partners_from_distributor_not_negative": "pool_from_distributor >= 0",
    "ck_partners_from_distributor_within_total": "pool_from_distributor <= pool_total",
    "ck_partners_from_distributor_only_for_sub": (
        "parent_id IS NOT NULL OR pool_from_distributor = 0"
    ),
}


def _refuse_inconsistent_pools() -> None:
    bind = op.get_bind()
    bad = bind.execute(
        sa.text(
            f"SELECT id, parent_id, pool_total, {GIVEN} AS given FROM partners"
            f" WHERE parent_id IS NOT NULL AND ({GIVEN} < 0 OR {GIVEN} > pool_total)"
            " ORDER BY id"
        )
    ).all()
    if bad:
        lines = "; ".join(
            f"sub-reseller {row.id}: distributor {row.parent_id} gave {row.given / 100:.2f} "
            f"net, pool total {row.pool_total / 100:.2f}"
            for row in bad
        )
        raise RuntimeError(
            "cannot upgrade to 0007: a distributor took back more than it gave, or the "
            f"platform reduced a sub-reseller below what its distributor gave ({lines}). "
            "Correct each with pool allocations or grants on the previous version, then "
            "upgrade again."
        )


def _has_column() -> bool:
    columns = sa.inspect(op.get_bind()).get_columns("partners")
    return any(c["name"] == "pool_from_distributor" for c in columns)


def upgrade() -> None:
    _refuse_inconsistent_pools()
    if _has_column():
        pass  # SQLite, downgraded before: the column stayed, at 0
    elif op.get_bind().dialect.name == "sqlite":
        # SQLite adds a column with its CHECKs in place; altering constraints would
        # rebuild the table every other table refers to.
        checks = " ".join(f"CONSTRAINT {name} CHECK ({rule})" for name, rule in CHECKS.items())
        op.execute(
            "ALTER TABLE partners ADD COLUMN pool_from_distributor BIGINT"
            f" DEFAULT '0' NOT NULL {checks}"
        )
    else:
        op.add_column(
            "partners",
            sa.Column("pool_from_distributor", sa.BigInteger(), server_default="0", nullable=False),
        )
    op.execute(f"UPDATE partners SET pool_from_distributor = {GIVEN} WHERE parent_id IS NOT NULL")
    if op.get_bind().dialect.name != "sqlite":
        for name, rule in CHECKS.items():
            op.create_check_constraint(op.f(name), "partners", rule)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # Dropping the column rebuilds the table every other table refers to, which
        # SQLite refuses inside the migration's transaction while foreign keys are on.
        # At 0 the column and its CHECKs are inert for 0006's code; upgrading again
        # fills it in anew.
        op.execute("UPDATE partners SET pool_from_distributor = 0")
        return
    with op.batch_alter_table("partners", schema=None) as batch_op:
        for name in CHECKS:
            batch_op.drop_constraint(op.f(name), type_="check")
        batch_op.drop_column("pool_from_distributor")
