"""Staff roles and what each may do. An account holds one or more roles; an API token
belongs to an account and carries at most its rights."""

from enum import StrEnum


class Role(StrEnum):
    SCREENER = "screener"
    SUPERVISOR = "supervisor"
    AUDITOR = "auditor"
    ADMIN = "admin"


class Right(StrEnum):
    SCREEN = "screen"  # the screening queue; screen as cleared or protected
    PROTECT = "protect"
    REQUEST_CLEAR = "request_clear"
    CONFIRM_CLEAR = "confirm_clear"  # the second person of a two-person clear
    VIEW_HOLDS = "view_holds"
    DECIDE_HOLDS = "decide_holds"  # release or discard a held batch
    VIEW_PERSON = "view_person"
    READ_REPORTS = "read_reports"  # delivery report, batches and rejects, feed health
    READ_AUDIT = "read_audit"
    MANAGE_ACCOUNTS = "manage_accounts"
    MANAGE_TOKENS = "manage_tokens"
    INGEST = "ingest"  # send feed batches (API tokens of feed systems)
    MANAGE_FEEDS = "manage_feeds"  # pause or close a facility's feed, set its cadence
    # Retract a custody event recorded in error: its registrants are sent a correction.
    RETRACT_EVENT = "retract_event"


_SCREENER = {Right.SCREEN, Right.PROTECT, Right.REQUEST_CLEAR, Right.VIEW_PERSON}
RIGHTS: dict[Role, frozenset[Right]] = {
    Role.SCREENER: frozenset(_SCREENER),
    Role.SUPERVISOR: frozenset(
        _SCREENER
        | {
            Right.CONFIRM_CLEAR,
            Right.VIEW_HOLDS,
            Right.DECIDE_HOLDS,
            Right.MANAGE_FEEDS,
            Right.RETRACT_EVENT,
        }
    ),
    Role.AUDITOR: frozenset({Right.READ_REPORTS, Right.READ_AUDIT, Right.VIEW_HOLDS}),
    Role.ADMIN: frozenset(
        {
            Right.MANAGE_ACCOUNTS,
            Right.MANAGE_TOKENS,
            Right.INGEST,
            Right.MANAGE_FEEDS,
            Right.RETRACT_EVENT,
        }
    ),
}

# The staff API's token scopes, and the rights each needs of the account it belongs to.
SCOPE_NEEDS: dict[str, frozenset[Right]] = {
    "ingest": frozenset({Right.INGEST}),
    "protect": frozenset({Right.PROTECT, Right.REQUEST_CLEAR, Right.SCREEN}),
    "read": frozenset({Right.VIEW_PERSON}),
    "report": frozenset({Right.READ_REPORTS}),
    "admin": frozenset({Right.MANAGE_TOKENS}),
    "correct": frozenset({Right.RETRACT_EVENT}),
}


def roles_from(names: list[str] | tuple[str, ...]) -> frozenset[Role]:
    """Roles by name; ValueError naming the first unknown one."""
    chosen = set()
    for name in names:
        try:
            chosen.add(Role(name.strip().lower()))
        except ValueError:
            known = ", ".join(r.value for r in Role)
            raise ValueError(f"{name!r} is not a role (roles: {known})") from None
    return frozenset(chosen)


def rights_of(roles: frozenset[Role]) -> frozenset[Right]:
    return frozenset(right for role in roles for right in RIGHTS[role])


def scopes_allowed(roles: frozenset[Role]) -> frozenset[str]:
    """The token scopes an account with these roles may hand to a token."""
    rights = rights_of(roles)
    return frozenset(scope for scope, needs in SCOPE_NEEDS.items() if needs <= rights)
