"""The domain core: pools, credit, usage, alarms, records and verification (DESIGN §2-3).

Nothing here imports from the web or the CLI. Every function takes an open session,
works inside the caller's transaction, and never commits; each write runs in a savepoint
so that a refusal leaves the caller's transaction exactly as it was.
"""
