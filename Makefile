# The two commands a new user needs: `make run` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
RASA := $(PY) -m rasa
TRAIN_DATA := data/nlu data/rules data/stories
MODEL := models/assistant.tar.gz
# Everything that changes what `rasa train` produces; the model is retrained only when this changes.
TRAIN_INPUTS := config.yml domain.yml $(shell find data/nlu data/rules data/stories data/safety bot/safety -type f \( -name '*.yml' -o -name '*.py' \) 2>/dev/null | sort) constraints.txt
export PYTHONPATH := $(CURDIR)
export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: help run test install train lint unit validate rasa-test e2e lock clean node-deps browser bench-safety safety-eval safety-dev-eval nlu-eval

help:
	@echo "make run   - set up everything on first use, then start the assistant (website on :8080)"
	@echo "make test  - run the whole test suite (lint, types, unit, Rasa data/stories, end to end)"

$(VENV)/.installed: requirements.txt constraints.txt
	@if [ ! -x $(PY) ]; then \
	  python310="$$(.ci/find-python310)"; \
	  echo "==> Creating the Python 3.10 virtual environment with $$python310"; \
	  "$$python310" -m venv $(VENV); \
	fi
	@echo "==> Installing pinned dependencies (2-4 minutes on a fresh machine)"
	@$(PY) -m pip install --disable-pip-version-check --progress-bar on -q "pip==24.0"
	@$(PY) -m pip install --disable-pip-version-check -r requirements.txt -c constraints.txt 2>&1 \
	  | awk '/^Collecting/ {n++; if (n % 25 == 0) {printf "  %d packages resolved...\n", n; fflush()}} \
	         /^Installing collected/ {print "  installing (this is the slow part)..."; fflush()} \
	         /^Successfully installed/ {print "  installed"} /^ERROR/ {print}'
	@$(PY) -W ignore -c "import rasa, rasa_sdk, spacy, sqlalchemy" 2>/dev/null || { echo "Dependency install failed: run '$(PY) -m pip install -r requirements.txt -c constraints.txt' to see why"; exit 1; }
	@touch $@

install: $(VENV)/.installed

# --- Website chat (issue 6): browser-side packages from npm and a browser for the tests. ---
# `npm ci` installs exactly package-lock.json into node_modules/ (git-ignored); bot/web serves the
# socket.io client from there, and the browser tests inject axe-core from there.
NODE_DEPS := node_modules/.installed
CHROMIUM := /usr/bin/chromium

$(NODE_DEPS): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "==> Installing Node.js and npm (Debian packages)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
	@echo "==> npm ci (socket.io-client for the chat widget, axe-core for the accessibility tests)"
	@npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

node-deps: $(NODE_DEPS)

# Playwright drives Debian's chromium (its own browser downloads cannot be reached from here).
browser:
	@if [ ! -x $(CHROMIUM) ]; then echo "==> Installing chromium for the browser tests (Debian package)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi
	@test -x $(CHROMIUM) || { echo "chromium is missing: apt-get install -y chromium"; exit 1; }
# --- end website chat ---

models/.trained-inputs: install
	@$(PY) -c "import hashlib,sys; h=hashlib.sha256(); [h.update(open(p,'rb').read()) for p in sys.argv[1:]]; print(h.hexdigest())" $(TRAIN_INPUTS) > models/.inputs.new
	@if [ -f $(MODEL) ] && cmp -s models/.inputs.new models/.trained-inputs; then \
	  echo "==> Model is up to date with the training data (no training needed)"; rm models/.inputs.new; \
	else \
	  echo "==> Training the model (about a minute)"; start=$$(date +%s); \
	  $(RASA) train --data $(TRAIN_DATA) --fixed-model-name assistant --out models 2>&1 \
	    | grep -E "Starting to train|Finished training component|trained and saved|rror" || true; \
	  test -f $(MODEL) || { echo "Training failed: run '$(RASA) train --data $(TRAIN_DATA)' to see why"; exit 1; }; \
	  echo "==> Trained in $$(( $$(date +%s) - start )) s"; \
	  mv models/.inputs.new models/.trained-inputs; \
	fi

