-- Keep bookkeeping honest whatever writes the row: content changes without a new embedding mark it
-- stale; a new embedding clears the flag and stamps the time.
CREATE OR REPLACE FUNCTION products_touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    IF TG_OP = 'INSERT' THEN
        NEW.embedding_stale := NEW.embedding IS NULL;
        IF NEW.embedding IS NOT NULL THEN
            NEW.last_embedding_update := coalesce(NEW.last_embedding_update, now());
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.embedding IS DISTINCT FROM OLD.embedding THEN
        NEW.embedding_stale := NEW.embedding IS NULL;
        NEW.last_embedding_update := now();
    ELSIF NEW.embedded_text IS DISTINCT FROM OLD.embedded_text
          OR NEW.content_hash IS DISTINCT FROM OLD.content_hash THEN
        NEW.embedding_stale := true;
    END IF;
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS products_touch ON products;
CREATE TRIGGER products_touch BEFORE INSERT OR UPDATE ON products
    FOR EACH ROW EXECUTE FUNCTION products_touch();
