"""One masking function for every place nbtrack records or shows a location, URL, command line or error message.

    mask("postgresql://me:hunter2@db/x?sslpassword=k")   ->  "postgresql://me:***@db/x?sslpassword=***"
    mask_argv(["train.py", "--api-key", "sk-1"])         ->  ["train.py", "--api-key", "***"]

What is masked: the password of a URL's user part (everything up to the last ``@`` of the authority, so a
password holding ``@`` goes too), the whole user part of an http(s) URL (a git remote's token), the value of
every ``name=value`` whose name looks like a credential (``?password=``, ``&sslpassword=``, libpq's
``password=...``, ``API_KEY=...``), the value after a credential-like ``--flag`` in a command line, and any
secret the caller knows (``secrets=``: what libpq echoes back from a malformed URL). Pure functions, no imports
beyond ``re``: safe to call from anywhere, including error paths.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from urllib.parse import unquote

MASK = "***"

# A name is credential-like when it contains one of these...
_SECRET_PARTS = (
    "passw",
    "passphrase",
    "token",
    "secret",
    "apikey",
    "credential",
    "signature",
    "cookie",
    "sessionid",
    "private",
)
# ...or one of its words (split on `_`, `-`, `.`) is one of these.
_SECRET_WORDS = {"pass", "pwd", "pw", "key", "sig", "auth", "dsn", "pat"}
_NOT_SECRET = {"pwd", "oldpwd"}  # the shell's working directory variables

# scheme://userinfo@ : userinfo runs to the last `@` before the path, query or fragment.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#\s'\"<>]*)@")
# Schemes whose user part alone is a credential (https://TOKEN@github.com/...).
_TOKEN_USER_SCHEME = re.compile(r"(?:^|\+)(?:https?|wss?|ftps?)://$", re.IGNORECASE)
# name=value (URL query parameters, libpq keyword strings, VAR=value in a shell line, --flag=value).
_ASSIGNMENT = re.compile(
    r"(?P<name>[A-Za-z0-9_.-]+)(?P<equals>\s*=\s*)"
    r"(?P<value>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^&#\s;,'\"]+)"
)
_MIN_SECRET = 3  # shorter known secrets would mask ordinary letters of the message


def is_secret_name(name: str) -> bool:
    """Whether a variable, parameter or flag called `name` probably holds a credential."""
    low = name.lower().lstrip("-")
    if low in _NOT_SECRET:
        return False
    if any(part in low for part in _SECRET_PARTS):
        return True
    return any(word in _SECRET_WORDS for word in re.split(r"[^a-z0-9]+", low))


def _userinfo(match: re.Match[str]) -> str:
    scheme, userinfo = match["scheme"], match["userinfo"]
    user, colon, password = userinfo.partition(":")
    if colon:
        return f"{scheme}{user}:{MASK}@" if password and password != MASK else match[0]
    if userinfo and userinfo != MASK and _TOKEN_USER_SCHEME.search(scheme):
        return f"{scheme}{MASK}@"
    return match[0]


def _assignment(match: re.Match[str]) -> str:
    if not is_secret_name(match["name"]) or match["value"] == MASK:
        return match[0]
    return f"{match['name']}{match['equals']}{MASK}"


def mask(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every credential it shows replaced by ``***`` (see the module docstring)."""
    if not isinstance(text, str):
        text = str(text)
    for secret in sorted({s for s in secrets if s and len(s) >= _MIN_SECRET}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _USERINFO.sub(_userinfo, text)
    return _ASSIGNMENT.sub(_assignment, text)


_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>()]+")


def mask_urls(text: str) -> str:
    """`text` (code, a diff) with the credentials of every URL in it masked, and nothing else touched.

    Code is masked more narrowly than a message: ``key = "loss"`` is ordinary code, but the password in
    ``nbtrack.init(store="postgresql://me:pw@db/x")`` must not reach the run's code.py.
    """
    return _URL.sub(lambda match: mask(match[0]), text)


def url_secrets(url: str) -> list[str]:
    """The credentials a URL carries, as written and percent-decoded: to find them echoed in a message."""
    found: list[str] = []
    for match in _USERINFO.finditer(url):
        user, colon, password = match["userinfo"].partition(":")
        if colon and password:
            found.append(password)
        elif not colon and user and _TOKEN_USER_SCHEME.search(match["scheme"]):
            found.append(user)
    for match in _ASSIGNMENT.finditer(url):
        if is_secret_name(match["name"]):
            found.append(match["value"].strip("'\""))
    return [variant for secret in found for variant in {secret, unquote(secret)} if variant != MASK]


def mask_argv(argv: Sequence[str]) -> list[str]:
    """A command line with credentials masked: ``--token X``, ``--password=X``, URL passwords, ``KEY=X``.

    Only long options count (``-p`` is a port or a project as often as a password).
    """
    masked: list[str] = []
    hide_next = False
    for item in map(str, argv):
        if hide_next:
            masked.append(MASK)
            hide_next = False
            continue
        if item.startswith("--") and "=" not in item and is_secret_name(item[2:]):
            hide_next = True
        masked.append(mask(item))
    return masked
