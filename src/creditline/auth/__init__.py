"""Who is asking: API keys, principals and roles, the idempotency store; console users,
passwords and sessions."""
