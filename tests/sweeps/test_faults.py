"""Faults outside a single run: the driver killed mid-sweep, and a sweep over two Ray nodes."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from store import open_store
from sweeps.plan import plan_sweep
from sweeps.runner import submit
from sweeps.spec import spec_from_dict
from sweep_helpers import tiny_spec_dict

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def write_spec(tmp_path, data):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def wait_for(condition, timeout_s, description):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {description}")


@pytest.mark.slow
def test_driver_killed_then_resubmitted(tiny_corpus, tmp_path):
    data = tiny_spec_dict(tiny_corpus, tmp_path, "driver-kill", steps_smallest=150)
    spec_path = write_spec(tmp_path, data)
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    driver = subprocess.Popen(
        [sys.executable, "-m", "scalelab.cli", "sweep", "submit", str(spec_path), "--db", url, "--max-parallel", "1", "--no-progress"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    store = open_store(url)

    def two_completed():
        assert driver.poll() is None, driver.stderr.read().decode()[-3000:]
        try:
            runs = store.runs("driver-kill")
        except ValueError:
            return False
        return (runs["status"] == "completed").sum() >= 2

    try:
        wait_for(two_completed, 600, "two completed runs")
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    before = store.runs("driver-kill").set_index("id")
    finished_before = before.index[before["status"] == "completed"]
    assert (before["status"] != "completed").sum() >= 1, "the driver finished every run before the kill"

    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=100 * 1024**2, log_to_driver=False)
    try:
        result = submit(spec_from_dict(data), store, progress=False)
    finally:
        ray.shutdown()
    assert result.counts == {"completed": 4}
    assert sorted(result.skipped) == sorted(finished_before)

    after = store.runs("driver-kill").set_index("id")
    for run_id in finished_before:
        assert after.loc[run_id, "attempts"] == 1
        assert after.loc[run_id, "started_at"] == before.loc[run_id, "started_at"]
    plan = plan_sweep(spec_from_dict(data))
    points = store.loss_points([run.run_id for run in plan.runs])
    for run in plan.runs:
        steps = points.loc[points["run_id"] == run.run_id, "step"]
        assert len(steps) == run.steps
        assert steps.is_unique
        assert after.loc[run.run_id, "status"] == "completed"


def ray_processes(marker: str) -> list[int]:
    """Pids of processes whose command line mentions `marker` (our cluster's temp folder)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in command and int(entry.name) != os.getpid():
            pids.append(int(entry.name))
    return pids


@pytest.fixture
def two_node_cluster():
    """A Ray head and a second node on loopback, each with one CPU, stopped by pid afterwards."""
    # A short temp folder keeps Ray's socket paths under the 107-byte Unix limit, and a private one
    # keeps `ray.init()` elsewhere on this machine from finding and joining this cluster.
    temp_dir = f"/tmp/ray-sweeptest-{uuid.uuid4().hex[:8]}"
    port = 20000 + os.getpid() % 20000
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    ray_cli = str(BIN / "ray")
    try:
        subprocess.run(
            [ray_cli, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=1",
             "--include-dashboard=false", f"--temp-dir={temp_dir}", "--object-store-memory=100000000",
             "--disable-usage-stats"],
            env=env, check=True, capture_output=True, timeout=120,
        )
        subprocess.run(
            [ray_cli, "start", f"--address=127.0.0.1:{port}", "--node-ip-address=127.0.0.1", "--num-cpus=1",
             "--resources={\"second_node\": 1}", "--object-store-memory=100000000", "--disable-usage-stats"],
            env=env, check=True, capture_output=True, timeout=120,
        )
        yield f"127.0.0.1:{port}"
    finally:
        for pid in ray_processes(temp_dir):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.mark.slow
def test_two_node_cluster_runs_on_both(tiny_corpus, tmp_path, two_node_cluster):
    import ray

    assert not ray.is_initialized()
    spec = spec_from_dict(tiny_spec_dict(tiny_corpus, tmp_path, "two-nodes", steps_smallest=150))
    store = open_store(f"sqlite:///{tmp_path / 'sweeps.db'}")
    result = submit(spec, store, address=two_node_cluster, progress=False)
    assert result.counts == {"completed": 4}
    assert not ray.is_initialized()
    runs = store.runs("two-nodes")
    assert runs["node_id"].notna().all()
    assert runs["node_id"].nunique() == 2
    assert runs["host"].notna().all()
