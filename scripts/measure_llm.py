"""Measure how the local Qwen2.5-Coder models behave as the agent's tool-calling brain (docs/llm-measurements.md).

For each model: start llama-server (shopagent.llm_server.serve), then for each shopper message send one turn
through the real client, `ChatOpenAI(base_url=..., api_key="none").bind_tools([search_products])`, and record
what came back: native `tool_calls`, or a call written as JSON in `content` (which shape), or plain text;
whether the arguments validate against the tool schema and match what the message asked; latency and
llama-server's own timings (prompt/decode tokens and tok/s, from the raw response, captured by an httpx hook).
Then, for the turns that called the tool, a second call with a tool result given back: with tools still
bound and without tools. Writes everything to a JSON file; prints summary tables. Not a test.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any, cast

import httpx
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_openai import ChatOpenAI
from pydantic import ValidationError

from shopagent.llm_server import MODEL_NAMES, serve
from shopagent.services import Services
from tools import make_tools

# The product's own search tool (its schema and docstring are what the model sees); it is never run here.
search_products = next(t for t in make_tools(cast(Services, None)) if t.name == "search_products")


SYSTEM = """You are a shopping assistant for an online catalog. Use the search_products tool to find products; \
answer only from tool results. Products on screen (number. product_id | name | price):
1. B07RUN0001 | Nike Revolution 6 Running Shoe | $59.99
2. B07RUN0002 | ASICS Gel-Contend 7 Running Shoe | $64.95
3. B07RUN0003 | Brooks Ghost 14 | $129.00
Previous search: 'running shoes' with max_price 80. Reply in the shopper's language, briefly."""

# (message, what a correct search would contain, "<N" = a number below N; None = no search expected)
MESSAGES: list[tuple[str, dict[str, Any] | None]] = [
    ("I want running shoes under 80 dollars", {"max_price": 80}),
    ("show me black leather belts, no more than $30", {"max_price": 30, "colors": ["black"]}),
    ("wireless headphones from Sony or Bose", {"brands": ["Sony", "Bose"]}),
    ("toddler water bottle without a straw", {"exclude_terms": ["straw"]}),
    ("a gift for my mom who likes gardening, between 20 and 50 dollars", {"min_price": 20, "max_price": 50}),
    ("cheaper ones please", {"max_price": "<80"}),
    ("only the ones in stock, and show me 10", {"in_stock": True, "k": 10}),
    ("compare the first two", None),
    ("hi! what can you do?", None),
    ("busco audífonos inalámbricos de menos de 2 mil pesos", {"max_price": 2000}),
    ("quiero tenis para correr negros de menos de 60 dólares", {"max_price": 60, "colors": ["black"]}),
    ("mochila para laptop sin ruedas, máximo 40 dólares", {"max_price": 40, "exclude_terms": ["wheels"]}),
    ("muéstrame cafeteras de la marca Oster", {"brands": ["Oster"]}),
    ("compara el primero y el tercero", None),
    ("¿cuál es la capital de Francia?", None),
]
TOOL_RESULT = {"status": "ok", "message": "3 products", "products": [
    {"n": 1, "product_id": "B0A1", "name": "Nike Revolution 6 Running Shoe", "price": 59.99, "brand": "Nike"},
    {"n": 2, "product_id": "B0A2", "name": "ASICS Gel-Contend 7", "price": 64.95, "brand": "ASICS"},
    {"n": 3, "product_id": "B0A3", "name": "adidas Duramo SL", "price": 52.00, "brand": "adidas"}]}  # fmt: skip

FENCE = re.compile(r"```(?:json)?\s*(.*?)\s*```", re.S)
TAG = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.S)


def content_call(content: str) -> tuple[str, list[dict[str, Any]]]:
    """(shape, calls) of a tool call written as JSON in the content; shape "text" when there is none."""
    s = content.strip()
    for shape, rx in (("tagged", TAG), ("fenced", FENCE)):
        found = rx.findall(s)
        if found:
            s2, prefix = found[0], shape
            break
    else:
        s2, prefix = s, "bare"
    try:
        obj = json.loads(s2)
    except json.JSONDecodeError:
        return ("text" if prefix == "bare" else f"{prefix}-unparsable"), []
    objs = obj if isinstance(obj, list) else [obj]
    if not objs or not all(isinstance(o, dict) and "name" in o for o in objs):
        return f"{prefix}-json-not-a-call", []
    keys = ",".join(sorted(k for k in objs[0] if k != "name"))
    around = TAG.sub("", FENCE.sub("", s)).strip() if prefix != "bare" else ""
    extra = " (text around)" if around else ""
    return f"{prefix}{'-list' if isinstance(obj, list) else ''} {{name,{keys}}}{extra}", objs


