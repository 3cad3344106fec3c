# Two commands on a fresh machine: `make run` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CATALOG ?= data/esci-us/products.jsonl.gz
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False
export TOKENIZERS_PARALLELISM := false

.PHONY: run test install browser load serve chat llm lint bench eval studio clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: here it takes the local CPU wheel (see README for other machines).
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## Load the sample catalog (embeds only new/changed products), then serve the chat API on PORT.
run: $(STAMP) load serve

load: $(STAMP)
	$(BIN)/shopagent ingest --catalog $(CATALOG) --stores pgvector,chroma

serve: $(STAMP)
	$(BIN)/shopagent serve

chat: $(STAMP)
	$(BIN)/shopagent chat

## A real local chat model: llama.cpp's server (OpenAI API at http://127.0.0.1:$LLM_PORT/v1, default 8080).
## First run builds it (~10 CPU-min) and assembles the weights into ~/.cache/shopagent (LLM_MODEL=
## qwen2.5-coder-0.5b: smaller; LLM_THREADS=1 when other work shares the 2 cores). See docs/readme/llm.md.
llm: $(STAMP)
	$(BIN)/shopagent llm-serve --model $${LLM_MODEL:-qwen2.5-coder-1.5b} --port $${LLM_PORT:-8080}

test: $(STAMP) browser
	$(BIN)/python -m pytest

## Debian's Chromium for the browser tests (Playwright's own browser download is not reachable here).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "chromium is missing and could not be installed: run 'sudo apt-get install -y chromium'" \
		"(tests/test_browser.py fails without it)"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python scripts/bench_search.py
	$(BIN)/python scripts/bench_agent.py

eval: $(STAMP)
	mkdir -p reports
	$(BIN)/shopagent evaluate --queries data/esci-us/queries.tsv --labels data/esci-us/labels.tsv \
		--strategy all --output reports/eval.json --markdown reports/eval.md --plot reports/eval.png

studio: $(STAMP)
	LANGGRAPH_CLI_NO_ANALYTICS=1 LANGGRAPH_NO_VERSION_CHECK=true \
		$(BIN)/langgraph dev --no-browser --port $${STUDIO_PORT:-2025}

clean:
	rm -rf $(VENV) .data
