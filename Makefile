# Serverless Glance: the two commands are `make run` and `make test`.

# The project's interpreter, the one its Lambda functions run on (pyproject requires-python; infra/packaging.py and
# infra/stacks/function.py name the same version). PYTHON=/path/to/python3.13 overrides the search below.
PY_VERSION := 3.13
PYENV_ROOT ?= $(HOME)/.pyenv
# True only in a Python $(PY_VERSION) interpreter; prints its real path (a pyenv shim resolves to the interpreter).
PY_PROBE := import sys; assert sys.version_info[:2] == tuple(map(int, "$(PY_VERSION)".split("."))); print(sys.executable)
ifeq ($(origin PYTHON),undefined)
# python3.13 on PATH (a pyenv shim counts only if it runs: shims of a version pyenv has not selected fail), then
# pyenv's own 3.13.x builds, newest first.
PYTHON := $(shell for py in python$(PY_VERSION) $$(ls -d $(PYENV_ROOT)/versions/$(PY_VERSION).*/bin/python$(PY_VERSION) 2>/dev/null | sort -rV); do \
	"$$py" -c '$(PY_PROBE)' 2>/dev/null && break; done)
endif
VENV := .venv
BIN := $(VENV)/bin
# Named by version: a .venv built by another Python (an older checkout's) has no such stamp and is rebuilt.
STAMP := $(VENV)/.installed-py$(PY_VERSION)-stamp
MINISTACK_VENV := .venv-ministack
MINISTACK_STAMP := $(MINISTACK_VENV)/.installed-py$(PY_VERSION)-stamp

# `$(call venv_for,DIR)`: fail clearly without Python $(PY_VERSION); remove DIR if another interpreter made it.
define venv_for
	@test -n "$(PYTHON)" || { \
	  echo "error: Python $(PY_VERSION) not found. The project and its Lambda functions run on Python $(PY_VERSION);" >&2; \
	  echo "  looked for python$(PY_VERSION) on PATH and in $(PYENV_ROOT)/versions/$(PY_VERSION).*/bin." >&2; \
	  echo "  Install it (pyenv install $(PY_VERSION), or your distribution's python$(PY_VERSION) and python$(PY_VERSION)-venv)" >&2; \
	  echo "  or name one: make PYTHON=/path/to/python$(PY_VERSION) $(MAKECMDGOALS)" >&2; exit 1; }
	@"$(PYTHON)" -c '$(PY_PROBE)' >/dev/null 2>&1 || { \
	  echo "error: PYTHON=$(PYTHON) is not a working Python $(PY_VERSION) ($$("$(PYTHON)" -V 2>&1))" >&2; exit 1; }
	@if [ -e $(1) ] && ! $(1)/bin/python -c '$(PY_PROBE)' >/dev/null 2>&1; then \
	  echo "$(1) was made by another Python ($$($(1)/bin/python -V 2>&1 || echo 'interpreter gone')): recreating it with $(PYTHON)"; \
	  rm -rf $(1); fi
	"$(PYTHON)" -m venv $(1)
endef
# jsii prints an end-of-life banner for old Node versions unless this names the running Node major.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION ?= $(shell node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 20)

.PHONY: install backends ministack e2e run run-keystone tempest test unit integration api lint typecheck format bench synth clean metadefs

$(STAMP): pyproject.toml
	$(call venv_for,$(VENV))
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# MiniStack for tests/e2e, in its own virtualenv (it pins an older botocore than ours); ~10 s the first time. It runs
# the Lambda handlers with this venv's interpreter, so it is Python $(PY_VERSION) too: the e2e runs them on the deployed runtime.
$(MINISTACK_STAMP): localstack/requirements-ministack.txt
	$(call venv_for,$(MINISTACK_VENV))
	$(MINISTACK_VENV)/bin/pip install --quiet -r localstack/requirements-ministack.txt
	touch $(MINISTACK_STAMP)

ministack: $(MINISTACK_STAMP)

