"""Print a development JWT for one URL: ``python -m sandbox.token <url>`` (for curl).

The token's ``aud`` is that exact URL, as the service checks; it is valid for 5 minutes and
once only (the service rejects a reused ``jti``). Development only: signed with the sandbox key.
"""

from __future__ import annotations

import sys

from .devkey import ensure_dev_key


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m sandbox.token <url called, e.g. "
              "http://127.0.0.1:8080/cds-services/aimss-patient-view>", file=sys.stderr)
        return 2
    print(ensure_dev_key().sign(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
