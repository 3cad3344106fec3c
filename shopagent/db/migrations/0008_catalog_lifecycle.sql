-- Catalog lifecycle. A product absent from a full feed, or deleted by an incremental one, is deactivated: kept
-- (for history and for conversations that mention it) but never searched; `shopagent ingest --purge-after DAYS`
-- deletes it later.
ALTER TABLE products ADD COLUMN IF NOT EXISTS active boolean NOT NULL DEFAULT true;
ALTER TABLE products ADD COLUMN IF NOT EXISTS deactivated_at timestamptz;
CREATE INDEX IF NOT EXISTS products_inactive_idx ON products (deactivated_at) WHERE NOT active;

-- What search may show, for consumers that read the table directly (the langchain-postgres PGVectorStore).
CREATE OR REPLACE VIEW active_products AS SELECT * FROM products WHERE active;

-- Chroma outbox: every product change committed in PostgreSQL queues its id here in the same transaction; the
-- mirror pushes queued ids to Chroma after the commit and then removes them, so a run killed in between leaves
-- them queued for the next one. `vector`: the embedding changed too (else only metadata); `seq` orders entries
-- and lets the mirror remove only what it pushed.
CREATE SEQUENCE IF NOT EXISTS chroma_outbox_seq;
CREATE TABLE IF NOT EXISTS chroma_outbox (
    id        text PRIMARY KEY,
    vector    boolean NOT NULL DEFAULT false,
    seq       bigint NOT NULL DEFAULT nextval('chroma_outbox_seq'),
    queued_at timestamptz NOT NULL DEFAULT now()
);

-- Coverage now counts searchable (active) products; inactive ones are counted apart. New columns go last
-- (CREATE OR REPLACE VIEW keeps the existing ones in place).
CREATE OR REPLACE VIEW embedding_coverage AS
SELECT
    count(*)                                                                       AS total,
    count(*) FILTER (WHERE active AND embedding IS NOT NULL AND NOT embedding_stale) AS embedded,
    count(*) FILTER (WHERE active AND embedding_stale AND embedding IS NOT NULL)     AS stale,
    count(*) FILTER (WHERE active AND embedding IS NULL)                             AS missing,
    round(100.0 * count(*) FILTER (WHERE active AND embedding IS NOT NULL AND NOT embedding_stale)
          / greatest(count(*) FILTER (WHERE active), 1), 2)                          AS coverage_pct,
    array_remove(array_agg(DISTINCT embedding_model), NULL)                          AS models,
    max(last_embedding_update)                                                       AS last_embedding_update,
    count(*) FILTER (WHERE active)                                                   AS active,
    count(*) FILTER (WHERE NOT active)                                               AS inactive,
    (SELECT count(*) FROM chroma_outbox)                                             AS chroma_pending
FROM products;
