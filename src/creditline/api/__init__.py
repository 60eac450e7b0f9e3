"""The REST API v1: thin endpoints over the ledger core, one module per area."""
