# `make run` starts the app on the bundled sample pair; `make test` runs the test suite.
# Both create .venv and install the pinned dependencies on first use. `make run` then checks
# that Qt's xcb plugin can load its system libraries and apt-gets the missing ones (as root,
# else with sudo -n), or stops with the apt-get command to run (app/platform_check.py).
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m app.platform_check --install
	$(PY) main.py

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/bench_model.py

clean:
	rm -rf $(VENV)
