-- Extensions the catalog needs: pgvector for embeddings.
CREATE EXTENSION IF NOT EXISTS vector;

