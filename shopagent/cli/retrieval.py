"""Retrieval commands: `search`, `evaluate` (quality per strategy) and `calibrate` (thresholds)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import typer

from shopagent.domain import SearchOptions, SearchResult
from shopagent.evals import calibration, retrieval
from shopagent.evals.metrics import load_labels, load_queries
from shopagent.services import build_services
from shopagent.settings import PROJECT_ROOT, STRATEGIES, Strategy, get_settings

log = logging.getLogger("shopagent.cli")
VECTOR_BACKENDS = ("pgvector", "chroma")


def _strategy(value: str | None) -> Strategy | None:
    """A strategy name, or a usage error naming the valid ones."""
    if value is not None and value not in STRATEGIES:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(STRATEGIES)}", param_hint="--strategy")
    return value


def _rows(result: SearchResult) -> list[dict[str, Any]]:
    """The JSON shape: one dict per product, score = cosine similarity."""
    return [
        {
            "product_id": p["product_id"],
            "name": p["name"],
            "backend": p["backend"],
            "score": round(p["similarity"] if p["similarity"] is not None else p["score"], 4),
        }
        for p in result.products
    ]


def _table(result: SearchResult) -> str:
    """A readable table with the strategy, the serving backend and any fallback."""
    lines = [
        f"strategy {result.strategy}  served by {result.backend}"
        + (f"  fallback: {result.fallback_reason}" if result.fallback_reason else "")
        + ("  (weaker matches)" if result.weak_matches else "")
    ]
    lines.append(f"{'#':>3}  {'cosine':>6}  {'price':>9}  {'product_id':<12}  name")
    for rank, p in enumerate(result.products, 1):
        sim = f"{p['similarity']:.3f}" if p["similarity"] is not None else "-"
        price = f"{p['price']:.2f}" if p["price"] is not None else "-"
        lines.append(f"{rank:>3}  {sim:>6}  {price:>9}  {p['product_id']:<12}  {p['name'][:90]}")
    if not result.products:
        lines.append("  (no results)")
    return "\n".join(lines)


def search(
    query: str = typer.Argument(..., help="what the shopper typed (price phrases and negations are understood)"),
    k: int = typer.Option(10, "--k", min=1, max=100, help="number of results"),
    strategy: str | None = typer.Option(None, "--strategy", help=f"one of {', '.join(STRATEGIES)}"),
    as_json: bool = typer.Option(False, "--json", help='print [{"product_id","name","score","backend"}]'),
) -> None:
    """Search the catalog with the service's own search (strategies, thresholds, fallbacks). Exit 1 when a
    backend error left the search without results."""
    chosen = _strategy(strategy)
    services = build_services(get_settings())
    try:
        for err in services.startup_errors:
            log.warning("%s", err)
        result = services.search.search(services.parse(query), SearchOptions(k=k, strategy=chosen))
    finally:
        services.close()
    for reason in result.errors:
        log.error("%s", reason)
    typer.echo(json.dumps(_rows(result), indent=2) if as_json else _table(result))
    raise typer.Exit(1 if result.errors and not result.products else 0)


def evaluate(
    queries: Path = typer.Option(..., "--queries", help="TSV: query_id, query"),
    labels: Path = typer.Option(..., "--labels", help="TSV: query_id, product_id, grade"),
    strategy: str = typer.Option("all", "--strategy", help=f"one of {', '.join(STRATEGIES)} or 'all'"),
    k: int = typer.Option(10, "--k", min=1, max=100),
    output: Path = typer.Option(..., "--output", help="JSON report path"),
    markdown: Path | None = typer.Option(None, "--markdown"),
    plot: Path | None = typer.Option(None, "--plot"),
    limit: int | None = typer.Option(None, "--limit", min=1, help="only the first N queries"),
    only: Path | None = typer.Option(None, "--only", help="a file of query ids (one per line) to evaluate"),
) -> None:
    """nDCG@k, recall@k, MRR, zero-result rate, top-1 similarity, fallbacks, latency and errors per strategy. With
    LANGSMITH_API_KEY set, also a LangSmith dataset and one experiment per strategy."""
    strategies = list(STRATEGIES) if strategy == "all" else [_strategy(strategy) or "hybrid"]
    chosen = load_queries(queries)
    if only is not None:
        wanted = {line.strip() for line in only.read_text().splitlines() if line.strip()}
        chosen = {q: t for q, t in chosen.items() if q in wanted}
    if limit:
        chosen = dict(list(chosen.items())[:limit])
    graded = load_labels(labels)
    settings = get_settings()
    services = build_services(settings)
    try:
        runs = {s: retrieval.run_strategy(services, s, chosen, k) for s in strategies}
    finally:
        services.close()
    report: dict[str, Any] = {
        "k": k,
        "queries": len(chosen),
        "embedding_model": services.embedding_model,
        "thresholds": {
            "pgvector": settings.pgvector_similarity_threshold,
            "chroma": settings.chroma_similarity_threshold,
            "relaxed_floor": settings.relaxed_similarity_floor,
        },
        "strategies": {s: retrieval.summarise(r, graded, k) for s, r in runs.items()},
    }
    if settings.langsmith_api_key is not None:
        from shopagent.evals.experiments import record_retrieval_experiments

        meta = {"k": k, "embedding_model": services.embedding_model, **report["thresholds"]}
        report["langsmith"] = record_retrieval_experiments(
            settings, chosen, graded, {s: r.rankings for s, r in runs.items()}, k, meta
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2))
    table = retrieval.to_markdown(report, k)
    if markdown:
        markdown.write_text(table)
    if plot:
        retrieval.plot(report, k, plot)
    typer.echo(table, nl=False)
    raise typer.Exit(1 if any(m["errors"] for m in report["strategies"].values()) else 0)


def _format_backend(name: str, rec: calibration.Recommendation) -> str:
    """One backend's distributions and thresholds as text."""

    def q(d: dict[str, float]) -> str:
        return "  ".join(f"{key}={v:.3f}" for key, v in d.items())

    def c(cut: calibration.Cut | None) -> str:
        if cut is None:
            return "none"
        return f"{cut.threshold:.3f}  (precision {cut.precision:.3f}, recall {cut.recall:.3f}, F1 {cut.f1:.3f})"

    crit = rec.criteria
    return "\n".join(
        [
            f"== {name}: {rec.n_relevant} relevant, {rec.n_irrelevant} irrelevant candidates",
            f"  relevant   similarity  {q(rec.relevant_quantiles)}",
            f"  irrelevant similarity  {q(rec.irrelevant_quantiles)}",
            f"  {'threshold max F1 (recommended)':<38}{c(rec.best_f1)}",
            f"  {'threshold precision >= ' + format(crit['precision_target'], '.2f'):<38}{c(rec.precision_target)}",
            f"  {'relaxed floor keeping ' + format(crit['relaxed_keep_relevant'], '.0%') + ' relevant':<38}"
            f"{c(rec.relaxed_floor)}",
        ]
    )


