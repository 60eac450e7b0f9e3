"""Notifications: the transactional outbox and its delivery.

- ``outbox``: events written in the same transaction as their cause.
- ``deliveries``: the outbox expanded per target, claimed under leases, retried.
- ``worker``: the loop that drains it (``creditline worker``, or in-process in ``serve``).
- ``webhook`` and ``email``: the channels; ``endpoints`` and ``recipients``: their settings.
- ``inbox``: the partner's message centre (alarms and notices).
"""
