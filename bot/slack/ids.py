"""Every Slack id the app answers to. `manifest.yml` must agree (tests/test_manifest.py)."""

from __future__ import annotations

COMMAND = "/ots"
