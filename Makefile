# Serverless Glance: the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
MINISTACK_VENV := .venv-ministack
MINISTACK_STAMP := $(MINISTACK_VENV)/.installed-stamp
# jsii prints an end-of-life banner for old Node versions unless this names the running Node major.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION ?= $(shell node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 20)

.PHONY: install backends ministack e2e run test unit integration api lint typecheck format bench synth clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# MiniStack for tests/e2e, in its own virtualenv (it pins an older botocore than ours); ~10 s the first time.
$(MINISTACK_STAMP): localstack/requirements-ministack.txt
	$(PYTHON) -m venv $(MINISTACK_VENV)
	$(MINISTACK_VENV)/bin/pip install --quiet -r localstack/requirements-ministack.txt
	touch $(MINISTACK_STAMP)

ministack: $(MINISTACK_STAMP)

# The real Ceph RADOS Gateway that tests/integration/test_presigned_scope_rgw.py starts: apt-installs it on
# the first run (needs root or password-less sudo), a no-op afterwards. SGLANCE_SKIP_RGW=1 skips both.
# The real Keystone of the `keystone` fixture: its own virtualenv (~/.cache/sglance/keystone-venv) and Debian's
# memcached, ~25 s the first time, a no-op afterwards. SGLANCE_SKIP_KEYSTONE=1 skips both.
# The real Swift of the `swift` fixture (tests/support/swift.py): apt-installs Debian's Swift servers, swiftclient and
# memcached on the first run (root or password-less sudo, ~15 s), a no-op afterwards. SGLANCE_SKIP_SWIFT=1 skips both.
# The real Glance 33 of the `real_glance` fixture (the migration tests): its own virtualenv
# (~/.cache/sglance/glance-venv), ~90 s the first time, a no-op afterwards. SGLANCE_SKIP_GLANCE=1 skips both.
backends:
ifneq ($(SGLANCE_SKIP_RGW),1)
	bash tests/backends/ceph/install.sh
endif
ifneq ($(SGLANCE_SKIP_KEYSTONE),1)
	bash tests/backends/keystone/install.sh
endif
ifneq ($(SGLANCE_SKIP_SWIFT),1)
	bash tests/backends/swift/install.sh
endif
ifneq ($(SGLANCE_SKIP_GLANCE),1)
	bash tests/backends/glance/install.sh
endif

run: install
	$(BIN)/python -m devstack

test: install lint backends ministack
	$(BIN)/pytest

unit: install
	$(BIN)/pytest tests/unit

integration: install backends
	$(BIN)/pytest tests/integration

api: install
	$(BIN)/pytest tests/api

# The real stack deployed to MiniStack (or SGLANCE_E2E_ENDPOINT), driven over its API Gateway.
e2e: install backends ministack
	$(BIN)/pytest tests/e2e

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

typecheck: install
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python -m benchmarks

synth: install
	$(BIN)/python infra/cdk_app.py

clean:
	rm -rf $(VENV) $(MINISTACK_VENV) .build .devstack .pytest_cache .mypy_cache .ruff_cache cdk.out .bench