train: install
	@rm -f models/.trained-inputs
	@$(MAKE) --no-print-directory models/.trained-inputs

run: install $(NODE_DEPS) models/.trained-inputs
	@$(PY) -m bot run

lint: install
	@echo "==> ruff"
	@$(VENV)/bin/ruff check bot actions tests
	@echo "==> mypy"
	@$(VENV)/bin/mypy bot actions

unit: install $(NODE_DEPS)
	@echo "==> pytest (unit)"
	@$(PY) -m pytest -m "not e2e" -q

validate: install
	@echo "==> rasa data validate"
	@mkdir -p results
	@$(RASA) data validate --data $(TRAIN_DATA) > results/validate.log 2>&1 \
	  || { grep -vE "Warning|declare_namespace|xla_computation|pkg_resources" results/validate.log; echo "rasa data validate failed"; exit 1; }
	@# Responses uttered only by custom actions (the intake flow's) or by bot/ops/action_failures.py are
	@# "unused" to the validator by design.
	@grep -E "UserWarning|ERROR" results/validate.log | grep -vE "utterance 'utter_((ask_)?intake_[a-z_]+|action_failed)' is not used" \
	  | sed 's/^.*UserWarning: /  warning: /' || true

rasa-test: install models/.trained-inputs
	@echo "==> rasa test (stories, failing on any prediction error)"
	@mkdir -p results var
	@$(RASA) test core --model $(MODEL) --stories tests/stories --endpoints endpoints.yml \
	  --fail-on-prediction-errors --out results/core > results/rasa-test.log 2>&1 \
	  || { grep -vE "Warning|declare_namespace|xla_computation|pkg_resources" results/rasa-test.log | tail -30; \
	       echo "rasa test found prediction errors: see results/core/failed_test_stories.yml"; exit 1; }
	@grep -E "Correct:|Accuracy:" results/rasa-test.log | head -4 || true
	@echo "==> rasa test on the training stories (no MemoizationPolicy: the rules must reproduce each one)"
	@$(RASA) test core --model $(MODEL) --stories data/stories --endpoints endpoints.yml \
	  --fail-on-prediction-errors --out results/core-training-stories > results/rasa-test-stories.log 2>&1 \
	  || { grep -vE "Warning|declare_namespace|xla_computation|pkg_resources" results/rasa-test-stories.log | tail -30; \
	       echo "a training story is not reproduced by the rules: see results/core-training-stories/failed_test_stories.yml"; exit 1; }
	@grep -E "Correct:|Accuracy:" results/rasa-test-stories.log | head -4 || true

e2e: install $(NODE_DEPS) browser models/.trained-inputs nginx  # nginx: the production-topology tests start it
	@echo "==> pytest (end to end: real servers over HTTP)"
	@$(PY) -m pytest -m e2e -q

test: lint validate unit models/.trained-inputs rasa-test e2e
	@echo "==> All tests passed"

# --- Safety (issue 3) -------------------------------------------------------------------------------
# One core, one thread: the figure is per core.
bench-safety: install models/.trained-inputs
	@echo "==> Safety detector throughput on one core (vs Rasa's NLU parse of the same messages)"
	@OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 taskset -c 0 $(PY) -W ignore -m bot.safety bench 2>/dev/null

# Cross-validated figures on the training examples (how the classifier threshold was chosen).
safety-dev-eval: install
	@$(PY) -W ignore -m bot.safety dev-eval 2>/dev/null
