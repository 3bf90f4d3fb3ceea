"""Shared test set-up: Python's cyclic garbage collection only on the GUI thread, as in the app.

Left automatic, a collection runs in whichever thread allocates, e.g. a window's worker thread in
the middle of a match, and Qt objects of an earlier test freed there crash or hang the run (seen
once each in this suite). So automatic collection is off for the session (``app.workers``), the
GUI-thread timer collects while a test spins the event loop, and every test ends with a full
collection on the main thread, after its windows have closed.
"""
import gc
import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # the session's QApplication needs no display


@pytest.fixture(scope="session", autouse=True)
def garbage_on_gui_thread(request):
    try:
        import pytestqt  # noqa: F401
    except ImportError:  # a machine without the GUI (the GPU machine): no Qt objects to protect
        yield None
        return
    request.getfixturevalue("qapp")
    from app.workers import collect_garbage_on_gui_thread
    collector = collect_garbage_on_gui_thread()
    yield collector
    gc.enable()


@pytest.fixture(autouse=True)
def collect_after_each_test():
    yield
    gc.collect()
