"""The operational scripts as a user runs them: subprocesses against the session's test database
and Chroma collection (never the developer's), JSON output checked field by field."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from shopagent.settings import PROJECT_ROOT, Settings
from tests.conftest import DATA, SLICE_QUERY_IDS

SCRIPTS = sorted((PROJECT_ROOT / "scripts").glob("*.py"))


def script_env(settings: Settings) -> dict[str, str]:
    """Environment pointing the scripts at the test database and Chroma collection, offline."""
    return {
        **os.environ,
        "DATABASE_URL": settings.database_url.get_secret_value(),  # type: ignore[union-attr]
        "CHROMA_PERSIST_DIR": str(settings.chroma_persist_dir),
        "CHROMA_COLLECTION": settings.chroma_collection,
        "HF_HUB_OFFLINE": "1",
        "LANGSMITH_TRACING": "false",
    }


def run(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run scripts/<script> from the project root."""
    return subprocess.run(
        [sys.executable, f"scripts/{script}", *args],
        cwd=PROJECT_ROOT,
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_help(script: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Every script has an argparse --help that exits 0 and shows its usage (run as __main__ in this
    process: a subprocess per script would re-import the whole stack each time)."""
    monkeypatch.syspath_prepend(str(script.parent))  # as when run as a script: scripts/ is sys.path[0]
    monkeypatch.setattr(sys, "argv", [script.name, "--help"])
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(str(script), run_name="__main__")
    assert exc.value.code == 0
    out = capsys.readouterr().out
    # Product commands are thin wrappers of `shopagent <command>`; benchmarks have their own argparse usage.
    assert "usage:" in out.lower() and (script.name in out or "shopagent" in out)


def test_search_json(loaded_settings: Settings, catalog_slice, labels) -> None:
    """search.py --json prints hits with product_id, name, score (cosine) and backend, from the slice."""
    proc = run(
        "search.py",
        "toddler water bottle without straw",
        "--k",
        "5",
        "--strategy",
        "pgvector_primary",
        "--json",
        env=script_env(loaded_settings),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    hits = json.loads(proc.stdout)
    assert len(hits) == 5
    slice_ids = {p["product_id"] for p in catalog_slice}
    for h in hits:
        assert set(h) == {"product_id", "name", "score", "backend"}
        assert h["product_id"] in slice_ids and h["backend"] == "pgvector" and -1 <= h["score"] <= 1
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert sum(labels["q013"].get(h["product_id"], 0) >= 2 for h in hits) >= 3


def test_search_bad_strategy_fails(loaded_settings: Settings) -> None:
    """An unknown strategy is a usage error (exit 2), not a traceback."""
    proc = run("search.py", "socks", "--strategy", "nope", env=script_env(loaded_settings))
    assert proc.returncode == 2 and "'nope' is not one of" in proc.stderr


def test_calibrate_small(loaded_settings: Settings, tmp_path: Path) -> None:
    """calibrate.py on the slice's judged queries: thresholds per backend in [-1, 1], both classes seen."""
    queries = tmp_path / "queries.tsv"
    lines = [
        line
        for line in (DATA / "queries.tsv").read_text().splitlines()
        if line.startswith("query_id") or line.split("\t")[0] in SLICE_QUERY_IDS
    ]
    queries.write_text("\n".join(lines) + "\n")
    out = tmp_path / "calib.json"
    proc = run(
        "calibrate.py",
        "--queries",
        str(queries),
        "--labels",
        str(DATA / "labels.tsv"),
        "--k",
        "20",
        "--output",
        str(out),
        "--quiet",
        env=script_env(loaded_settings),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "threshold max F1" in proc.stdout
    report = json.loads(out.read_text())
    assert report["queries"] == len(SLICE_QUERY_IDS) and set(report["backends"]) == {"pgvector", "chroma"}
    for rec in report["backends"].values():
        assert rec["n_relevant"] > 0 and rec["n_irrelevant"] > 0
        assert rec["n_relevant"] + rec["n_irrelevant"] == 20 * len(SLICE_QUERY_IDS)
        for cut in ("best_f1", "relaxed_floor"):
            assert -1 <= rec[cut]["threshold"] <= 1 and 0 < rec[cut]["f1"] <= 1
        assert rec["relaxed_floor"]["recall"] >= 0.95
        # The floor is the highest cut keeping 95% of relevant: a lower best-F1 cut keeps at least as many.
        floor, best = rec["relaxed_floor"], rec["best_f1"]
        assert floor["threshold"] <= best["threshold"] or best["recall"] >= floor["recall"]