def calibrate(
    queries: Path = typer.Option(..., "--queries"),
    labels: Path = typer.Option(..., "--labels"),
    k: int = typer.Option(50, "--k", min=1, help="candidates per query and backend"),
    backends: str = typer.Option("pgvector,chroma", "--backends", help="comma list of: pgvector, chroma"),
    precision: float = typer.Option(0.8, "--precision", help="precision target"),
    keep: float = typer.Option(0.95, "--keep", help="share of relevant kept by the relaxed floor"),
    limit: int | None = typer.Option(None, "--limit", min=1, help="only the first N judged queries"),
    output: Path | None = typer.Option(None, "--output", help="write the JSON report here"),
    as_json: bool = typer.Option(False, "--json", help="print the JSON report instead of tables"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
) -> None:
    """Recommend similarity thresholds per vector backend from graded queries: the F1-maximising threshold, the
    lowest reaching --precision, and the relaxed floor keeping --keep of the relevant candidates."""
    chosen = [b.strip() for b in backends.split(",") if b.strip()]
    if bad := [b for b in chosen if b not in VECTOR_BACKENDS]:
        raise typer.BadParameter(
            f"unknown backend(s) {bad}; valid: {', '.join(VECTOR_BACKENDS)}", param_hint="--backends"
        )
    graded = load_labels(labels)
    judged = {q: t for q, t in load_queries(queries).items() if graded.get(q)}
    if limit:
        judged = dict(list(judged.items())[:limit])
    if not judged:
        log.error("no judged queries in %s", queries)
        raise typer.Exit(2)
    services = build_services(get_settings())
    try:
        samples = calibration.collect(services, judged, graded, chosen, k, quiet)
    except Exception:  # noqa: BLE001 - a backend failing mid-run makes the numbers meaningless
        log.exception("calibration failed")
        raise typer.Exit(1) from None
    finally:
        services.close()
    recs = {b: calibration.recommend(s, precision, keep) for b, s in samples.items()}
    report = {
        "embedding_model": services.embedding_model,
        "queries": len(judged),
        "k": k,
        "criterion": "threshold maximising F1 of relevant (grade >= 2) vs not among top-k candidates",
        "backends": {b: r.as_dict() for b, r in recs.items()},
    }
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(report, indent=2))
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(f"model {report['embedding_model']}  queries {len(judged)}  top-{k} candidates per backend")
        typer.echo("\n".join(_format_backend(b, r) for b, r in recs.items()))


def evaluate_understanding(
    cases: Path = typer.Option(PROJECT_ROOT / "data" / "eval" / "understanding_cases.jsonl", "--cases"),
    catalog: Path = typer.Option(
        PROJECT_ROOT / "data" / "esci-us" / "products.jsonl.gz",
        "--catalog",
        help="the catalog whose brands and words the understanding knows",
    ),
    which: str = typer.Option("all", "--split", help="dev, heldout or all"),
    show_failures: bool = typer.Option(False, "--show-failures"),
    output: Path | None = typer.Option(None, "--output", help="write the JSON report here"),
) -> None:
    """Pass rate per class of the labelled understanding cases (prices, quantities, number words, currency words,
    negation scope, Spanish follow-ups); no database or model needed."""
    from shopagent.evals import understanding
    from shopagent.ingest.reader import read_catalog
    from shopagent.understanding import Vocabulary, understand

    if which not in ("dev", "heldout", "all"):
        raise typer.BadParameter(f"{which!r} is not one of dev, heldout, all", param_hint="--split")
    vocab = Vocabulary.from_products(read_catalog(catalog))
    chosen = [c for c in understanding.load_cases(cases) if which == "all" or understanding.split(c["id"]) == which]
    report = understanding.score(lambda m, shown, previous: understand(m, vocab, shown, previous), chosen)
    passed = sum(p for p, _ in report["per_class"].values())
    total = sum(n for _, n in report["per_class"].values())
    lines = [f"{cls:<22} {p:>3}/{n:<3}" for cls, (p, n) in report["per_class"].items()]
    lines.append(f"{'total':<22} {passed:>3}/{total:<3}")
    if show_failures:
        lines += [f"{f['id']}: " + "; ".join(f["fails"]) for f in report["failures"]]
    typer.echo("\n".join(lines))
    if output:
        output.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")


def register(app: typer.Typer) -> None:
    """Add this module's commands."""
    app.command("search")(search)
    app.command("evaluate")(evaluate)
    app.command("evaluate-understanding")(evaluate_understanding)
    app.command("calibrate")(calibrate)
