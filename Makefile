# The two commands of the README, and what CI runs on top of them.
#   make demo   set up, then run the local stack with a real end-to-end lab demo
#   make test   set up, then check the formatting and lint, then run every test (unit, integration, e2e)
#   make sam    sam validate --lint and sam build (SAM CLI in its own virtual environment)

PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
SAM_CLI_VERSION := 1.170.0
# sam build needs the Lambda runtime's interpreter; here it comes from pyenv.
SAM_PYTHON_ENV := PYENV_VERSION=3.13.0 PATH="$(HOME)/.pyenv/shims:$(PATH)" SAM_CLI_TELEMETRY=0

.PHONY: demo serve test sam lint clean

$(VENV)/.installed: requirements-dev.txt layers/bridge/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check aws-sam-cli==$(SAM_CLI_VERSION)
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

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .local-run .pytest_cache .ruff_cache
