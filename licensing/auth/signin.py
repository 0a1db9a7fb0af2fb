"""Beginning a signed-in session, shared by the password sign-in, the identity
provider's sign-in and a change of password.

Whatever the session held before goes (a planted fixation value, an old CSRF token), then
the user is signed in and the session's start and last activity are noted for the idle
and absolute time limits.
"""

from __future__ import annotations

import time

from flask import session
from flask_login import login_user

from licensing.auth.models import User

# Session keys: when the session began and when it was last used.
SIGNED_IN_AT = "signed_in_at"
LAST_SEEN_AT = "last_seen_at"


def begin_session(user: User) -> None:
    """Replace the current session by a fresh one signed in as `user`."""
    session.clear()
    login_user(user)
    moment = int(time.time())
    session[SIGNED_IN_AT] = moment
    session[LAST_SEEN_AT] = moment
