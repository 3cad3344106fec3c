"""Evaluation: ranking metrics and the graded-query loaders (`metrics`), threshold calibration
(`calibration`), retrieval runs per strategy (`retrieval`), conversation evaluators (`conversations`), and the
LangSmith datasets and experiments both record (`experiments`)."""
