"""Reading request parameters the lenient way the OTS v1 clients need.

Parameters may come from the query string (also on POST), an urlencoded body,
a body with no Content-Type at all, or a multipart body; they are merged, the
body winning. Bad `%` escapes and trailing `&` are tolerated, and `name[]`
is read as `name`.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.datastructures import UploadFile
from starlette.requests import Request


class Params:
    """Merged request parameters; `get` gives the last value of a name."""

    def __init__(self, values: dict[str, list[str]]) -> None:
        self._values = values

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self._values.get(name)
        return values[-1] if values else default

    def getlist(self, name: str) -> list[str]:
        return list(self._values.get(name, ()))

    def __contains__(self, name: object) -> bool:
        return name in self._values


class BadForm(Exception):
    """The body could not be parsed. The message is safe to show."""


async def read_form(request: Request, *, strict: bool = False) -> Params:
    """Merged parameters. With `strict`, a value whose `%` escapes decode to invalid
    UTF-8 is refused (BadForm) instead of being stored with replacement characters."""
    try:
        return await _read_form(request, "strict" if strict else "replace")
    except UnicodeDecodeError:
        raise BadForm("A parameter is not valid UTF-8 once its % escapes are decoded.") from None


async def _read_form(request: Request, errors: str) -> Params:
    params = _parse_urlencoded(request.url.query, errors)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        try:
            form = await request.form()
        except Exception as exc:  # python-multipart raises several types
            raise BadForm("The multipart body could not be parsed.") from exc
        for name, value in form.multi_items():
            if not isinstance(value, UploadFile):
                params.setdefault(_name(name), []).append(value)
    elif content_type in ("", "application/x-www-form-urlencoded", "text/plain"):
        body = await request.body()
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise BadForm("The request body is not valid UTF-8.") from None
        for name, values in _parse_urlencoded(text, errors).items():
            params.setdefault(name, []).extend(values)
    return Params(params)


def _parse_urlencoded(text: str, errors: str = "replace") -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for name, value in parse_qsl(text, keep_blank_values=True, errors=errors):
        params.setdefault(_name(name), []).append(value)
    return params


def _name(name: str) -> str:
    return name[:-2] if name.endswith("[]") else name