# The real Ceph RADOS Gateway that tests/integration/test_presigned_scope_rgw.py starts: apt-installs it on
# the first run (needs root or password-less sudo), a no-op afterwards. SGLANCE_SKIP_RGW=1 skips both.
# Debian's rados/rbd bindings are built for its own Python (3.11 on Debian 12): the RBD store's tests run there, in a
# child pytest (tests/support/rbd.py), from .venv-rbd, which rbd-python.sh makes (~1 min the first time).
# The real Keystone of the `keystone` fixture: its own virtualenv (~/.cache/sglance/keystone-venv) and Debian's
# memcached, ~25 s the first time, a no-op afterwards. SGLANCE_SKIP_KEYSTONE=1 skips both.
# The real Swift of the `swift` fixture (tests/support/swift.py): apt-installs Debian's Swift servers, swiftclient and
# memcached on the first run (root or password-less sudo, ~15 s), a no-op afterwards. SGLANCE_SKIP_SWIFT=1 skips both.
# The real Glance 33 of the `real_glance` fixture (the migration tests): its own virtualenv
# (~/.cache/sglance/glance-venv), ~90 s the first time, a no-op afterwards. SGLANCE_SKIP_GLANCE=1 skips both.
# The OCI registry (Debian's docker-registry) and skopeo that tests/infra/test_image.py pushes the data plane's image
# with: apt-installed on the first run (~10 s), a no-op afterwards. SGLANCE_SKIP_REGISTRY=1 skips both.
# qemu-img (Debian's qemu-utils), the oracle of the format-confusion tests; SGLANCE_SKIP_QEMU=1 skips the install
# (the tests then skip with the reason).
backends:
ifneq ($(SGLANCE_SKIP_RGW),1)
	bash tests/backends/ceph/install.sh
	bash tests/backends/ceph/rbd-python.sh >/dev/null
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
ifneq ($(SGLANCE_SKIP_REGISTRY),1)
	bash tests/backends/registry/install.sh
endif
ifneq ($(SGLANCE_SKIP_QEMU),1)
	bash tests/backends/qemu/install.sh
endif

run: install
	$(BIN)/python -m devstack

# The local stack against a real Keystone (the tests' one, installed on first use), with a printed clouds.yaml of an
# admin and members of two projects. A Keystone of your own: `$(BIN)/python -m devstack --keystone-url URL`.
run-keystone: install
	$(BIN)/python -m devstack --keystone

# Tempest's image tests and glance-tempest-plugin against the local stack in Keystone mode, both format profiles;
# rewrites docs/conformance.md (ours against real Glance 33, per test). About 30 min on 2 cores: not part of `make test`.
# TEMPEST_ARGS="--profile default --suite tempest" narrows it.
tempest: install
	$(BIN)/python -m tests.conformance.tempest $(TEMPEST_ARGS)

# Load metadata definition files (Glance's etc/metadefs format) into the catalog, idempotently: by default the ones
# we ship (shared/metadefs/definitions) into the running local stack (make run loads them at start too).
# METADEFS=DIR loads another folder; METADEFS_ARGS=--merge or --overwrite updates existing namespaces. For a deployed
# stack, set SGLANCE_AWS_ENDPOINT_URL= (empty: AWS), SGLANCE_TABLE_NAME and AWS credentials as for any boto3 tool.
METADEFS ?= shared/metadefs/definitions
SGLANCE_AWS_ENDPOINT_URL ?= http://127.0.0.1:5055
metadefs: install
	AWS_ACCESS_KEY_ID=$${AWS_ACCESS_KEY_ID:-testing} AWS_SECRET_ACCESS_KEY=$${AWS_SECRET_ACCESS_KEY:-testing} \
	SGLANCE_AWS_ENDPOINT_URL=$(SGLANCE_AWS_ENDPOINT_URL) $(BIN)/python -m shared.metadefs.load $(METADEFS) $(METADEFS_ARGS)

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
	rm -rf $(VENV) $(MINISTACK_VENV) .venv-rbd .build .devstack .tempest .pytest_cache .mypy_cache .ruff_cache cdk.out .bench
