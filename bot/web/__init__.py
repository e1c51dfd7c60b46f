"""The web layer: reveal page, receipts, the OTS v1 API and health, on Starlette."""
