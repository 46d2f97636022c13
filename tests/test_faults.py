"""Nothing lost on faults: interrupted, killed and concurrent runs; atomic writers.

Real ``python -m jinit.cli sweep`` / ``train`` subprocesses write into an ``--out`` that already
holds a good set and are interrupted (SIGINT, SIGTERM, SIGKILL) at random points (seeded
delays spread over start-up, compile, sweep and writing) and, through the test hook
``JINIT_TEST_GATE``, exactly before and inside the commit. Whatever the point, ``--out`` must
hold exactly the old set or the new set, complete and valid (JSON parses, CSV rows complete,
PNGs load, one run id in every file); SIGINT/SIGTERM exit with 130/143 and one line, never a
traceback. The trials of one test run in parallel (a shared persistent compilation cache keeps
each short); ``JINIT_FAULT_SEED`` changes the random delays.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from bad_input import check_cli_usage_error, check_raises, params

import jinit
from jinit._core import _output as output_mod
from jinit._core._atomic import atomic_file
from jinit._core._output import OutputFolder
from jinit.sweeps._train_data import METRICS
from jinit.sweeps._train_results import TrainResult

pytestmark = pytest.mark.skipif(
    not hasattr(signal, "SIGKILL"), reason="POSIX signals (SIGKILL, SIGTERM) needed"
)

SWEEP = ["sweep", "--width", "16", "--depth", "3", "--batch", "32", "--seeds", "8"]
SWEEP += ["--inits", "he_normal", "--layer", "2"]
TRAIN = ["train", "--depth", "2", "--width", "16", "--steps", "20", "--eval-every", "10"]
TRAIN += ["--seeds", "2", "--inits", "he_normal", "--batch-size", "32"]
SWEEP_FILES = {"results.json", "results.csv", "depth_profile.png", "histogram.png"}
SWEEP_FILES |= {"gradient_profile.png"}
TRAIN_FILES = {"results.json", "curves.png"}
EXIT_LINE = re.compile(
    r"^interrupted; (nothing written to \S+|previous results in \S+ kept"
    r"|new results written to \S+)$"
)
SEED = int(os.environ.get("JINIT_FAULT_SEED", "0"))


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Subprocess environment: CPU, a persistent compilation cache shared by the trials."""
    cache = tmp_path_factory.mktemp("xla-cache")
    e = dict(os.environ)
    e.pop("JINIT_TEST_GATE", None)
    e.update(
        JAX_PLATFORMS="cpu",
        JAX_COMPILATION_CACHE_DIR=str(cache),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
        COLUMNS="120",
        PYTHONWARNINGS="ignore",
    )
    return e


_STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_orphans():
    """Kills and reaps every run a test started, even when the test fails midway."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(Exception):
            proc.communicate(timeout=30)


def start_rows(args, out, env, gate=None):
    e = dict(env)
    if gate is not None:
        e["JINIT_TEST_GATE"] = gate
    return _track(
        subprocess.Popen(
            [sys.executable, "-m", "jinit.cli", *args, "--out", str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=e,
            cwd=str(Path(out).parent),
        )
    )


def _track(proc):
    _STARTED.append(proc)
    return proc


def _wait_for(path: Path, proc, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"exited {proc.returncode} before {path.name}: " + "".join(
            proc.communicate()
        )
        assert time.monotonic() < deadline, f"timed out waiting for {path}"
        time.sleep(0.02)


def _wait_guard(proc, timeout: float = 120.0) -> None:
    """Waits until the process catches SIGTERM: jinit's CLI handlers are installed (first thing
    when ``jinit`` is imported). Before that, Python's own defaults apply (a signal in the first
    ~0.1 s of interpreter start-up is outside jinit's reach). Linux /proc; else a fixed wait."""
    status = Path(f"/proc/{proc.pid}/status")
    if not status.exists():
        time.sleep(1.0)
        return
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            line = next(ln for ln in status.read_text().splitlines() if ln.startswith("SigCgt:"))
        except (OSError, StopIteration):
            return
        if int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)):
            return
        time.sleep(0.01)


