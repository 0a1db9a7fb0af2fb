"""Optional sign-in through a force's central OpenID Connect identity provider.

Off by default (OIDC_ENABLED); while off, both routes answer 404. When on, the sign-in
page offers "Sign in with OIDC_PROVIDER_NAME", and:

- the browser goes to the provider with a fresh `state`, `nonce` and PKCE (S256)
  challenge, all kept in the session by Authlib;
- the callback checks the state (a replayed or forged callback has none), trades the code
  for tokens over the back channel, and validates the ID token: its signature against the
  provider's published JWKS (RS256 and the other asymmetric algorithms the provider
  lists; never `none`), the issuer (exactly OIDC_ISSUER), the audience (must include
  OIDC_CLIENT_ID; `azp` too when there are several), the nonce, and expiry (with
  CLOCK_SKEW_SECONDS of leeway);
- the person is matched to an account by `users.oidc_subject`; on their first sign-in,
  by an email address the provider says is verified (`email_verified` true) to an
  existing active account with no subject yet, which then records the subject. No
  account is ever created here: roles are given by admins;
- disabled and locked accounts are refused;
- the session then begins exactly as a password sign-in's does (cleared, then signed in,
  with its start and activity noted).

Every success and refusal is an audit event on the system chain, with ids and reason
codes only (never the subject, an email or a token).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests
from authlib.integrations.base_client import MismatchingStateError, OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Blueprint, Flask, abort, current_app, flash, redirect, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from joserfc.errors import JoseError
from sqlalchemy import select
from sqlalchemy.orm import Session

from config import ConfigError
from licensing.audit.services import append_event
from licensing.auth.models import User
from licensing.auth.services import normalise_email
from licensing.auth.signin import begin_session
from licensing.db import get_session
from licensing.notifications.alerts import absolute_url

oidc_bp = Blueprint("oidc", __name__)

CLIENT_NAME = "idp"
EXTENSION_KEY = "licensing.oidc"
DEFAULT_SCOPES = "openid email profile"
DEFAULT_PROVIDER_NAME = "your force account"
CLOCK_SKEW_SECONDS = 60
HTTP_TIMEOUT_SECONDS = 10
_TRUE = frozenset({"1", "true", "yes", "on"})


def _flag(value: object) -> bool:
    # Environment values arrive as text: "false" must not read as on.
    if isinstance(value, str):
        return value.strip().lower() in _TRUE
    return bool(value)


def init_app(app: Flask) -> None:
    """Read the OIDC_* settings; when on, refuse to start without an issuer, client id
    and secret, and register the provider's client."""
    enabled = _flag(app.config.get("OIDC_ENABLED"))
    app.config["OIDC_ENABLED"] = enabled
    app.config.setdefault("OIDC_PROVIDER_NAME", DEFAULT_PROVIDER_NAME)
    if not enabled:
        return
    missing = [
        name
        for name in ("OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET")
        if not app.config.get(name)
    ]
    if missing:
        raise ConfigError(f"OIDC_ENABLED needs {', '.join(missing)}")
    scopes = str(app.config.get("OIDC_SCOPES") or DEFAULT_SCOPES)
    if "openid" not in scopes.split():
        raise ConfigError("OIDC_SCOPES must include openid")
    issuer = str(app.config["OIDC_ISSUER"]).rstrip("/")
    oauth = OAuth(app)
    oauth.register(
        CLIENT_NAME,
        client_id=str(app.config["OIDC_CLIENT_ID"]),
        client_secret=str(app.config["OIDC_CLIENT_SECRET"]),
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={
            "scope": scopes,
            "code_challenge_method": "S256",
            "default_timeout": HTTP_TIMEOUT_SECONDS,
        },
    )
    app.extensions[EXTENSION_KEY] = oauth


# Public-key algorithms only: an ID token is never accepted unsigned ("none") or with a
# MAC, whatever the provider's metadata lists.
SIGNING_ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
)  # fmt: skip


def _client() -> Any:
    """The provider's client, its metadata loaded and checked (404 while OIDC is off).

    Raises requests.RequestException when the provider does not answer, and ValueError
    when its metadata names another issuer (OpenID Connect Discovery 1.0, section 4.3)."""
    if not current_app.config.get("OIDC_ENABLED"):
        abort(404)
    client = current_app.extensions[EXTENSION_KEY].create_client(CLIENT_NAME)
    metadata = client.load_server_metadata()
    issuer = str(current_app.config["OIDC_ISSUER"]).rstrip("/")
    if str(metadata.get("issuer") or "").rstrip("/") != issuer:
        raise ValueError("the provider's metadata names another issuer")
    listed = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
    metadata["id_token_signing_alg_values_supported"] = [
        alg for alg in listed if alg in SIGNING_ALGORITHMS
    ] or ["RS256"]
    return client


# ---- services -----------------------------------------------------------------------------


