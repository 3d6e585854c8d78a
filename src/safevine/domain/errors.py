"""The one error type domain rules raise: it names the field and says what is wrong."""


class FieldError(ValueError):
    """A value that cannot be accepted; `field` names it, `reason` says why and how to fix."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