def _finish(proc, timeout: float = 300.0):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _png_run_id(path: Path) -> str:
    from PIL import Image

    with Image.open(path) as im:
        im.load()  # decodes every pixel: a truncated file fails here
        assert im.size[0] > 100 and im.size[1] > 100
        return im.text["jinit_run_id"]


def read_set(out: Path, files: set[str]) -> str:
    """Checks that ``out`` holds exactly ``files``, each complete, one run id; returns it."""
    assert {p.name for p in out.iterdir()} == files, sorted(os.listdir(out))
    doc = json.loads((out / "results.json").read_text())
    rid = doc["config"]["run_id"]
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{8}", rid)
    if "results.csv" in files:
        with open(out / "results.csv", newline="") as f:
            rows = list(csv.reader(f))
        assert rows[0][0] == "init" and rows[0][-1] == "run_id"
        n_layers = len(doc["initializers"][0]["layers"])
        assert len(rows) > n_layers and (len(rows) - 1) % n_layers == 0  # whole layers only
        assert all(len(r) == len(rows[0]) for r in rows)
        assert {r[-1] for r in rows[1:]} == {rid}
        assert [int(r[1]) for r in rows[1 : n_layers + 1]] == list(range(1, n_layers + 1))
    else:
        loaded = TrainResult.load(out / "results.json")
        assert loaded.config["run_id"] == rid and loaded.labels == ["he_normal"]
    for name in files:
        if name.endswith(".png"):
            assert _png_run_id(out / name) == rid, name
    return rid


def leftovers(out: Path) -> list[str]:
    """jinit's hidden entries beside ``out`` (staging, old sets, lock file)."""
    return sorted(n for n in os.listdir(out.parent) if n.startswith(f".{out.name}.jinit-"))


def check_exit(sig, rc, stdout, stderr) -> None:
    """SIGINT/SIGTERM: 128 + signal (or 0 if the run had finished) and one clean line."""
    text = stdout + stderr
    if sig == signal.SIGKILL:
        assert rc in (0, -signal.SIGKILL), (rc, text)
        return
    assert "Traceback" not in text and "Segmentation" not in text, text
    assert rc in (0, 128 + sig), (rc, text)
    if rc:
        last = stderr.strip().splitlines()[-1]
        assert EXIT_LINE.match(last), last


def _reference(args, tmp_path_factory, env, name, files):
    out = tmp_path_factory.mktemp(name) / "out"
    t0 = time.monotonic()
    rc, so, se = _finish(start_rows(args, out, env))
    took = time.monotonic() - t0
    assert rc == 0, so + se
    rid = read_set(out, files)
    assert leftovers(out) == []  # no staging folder and no lock file after a clean run
    return out, rid, took


@pytest.fixture(scope="module")
def sweep_ref(tmp_path_factory, env):
    """A good old set written by a real run (also warms the compilation cache)."""
    return _reference(SWEEP, tmp_path_factory, env, "sweep-ref", SWEEP_FILES)


@pytest.fixture(scope="module")
def train_ref(tmp_path_factory, env):
    pytest.importorskip("sklearn")
    return _reference(TRAIN, tmp_path_factory, env, "train-ref", TRAIN_FILES)


def _run_trial(trial, args, ref, env):
    """One interrupted run into a copy of the old set; returns what the checks need."""
    sig, when, root, foreign = trial
    ref_out, _, _ = ref
    out = root / "out"
    shutil.copytree(ref_out, out)
    if foreign:  # a file jinit did not write: the set is moved in file by file
        (out / "notes.txt").write_text("mine")
    gates = root / "gates"
    gates.mkdir()
    if isinstance(when, str):  # a gate: "before-commit" or "in-commit"
        proc = start_rows(args, out, env, gate=f"{gates}:{when}")
        _wait_for(gates / f"{when}.waiting", proc)
        proc.send_signal(sig)
        if sig != signal.SIGKILL:
            time.sleep(0.3)  # the signal is handled (or deferred) while the run waits
            (gates / f"{when}.go").touch()
    else:  # seconds after start, but not before jinit's handlers exist
        t0 = time.monotonic()
        proc = start_rows(args, out, env)
        _wait_guard(proc)
        try:
            proc.wait(timeout=max(0.0, when - (time.monotonic() - t0)))
        except subprocess.TimeoutExpired:
            proc.send_signal(sig)
    rc, so, se = _finish(proc)
    return out, rc, so, se


