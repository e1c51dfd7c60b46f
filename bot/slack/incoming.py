"""Requests to /slack/events, checked before Bolt parses them.

Bolt assumes a well-formed body: invalid UTF-8, a `payload` that is not a JSON
object, or a field of the wrong type (an `event` that is a number, `actions`
that is a string) make it raise, sometimes inside its own error handler, and
the answer is a 500. Such a request cannot come from Slack, but anybody can
send one (parsing happens before the signature check), so it gets a 400 that
says what is wrong, and the app logs only the kind of problem.

Bolt's parser also has a flaw that real users hit: a form body that merely
contains the word "payload" (`/ots my payload password`) is taken for an
interactive payload and parsed as empty, so the command goes unanswered. The
body is parsed here the way Slack sends it, and Bolt is handed that.

The 400 answers stay English: nobody in Slack reads them (Slack never sends
such a body, and it shows no answer body to a person); they are diagnostics for
whoever wrote the client, like log lines and the v1 API's strings.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

log = logging.getLogger(__name__)

_NONE = type(None)
_ID = (str, _NONE)
_OBJECT_OR_ID = (dict, str, _NONE)
# The fields Bolt reads to route a request and build its context, with the JSON
# types Slack sends them as. Only these nodes are checked (not blocks inside
# them, where the same names mean other things).
_FIELDS: dict[str, tuple[type, ...]] = {
    **{name: _ID for name in (
        "type", "command", "text", "callback_id", "trigger_id", "response_url",
        "token", "api_app_id", "team_id", "user_id", "channel_id", "enterprise_id",
        "action_id", "block_id", "action_ts", "message_ts", "private_metadata",
        "subtype", "channel_type", "tab", "thread_ts", "bot_id", "user_team",
        "function_execution_id", "app_installed_team_id", "id", "ts",
        "context_team_id", "context_enterprise_id",
    )},
    **{name: _OBJECT_OR_ID for name in ("user", "channel", "team", "enterprise")},
    # Bolt reads these as soon as the key is present: null is not an object here.
    **{name: (dict,) for name in (
        "event", "view", "message", "previous_message", "container", "state",
        "workflow_step", "function_data", "assistant_thread",
    )},
    "actions": (list,),
    "authorizations": (list, _NONE),
    "is_enterprise_install": (bool, str, _NONE),
    "is_ext_shared_channel": (bool, _NONE),
}
# In block_actions, a button's `text` is a plain_text object: {"type": "plain_text", ...}.
_ACTION_FIELDS = {**_FIELDS, "text": (dict, str, _NONE)}
_NODES = ("event", "view", "message", "previous_message", "container", "state")
_LISTS = ("actions", "authorizations")


class BadSlackRequest(Exception):
    """The body cannot be a Slack request. The message is safe to show and log."""


def parse(raw: bytes, content_type: str) -> dict[str, Any]:
    """The body as Slack means it: JSON, a form with a `payload`, or plain form fields."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadSlackRequest("The request body is not valid UTF-8.") from None
    if not text:
        return {}
    if content_type == "application/json":
        return _json_object(text, "The JSON body")
    if text.startswith("{"):
        raise BadSlackRequest("A form-encoded body cannot start with '{'.")
    fields = dict(parse_qsl(text, keep_blank_values=True))
    if "payload" in fields:
        return _json_object(fields["payload"], "The payload field")
    return fields


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise BadSlackRequest(f"{what} is not valid JSON.") from None
    if not isinstance(value, dict):
        raise BadSlackRequest(f"{what} is not a JSON object.")
    return value


def check_shape(body: dict[str, Any]) -> None:
    """Raise BadSlackRequest if a field Bolt reads has a type Slack never sends."""
    _check_node(body, "the request")
    for name in _NODES:
        if isinstance(body.get(name), dict):
            _check_node(body[name], name)
    event = body.get("event")
    if isinstance(event, dict):
        for name in ("message", "previous_message"):
            if isinstance(event.get(name), dict):
                _check_node(event[name], f"event.{name}")
    view = body.get("view")
    if isinstance(view, dict) and isinstance(view.get("state"), dict):
        _check_state(view["state"])
    for name in _LISTS:
        for item in body.get(name) or ():
            if not isinstance(item, dict):
                raise BadSlackRequest(f"Every item of {name} must be a JSON object.")
            _check_node(item, name, _ACTION_FIELDS if name == "actions" else _FIELDS)


def _check_node(
    node: dict[str, Any], where: str, fields: dict[str, tuple[type, ...]] = _FIELDS
) -> None:
    for name, types in fields.items():
        if name in node and not isinstance(node[name], types):
            raise BadSlackRequest(f"The field {name!r} of {where} has the wrong type.")


def _check_state(state: dict[str, Any]) -> None:
    values = state.get("values", {})
    blocks = values.values() if isinstance(values, dict) else None
    if blocks is None or not all(
        isinstance(block, dict) and all(isinstance(v, dict) for v in block.values())
        for block in blocks
    ):
        raise BadSlackRequest("The view state must map blocks to actions to objects.")


def _timestamp_problem(timestamp: str | None) -> str | None:
    # Absent is Bolt's to refuse (401, unsigned); present, it must be seconds.
    if timestamp is None or (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return None
    return "The X-Slack-Request-Timestamp header must be a whole number of seconds."


def bad_request(message: str) -> Response:
    return PlainTextResponse(f"Bad Slack request: {message}", status_code=400)


async def dispatch(app: AsyncApp, request: Request) -> Response:
    """What Bolt's Starlette adapter does for a POST, with the body checked first."""
    from slack_bolt.adapter.starlette.async_handler import to_starlette_response

    raw = await request.body()
    problem = _timestamp_problem(request.headers.get("x-slack-request-timestamp"))
    if problem is not None:
        # Bolt's signature check would fail on int() and answer 500.
        log.warning("refused a malformed Slack request: %s", problem)
        return bad_request(problem)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        body = parse(raw, content_type)
        check_shape(body)
        bolt_request = AsyncBoltRequest(
            body=raw.decode("utf-8"),
            query=request.url.query,
            headers={name: request.headers.getlist(name) for name in request.headers},
        )
    except BadSlackRequest as exc:
        log.warning("refused a malformed Slack request: %s", exc)
        return bad_request(str(exc))
    except Exception as exc:  # Bolt's own parser, on a body we let through
        log.warning("refused a Slack request Bolt could not parse: %s", type(exc).__name__)
        return bad_request("The body could not be parsed.")
    if bolt_request.body != body:
        bolt_request.body = body
        bolt_request.context = build_async_context(AsyncBoltContext(), body)
    try:
        return to_starlette_response(await app.async_dispatch(bolt_request))
    except Exception as exc:
        # Bolt raised from its own error handling: the payload has a shape it
        # cannot read. Name the kind only: the message could quote the body.
        log.error("a Slack request failed inside Bolt: %s", type(exc).__name__)
        return bad_request("The request could not be processed.")
