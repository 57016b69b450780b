"""Who may do what in an event: one table of actions by role (host, staff, guest).

The staff API maps an account's role onto an event role (:data:`ACCOUNT_ROLES`); a session's
event role comes from its invite.
"""

from __future__ import annotations

__all__ = ["ROLES", "ACTIONS", "ACCOUNT_ROLES", "allowed"]

ROLES = ("host", "staff", "guest")
_ALL = frozenset(ROLES)
_HOSTS = frozenset({"host"})
_CREW = frozenset({"host", "staff"})

#: action -> the event roles that may do it
ACTIONS: dict[str, frozenset[str]] = {
    "announce": _CREW,
    "mute": _CREW,
    "mute_table": _CREW,
    "mute_all": _HOSTS,
    "move": _CREW,
    "shuffle": _HOSTS,
    "remove": _CREW,
    "lock": _HOSTS,
    "spotlight": _HOSTS,
    "hand_done": _CREW,
    "agenda": _HOSTS,
    "raise_hand": _ALL,
    "lower_hand": _ALL,
    "leave": _ALL,
}

#: a staff account's role -> the event role it acts with through the staff API
ACCOUNT_ROLES: dict[str, str] = {"admin": "host", "host": "host", "staff": "staff"}


def allowed(role: str, action: str) -> bool:
    """Whether a session (or account) with event ``role`` may do ``action``."""
    return role in ACTIONS.get(action, frozenset())