def check_args(args: Any, expected: dict[str, Any] | None) -> tuple[bool, bool, str]:
    """(schema_valid, matches_expected, detail)."""
    if not isinstance(args, dict):
        return False, False, f"args not an object: {args!r}"
    try:
        search_products.tool_call_schema.model_validate(args)  # type: ignore[union-attr]
        valid, detail = True, ""
    except ValidationError as exc:
        valid, detail = False, str(exc).splitlines()[0]
    if expected is None:
        return valid, False, detail or "search not expected"
    ok = True
    for key, want in expected.items():
        got = args.get(key)
        if isinstance(want, str) and want.startswith("<"):
            ok &= (_num(got) or float("inf")) < float(want[1:])
        elif isinstance(want, list):
            ok &= isinstance(got, list) and {str(w).lower() for w in want} <= {str(g).lower() for g in got}
        elif isinstance(want, (int, float)) and not isinstance(want, bool):
            ok &= isinstance(got, (int, float, str)) and _num(got) == want
        else:
            ok &= got == want
    return valid, ok, detail


def _num(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


class RawCapture:
    """httpx response hook keeping the last chat-completion body (for llama-server's `timings`)."""

    def __init__(self) -> None:
        self.last: dict[str, Any] = {}

    def __call__(self, response: httpx.Response) -> None:
        if response.request.url.path.endswith("/chat/completions"):
            response.read()
            self.last = response.json()


def turn(model: Any, raw: RawCapture, messages: list[BaseMessage]) -> dict[str, Any]:
    """One call; the reply classified, with wall time and llama-server timings."""
    started = time.perf_counter()
    reply = model.invoke(messages)
    wall = time.perf_counter() - started
    t = raw.last.get("timings", {})
    rec: dict[str, Any] = {
        "wall_s": round(wall, 2), "load1": round(os.getloadavg()[0], 2),
        "prompt_n": t.get("prompt_n"), "cache_n": t.get("cache_n"),
        "prompt_tps": round(t.get("prompt_per_second", 0), 1), "decode_n": t.get("predicted_n"),
        "decode_tps": round(t.get("predicted_per_second", 0), 1),
        "finish_reason": (raw.last.get("choices") or [{}])[0].get("finish_reason"),
        "content": reply.content, "native_calls": [{"name": c["name"], "args": c["args"]} for c in reply.tool_calls],
        "invalid_calls": [dict(c) for c in reply.invalid_tool_calls],
    }  # fmt: skip
    if reply.tool_calls:
        rec["format"], calls = "native tool_calls", rec["native_calls"]
    else:
        rec["format"], objs = content_call(str(reply.content))
        calls = [{"name": o.get("name"), "args": o.get("arguments", o.get("parameters"))} for o in objs]
    rec["calls"] = calls
    return rec


def measure(name: str, port: int, second_calls: int, threads: int, max_tokens: int) -> dict[str, Any]:
    """All messages through one model; then `second_calls` tool-result follow-ups (with and without tools)."""
    raw = RawCapture()
    http_client = httpx.Client(event_hooks={"response": [raw]}, timeout=600)
    with serve(name, port=port, threads=threads) as server:  # type: ignore[arg-type]
        chat = ChatOpenAI(base_url=server.openai_base_url, api_key="none", model=name, temperature=0,  # type: ignore[arg-type, call-arg]
                          max_tokens=max_tokens, max_retries=0, http_client=http_client)  # fmt: skip
        bound = chat.bind_tools([search_products])
        turns, follow = [], []
        for text, expected in MESSAGES:
            rec = turn(bound, raw, [SystemMessage(SYSTEM), HumanMessage(text)])
            call = rec["calls"][0] if rec["calls"] else None
            valid, match, detail = check_args(call["args"], expected) if call else (None, expected is None, "")
            rec.update(message=text, expected=expected, valid=valid, match=match, detail=detail,
                       called=call["name"] if call else None, n_calls=len(rec["calls"]))  # fmt: skip
            logging.info("%s | %s | %s | %s | %s s, decode %s tok at %s tok/s", name, text, rec["format"], rec["calls"],
                         rec["wall_s"], rec["decode_n"], rec["decode_tps"])  # fmt: skip
            turns.append(rec)
        for rec in [r for r in turns if r["called"] == "search_products"][:second_calls]:
            ai = AIMessage("", tool_calls=[{"name": "search_products", "args": rec["calls"][0]["args"] or {},
                                            "id": "call_measure_1", "type": "tool_call"}])  # fmt: skip
            convo = [SystemMessage(SYSTEM), HumanMessage(rec["message"]), ai,
                     ToolMessage(json.dumps(TOOL_RESULT), tool_call_id="call_measure_1")]  # fmt: skip
            for label, m in (("tools bound", bound), ("no tools", chat)):
                r2 = turn(m, raw, convo)
                r2.update(message=rec["message"], mode=label)
                logging.info("%s | 2nd call %s | %s | %s", name, label, r2["format"], str(r2["content"])[:120])
                follow.append(r2)
        stream_probe = probe_stream(server.openai_base_url, name, MESSAGES[0][0])
    return {"model": name, "threads": threads, "command": server.command, "turns": turns, "second_calls": follow,
            "stream_probe": stream_probe}  # fmt: skip


def probe_stream(base_url: str, model: str, message: str) -> dict[str, Any]:
    """One streamed request with tools and usage asked for, raw: which delta kinds and extra fields arrive."""
    body = {"model": model, "temperature": 0, "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": message}],
            "tools": [{"type": "function", "function": {"name": "search_products", "description": "Search the catalog.",
                       "parameters": search_products.tool_call_schema.model_json_schema()}}]}  # type: ignore[union-attr]  # fmt: skip
    events: list[Any] = []
    with httpx.stream("POST", f"{base_url}/chat/completions", json=body, timeout=600) as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                data = line[6:]
                events.append(data if data == "[DONE]" else json.loads(data))
    deltas = [e["choices"][0]["delta"] for e in events if isinstance(e, dict) and e.get("choices")]
    return {"n_events": len(events), "first": events[:2], "last": events[-3:],
            "delta_keys": sorted({k for d in deltas for k in d}),
            "content": "".join(d.get("content") or "" for d in deltas)}  # fmt: skip


