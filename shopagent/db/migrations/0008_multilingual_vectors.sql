-- The second dense list: a multilingual vector of each product's name and brand (USE multilingual v3, 512
-- dims), so Spanish queries meet English titles. NULL until embedded; cleared whenever the name or the brand
-- changes, so the next ingest embeds it again.
ALTER TABLE products ADD COLUMN IF NOT EXISTS embedding_ml vector(512);

CREATE INDEX IF NOT EXISTS products_embedding_ml_hnsw
    ON products USING hnsw (embedding_ml vector_cosine_ops) WITH (m = 16, ef_construction = 64);

CREATE OR REPLACE FUNCTION products_clear_ml() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.name, NEW.brand) IS DISTINCT FROM (OLD.name, OLD.brand) AND NEW.embedding_ml IS NOT DISTINCT FROM OLD.embedding_ml THEN
        NEW.embedding_ml := NULL;
    END IF;
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS products_clear_ml ON products;
CREATE TRIGGER products_clear_ml BEFORE UPDATE ON products
    FOR EACH ROW EXECUTE FUNCTION products_clear_ml();
