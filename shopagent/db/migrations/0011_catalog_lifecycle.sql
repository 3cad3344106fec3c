-- Catalog lifecycle. A product absent from a full feed, or deleted by an incremental one, is deactivated: kept
-- (for history and for conversations that mention it) but never searched; `shopagent ingest --purge-after DAYS`
-- deletes it later.
ALTER TABLE products ADD COLUMN IF NOT EXISTS active boolean NOT NULL DEFAULT true;
ALTER TABLE products ADD COLUMN IF NOT EXISTS deactivated_at timestamptz;
CREATE INDEX IF NOT EXISTS products_inactive_idx ON products (deactivated_at) WHERE NOT active;

-- Hash of every stored field a feed gives (shopagent.db.writes.row_hash): a sync skips rows whose hash is unchanged
-- without sending them. A write that changes those fields without setting the hash (by hand, another tool)
-- clears it, so the next sync writes the row again.
ALTER TABLE products ADD COLUMN IF NOT EXISTS row_hash text;

CREATE OR REPLACE FUNCTION products_clear_row_hash() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.row_hash IS NOT DISTINCT FROM OLD.row_hash
       AND (NEW.name, NEW.description, NEW.bullet_points, NEW.brand, NEW.color, NEW.category, NEW.price,
            NEW.rating, NEW.rating_count, NEW.in_stock, NEW.is_book, NEW.image_url, NEW.attributes,
            NEW.embedded_text, NEW.content_hash)
           IS DISTINCT FROM
           (OLD.name, OLD.description, OLD.bullet_points, OLD.brand, OLD.color, OLD.category, OLD.price,
            OLD.rating, OLD.rating_count, OLD.in_stock, OLD.is_book, OLD.image_url, OLD.attributes,
            OLD.embedded_text, OLD.content_hash) THEN
        NEW.row_hash := NULL;
    END IF;
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS products_clear_row_hash ON products;
CREATE TRIGGER products_clear_row_hash BEFORE UPDATE ON products
    FOR EACH ROW EXECUTE FUNCTION products_clear_row_hash();

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
