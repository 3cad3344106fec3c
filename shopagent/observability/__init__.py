"""Observability: LangSmith tracing (`tracing`), what may leave the process (`privacy`), and feedback on
turns (`feedback`)."""
