"""One-time secrets from Slack: a Slack app, a reveal page and an OTS-v1-compatible API."""

__version__ = "0.1.0"
