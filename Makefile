# The two commands a newcomer needs (README): `make run` and `make test`.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup setup-system page run test test-fast smoke lint bench clean

setup:
	scripts/setup.sh

setup-system:
	scripts/setup.sh system

# IPLOS Krypt: one self-contained HTML file (issue: the offline encryption page).
page: setup
	$(BIN)/python web/build.py
	mkdir -p server/send/page && cp dist/ipis-krypt.html server/send/page/ipis-krypt.html

# Everything up, then the send module on http://127.0.0.1:8000 with demo keys and account.
run: page
	$(BIN)/ipis serve

lint: setup
	$(BIN)/ruff check pyapp server tests bench web
	$(BIN)/mypy

# Everything up (chromium and postgresql from Debian where missing), then every test: the
# browser tests in a run of their own (see tests/conftest.py), then the plain-install smoke test.
test: setup-system page lint
	$(BIN)/pytest -n 2 --dist loadgroup -m "not browser"
	$(BIN)/pytest -n 2 --dist loadgroup -m browser
	$(MAKE) smoke

# The wheel into a fresh venv outside the checkout: encrypt, serve, log in, upload, deliver.
smoke: page
	$(BIN)/python tests/smoke/wheel_smoke.py

test-fast: setup
	$(BIN)/pytest -m "not browser and not postgres" -x

bench: page
	$(BIN)/python bench/run.py

clean:
	rm -rf dist bench/out .pytest_cache .mypy_cache .ruff_cache
