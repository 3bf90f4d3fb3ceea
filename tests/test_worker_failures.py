"""Workers log expected failures (no CUDA, a bad file) as one line on the terminal, bugs with their
traceback, and the window gets the same one-sentence message either way."""
from rtn_core.labels.keypoints import ImageLabels, Point, TransferSettings


def run_transfer_worker(factory, tmp_path):
    from app.labeling.worker import TransferWorker
    worker = TransferWorker(matcher_factory=factory, device="cuda")
    failed = []
    worker.failed.connect(lambda job, message: failed.append(message))
    worker.current_job = 1
    source = ImageLabels(str(tmp_path / "src.png"), (10, 10), (Point("nose", 1, 2),))
    worker.run(1, source, [str(tmp_path / "t.png")], TransferSettings())
    return failed


def test_no_cuda_is_one_line_and_a_bug_keeps_its_traceback(tmp_path, capsys):
    def no_cuda(device, weights):
        raise ValueError("cannot use CUDA: no NVIDIA driver")

    assert run_transfer_worker(no_cuda, tmp_path) == ["cannot use CUDA: no NVIDIA driver"]
    err = capsys.readouterr().err
    assert err == "RTN Studio: cannot use CUDA: no NVIDIA driver\n"

    def bug(device, weights):
        return {}["missing"]

    assert run_transfer_worker(bug, tmp_path) == ["KeyError: 'missing'"]
    err = capsys.readouterr().err
    assert "Traceback" in err and "KeyError" in err


def test_cyclic_garbage_is_collected_by_the_gui_thread_timer_only(qtbot):
    """Automatic collection is off (a worker thread could otherwise run it); the GUI-thread timer
    collects a pile of reference cycles once the event loop runs."""
    import gc
    import weakref

    from app.workers import collect_garbage_on_gui_thread
    collector = collect_garbage_on_gui_thread()
    assert not gc.isenabled()

    class Node:
        pass
    cycles = []
    for _ in range(2 * gc.get_threshold()[0]):
        node = Node()
        node.me = node
        cycles.append(weakref.ref(node))
    del node
    assert all(ref() is not None for ref in cycles)  # nothing collects them by itself
    qtbot.waitUntil(lambda: all(ref() is None for ref in cycles), timeout=5000)
    collector.timer.stop()
