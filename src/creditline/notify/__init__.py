"""Notifications: the transactional outbox and, later, its delivery."""
