"""Who may use the app and who may run it: sign-in (Gradio's own ``auth``), the operator, limits on corrections.

``--auth USER:PASS`` (repeatable) or ``--auth-file FILE`` (one ``USER:PASS`` a line) turn sign-in on; the
operator (``--operator USER``, default the first user) alone may delete all corrections and switch the model.
Without sign-in (the app on this computer only) the one person using it is the operator.
"""

from __future__ import annotations

import hmac
import ipaddress
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

#: Failed sign-ins of one user name within :data:`LOCKOUT_S` after which that name is refused until it passes.
MAX_FAILED_SIGN_INS = 10
LOCKOUT_S = 600


class AccessError(ValueError):
    """The sign-in options cannot be used; the message names the option and the problem."""


def parse_user(entry: str, where: str) -> tuple[str, str]:
    """``USER:PASS`` → ``(user, password)``; AccessError naming ``where`` (the option or file line) otherwise."""
    user, sep, password = entry.partition(":")
    user = user.strip()
    if not sep or not user or not password:
        raise AccessError(f"{where}: expected USER:PASSWORD")
    if len(password) < 8:
        raise AccessError(f"{where}: the password of {user} is shorter than 8 characters")
    return user, password


def read_users(pairs: list[str], file: str | Path | None) -> dict[str, str]:
    """The users of ``--auth`` entries and of ``--auth-file`` (blank lines and ``#`` comments skipped), in the
    order given; AccessError for a malformed entry, a user named twice or a file that cannot be read."""
    entries = [(entry, f"--auth {entry.partition(':')[0]}:...") for entry in pairs]
    if file:
        try:
            lines = Path(file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise AccessError(f"--auth-file {file}: cannot be read ({getattr(e, 'strerror', None) or e})") from None
        entries += [(line.strip(), f"--auth-file {file}, line {i}") for i, line in enumerate(lines, 1)
                    if line.strip() and not line.lstrip().startswith("#")]
    users: dict[str, str] = {}
    for entry, where in entries:
        user, password = parse_user(entry, where)
        if user in users:
            raise AccessError(f"{where}: {user} is named twice")
        users[user] = password
    return users


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` serves this computer only (127.0.0.1, ::1, localhost)."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


@dataclass
class Access:
    """The signed-in users (empty: no sign-in) and the operator among them."""

    users: dict[str, str] = field(default_factory=dict)
    operator: str | None = None
    _failures: dict[str, deque] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self):
        if self.users and self.operator is None:
            self.operator = next(iter(self.users))
        if self.users and self.operator not in self.users:
            raise AccessError(f"--operator {self.operator}: not one of the users given with --auth/--auth-file")

    @property
    def on(self) -> bool:
        """Whether sign-in is on (users were given)."""
        return bool(self.users)

    def check(self, user: str, password: str) -> bool:
        """Gradio's ``auth`` callable: the password matches (compared in constant time), and the name has not
        failed :data:`MAX_FAILED_SIGN_INS` times in the last :data:`LOCKOUT_S` seconds."""
        now = time.monotonic()
        with self._lock:
            failures = self._failures.setdefault(user, deque())
            while failures and failures[0] < now - LOCKOUT_S:
                failures.popleft()
            if len(failures) >= MAX_FAILED_SIGN_INS:
                return False
        expected = self.users.get(user)
        ok = expected is not None and hmac.compare_digest(password.encode(), expected.encode())
        if not ok:
            with self._lock:
                self._failures[user].append(now)
        return ok

    def is_operator(self, user: str | None) -> bool:
        """Without sign-in everyone is (the app serves this computer only); with it, the operator alone."""
        return not self.on or (user is not None and user == self.operator)


def who(username: str | None, client: str | None) -> str:
    """A line naming who sent a request, for the record: the signed-in user, else the client's address."""
    return username if username else f"{client or 'unknown'} (no sign-in)"


class RateLimit:
    """At most ``count`` events per ``per_s`` seconds for each key (a user or a client address)."""

    def __init__(self, count: int, per_s: float):
        self.count, self.per_s = count, per_s
        self._times: dict[str, deque] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Record one event for ``key`` and say whether it is within the limit (refused ones are not counted)."""
        now = time.monotonic()
        with self._lock:
            times = self._times.setdefault(key, deque())
            while times and times[0] <= now - self.per_s:
                times.popleft()
            if len(times) >= self.count:
                return False
            times.append(now)
            return True


def signed_in_user(request) -> str | None:
    """The user signed in on a Starlette request to a route beside Gradio's (its session cookie, as Gradio's own
    routes read it); None when nobody is."""
    app = request.app
    cookie_id = getattr(app, "cookie_id", None)
    if cookie_id is None:
        return None
    token = request.cookies.get(f"access-token-{cookie_id}") or request.cookies.get(
        f"access-token-unsecure-{cookie_id}")
    return getattr(app, "tokens", {}).get(token)
