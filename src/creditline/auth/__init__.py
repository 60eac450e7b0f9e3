"""Who is asking: console users and sessions (and, on the API side, keys and principals)."""
