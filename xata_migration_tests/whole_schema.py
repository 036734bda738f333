"""A Xata-shaped source whose application also used ordinary PostgreSQL: user types,
sequences, generated columns, every kind of constraint and index, comments."""

from xata_migration_tests.support import XATA_COLUMNS

WHOLE_SCHEMA = f"""
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN email AS text CONSTRAINT email_has_at CHECK (VALUE LIKE '%@%');
CREATE DOMAIN positive_email AS email NOT NULL;
CREATE TYPE price_tag AS (amount numeric, currency text);
CREATE SEQUENCE ticket_seq AS integer START WITH 100 INCREMENT BY 5;

CREATE TABLE org ({XATA_COLUMNS}, name text NOT NULL);
CREATE UNIQUE INDEX _pgroll_new_org_xata_id_key ON org (xata_id);
COMMENT ON TABLE org IS 'Organisations, one per customer';

CREATE TABLE "Account" (
  {XATA_COLUMNS},
  org text REFERENCES org (xata_id) ON DELETE CASCADE ON UPDATE CASCADE,
  handle text NOT NULL,
  contact email,
  backup_contact positive_email,
  mood mood,
  moods mood[],
  price numeric NOT NULL,
  qty integer NOT NULL,
  total numeric GENERATED ALWAYS AS (price * qty) STORED,
  ticket integer NOT NULL DEFAULT nextval('ticket_seq'),
  counter serial,
  region text,
  code text,
  deleted_at timestamptz,
  during tstzrange,
  tag price_tag,
  tags text[],
  note text DEFAULT 'made on xata, by nextval(''s'')',
  CONSTRAINT account_price_positive CHECK (price > 0),
  CONSTRAINT account_region_code UNIQUE (region, code),
  CONSTRAINT account_no_overlap EXCLUDE USING gist (during WITH &&)
);
CREATE UNIQUE INDEX _pgroll_new_account_xata_id_key ON "Account" (xata_id);
CREATE UNIQUE INDEX account_lower_handle ON "Account" (lower(handle));
CREATE UNIQUE INDEX account_live_code ON "Account" (code) WHERE deleted_at IS NULL;
CREATE INDEX account_qty ON "Account" (qty);
CREATE INDEX account_tags ON "Account" USING gin (tags);
CREATE INDEX account_org_recent ON "Account" (org, xata_createdat DESC);
CREATE INDEX account_org ON "Account" (org);
COMMENT ON TABLE "Account" IS 'People who sign in';
COMMENT ON COLUMN "Account".handle IS 'shown to other users';
COMMENT ON COLUMN "Account".org IS '{{"xata.link":"org"}}';

INSERT INTO org (xata_id, name) VALUES ('rec_org1', 'Acme'), ('rec_org2', 'Globex');
INSERT INTO "Account" (xata_id, org, handle, contact, backup_contact, mood, moods, price,
                       qty, region, code, deleted_at, during, tag, tags) VALUES
  ('rec_a1', 'rec_org1', 'Ann', 'ann@example.com', 'a@b', 'happy', '{{sad,NULL,ok}}', 2.5,
   4, 'eu', 'A', NULL, '[2026-01-01,2026-02-01)', '(3.5,EUR)', '{{x,NULL}}'),
  ('rec_a2', 'rec_org2', 'Bob', NULL, 'b@c', NULL, NULL, 1, 1, 'eu', 'B', now(),
   '[2026-02-01,2026-03-01)', NULL, NULL),
  ('rec_a3', NULL, 'Cy', 'cy@d', 'c@d', 'sad', '{{}}', 10, 0, NULL, 'A', now(), NULL,
   '(,)', '{{}}');
"""

# A pgvector column in the source (the embedded server has pgvector; Debian's PostgreSQL
# 15 has not).
VECTOR_SCHEMA = """
CREATE EXTENSION IF NOT EXISTS vector;
ALTER TABLE "Account" ADD COLUMN embedding vector(2);
UPDATE "Account" SET embedding = '[1.5,-2]' WHERE xata_id = 'rec_a1';
UPDATE "Account" SET embedding = '[0,0]' WHERE xata_id = 'rec_a3';
"""

# Objects that cannot be carried as they are: the plan marks them `review`.
REVIEW_SCHEMA = """
CREATE INDEX account_org_text ON "Account" (lower(org));
ALTER TABLE "Account" ADD CONSTRAINT account_not_own_id CHECK (handle <> xata_id);
ALTER TABLE "Account" ADD COLUMN label text GENERATED ALWAYS AS (handle || xata_id) STORED;
CREATE UNIQUE INDEX org_name ON org (name);
ALTER TABLE "Account" ADD CONSTRAINT account_region_org FOREIGN KEY (region)
  REFERENCES org (name) NOT VALID;
"""
