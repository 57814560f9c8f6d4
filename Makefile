# Two commands matter: `make quick` (every paper at quick scale) and `make test`.
# Every target installs what it needs on first use through `setup`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CONSTRAINTS ?= constraints.txt
ARGS ?=
PAPERS := loqa brs advantage_alignment meva coconet uoro realjam vqvae_recompose
SETUP_STAMP := $(VENV)/.setup-done
export PYTHONHASHSEED := 0
# The same CPU kernels on every x86-64 machine, so numbers repeat bit for bit (common/__init__.py).
export ATEN_CPU_CAPABILITY ?= avx2
export MKL_CBWR ?= AVX2,STRICT

.DEFAULT_GOAL := help
.PHONY: help setup test test-slow lint format bench notebooks quick league coconet-medium realjam-serve loqa-paper clean $(PAPERS) $(addsuffix -full,$(PAPERS))

help: ## list the targets
	@echo "make quick      reproduce every paper at quick scale, then write results/summary.md"
	@echo "make test       fast test suite (unit tests + seconds-long smoke runs)"
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "make %-24s %s\n", $$1, $$2}'
	@for p in $(PAPERS); do printf "make %-24s %s\n" "$$p" "quick run of $$p (train + eval -> runs/$$p/quick/results.json)"; \
	  printf "make %-24s %s\n" "$$p-full" "the paper's settings for $$p (GPU or cluster)"; done
	@echo 'Overrides: make loqa ARGS="coin.train.actor_lr=1e-3"'

setup: $(SETUP_STAMP) ## create .venv and install the project with all extras (runs once)

$(SETUP_STAMP): pyproject.toml constraints.txt .ci/system-packages.txt
	@bash .ci/install-system-packages.sh
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e '.[web,notebooks]'
	@touch $@

test: setup ## fast suite: unit tests and smoke runs (under 15 minutes on 2 cores)
	$(PY) -m pytest -q

test-slow: setup ## the quick-run checks each issue asks for (minutes each)
	$(PY) -m pytest -q -m slow $(if $(PAPER),tests/$(PAPER),)

lint: setup ## ruff check + format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup ## ruff format + autofix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: setup ## throughput benchmarks (ratios against a baseline in the same process)
	@shopt -s nullglob; for f in bench/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

notebooks: setup ## execute notebooks/*.py (jupytext) to HTML under results/notebooks
	@mkdir -p results/notebooks
	@shopt -s nullglob; for f in notebooks/*.py; do echo "== $$f"; \
	  $(VENV)/bin/jupytext --to ipynb --output - $$f | \
	  $(VENV)/bin/jupyter nbconvert --stdin --to html --execute --output-dir results/notebooks --output $$(basename $$f .py) || exit 1; done

quick: setup ## every paper's quick run in turn, then results/summary.md
	$(PY) -m common.reproduce all quick

$(PAPERS): %: setup
	$(PY) -m common.reproduce $@ quick $(ARGS)

$(addsuffix -full,$(PAPERS)): %-full: setup
	$(PY) -m common.reproduce $* full $(ARGS)

coconet-medium: setup ## Coconet's medium model (<= 60 min on 2 cores; ARGS="resume=true" continues it)
	$(PY) -m common.reproduce coconet medium $(ARGS)

realjam-serve: setup ## jam live with the quick realjam agent: a server on 127.0.0.1 (trains the model first if missing)
	@ls runs/realjam/quick/rl_seed*/checkpoints/*.pt >/dev/null 2>&1 || $(PY) -m common.reproduce realjam quick $(ARGS)
	$(PY) -m realjam.server --runs runs/realjam/quick $(if $(PORT),--port $(PORT),)

loqa-paper: setup ## LOQA at the paper's Coin Game settings on this CPU, 2 seeds (hours; run it again to resume)
	$(PY) -m common.reproduce loqa paper $(ARGS)

league: setup ## cross-paper league over the quick runs in runs/ (trains the papers that have no runs yet)
	$(PY) -m common.league --train-missing $(ARGS)

clean: ## remove runs/ (keeps .venv and results/)
	rm -rf runs
