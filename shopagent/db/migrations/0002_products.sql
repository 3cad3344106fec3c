-- The product catalog. `embedding` holds the vector of `embedded_text`; its dimension is the
-- configured model's (substituted from settings when this migration first runs).
CREATE TABLE IF NOT EXISTS products (
    id                    text PRIMARY KEY,
    name                  text NOT NULL DEFAULT '',
    description           text NOT NULL DEFAULT '',
    bullet_points         text[] NOT NULL DEFAULT '{}',
    brand                 text,
    color                 text,
    category              text[] NOT NULL DEFAULT '{}',
    price                 numeric(12, 2) CHECK (price IS NULL OR price >= 0),
    rating                real,
    rating_count          integer,
    in_stock              boolean NOT NULL DEFAULT true,
    is_book               boolean NOT NULL DEFAULT false,
    image_url             text,
    attributes            jsonb NOT NULL DEFAULT '{}'::jsonb,
    embedded_text         text NOT NULL DEFAULT '',
    content_hash          text NOT NULL DEFAULT '',
    embedding             vector({embedding_dim}),
    embedding_model       text,
    embedding_version     text,
    embedding_stale       boolean NOT NULL DEFAULT true,
    last_embedding_update timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
