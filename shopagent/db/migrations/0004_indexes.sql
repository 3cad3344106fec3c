-- HNSW for cosine top-k, GIN for full text, btree for the filterable columns.
CREATE INDEX IF NOT EXISTS products_embedding_hnsw
    ON products USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);
CREATE INDEX IF NOT EXISTS products_search_tsv_gin ON products USING gin (search_tsv);
CREATE INDEX IF NOT EXISTS products_price_idx ON products (price);
CREATE INDEX IF NOT EXISTS products_lower_brand_idx ON products (lower(brand));
CREATE INDEX IF NOT EXISTS products_category_gin ON products USING gin (category);
CREATE INDEX IF NOT EXISTS products_in_stock_idx ON products (in_stock);
CREATE INDEX IF NOT EXISTS products_color_idx ON products (lower(color));
CREATE INDEX IF NOT EXISTS products_stale_idx ON products (id) WHERE embedding_stale;
