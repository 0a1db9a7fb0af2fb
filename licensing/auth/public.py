"""The only endpoints reachable without signing in. Each has its own test.

Everything else is refused to an anonymous request by `licensing.auth.views.require_login`
(pages redirect to sign-in; the API answers 401). Routes that carry their own secret
(a calendar feed token, a metrics token) are listed here when they arrive.
"""

PUBLIC_ENDPOINTS: frozenset[str] = frozenset(
    {
        "auth.login",  # the sign-in page itself
        "static",  # GOV.UK Frontend CSS, JS, fonts and images
        "health.healthz",  # load balancer probe; says only whether the database answers
        "health.readyz",  # readiness probe; names only which check failed
        # Password reset (licensing/auth/reset.py): asking for a link answers the same
        # whoever asks; the link and the new-password page need a live single-use token.
        "reset.request_link",
        "reset.open_link",
        "reset.set_password",
        # OpenID Connect sign-in (licensing/auth/oidc.py): 404 unless OIDC_ENABLED; the
        # callback checks state, nonce and the ID token's signature, issuer and audience.
        "oidc.start",
        "oidc.callback",
    }
)

# Endpoints that are public to the session check but verify a secret of their own.
SECRET_BEARING_ENDPOINTS: frozenset[str] = frozenset(
    {
        "visits.feed",  # /calendar/<token>.ics: a revocable per-user token, stored hashed
        "metrics.metrics",  # /metrics: METRICS_TOKEN as a bearer token; 404 when unset
    }
)
