-- Full-text search: one weighted tsvector (name A, brand/category B, bullets C, description D).
CREATE OR REPLACE FUNCTION products_search_document(
    p_name text, p_brand text, p_category text[], p_color text, p_bullets text[], p_description text
) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT setweight(to_tsvector('english', coalesce(p_name, '')), 'A')
        || setweight(to_tsvector('english', coalesce(p_brand, '') || ' '
                     || coalesce(array_to_string(p_category, ' '), '')), 'B')
        || setweight(to_tsvector('english', coalesce(p_color, '') || ' '
                     || coalesce(array_to_string(p_bullets, ' '), '')), 'C')
        || setweight(to_tsvector('english', left(coalesce(p_description, ''), 4000)), 'D')
$$;

ALTER TABLE products ADD COLUMN IF NOT EXISTS search_tsv tsvector
    GENERATED ALWAYS AS (
        products_search_document(name, brand, category, color, bullet_points, description)
    ) STORED;