class SignInRefused(Exception):
    """The provider's sign-in was not accepted; `reason` is a short code for the audit."""

    def __init__(self, reason: str, user_id: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.user_id = user_id


# Refusals of the token or the exchange, as against refusals of the account.
TOKEN_REASONS = frozenset({"state", "provider_error", "id_token", "unreachable", "no_id_token"})


@dataclass(frozen=True)
class Identity:
    """What the validated ID token says about the person."""

    subject: str
    email: str | None
    email_verified: bool


def _usable(user: User) -> None:
    if not user.active:
        raise SignInRefused("disabled", user.id)
    if user.locked_at is not None:
        raise SignInRefused("locked", user.id)


def match_account(session: Session, identity: Identity) -> User:
    """The account this identity signs in to, recording its subject on first sign-in, and
    an audit event; commits. Raises SignInRefused (nothing recorded) when there is none."""
    if not identity.subject or len(identity.subject) > 255:
        raise SignInRefused("bad_subject")
    user = session.scalar(select(User).where(User.oidc_subject == identity.subject))
    linked = False
    if user is None:
        # Only an address the provider vouches for may claim an account, and only one
        # not yet bound to another identity.
        if not identity.email_verified or not identity.email:
            raise SignInRefused("unknown_subject")
        user = session.scalar(select(User).where(User.email == normalise_email(identity.email)))
        if user is None:
            raise SignInRefused("no_account")
        if user.oidc_subject is not None:
            raise SignInRefused("subject_mismatch", user.id)
        _usable(user)
        user.oidc_subject = identity.subject
        linked = True
    else:
        _usable(user)
    append_event(
        session,
        event="oidc_sign_in.succeeded",
        actor_id=user.id,
        payload={"user_id": user.id, "linked": linked},
    )
    session.commit()
    return user


def record_refusal(session: Session, refusal: SignInRefused) -> None:
    """Record a refused provider sign-in on the system audit chain, and commit."""
    session.rollback()
    append_event(
        session,
        event="oidc_sign_in.failed",
        actor_id=None,
        payload={"reason": refusal.reason, "user_id": refusal.user_id},
    )
    session.commit()


def validated_identity() -> Identity:
    """Finish the authorisation code exchange of this callback request and return the
    identity in its validated ID token; SignInRefused otherwise."""
    try:
        client = _client()
    except requests.RequestException:
        raise SignInRefused("unreachable") from None
    except ValueError:
        raise SignInRefused("provider_error") from None
    # The metadata's spelling of the issuer (checked against OIDC_ISSUER in _client):
    # the ID token must carry exactly it.
    issuer = str(client.server_metadata["issuer"])
    claims_options = {
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "values": [client.client_id]},
        "sub": {"essential": True},
        "exp": {"essential": True},
    }
    try:
        token = client.authorize_access_token(
            claims_options=claims_options, leeway=CLOCK_SKEW_SECONDS
        )
    except MismatchingStateError:
        raise SignInRefused("state") from None
    except OAuthError:
        raise SignInRefused("provider_error") from None
    except JoseError:
        raise SignInRefused("id_token") from None
    except requests.RequestException:
        raise SignInRefused("unreachable") from None
    except (ValueError, KeyError, TypeError):
        # A malformed answer (not JSON, a key that will not import): refused like a
        # forgery, never a 500 that might leave half a session behind.
        raise SignInRefused("id_token") from None
    claims = token.get("userinfo")
    if not claims:
        # No ID token, or no nonce in the state: nothing was validated.
        raise SignInRefused("no_id_token")
    email = claims.get("email")
    return Identity(
        subject=str(claims.get("sub") or ""),
        email=email if isinstance(email, str) else None,
        email_verified=claims.get("email_verified") is True,
    )


# ---- pages ---------------------------------------------------------------------------------


@oidc_bp.get("/sign-in/oidc")
def start() -> ResponseReturnValue:
    """Send the browser to the identity provider (404 while OIDC is off)."""
    if not current_app.config.get("OIDC_ENABLED"):
        abort(404)
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.home"))
    try:
        return _client().authorize_redirect(absolute_url("oidc.callback"))
    except (requests.RequestException, ValueError, KeyError, RuntimeError):
        flash(
            f"Sign-in with {current_app.config['OIDC_PROVIDER_NAME']} is not available "
            "just now. Try again later, or sign in with your password.",
            "info",
        )
        return redirect(url_for("auth.login"))


@oidc_bp.get("/sign-in/oidc/callback")
def callback() -> ResponseReturnValue:
    """The provider's answer: validate it, match the account, begin the session."""
    if not current_app.config.get("OIDC_ENABLED"):
        abort(404)
    db = get_session()
    provider = current_app.config["OIDC_PROVIDER_NAME"]
    try:
        user = match_account(db, validated_identity())
    except SignInRefused as refusal:
        record_refusal(db, refusal)
        if refusal.reason in TOKEN_REASONS:
            flash(f"Sign-in with {provider} did not complete. Try again.", "info")
        else:
            flash(
                f"There is no active account here for your {provider} sign-in. "
                "Ask an administrator for access.",
                "info",
            )
        return redirect(url_for("auth.login"))
    begin_session(user)
    return redirect(url_for("dashboard.home"))