FILTERS = ("max_price", "min_price", "brands", "colors", "exclude_terms", "in_stock")


def judge(rec: dict[str, Any]) -> dict[str, Any]:
    """Per turn (against MESSAGES as they are now): the tool name, whether the asked-for filters are there,
    filters nobody asked for, keys not in the schema, and whether the whole call is right."""
    expected = dict(MESSAGES).get(rec["message"], rec["expected"])
    call = rec["calls"][0] if rec["calls"] else None
    if call is None:
        return {"name": "—", "asked": "—" if expected is None else "no", "extra_keys": [], "spurious": [],
                "correct": expected is None}  # fmt: skip
    args = call["args"] if isinstance(call["args"], dict) else {}
    _, match, _ = check_args(args, expected)
    schema = search_products.tool_call_schema.model_json_schema()["properties"]  # type: ignore[union-attr]
    spurious = [k for k in FILTERS if k not in (expected or {}) and args.get(k) not in (None, [], "")]
    extra = [k for k in args if k not in schema]
    correct = expected is not None and call["name"] == "search_products" and match and not spurious and not extra
    return {"name": call["name"], "asked": "—" if expected is None else ("yes" if match else "no"),
            "extra_keys": extra, "spurious": spurious, "correct": correct}  # fmt: skip


def render(results: list[dict[str, Any]]) -> str:
    """Markdown tables of a measurement run."""
    out = []
    for res in results:
        out.append(f"\n#### {res['model']} (threads {res['threads']})\n")
        out.append("| # | message | format | tool | arguments | asked filters present | filters not asked for "
                   "| keys not in schema | right call? | prompt tok (cached) | prefill tok/s | decode tok | "
                   "decode tok/s | wall s | load |\n" + "|---" * 15 + "|")  # fmt: skip
        for i, r in enumerate(res["turns"], 1):
            j = judge(r)
            args = json.dumps(r["calls"][0]["args"], ensure_ascii=False) if r["calls"] else "—"
            out.append(f"| {i} | {r['message']} | {r['format']} | {j['name']} | `{args}` | {j['asked']} | "
                       f"{', '.join(j['spurious']) or '—'} | {', '.join(j['extra_keys']) or '—'} | "
                       f"{'yes' if j['correct'] else 'no'} | {r['prompt_n']} ({r['cache_n']}) | {r['prompt_tps']} | "
                       f"{r['decode_n']} | {r['decode_tps']} | {r['wall_s']} | {r['load1']} |")  # fmt: skip
        out.append("\n| first message | 2nd call | format | finish | reply (start) | prompt tok (cached) | decode tok "
                   "| decode tok/s | wall s |\n" + "|---" * 9 + "|")  # fmt: skip
        for r in res["second_calls"]:
            text = str(r["content"]).replace("\n", " ").replace("|", "\\|")[:110]
            out.append(f"| {r['message']} | {r['mode']} | {r['format']} | {r['finish_reason']} | {text} | "
                       f"{r['prompt_n']} ({r['cache_n']}) | {r['decode_n']} | {r['decode_tps']} | "
                       f"{r['wall_s']} |")  # fmt: skip
    return "\n".join(out)


