"""Runs under torchrun on CPU (gloo, 2 processes spawned here: on one node, or as two nodes
meeting at a rendezvous on a free port): label transfer gives the single-process export byte
for byte, also after a rank is killed and the run started again; training gives the
single-process loss curve, also when resumed under another number of processes.

Every process runs with one torch thread (torchrun's default), the single-process runs too:
float sums may round differently with other thread counts. The shipped weights are used
because the untrained network's learned layers are randomly initialised in each process.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import cv2
import pytest
import torch

import main
from rtn_core.labels.formats import read_labels
from rtn_core.labels.sharded import read_shards, work_folder
from rtn_core.training.train import Trainer
from test_train import tiny_data  # noqa: F401 (fixture: tiny generated training data and config)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SAMPLES = os.path.join(REPO, "resources", "samples")
SOURCE = os.path.join(SAMPLES, "cat-chelsea.png")
KEYPOINTS = os.path.join(HERE, "data", "labels", "chelsea.csv")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def torchrun(*args, launch=("--standalone", "--nproc-per-node=2")):
    command = [sys.executable, "-m", "torch.distributed.run", *launch, os.path.join(REPO, "main.py"), *args]
    return subprocess.Popen(command, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """Six small targets cut from the second sample photo, one with a point fixed by hand, and the
    single-process COCO export."""
    folder = tmp_path_factory.mktemp("transfer")
    photo = cv2.imread(os.path.join(SAMPLES, "cat-pexels-20787.jpg"))
    for i in range(6):
        crop = photo[10 * i:10 * i + 320, 20 * i:20 * i + 480]
        cv2.imwrite(str(folder / f"target{i}.png"), cv2.resize(crop, (96, 64), interpolation=cv2.INTER_AREA))
    (folder / "fixes.csv").write_text("image,name,x,y\ntarget2.png,nose,40.5,30.25\n")  # a point fixed by hand
    args = ["transfer", "--source", SOURCE, "--keypoints", KEYPOINTS, "--targets", str(folder), "--format", "coco",
            "--fixed", str(folder / "fixes.csv")]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main.main(args + ["--out", str(folder / "single.json")]) == 0
    finally:
        torch.set_num_threads(threads)
    fixed = read_labels(str(folder / "single.json")).image(str(folder / "target2.png")).point("nose")
    assert (fixed.x, fixed.y) == pytest.approx((40.5, 30.25))
    return folder, args, (folder / "single.json").read_bytes()


def test_two_nodes_of_one_process_write_the_single_process_export(job):
    """Two torchrun launches meeting at a c10d rendezvous, as on two machines: ranks 0 and 1,
    each with LOCAL_RANK 0."""
    folder, args, single = job
    out = folder / "two.json"
    launch = ("--nnodes=2", "--nproc-per-node=1", "--rdzv-backend=c10d", f"--rdzv-endpoint=localhost:{free_port()}",
              "--rdzv-id=test")
    nodes = [torchrun(*args, "--out", str(out), launch=launch) for _ in range(2)]
    errors = "".join(node.communicate(timeout=120)[1] for node in nodes)
    assert [node.returncode for node in nodes] == [0, 0], errors
    assert out.read_bytes() == single
    assert "[rank 0/2] 3/3 targets" in errors and "[rank 1/2] 3/3 targets" in errors
    assert "transfer: 6 targets (0 from earlier runs), 6 in" in errors


def test_a_killed_run_started_again_skips_finished_targets_and_ends_identical(job):
    folder, args, single = job
    out = folder / "killed.json"
    run = torchrun(*args, "--out", str(out))
    while _finished(out) < 3:
        assert run.poll() is None, run.communicate()[1]
        time.sleep(0.02)
    os.kill(_children(run.pid)[-1], signal.SIGKILL)  # one rank dies; torchrun stops the other
    run.communicate(timeout=60)
    assert run.returncode != 0 and not out.exists()
    finished = _finished(out)
    assert 3 <= finished < 6
    with open(os.path.join(work_folder(str(out)), "rank-0.jsonl"), "a") as shard:
        shard.write('{"index": 5, "labels": {"ima')  # a torn last line, as a kill mid-write leaves

    again = torchrun(*args, "--out", str(out))
    _, errors = again.communicate(timeout=120)
    assert again.returncode == 0, errors
    assert f"transfer: 6 targets ({finished} from earlier runs), {6 - finished} in" in errors
    assert out.read_bytes() == single

    other = torchrun(*args, "--out", str(out), "--min-confidence", "0.9")
    _, errors = other.communicate(timeout=120)
    assert other.returncode != 0 and "holds another transfer" in errors


def _finished(out) -> int:
    """Targets recorded in the shards of the run exporting to ``out``."""
    return len(read_shards(work_folder(str(out)))) if os.path.isdir(work_folder(str(out))) else 0


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (torchrun's workers), in start order."""
    children = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            children.append(int(entry))
    return sorted(children)


# Per-rank masked means averaged over 2 ranks weigh pixels slightly differently from one masked
# mean over the global batch, and the updates then drift a little: equal within this tolerance.
LOSS_TOLERANCE = 0.02


def test_two_processes_train_the_single_process_loss_curve_and_resume_across_world_sizes(tiny_data, monkeypatch):
    config, out = tiny_data
    path = out.parent / "tiny.toml"
    path.write_text(path.read_text().replace("steps = 2\nbatch = 2", "steps = 4\nbatch = 4", 1))
    args = ["train", "--config", str(path), "--stage", "synthetic", "--out"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main.main(args + [str(out / "one")]) == 0
        single = _step_losses(out / "one")

        class Killed(Exception):
            pass

        def checkpoint_then_die_at_step_2(self, stage, step, *rest):
            original(self, stage, step, *rest)
            if step == 2:
                raise Killed
        original = Trainer._checkpoint
        monkeypatch.setattr(Trainer, "_checkpoint", checkpoint_then_die_at_step_2)
        with pytest.raises(Killed):
            main.main(args + [str(out / "resumed")])
    finally:
        torch.set_num_threads(threads)
    two = torchrun(*args, str(out / "two"))
    resumed = torchrun(*args, str(out / "resumed"), "--resume")  # the first runs alongside
    for run in (two, resumed):
        _, errors = run.communicate(timeout=300)
        assert run.returncode == 0, errors
    print(single, _step_losses(out / "two"), _step_losses(out / "resumed"))
    assert list(single) == [1, 2, 3, 4] and list(_step_losses(out / "two")) == [1, 2, 3, 4]
    assert list(_step_losses(out / "resumed")) == [1, 3, 4]  # killed after step 2's checkpoint, before its log
    for name in ("two", "resumed"):
        for step, loss in _step_losses(out / name).items():
            assert loss == pytest.approx(single[step], rel=LOSS_TOLERANCE), (name, step)
    assert _processes(out / "two") == [2, 2, 2, 2] and _processes(out / "resumed") == [1, 2, 2]


def _step_losses(folder) -> dict:
    with open(folder / "log.jsonl") as log:
        return {record["step"]: record["step_loss"] for record in map(json.loads, log)}


def _processes(folder) -> list:
    with open(folder / "log.jsonl") as log:
        return [json.loads(line)["processes"] for line in log]
