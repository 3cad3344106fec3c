-- Extensions the catalog needs: pgvector for embeddings, pg_trgm for fuzzy name/brand matching.
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
