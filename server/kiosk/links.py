"""Deep links into the online procedures, built only from configuration.

A client never sends a URL: it names a kiosk and a channel, and the link comes from the catalog,
built here from the documented URL forms and checked against an allow-list of https hosts when the
catalog loads. So there is no open redirect: every URL emachi can hand out is known at start.

URL forms (LINE Developers, "Use LINE features with the LINE URL scheme"):

- official account (also its rich menu): ``https://line.me/R/ti/p/@{id}``
- chat with a prefilled text: ``https://line.me/R/oaMessage/@{id}/?{text}``, the text UTF-8
  percent-encoded
- a LIFF app: ``https://liff.line.me/{liffId}/{path}``
- web channels (Graffer, Mynaportal, Tokyo e-application, the city's page): ``{base}{path}`` or a
  full ``url`` on an allowed host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

from .datafile import DataError

__all__ = [
    "AllowList",
    "LinkError",
    "LinkConfig",
    "line_account_url",
    "line_chat_url",
    "liff_url",
    "web_url",
    "check_url",
    "with_ref",
    "REF_PARAM",
]

LINE_ID_RE = re.compile(r"^[a-z0-9._-]{1,32}$")
LIFF_ID_RE = re.compile(r"^[0-9]{6,12}-[A-Za-z0-9]{4,16}$")
HOST_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
# Characters left as they are in a path; everything else is UTF-8 percent-encoded.
PATH_SAFE = "/-_.~"


class LinkError(ValueError):
    """A link or one of its parts does not satisfy the rules; the message says what was expected."""


@dataclass(frozen=True, slots=True)
class AllowList:
    """Exact https hosts a link may point to (no wildcards: a sub-domain is a separate entry)."""

    hosts: frozenset[str]

    @classmethod
    def load(cls, path: Path) -> AllowList:
        """Read one host per line; ``#`` starts a comment.

        Raises:
            DataError: a line that is not a plain lower-case host name, or an empty list.
        """
        problems: list[str] = []
        hosts: set[str] = set()
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise DataError([f"{path}: expected a readable allow-list ({exc.strerror})"]) from None
        for n, raw in enumerate(lines, 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if not HOST_RE.match(line):
                problems.append(
                    f"{path}:line {n}: expected a lower-case host name such as "
                    f"line.me, got {line!r}"
                )
            elif line in hosts:
                problems.append(f"{path}:line {n}: expected each host once, {line!r} repeats")
            hosts.add(line)
        if not hosts and not problems:
            problems.append(f"{path}:(document): expected at least one host")
        if problems:
            raise DataError(problems)
        return cls(frozenset(hosts))


def check_url(url: str, allow: AllowList) -> str:
    """Return ``url`` if it is https on an allowed host, with no user, port or fragment.

    Raises:
        LinkError: what was expected, naming the host.
    """
    if any(c.isspace() or ord(c) < 0x20 or ord(c) > 0x7E for c in url):
        raise LinkError("a URL of printable ASCII (percent-encode the rest)")
    if "\\" in url:
        # Browsers read a backslash as a slash: "https://evil.example\\@line.me/" goes to evil.example.
        raise LinkError("a URL without a backslash")
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise LinkError(f"an https URL, got scheme {parts.scheme or 'none'!r}")
    host = parts.hostname or ""
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise LinkError(f"no user name in the URL host part, got {parts.netloc!r}")
    if parts.port is not None:
        raise LinkError(f"no port in the URL, got {parts.port}")
    if host not in allow.hosts:
        raise LinkError(
            f"a host in the allow-list ({', '.join(sorted(allow.hosts))}), got {host!r}"
        )
    if parts.fragment:
        raise LinkError("no fragment (#…) in the URL")
    return url


@dataclass(frozen=True, slots=True)
class LinkConfig:
    """The accounts and base URLs every link is built from (catalog ``links:``)."""

    line_account: str
    liff_id: str
    bases: dict[str, str]  # channel id → base URL without a trailing slash


def _line_id(account: str) -> str:
    if not LINE_ID_RE.match(account):
        raise LinkError(
            f"a LINE official account id (lower-case letters, digits, . _ -, "
            f"without @), got {account!r}"
        )
    return account


def line_account_url(account: str) -> str:
    """The official account's page (add as friend, then its rich menu): ``/R/ti/p/@{id}``."""
    return f"https://line.me/R/ti/p/@{_line_id(account)}"


def line_chat_url(account: str, text: str) -> str:
    """Open the chat with the official account with ``text`` typed in, UTF-8 percent-encoded."""
    if not text.strip():
        raise LinkError("a non-empty chat text")
    return f"https://line.me/R/oaMessage/@{_line_id(account)}/?{quote(text, safe='')}"


def _path(path: str) -> str:
    if not path.startswith("/") or path.startswith("//"):
        raise LinkError(f"a path starting with one '/', got {path!r}")
    if any(seg in (".", "..") for seg in path.split("/")):
        raise LinkError(f"a path without '.' or '..' segments, got {path!r}")
    if "?" in path or "#" in path or "\\" in path:
        raise LinkError(f"a path without ?, # or \\ (use 'url' for a query), got {path!r}")
    return quote(path, safe=PATH_SAFE)


def liff_url(liff_id: str, path: str = "/") -> str:
    """``https://liff.line.me/{liffId}/{path}``."""
    if not LIFF_ID_RE.match(liff_id):
        raise LinkError(f"a LIFF id like 1234567890-AbCdEfGh, got {liff_id!r}")
    p = _path(path)
    return f"https://liff.line.me/{liff_id}{'' if p == '/' else p}"


def web_url(base: str, path: str) -> str:
    """``{base}{path}`` with the path percent-encoded; ``base`` has no trailing slash."""
    return base.rstrip("/") + _path(path)


#: the query parameter carrying the opaque reference of a link handed out (``docs/counters.md``)
REF_PARAM = "emachi_ref"
#: hosts whose links cannot carry a parameter of ours: a LINE chat link's query *is* the text
#: typed in, and the account page ignores one (LIFF links, ``liff.line.me``, do carry it)
NO_REF_HOSTS = frozenset({"line.me"})


def with_ref(url: str, ref: str) -> str:
    """``url`` with ``emachi_ref=ref`` added to its query, or ``url`` as it is for a host that
    cannot carry it (:data:`NO_REF_HOSTS`)."""
    parts = urlsplit(url)
    if parts.hostname in NO_REF_HOSTS:
        return url
    sep = "&" if parts.query else "?"
    return f"{url}{sep}{urlencode({REF_PARAM: ref})}"
