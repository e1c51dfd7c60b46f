"""The project's errors, raised by backends and understood by the Slack and web layers.

Low-level failures (sqlite3, redis, httpx) are translated into these at exactly one
boundary each: the storage implementations and the Onetime Secret client. Messages
are written for the person who will read them and never carry a secret, a key, a
link, a passphrase or a request body. A remote service's own words travel apart,
in `service_text`.

    BackendError
     ├── SecretNotFound       unknown, consumed, burned, expired or wrong passphrase
     │    └── WrongPassphrase  the secret is there but the passphrase was wrong
     ├── NotAuthorized        bad credentials, or none where they are required
     ├── RateLimited          too many requests; try again later
     ├── InvalidRequest       the request itself is wrong (empty or oversized secret, …)
     └── BackendUnavailable   the store or the service cannot be reached or answered garbage
          ├── OutcomeUnknown  a reveal or burn was sent but its answer never came:
          │                   the secret may have been used up
          └── StoreFull       the store refused a write for lack of memory or disk
"""

from __future__ import annotations


class BackendError(Exception):
    """Base of every error a backend raises on purpose."""

    default_message = "Something went wrong with the secret store."

    def __init__(self, message: str | None = None, *, service_text: str | None = None) -> None:
        super().__init__(message or self.default_message)
        # What a remote service said in its own words (e.g. an Onetime Secret error
        # message), kept apart from `message`: it is untrusted, so it is shown only
        # as plain text (never Slack mrkdwn) and never in a log line.
        self.service_text = service_text

    @property
    def message(self) -> str:
        return str(self.args[0])


class SecretNotFound(BackendError):
    default_message = (
        "That secret does not exist: it was already viewed, burned, expired, "
        "or the passphrase was wrong."
    )


class WrongPassphrase(SecretNotFound):
    """A wrong passphrase, from a backend that counts them (the embedded store).

    A SecretNotFound to everything that does not look closer: the web page and
    the API still answer "Unknown secret", so a stranger learns nothing. The
    Slack reveal, whose user was named by the sender, tells them how many tries
    are left; `tries_left == 0` means this try destroyed the secret.
    """

    def __init__(self, tries_left: int) -> None:
        super().__init__()
        self.tries_left = max(0, tries_left)

    @property
    def destroyed(self) -> bool:
        return self.tries_left == 0


class NotAuthorized(BackendError):
    default_message = "Not authorized: the credentials were rejected."


class RateLimited(BackendError):
    default_message = "Too many requests right now. Please try again in a few minutes."


class InvalidRequest(BackendError):
    default_message = "The request was not valid."


class BackendUnavailable(BackendError):
    default_message = "The secret store is unavailable right now. Please try again shortly."


class OutcomeUnknown(BackendUnavailable):
    """A command that uses up a secret (reveal, burn) reached the store, or may have,
    but its answer did not come back. It must never be reported as "nothing
    happened": the secret may be gone."""

    default_message = (
        "The secret store did not answer in time, so it is not known whether this went "
        "through: the secret may have been used up. If it is gone, ask the sender to "
        "share it again."
    )


class StoreFull(BackendUnavailable):
    """The store refused a write because its memory (Redis maxmemory) or disk is full.
    Reads and deletes still work: reveals and burns, which free space, must go on."""

    default_message = "The secret store is full right now. Please try again later."


class OverLimit(Exception):  # noqa: N818 (a decision, not a failure)
    """A rate-limit counter counted in the same store round trip as the work itself
    went over its limit: nothing was stored or taken. Not a BackendError: no layer
    may read it as a store failure; the rate-limit middleware answers it (429)."""
