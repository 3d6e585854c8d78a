"""The errors an action raises: a field that cannot be accepted, or a refusal by kind."""


class FieldError(ValueError):
    """A value that cannot be accepted; `field` names it, `reason` says why and how to fix."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


# An action refused, by kind. The kind alone decides how each way in answers (an HTTP
# status in `web.staff.refusals`, an exit code in the CLI), never the message's words.


class RefusedError(Exception):
    """An action that was not done, and changed nothing; the message says why."""


class NotFoundError(RefusedError):
    """What the action names does not exist (or is no longer open)."""


class NotAllowedError(RefusedError):
    """Whoever asked may not do this (a role without the right; the same person who
    asked for a clear confirming it)."""


class ConflictError(RefusedError):
    """The thing exists but its state does not allow the action (already decided,
    expired)."""


class InvalidError(RefusedError):
    """What was asked for cannot be accepted as given (a name taken, no scopes)."""