def bench_threads(models: list[str], threads: list[int], reps: int, port: int) -> list[dict[str, Any]]:
    """Prefill and decode speed per thread count, interleaved (a fresh server per run): one cold prefill of the
    first measured prompt with the tool schema (`cache_prompt: false`), then 64 decoded tokens."""
    tools = [{"type": "function", "function": {"name": "search_products", "description": search_products.description,
              "parameters": search_products.tool_call_schema.model_json_schema()}}]  # type: ignore[union-attr]  # fmt: skip
    rows = []
    for rep in range(reps):
        for name in models:
            for n in threads:
                with serve(name, port=port, threads=n) as server:  # type: ignore[arg-type]
                    url = f"{server.openai_base_url}/chat/completions"
                    prefill = {"model": name, "temperature": 0, "max_tokens": 1, "cache_prompt": False, "tools": tools,
                               "messages": [{"role": "system", "content": SYSTEM},
                                            {"role": "user", "content": MESSAGES[0][0]}]}  # fmt: skip
                    ask = [{"role": "user", "content": "Describe a pair of running shoes in detail."}]
                    decode = {"model": name, "temperature": 0, "max_tokens": 64, "cache_prompt": False, "messages": ask}
                    load = os.getloadavg()[0]
                    p = httpx.post(url, json=prefill, timeout=900).json()["timings"]
                    d = httpx.post(url, json=decode, timeout=900).json()["timings"]
                row = {"rep": rep, "model": name, "threads": n, "load1_before": round(load, 2),
                       "prefill_n": p["prompt_n"], "prefill_tps": round(p["prompt_per_second"], 1),
                       "decode_n": d["predicted_n"], "decode_tps": round(d["predicted_per_second"], 1)}  # fmt: skip
                logging.info("threads bench: %s", row)
                rows.append(row)
    return rows


def main() -> None:
    """Run the measurement for the chosen models; write JSON; print tables."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="+", choices=MODEL_NAMES, default=list(MODEL_NAMES))
    parser.add_argument("--port", type=int, default=8093)
    parser.add_argument("--second-calls", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--bench-threads", type=int, nargs="*", help="only compare these thread counts (e.g. 1 2)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--render", type=Path, help="only print the tables of an earlier run's JSON")
    parser.add_argument("--output", type=Path, default=Path("reports/llm-measurements.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    if args.render:
        print(render(json.loads(args.render.read_text())))
        return
    if args.bench_threads:
        rows = bench_threads(args.models, args.bench_threads, args.reps, args.port)
        args.output.write_text(json.dumps(rows, indent=1))
        return
    results: list[dict[str, Any]] = []
    for m in args.models:
        results.append(measure(m, args.port, args.second_calls, args.threads, args.max_tokens))
        args.output.write_text(json.dumps(results, indent=1, ensure_ascii=False, default=str))
    print(render(results))


if __name__ == "__main__":
    main()
