"""Who may do what on the staff side: one table of roles × actions, read top to bottom.

Roles: ``host`` (a recruiter who runs events), ``staff`` (runs briefings, reads counts and the
log), ``admin`` (everything, including accounts). The shared staff token acts as the account
``token`` with the role ``admin``, so scripts and the first sign-in keep working.

Callers ask for the roles of an action and hand them to :func:`server.staff.staff_actor`::

    actor = staff_actor(request, roles_for("briefings"))
"""

from __future__ import annotations

from typing import Final

__all__ = ["ROLES", "ACTIONS", "PERMISSIONS", "roles_for", "may"]

ROLES: Final = ("host", "staff", "admin")

#: action -> the roles that may run it (the one place this is decided)
PERMISSIONS: Final[dict[str, tuple[str, ...]]] = {
    "console": ("host", "staff", "admin"),  # the /staff index, one's own session
    "briefings": ("staff", "admin"),  # start, pause, seek, end, questions, minutes
    "events": ("host", "staff", "admin"),  # create, edit, cancel, run an event
    "invites": ("host", "staff", "admin"),  # issue, label, revoke invite links
    "moderation": ("host", "staff", "admin"),  # mute, move, remove, ban
    "kiosks": ("staff", "admin"),  # kiosk counts and their CSV
    "counters": ("staff", "admin"),  # serve at a service counter, its desks, figures and CSV
    "audit": ("staff", "admin"),  # read the staff log
    "accounts": ("admin",),  # add, remove, re-role staff accounts
}

ACTIONS: Final = tuple(PERMISSIONS)


def roles_for(action: str) -> tuple[str, ...]:
    """The roles that may run ``action``.

    Raises:
        KeyError: not an action of the table (a typo in a caller should fail loudly at once).
    """
    try:
        return PERMISSIONS[action]
    except KeyError:
        raise KeyError(
            f"no staff action {action!r}; expected one of {', '.join(ACTIONS)}"
        ) from None


def may(role: str, action: str) -> bool:
    """Whether ``role`` may run ``action``."""
    return role in roles_for(action)