def _trials(tmp_path, ref, plan):
    """``(signal, when, folder, foreign)``: ``when`` a gate name or seconds after start."""
    trials = []
    for i, (sig, when, *foreign) in enumerate(plan):
        root = tmp_path / f"t{i}-{signal.Signals(sig).name}"
        root.mkdir()
        trials.append((sig, when, root, bool(foreign)))
    return trials


def _run_all(trials, args, ref, env):
    with ThreadPoolExecutor(len(trials)) as pool:
        return list(pool.map(lambda t: _run_trial(t, args, ref, env), trials))


def _check_trials(trials, results, ref, files):
    _, old_id, _ = ref
    for (sig, when, _root, foreign), (out, rc, so, se) in zip(trials, results, strict=True):
        if foreign:
            continue  # checked by the test itself
        label = f"{signal.Signals(sig).name} at {when}"
        check_exit(sig, rc, so, se)
        rid = read_set(out, files)  # exactly the old set or the new set, complete and valid
        if rc in (130, 143):
            last = se.strip().splitlines()[-1]
            if rid == old_id:
                assert last == f"interrupted; previous results in {out} kept", (label, last)
            else:
                assert last == f"interrupted; new results written to {out}", (label, last)
        if sig != signal.SIGKILL:
            assert leftovers(out) == [], label  # cleaned up, lock released
        if when == "before-commit":
            assert rid == old_id, label
        if when == "in-commit":
            assert rid != old_id, label  # the commit had swapped the folders
            if sig == signal.SIGTERM:
                assert rc == 143 and "new results written" in se, (label, se)
        if rc == 0:
            assert rid != old_id, label


# ---------------------------------------------------------------------------------------------
# Interrupted and killed runs
# ---------------------------------------------------------------------------------------------


def test_interrupted_sweeps_leave_old_or_new_set(sweep_ref, env, tmp_path):
    took = sweep_ref[2]
    rng = random.Random(SEED)
    plan = [
        (signal.SIGINT, 0.0),  # as soon as jinit's handlers exist: jax is still importing
        (signal.SIGTERM, 1.0),
        # seeded points spread over start-up, compile, sweep and writing
        (signal.SIGINT, rng.uniform(0.2, 1.1) * took),
        (signal.SIGTERM, rng.uniform(0.2, 1.1) * took),
        (signal.SIGKILL, rng.uniform(0.05, 1.1) * took),
        (signal.SIGINT, "before-commit"),
        (signal.SIGTERM, "in-commit"),  # deferred until the commit is done
        (signal.SIGKILL, "in-commit"),  # after the swap, before the old set is deleted
        (signal.SIGKILL, "in-commit", "foreign"),  # after the first file moved in
    ]
    trials = _trials(tmp_path, sweep_ref, plan)
    results = _run_all(trials, SWEEP, sweep_ref, env)
    _check_trials(trials, results, sweep_ref, SWEEP_FILES)

    # A folder holding a file jinit did not write: killed between two moves, every file is
    # still complete, the foreign file untouched, results.json (moved last) still old, and the
    # run ids tell the mixed set.
    _, old_id, _ = sweep_ref
    shared = results[-1][0]
    assert (shared / "notes.txt").read_text() == "mine"
    assert json.loads((shared / "results.json").read_text())["config"]["run_id"] == old_id
    ids = {_png_run_id(shared / n) for n in SWEEP_FILES if n.endswith(".png")}
    assert old_id in ids and len(ids) == 2

    # The run killed inside its swap left the old set in a hidden folder and a stale lock
    # file. A second run there is not blocked by the stale lock and repairs the leftovers;
    # a third run started while it works is refused up front (exit 2, naming its pid).
    out = results[-2][0]
    killed_id = read_set(out, SWEEP_FILES)
    stale = [n for n in leftovers(out) if ".jinit-staging-" in n]
    assert len(stale) == 1
    gates = tmp_path / "gates"
    gates.mkdir()
    first = start_rows([*SWEEP, "--no-plots"], out, env, gate=f"{gates}:before-commit")
    _wait_for(gates / "before-commit.waiting", first)
    now = leftovers(out)  # its own lock file and staging folder; the stale one removed
    assert stale[0] not in now and len(now) == 2 and f".{out.name}.jinit-lock" in now, now
    rc, so, se = _finish(start_rows(SWEEP, out, env))
    flat = " ".join((so + se).replace("│", " ").split())
    assert rc == 2, flat
    assert "--out" in flat and f"pid {first.pid}" in flat and "jinit sweep" in flat, flat
    assert "Traceback" not in flat
    assert read_set(out, SWEEP_FILES) == killed_id  # the refused run touched nothing
    (gates / "before-commit.go").touch()
    rc, so, se = _finish(first)
    assert rc == 0, so + se
    assert read_set(out, {"results.json", "results.csv"}) not in (killed_id, old_id)
    assert leftovers(out) == []


