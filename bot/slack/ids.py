"""Every Slack id the app answers to. `manifest.yml` must agree (tests/test_manifest.py).

Commands and shortcut callback ids are declared in the manifest; view callback
ids, block ids and action ids live only in the views and messages we build, but
they are kept here too so that a listener and its builder cannot drift apart.
"""

from __future__ import annotations

COMMAND = "/ots"

# What the bot may do (manifest.yml, manifest.distribution.yml and the OAuth
# install request agree; tests/test_manifest.py checks them).
# users:read.email: an API `recipient` who is a member is found by email (users.lookupByEmail).
BOT_SCOPES = ("commands", "chat:write", "im:write", "users:read", "users:read.email")
INSTALL_PATH = "/slack/install"
OAUTH_REDIRECT_PATH = "/slack/oauth_redirect"

# Shortcuts (declared in manifest.yml).
SHARE_SHORTCUT = "share_secret"
MESSAGE_SHORTCUT = "make_one_time_secret"

# Modals (view callback ids).
SHARE_VIEW = "share_secret_modal"
REVEAL_VIEW = "reveal_secret_modal"
GENERATED_VIEW = "generated_secret_modal"
SHARE_ANSWER_VIEW = "share_answer_modal"

# Inputs of the share modal: block id and action id of each.
SECRET_BLOCK, SECRET_INPUT = "secret_block", "secret_input"
GENERATE_BLOCK, GENERATE_INPUT = "generate_block", "generate_input"
PASSPHRASE_BLOCK, PASSPHRASE_INPUT = "passphrase_block", "passphrase_input"
TTL_BLOCK, TTL_INPUT = "ttl_block", "ttl_input"
RECIPIENTS_BLOCK, RECIPIENTS_INPUT = "recipients_block", "recipients_input"
LABEL_BLOCK, LABEL_INPUT = "label_block", "label_input"

# Input of the reveal modal.
REVEAL_PASSPHRASE_BLOCK, REVEAL_PASSPHRASE_INPUT = "reveal_passphrase_block", "reveal_passphrase"

# Buttons.
BURN_ACTION = "burn_secret"
REVEAL_ACTION = "reveal_in_slack"
OPEN_LINK_ACTION = "open_secret_link"  # a URL button: Slack still sends block_actions
HOME_BURN_ACTION = "burn_listed_secret"  # Burn in the Home tab and in `/ots list`

# Events (subscribed in manifest.yml under settings.event_subscriptions).
HOME_OPENED_EVENT = "app_home_opened"

# Requests for a secret (bot/slack/requesting.py).
REQUEST_WORD = "request"
REQUEST_VIEW = "request_secret_modal"
ANSWER_VIEW = "answer_request_modal"
REQUEST_PEOPLE_BLOCK, REQUEST_PEOPLE_INPUT = "request_people_block", "request_people_input"
REQUEST_OUTSIDE_BLOCK, REQUEST_OUTSIDE_INPUT = "request_outside_block", "request_outside_input"
REQUEST_FOR_BLOCK, REQUEST_FOR_INPUT = "request_for_block", "request_for_input"
SWITCH_BLOCK, SWITCH_TO_REQUEST_ACTION = "switch_block", "switch_to_request"  # in the share form
ANSWER_ACTION = "answer_request"
DECLINE_ACTION = "decline_request"
CANCEL_REQUEST_ACTION = "cancel_request"
