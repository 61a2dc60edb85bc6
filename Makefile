# rewardstack: `make serve` and `make test` each set up everything they need from nothing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# CPU machines: install the CPU build of torch first, so no multi-GB CUDA build is pulled. Where pip's
# local wheel folder holds it (these build machines) it comes from there, elsewhere from PyTorch's CPU index.
TORCH_CPU ?= torch==2.13.0
TORCH_INDEX ?= $(if $(wildcard /opt/wheels/torch-*),,--index-url https://download.pytorch.org/whl/cpu)
# The frameworks whose own code the integration tests call; --no-deps (their GPU stacks are not needed).
FRAMEWORKS ?= openrlhf==0.11.2 verl==0.9.1

.PHONY: install serve test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install $(TORCH_INDEX) "$(TORCH_CPU)"
	$(BIN)/python -m pip install -e ".[server,models,train,containers,dev,integrations]"
	$(BIN)/python -m pip install --no-deps $(FRAMEWORKS)
	touch $@

install: $(VENV)/.installed

serve: install
	$(BIN)/rewardstack serve --host 127.0.0.1 --port 8000

test: install
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache

# Container images of every role (docker/build.sh); on machines with a local wheel folder, build from it.
.PHONY: images
images:
	docker/build.sh $(if $(wildcard /opt/wheels),--local-wheels)
