# The two commands of the README, and what CI runs on top of them.
#   make demo   set up, then run the local stack with a real end-to-end lab demo
#   make test   set up, then check the formatting and lint, then run every test (unit, integration, e2e)
#   make sam    sam validate --lint and sam build (SAM CLI in its own virtual environment)
#   make audit  pip-audit on the layer's pinned dependencies; says when nothing was checked
#   make lock   recompile layers/bridge/requirements.txt (every pin with its hashes) from requirements.in

PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
SAM_CLI_VERSION := 1.170.0
# pip-audit and pip-tools each get their own virtual environment, like SAM CLI.
AUDIT_VENV := .venv-audit
PIP_AUDIT_VERSION := 2.10.1
LOCK_VENV := .venv-lock
PIP_TOOLS_VERSION := 7.6.2
# sam build needs the Lambda runtime's interpreter; here it comes from pyenv.
SAM_PYTHON_ENV := PYENV_VERSION=3.13.0 PATH="$(HOME)/.pyenv/shims:$(PATH)" SAM_CLI_TELEMETRY=0

.PHONY: demo serve test sam lint audit lock clean

$(VENV)/.installed: requirements-dev.txt layers/bridge/requirements.in
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check aws-sam-cli==$(SAM_CLI_VERSION)
	touch $@

$(AUDIT_VENV)/.installed:
	$(PYTHON) -m venv $(AUDIT_VENV)
	$(AUDIT_VENV)/bin/pip install --quiet --disable-pip-version-check pip-audit==$(PIP_AUDIT_VERSION)
	touch $@

# pip-tools runs on the Lambda runtime's Python (3.13), so markers resolve as in Lambda;
# --isolated: PyPI only, no local wheel folders or constraints. The hashes cover every
# file of each pinned version, arm64 wheels included.
$(LOCK_VENV)/.installed:
	$(SAM_PYTHON_ENV) python3.13 -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet --disable-pip-version-check pip-tools==$(PIP_TOOLS_VERSION)
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/python -m local demo

serve: $(VENV)/.installed
	$(VENV)/bin/python -m local serve --port $${PORT:-3000}

# The template tests read the SAM translator's output with the SAM CLI's own interpreter.
test: $(VENV)/.installed $(SAM_VENV)/.installed
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

sam: $(SAM_VENV)/.installed
	SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam validate --lint
	$(SAM_PYTHON_ENV) $(SAM_VENV)/bin/sam build --build-dir .aws-sam/build

audit: $(AUDIT_VENV)/.installed
	$(PYTHON) bin/audit_dependencies.py --pip-audit $(AUDIT_VENV)/bin/pip-audit layers/bridge/requirements.txt

lock: $(LOCK_VENV)/.installed
	cd layers/bridge && CUSTOM_COMPILE_COMMAND="make lock" ../../$(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
		--strip-extras --no-emit-index-url --no-emit-find-links --pip-args "--isolated" \
		--output-file requirements.txt requirements.in

clean:
	rm -rf $(VENV) $(SAM_VENV) $(AUDIT_VENV) $(LOCK_VENV) .aws-sam .local-run .pytest_cache .ruff_cache
