"""The audit log: one row for every write and every login, through any door (REST,
Tencent-compatible, console), appended in the same transaction as the write it describes.

Who (principal, source IP, request id), what (action, object, outcome) and the change
(``before``/``after``): the state of every object the write changed — a customer's credit,
a pool, thresholds, a remark, notification settings, a webhook, an API key, a user, a credit
application, a purchase policy — as it was before and as it is after, keyed like
``"customer 1000042"``.
The change is found by the door, never by the core: an operation that returns what it
changed (:class:`creditline.ledger.changes.RowChange`, before and after from its
``RETURNING``) is handed to :func:`saw`, and nothing is read again. For the other writes a
door calls :func:`watch` on the write's session — that one session, never the ``Session``
class — and every row of those kinds that the write then touches (by an
``UPDATE``/``DELETE`` statement or by the ORM) is read once just before it changes;
:func:`record` reads it again and keeps the objects that differ. A refused write is
recorded by :func:`refused`, in a transaction of its own after the write's was rolled back.

Nothing that could be a secret is kept: every field named like a password, secret, token or
signature is replaced by ``[redacted]``, and so is any text that looks like a webhook
secret (``whsec_…``). Only platform admins read it
(``GET /v1/platform/audit``, ``creditline audit list``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Engine,
    String,
    Table,
    and_,
    bindparam,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from creditline import money
from creditline.clock import utcnow
from creditline.db import json_sql, transaction
from creditline.db.distribution import DISTRIBUTION_COLUMN
from creditline.db.tables import (
    ApiKey,
    AuditEvent,
    Base,
    CreditApplication,
    Customer,
    CustomerPurchasePolicy,
    CustomerTopUpRule,
    NotificationSettings,
    Partner,
    PartnerPurchasePolicy,
    PartnerTopUpRule,
    User,
    UTCDateTime,
    WebhookEndpoint,
)
from creditline.ledger.changes import RETURNED, RowChange
from creditline.limits import MAX_PAGE_SIZE

log = logging.getLogger(__name__)

REDACTED = "[redacted]"
#: Parts of a field name that mark its value as secret (``secret_id`` is a public id).
_SECRET_NAMES = ("password", "secret", "token", "signature", "authorization", "cookie")
_PUBLIC_NAMES = frozenset({"secret_id"})
#: The longest JSON kept for ``before`` or ``after``; a larger value is cut to a summary.
MAX_CHANGE_CHARS = 20_000


@dataclass(frozen=True)
class Actor:
    """Who is acting, and from where: what every audit row of a request shares."""

    source: str  # api, tc3, console, cli
    principal: str
    partner_id: int | None
    source_ip: str = ""
    request_id: str = ""


@lru_cache(maxsize=4096)  # the same few column and field names, on every write
def _secret_name(name: str) -> bool:
    lowered = name.lower()
    return lowered not in _PUBLIC_NAMES and any(part in lowered for part in _SECRET_NAMES)


def redact(value: Any) -> Any:
    """``value`` as JSON-ready data with every secret replaced by ``[redacted]``."""
    # The common kinds first, by their exact classes: the abstract Mapping check is slow
    # and this runs over every audit row's before and after.
    if isinstance(value, str):
        return REDACTED if value.startswith("whsec_") else value
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict | Mapping):
        return {
            str(k): REDACTED if _secret_name(str(k)) and v is not None else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return str(value)


def hides(value: Any) -> bool:
    """Whether the audit log would hide part of ``value`` (a secret's field, a ``whsec_``
    text): asked of its JSON text first (:func:`_may_redact`), so that a plain value is
    not copied to find out; a text already reading ``[redacted]`` counts too."""
    if not _may_redact(json.dumps(value, default=str)):
        return False
    return REDACTED in json.dumps(redact(value), default=str)


def _bounded(value: Any, *, parsed: bool = False, text: str | None = None) -> Any:
    """``value`` redacted, or its summary when its JSON is longer than MAX_CHANGE_CHARS.

    ``parsed``: ``value`` is what ``json.loads`` returns (text keys, JSON values only; a
    request's body, an answer). Then redaction can only change it where its JSON text
    names a secret's field or holds a webhook secret (:func:`_may_redact`): a value
    without either is kept as it is, or summed up from that text at once, not copied
    first (a usage batch's body, thousands of records, is one such value). The result
    is the same as :func:`redact`'s. ``text``: ``json.dumps(value)``, when the caller has
    it (``parsed`` only)."""
    if value is None:
        return None
    if parsed:
        if text is None:
            text = json.dumps(value)
        if not _may_redact(text):
            if len(text) > MAX_CHANGE_CHARS:
                return {"truncated": True, "chars": len(text), "start": text[:1000]}
            return value
    kept = redact(value)
    text = json.dumps(kept, default=str)
    if len(text) > MAX_CHANGE_CHARS:
        return {"truncated": True, "chars": len(text), "start": text[:1000]}
    return kept


def _may_redact(text: str) -> bool:
    """Whether :func:`redact` could change the value whose JSON (``json.dumps``) is
    ``text``, given that the value holds only JSON's own types with text keys: yes when
    the text holds a secret's name part or ``whsec_`` anywhere (a key, a value), or an
    escape (``\\u…``: a character the search could not see). False means nothing in it
    is redacted."""
    if "\\u" in text or "whsec_" in text:
        return True
    lowered = text.lower()
    return any(part in lowered for part in _SECRET_NAMES)


@dataclass(frozen=True)
class _Kind:
    """How the audit log shows one kind of object."""

    label: str
    #: Columns left out: bookkeeping of no interest, or secrets kept encrypted.
    hidden: frozenset[str] = frozenset()
    #: Columns whose change makes a write worth describing; empty: any column. (Usage
    #: updates only ``consumed`` and the fired thresholds: not a write of this log's.)
    triggers: frozenset[str] = frozenset()
    #: Columns holding cents, shown as decimal text like the API's amounts.
    cents: frozenset[str] = frozenset()


_KINDS: dict[str, _Kind] = {
    Customer.__tablename__: _Kind(
        "customer",
        # available_credit is the database's copy of "available" (added below), not state;
        # utilization, too, is the database's, for the sort.
        hidden=frozenset(
            {"fired_thresholds", "last_alarm_threshold", "last_alarm_at"}
            | {"available_credit", "utilization"}
            # The forecast and its alarm state: kept by usage and the daily refresh.
            | {"burn_rate", "forecast_day", "usage_since", "runs_out_day"}
            | {"forecast_fired", "forecast_alarm_day"}
        ),
        triggers=frozenset({"name", "type", "email", "mobile", "remark", "total_credit"})
        | frozenset({"identity_status", "thresholds", "partner_id", "forecast_days"}),
        cents=frozenset({"total_credit", "consumed"}),
    ),
    Partner.__tablename__: _Kind(
        "pool",
        triggers=frozenset({"name", "pool_total", "pool_allocated", "thresholds", "forecast_days"}),
        cents=frozenset({"pool_total", "pool_allocated"}),
    ),
    ApiKey.__tablename__: _Kind("api_key", hidden=frozenset({"secret_encrypted"})),
    User.__tablename__: _Kind(
        "user",
        hidden=frozenset({"password_hash"}),
        # A login stamps last_login_at; the login row says so already.
        triggers=frozenset({"email", "role", "partner_id"}),
    ),
    NotificationSettings.__tablename__: _Kind("notification_settings"),
    WebhookEndpoint.__tablename__: _Kind(
        "webhook",
        hidden=frozenset({"secret", "previous_secret"}),
        triggers=frozenset({"url", "event_types", "description", "enabled", "secret"})
        | frozenset({"previous_secret", "previous_secret_expires_at"}),
    ),
    CreditApplication.__tablename__: _Kind("credit_application", cents=frozenset({"amount"})),
    PartnerPurchasePolicy.__tablename__: _Kind(
        "purchase_policy_default", cents=frozenset({"tolerance"})
    ),
    CustomerPurchasePolicy.__tablename__: _Kind("purchase_policy", cents=frozenset({"tolerance"})),
    PartnerTopUpRule.__tablename__: _Kind(
        "top_up_rule_default", cents=frozenset({"below", "amount", "monthly_cap", "ceiling"})
    ),
    CustomerTopUpRule.__tablename__: _Kind(
        "top_up_rule", cents=frozenset({"below", "amount", "monthly_cap", "ceiling"})
    ),
}
_TABLES: dict[str, Table] = {
    name: table for name, table in Base.metadata.tables.items() if name in _KINDS
}
#: ``session.info`` key of the rows a watched write touched: (table, key) -> state before
#: (None: the row did not exist).
_TOUCHED = "creditline.audit.touched"
#: ``session.info`` key of the states after that an operation returned (:func:`saw`), so
#: :func:`record` need not read them; a row touched again afterwards is read as usual.
_KNOWN = "creditline.audit.known"
#: Session info: the partner of each row seen by ``_TOUCHED``, to read it again on its shard.
_PARTNERS = "creditline.audit.partners"
#: Option of the changes an operation reports itself (its statements are not read).
_RETURNED = next(iter(RETURNED))


def watch(session: Session, *, listen: bool = True) -> None:
    """Note, from now on, the state before of every audited object this session changes,
    for :func:`record` to keep with the write. Listens on this one session only; with
    ``listen=False`` not at all: the write reports every change itself (:func:`saw`)."""
    if _TOUCHED in session.info:
        return
    session.info[_TOUCHED] = {}
    if not listen:
        return
    event.listen(session, "do_orm_execute", _before_statement)
    event.listen(session, "before_flush", _before_flush)
    event.listen(session, "after_flush", _after_flush)


def saw(session: Session, changes: Iterable[RowChange]) -> None:
    """Keep what an operation returned it changed, for :func:`record`: the first state
    before of each row and its latest state after. Without :func:`watch`, nothing."""
    if _TOUCHED not in session.info:
        return
    touched: dict[tuple[str, tuple[Any, ...]], dict[str, Any] | None] = session.info[_TOUCHED]
    known: dict[tuple[str, tuple[Any, ...]], dict[str, Any] | None]
    known = session.info.setdefault(_KNOWN, {})
    for change in changes:
        table = _TABLES.get(change.table)
        row = change.before if change.before is not None else change.after
        if table is None or row is None:
            continue
        key = (table.name, _key(table, row))
        touched.setdefault(key, None if change.before is None else _state(table, change.before))
        known[key] = None if change.after is None else _state(table, change.after)


def _key(table: Table, row: Any) -> tuple[Any, ...]:
    return tuple(row[c.name] for c in table.primary_key.columns)


def _label(table: Table, key: tuple[Any, ...]) -> str:
    """``customer 100000000005``: the object's own key, without the partner_id that
    leads a distributed table's key (creditline.db.distribution)."""
    own = [
        str(part)
        for column, part in zip(table.primary_key.columns, key, strict=True)
        if len(key) == 1 or column.name != DISTRIBUTION_COLUMN.get(table.name)
    ]
    return f"{_KINDS[table.name].label} {':'.join(own)}"


def _state(table: Table, row: Mapping[Any, Any]) -> dict[str, Any]:
    kind = _KINDS[table.name]
    state: dict[str, Any] = {}
    for name, value in row.items():
        if name in kind.hidden:
            continue
        state[name] = money.to_text(value) if name in kind.cents and value is not None else value
    if table.name == Customer.__tablename__:
        state["available"] = money.to_text(row["total_credit"] - row["consumed"])
    elif table.name == Partner.__tablename__:
        state["remaining"] = money.to_text(row["pool_total"] - row["pool_allocated"])
    return state


def state_sql(table_name: str, row: Any, **given: Any) -> ColumnElement[Any]:
    """:func:`_state` built by PostgreSQL (api/fast.py) from ``row``, the columns of a
    ``table_name`` row (e.g. a CTE returning it); ``given``: expressions standing in for
    some columns (the row before a change). Texts starting ``whsec_`` are redacted in
    Python: :func:`plain_sql` says whether a row has none."""
    table = _TABLES[table_name]
    kind = _KINDS[table_name]
    value = {c.name: given.get(c.name, row[c.name]) for c in table.columns}
    pairs: list[Any] = []
    for column in table.columns:
        name = column.name
        if name in kind.hidden:
            continue
        if name in kind.cents:
            shown = json_sql.money_text(value[name])
        elif isinstance(column.type, UTCDateTime | DateTime):
            shown = json_sql.time_text(value[name], "str")
        else:
            shown = value[name]
        pairs += [name, shown]
    if table_name == Customer.__tablename__:
        pairs += ["available", json_sql.money_text(value["total_credit"] - value["consumed"])]
    elif table_name == Partner.__tablename__:
        pairs += ["remaining", json_sql.money_text(value["pool_total"] - value["pool_allocated"])]
    return func.json_build_object(*pairs)


def plain_sql(table_name: str, row: Any) -> ColumnElement[bool]:
    """Whether no text column of ``row`` (as :func:`state_sql` shows it) is one
    :func:`redact` would hide."""
    table = _TABLES[table_name]
    texts = [
        row[c.name]
        for c in table.columns
        if c.name not in _KINDS[table_name].hidden and isinstance(c.type, String)
    ]
    return and_(*(func.coalesce(func.left(t, 6), "") != "whsec_" for t in texts))


def label_of(table_name: str, key: tuple[Any, ...]) -> str:
    """How the audit log names the ``table_name`` row with primary key ``key``."""
    return _label(_TABLES[table_name], key)


def _snapshot(session: Session, table: Table, where: Any) -> None:
    touched: dict[tuple[str, tuple[Any, ...]], dict[str, Any] | None] = session.info[_TOUCHED]
    # Straight on the connection: no autoflush, no ORM events, only the first sight kept.
    query = select(table) if where is None else select(table).where(where)
    known = session.info.get(_KNOWN, {})
    for row in session.connection().execute(query).mappings():
        key = (table.name, _key(table, row))
        touched.setdefault(key, _state(table, row))
        _note_partner(session, table, key, row.get("partner_id"))
        known.pop(key, None)  # changed again: read after the write


def _note_partner(
    session: Session, table: Table, key: tuple[str, tuple[Any, ...]], partner_id: Any
) -> None:
    # Read again by its key and its partner, so the read stays on the partner's shard.
    if "partner_id" in table.c and partner_id is not None:
        session.info.setdefault(_PARTNERS, {})[key] = partner_id


def _by_key(table: Table, key: tuple[Any, ...], partner_id: Any) -> list[Any]:
    where = [c == v for c, v in zip(table.primary_key.columns, key, strict=True)]
    if partner_id is not None and "partner_id" in table.c:
        where.append(table.c.partner_id == partner_id)
    return where


def _statement_sets(state: ORMExecuteState) -> set[str] | None:
    # SQLAlchemy keeps an UPDATE's SET clause here; when it cannot be read, assume anything.
    values = getattr(state.statement, "_values", None)
    if not values:
        return None
    return {str(getattr(k, "key", k)) for k in values}


def _before_statement(state: ORMExecuteState) -> None:
    session = state.session
    if _TOUCHED not in session.info or not (state.is_update or state.is_delete):
        return
    if state.execution_options.get(_RETURNED):
        return  # the operation returns this statement's changes (saw)
    table = getattr(state.statement, "table", None)
    if not isinstance(table, Table) or table.name not in _KINDS:
        return
    triggers = _KINDS[table.name].triggers
    sets = _statement_sets(state) if state.is_update else None
    if triggers and sets is not None and not sets & triggers:
        return
    _snapshot(session, table, getattr(state.statement, "whereclause", None))


def _before_flush(session: Session, _flush: UOWTransaction, _instances: Any) -> None:
    if _TOUCHED not in session.info:
        return
    for instance in (*session.dirty, *session.deleted):
        table = getattr(type(instance), "__table__", None)
        if isinstance(table, Table) and table.name in _KINDS:
            key = tuple(getattr(instance, c.key) for c in table.primary_key.columns)
            _snapshot(
                session, table, and_(*_by_key(table, key, getattr(instance, "partner_id", None)))
            )


def _after_flush(session: Session, _flush: UOWTransaction) -> None:
    if _TOUCHED not in session.info:
        return
    touched = session.info[_TOUCHED]
    for instance in session.new:
        table = getattr(type(instance), "__table__", None)
        if isinstance(table, Table) and table.name in _KINDS:
            key = tuple(getattr(instance, c.key) for c in table.primary_key.columns)
            touched.setdefault((table.name, key), None)
            _note_partner(session, table, (table.name, key), getattr(instance, "partner_id", None))


def _changes(session: Session) -> tuple[dict[str, Any], dict[str, Any]]:
    """The objects the watched write changed, before and after; then forgets them."""
    touched = session.info.get(_TOUCHED)
    if not touched:
        return {}, {}
    session.flush()
    known = session.info.get(_KNOWN, {})
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for (name, key), was in touched.items():
        if (name, key) in known:
            now = known[(name, key)]
        else:
            table = _TABLES[name]
            where = _by_key(table, key, session.info.get(_PARTNERS, {}).get((name, key)))
            row = session.connection().execute(select(table).where(*where)).mappings().first()
            now = None if row is None else _state(table, row)
        if now == was:
            continue  # touched but unchanged: a refused item of a batch, a no-op
        label = _label(_TABLES[name], key)
        if was is not None:
            before[label] = was
        if now is not None:
            after[label] = now
    touched.clear()
    known.clear()
    session.info.pop(_PARTNERS, None)
    return before, after


def record(
    session: Session,
    actor: Actor,
    *,
    action: str,
    object: str = "",
    outcome: str = "ok",
    before: Any = None,
    after: Any = None,
    after_parsed: bool = False,
    after_text: str | None = None,
) -> None:
    """Append one audit row in the caller's transaction (redacted, bounded).

    The objects a watched write changed (see :func:`watch`) are added: ``before`` holds
    their states before, ``after`` their states after, next to what the caller passes in
    ``after`` (the request, the answer). ``after_parsed``: ``after`` holds only JSON
    as ``json.loads`` returns it (redacted the quick way when it can be, see
    :func:`row`); ``after_text``: then ``json.dumps(after)``, when the caller has it."""
    was, now = _changes(session)
    session.execute(
        INSERT,
        row(
            actor,
            action=action,
            object=object,
            outcome=outcome,
            before=before,
            after=after,
            changed=(was, now),
            after_parsed=after_parsed,
            after_text=after_text,
        ),
    )


_COLUMNS = (
    "at",
    "source",
    "principal",
    "partner_id",
    "source_ip",
    "request_id",
    "action",
    "object",
    "outcome",
    "before",
    "after",
)
#: The audit row's one INSERT, parameters named ``audit_<column>`` (see :func:`row`).
INSERT = (
    insert(AuditEvent.metadata.tables[AuditEvent.__tablename__])
    .inline()
    .values(
        {
            name: bindparam(f"audit_{name}", type_=AuditEvent.__table__.c[name].type)
            for name in _COLUMNS
        }
    )
)


def insert_from(*, before: Any, after: Any, rows: Any) -> Any:
    """:data:`INSERT` with ``before`` and ``after`` built by the statement itself (JSON
    expressions over ``rows``, its FROM), the other columns as :func:`row` gives them."""
    table = AuditEvent.metadata.tables[AuditEvent.__tablename__]
    given = [
        bindparam(f"audit_{name}", type_=table.c[name].type)
        for name in _COLUMNS
        if name not in ("before", "after")
    ]
    values = select(*given, before, after).select_from(*rows)
    return insert(table).from_select(list(_COLUMNS), values)


def changed(changes: Iterable[RowChange]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The before and after of an operation's returned changes, as :func:`record` keeps
    them (first state before, last state after, unchanged rows left out)."""
    was: dict[str, Any] = {}
    now: dict[str, Any] = {}
    for change in changes:
        table = _TABLES.get(change.table)
        first = change.before if change.before is not None else change.after
        if table is None or first is None:
            continue
        label = _label(table, _key(table, first))
        if change.before is not None:
            was.setdefault(label, _state(table, change.before))
        if change.after is not None:
            now[label] = _state(table, change.after)
    for label in [k for k in now if was.get(k) == now[k]]:
        del now[label], was[label]
    return was, now


def row(
    actor: Actor,
    *,
    action: str,
    object: str = "",
    outcome: str = "ok",
    before: Any = None,
    after: Any = None,
    changed: tuple[dict[str, Any], dict[str, Any]] = ({}, {}),
    after_parsed: bool = False,
    after_text: str | None = None,
) -> dict[str, Any]:
    """The parameters of :data:`INSERT` for one row (redacted, bounded): ``changed`` holds
    the objects' states before and after, next to what the caller passes.
    ``after_parsed``: ``after`` holds only JSON as ``json.loads`` returns it (a request's
    body, an answer): redacted by its text when nothing in it can be a secret, which a
    large body (a usage batch) needs no copy for; the row is the same either way.
    ``after_text``: ``json.dumps(after)`` when the caller has it (``after_parsed`` only)."""
    was, now = changed
    if was:
        before = {**was, **(before or {})}
    if now:
        after = {**now, **(after or {})}
        after_parsed = False  # the objects' states hold times and the like
        after_text = None
    return {
        "audit_at": utcnow(),
        "audit_source": actor.source,
        "audit_principal": actor.principal[:400],
        "audit_partner_id": actor.partner_id,
        "audit_source_ip": actor.source_ip[:64],
        "audit_request_id": actor.request_id[:100],
        "audit_action": action[:200],
        "audit_object": object[:500],
        "audit_outcome": outcome,
        "audit_before": _bounded(before),
        "audit_after": _bounded(after, parsed=after_parsed, text=after_text),
    }


def statement_row(actor: Actor, *, action: str, object: str = "") -> dict[str, Any]:
    """:func:`row`'s parameters but its before and after, for a statement that builds
    those from the rows it changes (:func:`insert_from`)."""
    found = row(actor, action=action, object=object)
    del found["audit_before"], found["audit_after"]
    return found


def refused(
    engine: Engine,
    actor: Actor,
    *,
    action: str,
    code: str,
    object: str = "",
    message: str = "",
    request: Any = None,
) -> None:
    """Record a refused write in a short transaction of its own, after the write's was
    rolled back: the refusal is the only trace the operation leaves. The caller is answered
    the refusal even when this row cannot be written (the database gone): logged instead."""
    try:
        with transaction(engine) as session:
            record(
                session,
                actor,
                action=action,
                object=object,
                outcome="refused",
                after={"error": {"code": code, "message": message}, "request": request},
            )
    except Exception as error:  # the refusal stands; its record is what failed
        log.warning(
            "audit: refused %s by %s not recorded (%s)",
            action,
            actor.principal,
            type(getattr(error, "orig", None) or error).__name__,
        )


def list_events(
    session: Session,
    *,
    partner_id: int | None = None,
    principal: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[AuditEvent]:
    """Audit rows, newest first, filtered (``until`` excluded); ``before_id`` pages back
    (keyset)."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(min(limit, MAX_PAGE_SIZE + 1))
    if partner_id is not None:
        query = query.where(AuditEvent.partner_id == partner_id)
    if principal:
        query = query.where(AuditEvent.principal.contains(principal, autoescape=True))
    if action:
        query = query.where(AuditEvent.action.contains(action, autoescape=True))
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if until is not None:
        query = query.where(AuditEvent.at < until)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    return list(session.execute(query).scalars())
