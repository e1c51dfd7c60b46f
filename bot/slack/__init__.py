"""The Slack layer: Bolt listeners grouped by kind, Block Kit built by pure functions."""
