"""PostgreSQL: connections and the one pool factory (`connection`), schema migrations and index DDL
(`schema`), catalog reads (`catalog`) and writes (`writes`), chat-session SQL (`sessions`), and
benchmark diagnostics (`diagnostics`). All SQL of the project lives in this package and its migrations."""