def test_interrupted_trains_leave_old_or_new_set(train_ref, env, tmp_path):
    took = train_ref[2]
    rng = random.Random(SEED + 1)
    plan = [
        (signal.SIGINT, rng.uniform(0.2, 1.1) * took),
        (signal.SIGKILL, rng.uniform(0.05, 1.1) * took),
        (signal.SIGTERM, "in-commit"),
        (signal.SIGKILL, "in-commit"),
    ]
    trials = _trials(tmp_path, train_ref, plan)
    results = _run_all(trials, TRAIN, train_ref, env)
    _check_trials(trials, results, train_ref, TRAIN_FILES)


# ---------------------------------------------------------------------------------------------
# --out validation: usage errors before any work
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def no_work(monkeypatch):
    """Fails the test if a command reached its sweep or training."""

    def boom(*a, **k):
        raise AssertionError("the command started its work despite a bad --out")

    monkeypatch.setattr("jinit.sweeps._propagate.sweep", boom)
    monkeypatch.setattr("jinit.sweeps._train.train_sweep", boom)


def _cli_rows(tmp: Path):
    a_file = tmp / "a-file"
    a_file.write_text("x")
    rows = []
    for cmd in (SWEEP, TRAIN):
        name = cmd[0]
        rows += [
            (f"{name}-out-is-a-file", [*cmd, "--out", str(a_file)], ["--out", "existing file"]),
            (
                f"{name}-out-under-a-file",
                [*cmd, "--out", str(a_file / "sub" / "out")],
                ["--out", "cannot be created", "is a file"],
            ),
        ]
    return rows


@pytest.mark.parametrize("row", range(4))
def test_cli_out_usage_errors(row, tmp_path, no_work):
    rid, argv, patterns = _cli_rows(tmp_path)[row]
    check_cli_usage_error(argv, patterns)
    assert sorted(os.listdir(tmp_path)) == ["a-file"]  # nothing created, no lock file left


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permissions")
def test_cli_out_unwritable_folder(tmp_path, no_work):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        check_cli_usage_error([*SWEEP, "--out", str(ro)], ["--out", "not writable"])
        check_cli_usage_error([*SWEEP, "--out", str(ro / "new")], ["--out", "no permission"])
    finally:
        ro.chmod(0o700)


# ---------------------------------------------------------------------------------------------
# The Python API's writers: atomic, validated
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_sweep():
    return jinit.sweep(jinit.mlp(8, 2), jinit.he_normal(), seeds=2, batch=4)


def _train_result():
    curves = {"he": {m: np.array([[2.3, 0.5, 0.1], [2.3, 0.6, 0.2]]) for m in METRICS}}
    return TrainResult(
        {"chance_loss": float(np.log(10)), "steps": 20}, np.array([0, 10, 20]), curves, {}
    )


