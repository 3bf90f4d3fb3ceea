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
