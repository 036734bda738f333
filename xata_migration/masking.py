"""Passwords out of every text the tool shows: `mask_url` hides them in a connection
string (a postgresql:// URL or a libpq key=value string), `scrub` in any message. Both
find a password where libpq itself reads one, and replace it in every form it may take:
as written, decoded, percent-encoded.
"""

from __future__ import annotations

from urllib.parse import quote

import psycopg
from psycopg.conninfo import conninfo_to_dict


def _url_password_spans(url: str) -> list[tuple[int, int]]:
    """Where a postgresql:// URL holds passwords: after the user name in its user info
    (up to the last `@` before the host), and in a `password=` query parameter."""
    spans = []
    authority_start = url.index("://") + 3
    ends = [i for i in (url.find(c, authority_start) for c in "/?#") if i != -1]
    authority_end = min(ends) if ends else len(url)
    at = url.rfind("@", authority_start, authority_end)
    colon = url.find(":", authority_start, at) if at != -1 else -1
    if colon != -1:
        spans.append((colon + 1, at))
    query = url.find("?", authority_start)
    if query != -1:
        position = query + 1
        for parameter in url[query + 1:].split("#")[0].split("&"):
            name, equals, _ = parameter.partition("=")
            if equals and name.lower() == "password":
                spans.append((position + len(name) + 1, position + len(parameter)))
            position += len(parameter) + 1
    return spans


def _keyword_value_spans(conninfo: str) -> list[tuple[int, int]]:
    """Where a libpq keyword=value string holds passwords, read as libpq reads it: a
    value is single-quoted (with backslash escapes) or runs to the next white space."""
    spans, i, n = [], 0, len(conninfo)
    while i < n:
        while i < n and conninfo[i].isspace():
            i += 1
        start = i
        while i < n and conninfo[i] != "=" and not conninfo[i].isspace():
            i += 1
        keyword = conninfo[start:i]
        while i < n and conninfo[i].isspace():
            i += 1
        if i >= n or conninfo[i] != "=":
            break  # no keyword=value here: libpq reads nothing further as a value
        i += 1
        while i < n and conninfo[i].isspace():
            i += 1
        quoted = i < n and conninfo[i] == "'"
        value_start = i + 1 if quoted else i
        i = value_start
        while i < n and (conninfo[i] != "'" if quoted else not conninfo[i].isspace()):
            i += 2 if conninfo[i] == "\\" else 1
        if keyword == "password":
            spans.append((value_start, min(i, n)))
        i += 1 if quoted else 0
    return spans


def _password_spans(url: str) -> list[tuple[int, int]]:
    if "://" in url.split("=", 1)[0]:
        return _url_password_spans(url)
    return _keyword_value_spans(url)


def mask_url(url: str) -> str:
    """The URL (postgresql://... or key=value) with every password replaced by ***."""
    masked = url
    for start, end in sorted(_password_spans(url), reverse=True):
        masked = masked[:start] + "***" + masked[end:]
    return scrub(masked, url)


def _password_forms(url: str) -> set[str]:
    """Every form the URL's passwords may take in a message: as written in the URL, as
    libpq reads them (decoded, unquoted), and percent-encoded."""
    forms = {url[start:end] for start, end in _password_spans(url)}
    try:
        read = conninfo_to_dict(url).get("password")
    except psycopg.ProgrammingError:
        read = None
    if read:
        forms |= {read, quote(read, safe=""), quote(read)}
    # a form inside a longer one goes with it (libpq may read only the start of a
    # malformed URL's password): replacing it alone would garble the rest of the text
    return {form for form in forms if form and not any(form in other and form != other
                                                       for other in forms)}


def scrub(text: str, url: str) -> str:
    """Remove the URL's password from a message, in every form it may appear in."""
    for form in sorted(_password_forms(url), key=len, reverse=True):
        text = text.replace(form, "***")
    return text
