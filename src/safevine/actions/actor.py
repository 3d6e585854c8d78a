"""Who does an action, as the audit log names them and the two-person rule compares them."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """`name` goes into the audit log: a staff account's name, an API token's name, or
    `cli:USER` for someone at the database host's terminal."""

    name: str

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("an actor needs a name")
