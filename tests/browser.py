#!/usr/bin/env python3
"""A browser for the login tests, named in ``BROWSER``: it opens the authorization URL the way a
browser would when the user is already logged in and consents (the authorization server redirects
at once), then follows the redirect to the client's loopback callback. Each opening is appended to
the file ``BROWSER_LOG`` names, so a test can count them."""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def main(url: str) -> int:
    log = os.environ.get("BROWSER_LOG")
    if log:
        with open(log, "a") as file:
            file.write(f"{time.time()} {url}\n")
    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(url, timeout=30)
        return 1  # a page, not a redirect: a real user would have to do something here
    except urllib.error.HTTPError as answer:
        location = answer.headers.get("location")
        if answer.code not in (301, 302, 303, 307, 308) or not location:
            return 1
    with urllib.request.urlopen(location, timeout=30) as landed:  # the client's callback
        return 0 if landed.status == 200 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
