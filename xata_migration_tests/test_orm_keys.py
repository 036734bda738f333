"""A table whose links use the ORM's own text key (`id`, as Prisma and Drizzle made them
on Xata's Postgres branches) beside Xata's `xata_id`: the ORM key is the record id, and
keeps its name `id`; `xata_id` stays a column, so old Xata ids resolve too."""

import psycopg

from xata_migration import api
from xata_migration.sources import XATA_RUNTIME_SQL
from xata_migration_tests.support import XATA_COLUMNS, check_outcomes, execute_sql, migrate

PRISMA = f"""
CREATE TABLE "Chat" (id text PRIMARY KEY DEFAULT ('ch_' || xata_private.xid()),
    {XATA_COLUMNS}, title text);
CREATE UNIQUE INDEX "_pgroll_new_Chat_xata_id_key" ON "Chat" (xata_id);
CREATE TABLE "Message" (id text PRIMARY KEY DEFAULT ('msg_' || xata_private.xid()),
    {XATA_COLUMNS},
    "chatId" text NOT NULL REFERENCES "Chat" (id) ON DELETE CASCADE ON UPDATE CASCADE,
    body text);
CREATE UNIQUE INDEX "_pgroll_new_Message_xata_id_key" ON "Message" (xata_id);
INSERT INTO "Chat" (id, xata_id, title) VALUES
  ('ch_b', 'rec_cn0d5r1u4s8g00000002', 'second'), ('ch_a', 'rec_cn0d5r1u4s8g00000001', 'first');
INSERT INTO "Message" (id, xata_id, "chatId", body) VALUES
  ('msg_1', 'rec_cn0d5r1u4s8g00000011', 'ch_a', 'hi'),
  ('msg_2', 'rec_cn0d5r1u4s8g00000012', 'ch_b', 'yo'),
  ('msg_3', 'rec_cn0d5r1u4s8g00000013', 'ch_a', 'again');
"""

# each message's chat, named by both old ids, read without the tool's code
LINKED = """
SELECT m.{mid}, c.{cid}, c.xata_id FROM "Message" m JOIN "Chat" c ON c.id = m."chatId"
ORDER BY 1
"""


def test_the_orm_key_is_the_record_id_and_xata_id_stays(source_url, target_url):
    execute_sql(source_url, XATA_RUNTIME_SQL, PRISMA)
    described = api.describe_source(source_url)
    plan = described.plan
    assert [(t.name, t.id_column) for t in plan.tables] == [("Chat", "id"), ("Message", "id")]
    link = plan.table("Message").column("chatId").link
    assert (link.table, link.on_delete, link.on_update) == ("Chat", "CASCADE", "CASCADE")
    assert not plan.table("Chat").column("xata_id").not_null
    result = migrate(plan, source_url, target_url)
    assert result.success and all(check_outcomes(result).values())
    with psycopg.connect(source_url) as source:
        expected = source.execute(LINKED.format(mid="xata_id", cid="id")).fetchall()
    with psycopg.connect(target_url, autocommit=True) as target:
        found = target.execute(LINKED.format(mid="xata_id", cid="id")).fetchall()
        old_chat_ids = dict(target.execute('SELECT new_id, xata_id FROM xata_id_map."Chat"'))
        # the new chat ids, named back by the ORM's old keys
        assert [(m, old_chat_ids[c], x) for m, c, x in found] == expected
        assert target.execute("SELECT format_type(atttypid, NULL) FROM pg_attribute WHERE"
                              " attrelid = '\"Chat\"'::regclass AND attname = 'id'"
                              ).fetchone() == ("bigint",)
        new = target.execute('INSERT INTO "Chat" (title) VALUES (\'third\')'
                             ' RETURNING id, xata_id').fetchone()
        assert new[0] > max(old_chat_ids) and new[1] is None
    assert api.lookup(target_url, "Chat", "ch_a") == next(
        n for n, old in old_chat_ids.items() if old == "ch_a")
