"""The dump filter on its own (no server): what it keeps, what it leaves out and why, and
the dump's line of each kept line."""

import io

from xata_migration.sources import filter_script

SCRIPT = """--
-- PostgreSQL database dump
--

\\restrict AbC123

SET transaction_timeout = 0;
SET a_setting_from_the_future = 'x';
SET SESSION AUTHORIZATION rdsadmin;
GRANT ALL ON FUNCTION pg_catalog.now() TO someone;
RESET SESSION AUTHORIZATION;
CREATE SCHEMA xata_private;
CREATE FUNCTION xata_private.f() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  RETURN 'a;b'; -- a semicolon in a body
END $$;
CREATE TABLE xata_private.state (k text);
COPY xata_private.state (k) FROM stdin;
a;b
\\.
CREATE TABLE public.t (v text);
ALTER TABLE public.t OWNER TO xata_owner_bb_1;
COPY public.t (v) FROM stdin;
é;\\N
\\.
SELECT pg_catalog.setval('xata_private.counter', 3, true);
SELECT 'é' AS kept; GRANT SELECT ON public.t TO r;
\\unrestrict AbC123
"""


def test_the_filter_keeps_the_application_and_counts_what_it_leaves_out():
    out = io.StringIO()
    filtered = filter_script(io.StringIO(SCRIPT), out, {"transaction_timeout"})
    kept = out.getvalue()
    assert "SET transaction_timeout = 0;" in kept
    assert "CREATE TABLE public.t (v text);" in kept
    assert "COPY public.t (v) FROM stdin;\né;\\N\n\\.\n" in kept
    assert "SELECT 'é' AS kept;\n" in kept
    for gone in ("a_setting_from_the_future", "rdsadmin", "GRANT", "xata_private", "OWNER",
                 "\\restrict", "\\unrestrict", "a;b"):
        assert gone not in kept, gone
    assert dict(filtered.left_out) == {
        "settings the target server does not know": 1, "session authorizations": 2,
        "grants and revokes": 2, "Xata's and the platform's schemas": 1,
        "objects of schema xata_private": 4, "owners (OWNER TO)": 1,
        "psql meta-commands": 2}
    lines = kept.splitlines()
    assert filtered.dump_line(lines.index("CREATE TABLE public.t (v text);") + 1) == 21
    assert filtered.dump_line(lines.index("é;\\N") + 1) == 24