def _api_rows(tmp: Path):
    a_file = tmp / "a-file"
    a_file.write_text("x")
    sw = jinit.SweepResult.to_json  # validation runs before the result is used
    tr = _train_result()
    return [
        (
            "to_json-folder",
            lambda: sw(None, tmp),
            ValueError,
            ["to_json", "folder", "results.json"],
        ),
        (
            "to_json-missing-parent",
            lambda: sw(None, tmp / "nope" / "r.json"),
            ValueError,
            ["`path`", "missing folder", "os.makedirs"],
        ),
        ("to_json-int", lambda: sw(None, 3), TypeError, ["`path`", "got 3", "int"]),
        (
            "to_csv-folder",
            lambda: jinit.SweepResult.to_csv(None, tmp),
            ValueError,
            ["to_csv", "folder", "results.csv"],
        ),
        (
            "to_csv-under-file",
            lambda: jinit.SweepResult.to_csv(None, a_file / "r.csv"),
            ValueError,
            ["goes through the file"],
        ),
        (
            "save_all-file",
            lambda: jinit.plot.save_all(None, a_file),
            ValueError,
            ["save_all", "`out_dir`", "existing file"],
        ),
        (
            "depth_profile-folder",
            lambda: jinit.plot.depth_profile(None, tmp),
            ValueError,
            ["depth_profile", "folder"],
        ),
        (
            "train-to_json-folder",
            lambda: tr.to_json(tmp),
            ValueError,
            ["TrainResult.to_json", "folder"],
        ),
        ("train-save-file", lambda: tr.save(a_file), ValueError, ["`directory`", "existing file"]),
        (
            "train-save-under-file",
            lambda: tr.save(a_file / "d"),
            ValueError,
            ["`directory`", "cannot be created"],
        ),
        ("train-plot-folder", lambda: tr.plot(tmp), ValueError, ["TrainResult.plot", "folder"]),
    ]


N_API_ROWS = 11


@pytest.mark.parametrize("row", range(N_API_ROWS))
def test_api_writers_validate_paths(row, tmp_path):
    import jinit.plot  # noqa: F401

    rows = _api_rows(tmp_path)
    assert len(rows) == N_API_ROWS
    params(rows)  # unique ids
    _, call, exc, patterns = rows[row]
    check_raises(call, exc, patterns)
    assert sorted(os.listdir(tmp_path)) == ["a-file"]


def test_api_writers_are_atomic_and_share_the_run_id(small_sweep, tmp_path):
    from jinit import plot

    r = small_sweep
    r.to_json(tmp_path / "r.json")
    good = (tmp_path / "r.json").read_text()

    def broken_dict():
        raise RuntimeError("disk on fire")

    r.to_dict = broken_dict  # fails while the new text is produced
    with pytest.raises(RuntimeError):
        r.to_json(tmp_path / "r.json")
    del r.to_dict
    assert (tmp_path / "r.json").read_text() == good
    r.to_csv(tmp_path / "r.csv")
    paths = plot.save_all(r, tmp_path / "figs", layer=1)
    rid = json.loads(good)["config"]["run_id"]
    with open(tmp_path / "r.csv", newline="") as f:
        assert {row[-1] for row in list(csv.reader(f))[1:]} == {rid}
    assert {_png_run_id(Path(p)) for p in paths.values()} == {rid}
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # no temporary files


def test_atomic_file_keeps_the_old_file_on_error(tmp_path):
    p = tmp_path / "f.txt"
    p.write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_file(p) as f:
        f.write("half")
        raise KeyboardInterrupt
    assert p.read_text() == "old" and os.listdir(tmp_path) == ["f.txt"]


