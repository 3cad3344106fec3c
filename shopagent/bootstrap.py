"""Start-up in one place: connect (embedded server or DATABASE_URL), migrate, check the dimension."""

from __future__ import annotations

import logging

import psycopg
from langchain_core.embeddings import Embeddings

from shopagent import db, repository
from shopagent.config import Settings
from shopagent.embeddings import check_dimension, embedding_dimension, embedding_model_name

log = logging.getLogger(__name__)


def prepare_database(settings: Settings, embeddings: Embeddings, dsn: str | None = None) -> psycopg.Connection:
    """A migrated connection whose embedding column matches the model (or a clear error)."""
    conn = db.connect(settings, dsn)
    dim = embedding_dimension(embeddings)
    db.migrate(conn, dim)
    check_dimension(dim, repository.embedding_column_dimension(conn), embedding_model_name(settings, embeddings))
    return conn
