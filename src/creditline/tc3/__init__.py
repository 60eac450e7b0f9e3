"""The Tencent Cloud API 3.0-compatible endpoint (service intlpartnersmgt, 2022-09-28)."""
