"""Notifications: delivering the transactional outbox, which the core writes
(:mod:`creditline.ledger.outbox`) in the same transaction as each event's cause.

- ``outbox``: the event types, as delivery knows them.
- ``deliveries``: the outbox expanded per target, claimed under leases, retried.
- ``worker``: the loop that drains it (``creditline worker``, or in-process in ``serve``).
- ``webhook`` and ``email``: the channels; ``endpoints`` and ``recipients``: their settings.
- ``inbox``: the partner's message centre (alarms and notices).
"""