def test_train_save_is_a_set_and_leaves_foreign_files(tmp_path):
    r = _train_result()
    written = r.save(tmp_path / "d")
    assert TrainResult.load(written["json"]).config["run_id"] == _png_run_id(Path(written["png"]))
    first = r.config["run_id"]
    r.save(tmp_path / "d", plot=False)  # a whole new set: the old curves.png goes with it
    assert sorted(os.listdir(tmp_path / "d")) == ["results.json"]
    assert r.config["run_id"] != first
    (tmp_path / "d" / "mine.txt").write_text("keep")
    r.save(tmp_path / "d")  # a foreign file: in-place mode, file by file
    assert sorted(os.listdir(tmp_path / "d")) == ["curves.png", "mine.txt", "results.json"]
    assert (tmp_path / "d" / "mine.txt").read_text() == "keep"
    assert sorted(os.listdir(tmp_path)) == ["d"]  # no lock file, no staging folder


def test_second_open_of_a_locked_folder_names_the_holder(tmp_path):
    first = OutputFolder.open(tmp_path / "o", command="first run")
    try:
        with pytest.raises(ValueError, match=rf"pid {os.getpid()}, `first run`"):
            OutputFolder.open(tmp_path / "o", command="second")
    finally:
        first.close()
    OutputFolder.open(tmp_path / "o", command="third").close()  # released: not blocked


def _fill(names, tag):
    def fill(stage):
        for n in names:
            with atomic_file(stage / n) as f:
                f.write(tag)

    return fill


def test_rename_fallback_and_its_recovery(tmp_path, monkeypatch):
    monkeypatch.setattr(output_mod, "_exchange", lambda a, b: False)  # no renameat2 here
    out = tmp_path / "o"
    with OutputFolder.open(out, command="t") as f:
        f.write(_fill(["results.json"], "old"))
    with OutputFolder.open(out, command="t") as f:
        f.write(_fill(["results.json", "results.csv"], "new"))
    assert {p.name: p.read_text() for p in out.iterdir()} == {
        "results.json": "new",
        "results.csv": "new",
    }
    assert sorted(os.listdir(tmp_path)) == ["o"]
    # A run that died between the fallback's two renames: --out is missing, the old set is
    # in .o.jinit-old-<id>, a staging folder lies beside it. The next run restores the old set.
    os.rename(out, tmp_path / ".o.jinit-old-x")
    (tmp_path / ".o.jinit-staging-y").mkdir()
    with OutputFolder.open(out, command="t") as f:
        assert f.had_previous
    assert (out / "results.json").read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == ["o"]


_DEFER_SCRIPT = """
import signal
from jinit._core._signals import deferred_signals
assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
done = []
try:
    with deferred_signals():
        signal.raise_signal(signal.SIGINT)
        done.append("after the signal")
except KeyboardInterrupt:
    done.append("interrupted at the end")
assert done == ["after the signal", "interrupted at the end"], done
assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
print("ok")
"""


def test_deferred_signals_delay_sigint_until_the_block_ends():
    # In a fresh interpreter: inside the test process an earlier test (or a library it
    # imported) may have changed SIGINT's handler, which this test is not about.
    r = subprocess.run(
        [sys.executable, "-c", _DEFER_SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_open_removes_leftovers_of_dead_runs_inside_the_folder(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "mine.txt").write_text("keep")
    (d / ".jinit-staging-x").mkdir()  # an in-place run killed before its commit
    dead = d / ".jinit-tmp-999999999-ab-results.json"  # a writer that no longer runs
    live = d / f".jinit-tmp-{os.getpid()}-cd-results.json"  # this process: still writing
    dead.write_text("{")
    live.write_text("{")
    with OutputFolder.open(d, command="t") as f:
        assert f.mode == "in-place"
        assert sorted(os.listdir(d)) == [live.name, "mine.txt"]


def test_cwd_is_never_swapped(tmp_path, monkeypatch):
    d = tmp_path / "d"
    d.mkdir()
    monkeypatch.chdir(d)
    with OutputFolder.open(".", command="t") as f:
        assert f.mode == "in-place"
        f.write(_fill(["results.json"], "x"))
    assert os.path.samefile(os.getcwd(), d) and (d / "results.json").read_text() == "x"
