"""One router per resource: `chat` (messages, stream, history, sessions, feedback) and `ops` (health)."""
