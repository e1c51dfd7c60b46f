"""Reading request parameters the lenient way the OTS v1 clients need.

Parameters may come from the query string (also on POST), an urlencoded body,
a body with no Content-Type at all, a multipart body (file parts read as text)
or a flat JSON object; they are merged, the body winning. Bad `%` escapes and
trailing `&` are tolerated, and `name[]` is read as `name`.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from starlette.datastructures import UploadFile
from starlette.requests import Request


class Params:
    """Merged request parameters; `get` gives the last value of a name.

    With `strict`, values keep undecodable bytes (as surrogate escapes) until they
    are asked for: reading one raises BadForm, while an unknown parameter with bad
    bytes is ignored like any other unknown parameter.
    """

    def __init__(self, values: dict[str, list[str]], *, strict: bool = False) -> None:
        self._values = values
        self._strict = strict

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self._values.get(name)
        return self._checked(name, values[-1]) if values else default

    def getlist(self, name: str) -> list[str]:
        return [self._checked(name, value) for value in self._values.get(name, ())]

    def _checked(self, name: str, value: str) -> str:
        return require_utf8(name, value) if self._strict else value

    def __contains__(self, name: object) -> bool:
        return name in self._values


class BadForm(Exception):
    """The body could not be parsed. The message is safe to show."""


def require_utf8(name: str, value: str) -> str:
    """`value`, or BadForm if it holds what UTF-8 cannot encode (a lone surrogate)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadForm(
            f"The {name} parameter is not valid UTF-8 (after decoding its % escapes)."
        ) from None
    return value


async def read_form(request: Request, *, strict: bool = False) -> Params:
    """Merged parameters. With `strict`, a value that is not valid UTF-8 is refused
    (BadForm, when it is read) instead of being kept with replacement characters."""
    return Params(await _read_form(request, strict), strict=strict)


async def _read_form(request: Request, strict: bool) -> dict[str, list[str]]:
    errors = "surrogateescape" if strict else "replace"
    # The raw query string, as `request.url.query` gives it, without building the URL.
    query = request.scope.get("query_string", b"").decode().partition("#")[0]
    params = _parse_urlencoded(query, errors)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        try:
            form = await request.form()
        except Exception as exc:  # python-multipart raises several types
            raise BadForm("The multipart body could not be parsed.") from exc
        try:
            for name, value in form.multi_items():
                text = await _file_text(value, strict) if isinstance(value, UploadFile) else value
                params.setdefault(_name(name), []).append(text)
        finally:
            await form.close()
    elif content_type == "application/json":
        for name, values in _parse_json(await request.body()).items():
            params.setdefault(name, []).extend(values)
    elif content_type in ("", "application/x-www-form-urlencoded", "text/plain"):
        body = await request.body()
        try:
            text = body.decode("utf-8", errors if strict else "strict")
        except UnicodeDecodeError:
            raise BadForm("The request body is not valid UTF-8.") from None
        for name, values in _parse_urlencoded(text, errors).items():
            params.setdefault(name, []).extend(values)
    return params


async def _file_text(upload: UploadFile, strict: bool) -> str:
    # `curl -F secret=@file` sends the secret as a file part: it is a value like any other.
    try:
        return (await upload.read()).decode("utf-8", "surrogateescape" if strict else "strict")
    except UnicodeDecodeError:
        raise BadForm(f"The uploaded {upload.filename or 'file'} is not UTF-8 text.") from None


def _parse_json(body: bytes) -> dict[str, list[str]]:
    """A flat JSON object, as newer OTS clients send: scalars read as their text."""
    try:
        document = json.loads(body or b"{}")
    except (ValueError, RecursionError):
        raise BadForm("The JSON body could not be parsed.") from None
    if not isinstance(document, dict):
        raise BadForm("The JSON body must be an object of parameters.")
    params: dict[str, list[str]] = {}
    for name, value in document.items():
        values = value if isinstance(value, list) else [value]
        params[_name(name)] = [_json_text(v) for v in values if v is not None]
    return params


def _json_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise BadForm("The JSON body must be flat: strings, numbers, booleans or lists of them.")


def _parse_urlencoded(text: str, errors: str = "replace") -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for name, value in parse_qsl(text, keep_blank_values=True, errors=errors):
        params.setdefault(_name(name), []).append(value)
    return params


def _name(name: str) -> str:
    return name[:-2] if name.endswith("[]") else name
