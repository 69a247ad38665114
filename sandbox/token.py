"""Print a development JWT for one URL: ``python -m sandbox.token <url>`` (for curl).

The token's ``aud`` is that exact URL, as the service checks; it is valid for 5 minutes and
once only (the service rejects a reused ``jti``). Development only: signed with the sandbox key.
"""

from __future__ import annotations

import argparse
import sys
from urllib.parse import urlsplit

from .devkey import DEFAULT_DIR, TOKEN_LIFETIME_SECONDS, ensure_dev_key


def _url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError(f"not an http(s) URL: {value!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.token",
        description="Print a development JWT (the sandbox key under "
        f"{DEFAULT_DIR}) whose aud is URL, valid {TOKEN_LIFETIME_SECONDS // 60} minutes and for "
        "one call. Development only.",
    )
    parser.add_argument(
        "url", type=_url, metavar="URL",
        help="the exact URL called, e.g. http://127.0.0.1:8080/cds-services/aimss-patient-view",
    )
    args = parser.parse_args(argv)
    print(ensure_dev_key().sign(args.url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
