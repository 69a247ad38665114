"""Tenant names the store gives meaning to (DESIGN §6: each trusted issuer is a tenant).

A call's tenant is its JWT issuer; these two values are the exceptions.
"""

DEVELOPMENT_TENANT = "development"
"""Calls served with ``AIMSS_AUTH_DISABLED=1``: no issuer, one tenant for all of them."""

BEFORE_TENANTS = ""
"""Rows stored before tenants existed (never an issuer: ``iss`` is never empty)."""
