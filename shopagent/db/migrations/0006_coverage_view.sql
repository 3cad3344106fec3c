-- Embedding coverage at a glance: how much of the catalog is searchable by vector, and with what.
CREATE OR REPLACE VIEW embedding_coverage AS
SELECT
    count(*)                                                    AS total,
    count(*) FILTER (WHERE embedding IS NOT NULL AND NOT embedding_stale) AS embedded,
    count(*) FILTER (WHERE embedding_stale AND embedding IS NOT NULL)     AS stale,
    count(*) FILTER (WHERE embedding IS NULL)                   AS missing,
    round(100.0 * count(*) FILTER (WHERE embedding IS NOT NULL AND NOT embedding_stale)
          / greatest(count(*), 1), 2)                           AS coverage_pct,
    array_remove(array_agg(DISTINCT embedding_model), NULL)     AS models,
    max(last_embedding_update)                                  AS last_embedding_update
FROM products;