# --- end Safety --------------------------------------------------------------------------------------
# ---- content (issue 4): NLU accuracy on held-out paraphrases, per intent and per topic area ----
nlu-eval: install models/.trained-inputs
	@echo "==> rasa test nlu on tests/nlu_eval/paraphrases.yml (held out from training)"
	@mkdir -p results/nlu_eval
	@$(RASA) test nlu --model $(MODEL) --nlu tests/nlu_eval/paraphrases.yml --out results/nlu_eval \
	  > results/nlu_eval/rasa.log 2>&1 || { tail -30 results/nlu_eval/rasa.log; exit 1; }
	@$(PY) -m bot.nlu_report results/nlu_eval || status=$$?; \
	  echo "==> second held-out set (tests/nlu_eval/fresh.yml, never used for tuning)"; \
	  $(RASA) test nlu --model $(MODEL) --nlu tests/nlu_eval/fresh.yml --out results/nlu_eval/fresh \
	    > results/nlu_eval/fresh.log 2>&1 && $(PY) -m bot.nlu_report results/nlu_eval/fresh --areas-only || true; \
	  echo "==> fallback threshold: real questions vs nonsense (tests/nlu_eval/nonsense.yml)"; \
	  $(PY) -m bot.nlu_confidence $(MODEL) 2>/dev/null; \
	  exit $${status:-0}

lock: install
	@(echo "# Every installed version, frozen from a working venv (Python 3.10). Regenerate: make lock"; \
	  $(PY) -m pip freeze --exclude-editable) > constraints.txt

clean:
	rm -rf results node_modules models/*.tar.gz models/.trained-inputs .rasa

# --- Safety evaluation (issue 3): the hand-written risk set scored through the detector's CLI ----------
# Prints recall per category, imminent level accuracy, false-crisis rates and every miss; exits
# non-zero when a target from the issue is missed. SAFETY_EVAL_FLAGS="--show-misses" for a report only.
SAFETY_EVAL_FLAGS ?= --show-misses --check
.PHONY: safety-eval
# Three sets by three different authors, none ever used for training; the second (fresh_cases.csv) and
# the third (blind_cases.csv) were each written by an evaluator who saw neither the other sets nor the
# training data.
SAFETY_EVAL_SETS ?= tests/safety/evaluation/risk_cases.csv tests/safety/evaluation/fresh_cases.csv \
  tests/safety/evaluation/blind_cases.csv
safety-eval: install models/.trained-inputs
	@status=0; for set in $(SAFETY_EVAL_SETS); do \
	  echo "==> Safety evaluation ($$set)"; \
	  $(PY) -m tests.safety.evaluation.run --cases $$set $(SAFETY_EVAL_FLAGS) || status=1; \
	done; exit $$status
# mypy skips tests/ by configuration; the runner is a tool in its own right, so type-check it with `make lint`.
.PHONY: lint-safety-eval
lint: lint-safety-eval
lint-safety-eval: install
	@echo "==> mypy (safety evaluation runner)"
	@$(VENV)/bin/mypy tests/safety/evaluation/run.py tests/safety/evaluation/fake_detector.py
# --- Production and performance (issue 8; README "Production") -------------------------------------------
.PHONY: bench bench-scale run-prod nginx fuzz

# nginx from Debian, installed only when missing (the production load balancer).
nginx:
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || { \
	  echo "==> Installing nginx (apt-get install nginx-light)"; \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -q nginx-light >/dev/null \
	  || { $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -q >/dev/null && \
	       $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -q nginx-light >/dev/null; }; }

run-prod: install models/.trained-inputs nginx
	@$(PY) -m bot.ops.prod

# Ours against a stock `rasa init` assistant under the same load (BENCH_ARGS="--conversations 32" etc.).
bench: install $(NODE_DEPS) models/.trained-inputs nginx
	@$(PY) -m bot.ops.bench --with-prod $(BENCH_ARGS)

# Production topology: one vs two Rasa processes on PostgreSQL + Redis, trackers checked afterwards.
bench-scale: install $(NODE_DEPS) models/.trained-inputs nginx
	@$(PY) -m bot.ops.bench --prod $(BENCH_ARGS)

# 10,000 random and hostile inputs through the real server (make test sends 600 of them).
FUZZ_COUNT ?= 10000
fuzz: install models/.trained-inputs
	@echo "==> fuzzing the Rasa server with $(FUZZ_COUNT) inputs"
	@FUZZ_COUNT=$(FUZZ_COUNT) $(PY) -m pytest -m e2e -q tests/e2e/test_fuzz_and_private_logs.py
