# The two commands of the README, and what CI runs on top of them.
#   make demo   set up, then run the local stack with a real end-to-end lab demo
#   make test   set up, then check the formatting and lint, then run every test (unit, integration, e2e)
#   make sam    sam validate --lint and sam build (SAM CLI in its own virtual environment)
#   make audit  pip-audit on the layers' pinned dependencies; says when nothing was checked
#   make lock   recompile layers/bridge and layers/lis requirements.txt (every pin with its hashes) from requirements.in
#   make scan   checkov, cfn-lint with the serverless rules (on the transformed template) and bandit

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

$(VENV)/.installed: requirements-dev.txt layers/bridge/requirements.in layers/lis/packages.in
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

# make scan: the static security scans. checkov and cfn-lint with the serverless rules on the
# CloudFormation that SAM's translator makes of template.yaml (.aws-sam/transformed.json, by
# bin/transformed_template.py with SAM CLI's translator), bandit on the layer and functions.
# The scanners pin many packages of their own: they get a virtual environment of their own too.
# Each tool fails on a finding that is neither fixed nor suppressed with its reason (checkov:
# Metadata.checkov.skip on the resource; cfn-lint: Metadata.cfn-lint.config.ignore_checks under
# a comment giving the reason; bandit: `# nosec Bxxx - reason`). SAM's translator passes a SAM
# resource's Metadata on to what it generates from it.
SCAN_VENV := .venv-scan
SCAN_TOOLS := checkov==3.3.30 cfn-lint==1.58.0 cfn-lint-serverless==0.3.6 bandit==1.9.4

.PHONY: scan clean-scan

$(SCAN_VENV)/.installed:
	$(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/pip install --quiet --disable-pip-version-check $(SCAN_TOOLS)
	touch $@

scan: $(SAM_VENV)/.installed $(SCAN_VENV)/.installed
	$(SAM_VENV)/bin/python bin/transformed_template.py .aws-sam/transformed.json
	@# Every tool runs, so one run lists every finding; the target fails if any tool did.
	@status=0; \
	echo "== checkov"; \
	$(SCAN_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation \
		--file .aws-sam/transformed.json || status=1; \
	echo "== cfn-lint with the serverless rules"; \
	$(SCAN_VENV)/bin/cfn-lint --append-rules cfn_lint_serverless.rules -- .aws-sam/transformed.json \
		&& echo "cfn-lint: no finding" || status=1; \
	echo "== bandit (medium and high)"; \
	$(SCAN_VENV)/bin/bandit --quiet --recursive -ll layers/bridge/whoop_bridge functions \
		&& echo "bandit: no finding above low" || status=1; \
	exit $$status

clean: clean-scan
clean-scan:
	rm -rf $(SCAN_VENV)

sam: $(SAM_VENV)/.installed
	SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam validate --lint
	$(SAM_PYTHON_ENV) $(SAM_VENV)/bin/sam build --build-dir .aws-sam/build

audit: $(AUDIT_VENV)/.installed
	$(PYTHON) bin/audit_dependencies.py --pip-audit $(AUDIT_VENV)/bin/pip-audit layers/bridge/requirements.txt
	$(PYTHON) bin/audit_dependencies.py --pip-audit $(AUDIT_VENV)/bin/pip-audit layers/lis/requirements.txt

lock: $(LOCK_VENV)/.installed
	for layer in bridge lis; do \
		(cd layers/$$layer && CUSTOM_COMPILE_COMMAND="make lock" ../../$(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
			--strip-extras --no-emit-index-url --no-emit-find-links --pip-args "--isolated" \
			--output-file requirements.txt requirements.in) || exit 1; \
	done

clean:
	rm -rf $(VENV) $(SAM_VENV) $(AUDIT_VENV) $(LOCK_VENV) .aws-sam .local-run .pytest_cache .ruff_cache
