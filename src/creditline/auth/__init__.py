"""Who is asking: API keys, principals and roles, and the idempotency store."""
