-- Traced chat turns (LangSmith root run ids), so that any worker can tell a rating of a real turn from a typo.
CREATE TABLE IF NOT EXISTS chat_runs (
    run_id      uuid PRIMARY KEY,
    session_id  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS chat_runs_created_at ON chat_runs (created_at);
