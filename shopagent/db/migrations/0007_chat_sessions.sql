-- Chat session ownership: a session id belongs to the user who started it (see agent/api.py).
CREATE TABLE IF NOT EXISTS chat_sessions (
    session_id  text PRIMARY KEY,
    user_id     text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS chat_sessions_user ON chat_sessions (user_id);
