"""Hostile submissions gain nothing: no points, no process left running, no file planted, no secret, no
connection, no forged line in the terminal.

Each file in tests/hostile/ attacks the grader one way (see its docstring) and is otherwise a zero attempt:
right shapes, all zeros. It is graded once (a copy, in its own temporary folder, next to a correct
`classmate.py` it may try to read), and every test below reads that cached result. The bound on its score
is the score of an honest all-zeros file: no check may pass that the all-zeros file fails.

Placeholders filled in when a file is copied: `__HOSTILE_PORT__` (TCP, listening on 127.0.0.1 here),
`__HOSTILE_UNIX__` (a listening unix socket), `__HOSTILE_SECRET_FILE__` (a file holding a secret). Files an
attack writes contain `HOSTILE-PLANT`; processes it starts name themselves `hostile-*`.

For speed the grading runs with few examples and without shrinking (which changes the example a message
shows, never the score); everything else is the grader as shipped.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

from autograder import plugin
from autograder.report import terminal
from tests.grading_helpers import CORRECT, REPO, by_id, fast_config, grade_quick, passed
from tests.process_helpers import descendants, processes

HOSTILE = Path(__file__).parent / "hostile"
NAMES = sorted(p.stem for p in HOSTILE.glob("*.py"))
MARK = b"HOSTILE-PLANT"
CONFIG = fast_config(max_examples=5)
TIME_LIMIT_S = 90.0  # per grading; the slowest files cost a few call timeouts (3 s) and worker restarts
SLOW = {"infinite_loop", "forge_protocol"}  # files whose attack costs call timeouts on purpose

ZEROS = '''
import torch


def linear_projections(x, W_q, W_k, W_v):
    return tuple(torch.zeros(*x.shape[:-1], W.shape[-1], dtype=x.dtype) for W in (W_q, W_k, W_v))


def attention_scores(Q, K):
    return torch.zeros(*Q.shape[:-1], K.shape[-2], dtype=Q.dtype)


def attention_weights(scores, mask=None):
    return torch.zeros_like(scores)


def aggregate_values(weights, V):
    return torch.zeros(*weights.shape[:-1], V.shape[-1], dtype=V.dtype)
'''

pytestmark = pytest.mark.timeout(900, method="thread")  # a backstop: the grader itself must never hang


# -- processes ------------------------------------------------------------------------------------

def _strays(marker: str, earlier: set) -> Dict[int, str]:
    """Living processes a submission may have started: its marker in their command line, a hostile-* name,
    or a descendant of this process that was not there before the grading (except a fork-server, which
    serves many gradings)."""
    procs, me = processes(), os.getpid()
    new = set(descendants(me, procs)) - earlier
    found = {}
    for pid, proc in procs.items():
        if pid == me or proc.state in ("Z", "X"):
            continue
        server = proc.ppid == me and "forkserver" in proc.cmdline
        if marker in proc.cmdline or proc.comm.startswith("hostile-") or (pid in new and not server):
            found[pid] = f"{pid} ({proc.comm}) {proc.cmdline[:160]}"
    return found


def _leftovers(marker: str, earlier: set, wait_s: float = 3.0) -> List[str]:
    """Strays still alive after wait_s (a supervisor may sweep orphans a moment later); they are killed."""
    deadline = time.monotonic() + wait_s
    found = _strays(marker, earlier)
    while found and time.monotonic() < deadline:
        time.sleep(0.2)
        found = _strays(marker, earlier)
    for pid in found:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return sorted(found.values())


# -- files ----------------------------------------------------------------------------------------

def _git_changes() -> set:
    run = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    return {line[3:].strip().strip('"') for line in run.stdout.splitlines()}


def _marked(path: Path) -> bool:
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size > (1 << 22):
            return False
        return MARK in path.read_bytes()
    except OSError:
        return False


def _planted(before: set, folders: List[Path], since: float, own: set) -> List[Path]:
    """Files holding the plant mark: changed in the repository since `before`, or written since `since`
    directly in one of folders (or their grading/ and results/); the workers' own workdirs and the
    submission's own files (`own`) do not count."""
    found = [REPO / rel for rel in _git_changes() - before]
    for folder in folders:
        for sub in (folder, folder / "grading", folder / "results"):
            with contextlib.suppress(OSError):
                found += [p for p in sub.iterdir() if not p.name.startswith("autograder-work-")
                          and p.stat().st_mtime >= since - 1]
    return sorted({p for p in found if p not in own and _marked(p)})


def fill(source: str, port: int, unix_path: Path, secret_file: Path) -> str:
    """A hostile file's source with its placeholders filled: the port and unix socket it reaches for, and
    the secret file it tries to read."""
    return (source.replace("__HOSTILE_PORT__", str(port)).replace("__HOSTILE_UNIX__", str(unix_path))
            .replace("__HOSTILE_SECRET_FILE__", str(secret_file)))


# -- one grading per file -------------------------------------------------------------------------

@dataclass
class Graded:
    name: str
    folder: Path
    document: Optional[Dict[str, Any]] = None
    error: str = ""
    seconds: float = 0.0
    leftovers: List[str] = field(default_factory=list)
    planted: List[Path] = field(default_factory=list)
    folder_files: List[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return json.dumps(self.document)


class Arena:
    """The shared scene: listeners, secrets, the all-zeros baseline and the cache of gradings."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.out = root / "reports"
        self.out.mkdir()
        (self.out / "autograder.toml").write_text(CONFIG)
        self.env_secret = f"env-secret-{uuid.uuid4().hex}"
        self.file_secret = f"file-secret-{uuid.uuid4().hex}"
        self.secret_file = root / "secret.txt"
        self.secret_file.write_text(self.file_secret)
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.tcp.setblocking(False)
        self.port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))  # UDP and TCP ports are separate: the TCP port's number is free
        self.udp.setblocking(False)
        self.unix_path = root / "hostile.sock"
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.bind(str(self.unix_path))
        self.unix.listen()
        self.unix.setblocking(False)
        self.git_before = _git_changes()
        self.started = time.time()
        self.cache: Dict[str, Graded] = {}
        self.baseline = self.grade_source("baseline", ZEROS)

    def close(self) -> None:
        for sock in (self.tcp, self.udp, self.unix):
            sock.close()

    def fill(self, source: str) -> str:
        return fill(source, self.port, self.unix_path, self.secret_file)

    def grade_source(self, name: str, source: str, folder: Optional[Path] = None) -> Graded:
        """Grade `source` as `<folder>/<name>.py` (a fresh folder by default, next to a correct classmate.py)."""
        if folder is None:
            folder = self.root / f"hostile-{name}-{uuid.uuid4().hex[:8]}"
            folder.mkdir()
            shutil.copy(CORRECT, folder / "classmate.py")
        path = folder / f"{name}.py"
        path.write_text(self.fill(source))
        expected = set(os.listdir(folder))
        result = Graded(name, folder)
        earlier, wall = set(descendants(os.getpid())), time.time()
        start = time.monotonic()
        try:
            result.document = grade_quick(path, self.out)
        except Exception as exc:  # noqa: BLE001 - the assertions below say what went wrong
            result.error = f"{type(exc).__name__}: {exc}"
        result.seconds = time.monotonic() - start
        result.leftovers = _leftovers(folder.name, earlier)
        result.planted = _planted(self.git_before, [folder, Path("/tmp"), Path.home(), Path.cwd()], wall,
                                  {folder / f for f in expected})
        for planted in result.planted:  # put the shared tree back before anyone else trips over it
            planted.unlink()
        result.folder_files = sorted(set(os.listdir(folder)) - expected)
        return result

    def graded(self, name: str) -> Graded:
        if name not in self.cache:
            self.cache[name] = self.grade_source(name, (HOSTILE / f"{name}.py").read_text())
        return self.cache[name]


@pytest.fixture(scope="module")
def arena(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Arena]:
    saved_secret = os.environ.get("AUTOGRADER_HOSTILE_SECRET")
    scene = None
    try:
        scene = Arena(tmp_path_factory.mktemp("hx"))  # a short path: unix socket paths have 108 bytes
        os.environ["AUTOGRADER_HOSTILE_SECRET"] = scene.env_secret
        yield scene
    finally:
        if saved_secret is None:
            os.environ.pop("AUTOGRADER_HOSTILE_SECRET", None)
        else:
            os.environ["AUTOGRADER_HOSTILE_SECRET"] = saved_secret
        if scene is not None:
            scene.close()


def _params() -> List[Any]:
    return [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in NAMES]


# -- every file -----------------------------------------------------------------------------------

def test_baseline_is_a_graded_zero_attempt(arena: Arena) -> None:
    base = arena.baseline
    assert base.document is not None, base.error
    assert base.document["status"] == "graded"
    assert 0 < base.document["score"] < base.document["max_score"]
    assert not base.leftovers and not base.planted


def test_zeros_earn_the_shape_points_at_most(arena: Arena) -> None:
    """A function that ignores its inputs earns no contract, gradient or property points (values_first)."""
    document = arena.baseline.document
    assert document is not None, arena.baseline.error
    assert passed(document) == {c["id"] for c in document["checks"] if c["id"].endswith(".shapes")}


@pytest.mark.parametrize("name", _params())
def test_grading_finishes_with_every_check(arena: Arena, name: str) -> None:
    graded = arena.graded(name)
    assert graded.document is not None, f"grading {name} failed: {graded.error}"
    assert [c["id"] for c in graded.document["checks"]] == [c["id"] for c in arena.baseline.document["checks"]]
    assert graded.document["_exit"] == 1  # pytest: checks failed (never 0, never an internal error code)
    assert graded.seconds < TIME_LIMIT_S, f"grading {name} took {graded.seconds:.1f} s"


@pytest.mark.parametrize("name", _params())
def test_gains_nothing_over_zeros(arena: Arena, name: str) -> None:
    document = arena.graded(name).document
    assert document is not None
    gained = passed(document) - passed(arena.baseline.document)
    assert not gained, f"{name} passed checks that all-zeros fails: {sorted(gained)}"
    assert document["score"] <= arena.baseline.document["score"]
    assert document["max_score"] == arena.baseline.document["max_score"]


@pytest.mark.parametrize("name", _params())
def test_leaves_no_process(arena: Arena, name: str) -> None:
    assert arena.graded(name).leftovers == []


@pytest.mark.parametrize("name", _params())
def test_leaves_no_file(arena: Arena, name: str) -> None:
    graded = arena.graded(name)
    assert graded.planted == [], f"{name} planted {graded.planted}"
    assert graded.folder_files == [], f"{name} wrote into its own folder: {graded.folder_files}"


@pytest.mark.parametrize("name", _params())
def test_leaks_no_secret(arena: Arena, name: str) -> None:
    graded = arena.graded(name)
    assert graded.document is not None, graded.error
    text = graded.text
    assert arena.env_secret not in text and arena.file_secret not in text


def _internal(document: Dict[str, Any]) -> List[str]:
    return [c["id"] for c in document["checks"] if "internal grader error" in (c["message"] or "")]


@pytest.mark.parametrize("name", _params())
def test_no_internal_errors(arena: Arena, name: str) -> None:
    """A hostile file is the student's problem: no check reports a grader failure because of it."""
    document = arena.graded(name).document
    assert document is not None
    assert not _internal(document), f"{name} caused internal errors"


def test_state_between_calls_is_the_students_error(arena: Arena) -> None:
    """Answering the same input differently (hypothesis's Flaky) is a failed check that says so."""
    checks = arena.graded("flaky_state").document["checks"]
    assert any("differently on two calls" in c["message"] for c in checks)


# -- particular attacks ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["exit_at_import", "os_exit_at_import"])
def test_exit_at_import_is_not_gradable(arena: Arena, name: str) -> None:
    document = arena.graded(name).document
    assert document["status"] == "not_gradable" and document["score"] == 0
    assert all(c["status"] == "error" for c in document["checks"])


def test_exits_and_crashes_in_calls_are_graded_errors(arena: Arena) -> None:
    exits = by_id(arena.graded("exit_in_call").document)
    assert "SystemExit" in exits["scores.values"]["message"]
    assert "ended the Python process" in exits["softmax.values"]["message"]
    assert exits["projections.shapes"]["status"] == "passed"  # the rest is still graded
    crash = by_id(arena.graded("segfault").document)
    assert "ended the Python process" in crash["softmax.values"]["message"]
    assert crash["values.shapes"]["status"] == "passed"
    bases = by_id(arena.graded("base_exceptions").document)
    for check, kind in (("projections.values", "KeyboardInterrupt"), ("scores.values", "SystemExit"),
                        ("softmax.values", "Escape"), ("values.values", "Unprintable")):
        assert kind in bases[check]["message"], check


def test_memory_bomb_is_refused(arena: Arena) -> None:
    checks = by_id(arena.graded("memory_bomb").document)
    assert "memory" in checks["values.values"]["message"].lower()  # 8 GiB at once: over the address space limit
    assert checks["softmax.values"]["status"] == "error"  # page by page: refused, or stopped by the call timeout
    assert checks["projections.shapes"]["status"] == "passed"


@pytest.mark.slow
def test_infinite_loop_is_stopped(arena: Arena) -> None:
    loop = by_id(arena.graded("infinite_loop").document)
    assert "did not return within" in loop["projections.values"]["message"]
    assert loop["scores.shapes"]["status"] == "passed"


def test_no_process_can_be_started(arena: Arena) -> None:
    assert "forked at import: 0 children" in arena.graded("fork_spree").document["submission"]["output"]
    orphan = arena.graded("orphan_setsid").document["submission"]["output"]
    assert "orphan attempts:" in orphan and "orphaned" not in orphan and "spawned" not in orphan


def test_reading_answers_from_disk_fails(arena: Arena) -> None:
    output = arena.graded("read_reference").document["submission"]["output"]
    assert "read attempts:" in output
    assert "classmate:" in output and "'read'" not in output.split("read attempts:")[1].split("\n")[0]
    imports = arena.graded("import_reference").document["submission"]["output"]
    assert "import attempts:" in imports and "'ok'" not in imports


def test_mutated_inputs_only_cost_the_contract(arena: Arena) -> None:
    checks = by_id(arena.graded("mutate_inputs").document)
    assert checks["scores.contract"]["status"] == "failed"
    assert "modified its input" in checks["scores.contract"]["message"]


def test_planted_conftest_and_config_change_nothing(arena: Arena) -> None:
    """After the file-planting submission, an unrelated wrong file (in the same folder, and in a fresh
    one) grades exactly as before."""
    writer = arena.graded("write_files")
    assert "planted:" in writer.document["submission"]["output"]
    before = {c["id"]: c["status"] for c in arena.baseline.document["checks"]}
    for again in (arena.grade_source("zeros_after_plant", ZEROS, folder=writer.folder),
                  arena.grade_source("zeros_after_plant", ZEROS)):
        assert again.document is not None, again.error
        assert {c["id"]: c["status"] for c in again.document["checks"]} == before
        assert again.document["score"] == arena.baseline.document["score"]


def _speaks_to_ci(text: str) -> List[str]:
    """Lines GitHub's runner would execute (it trims leading whitespace, and finds '##[' anywhere), and
    terminal control characters."""
    bad = [line for line in text.split("\n") if line.lstrip().startswith("::") or "##[" in line]
    return bad + [repr(ch) for ch in ("\x1b", "\r", "\x07", "\u202e") if ch in text]


def test_terminal_rendering_speaks_no_workflow_commands(arena: Arena) -> None:
    document = arena.graded("fake_summary").document
    assert "::error::x" in document["submission"]["output"]  # the report keeps what was printed...
    rendered = terminal.render(document, Path("report.json"))
    assert "Your code printed" in rendered
    assert _speaks_to_ci(rendered) == []  # ...the terminal view cannot be read as commands


def test_check_messages_speak_no_workflow_commands(arena: Arena) -> None:
    """Student text in check messages (exceptions whose str() is workflow commands): neither the table nor
    pytest's failure sections (`pytest --submission` in CI) pass it on as commands."""
    document = arena.graded("base_exceptions").document
    assert any(_speaks_to_ci(c["message"]) for c in document["checks"])
    assert _speaks_to_ci(terminal.render(document, Path("report.json"))) == []
    assert [c["id"] for c in document["checks"] if _speaks_to_ci(plugin._teaching_repr(c))] == []


def test_fake_summary_cannot_change_exit_code_or_score(arena: Arena) -> None:
    """Through the real command line: the student's '29 passed' and '100 / 100' lines change nothing."""
    from autograder import cli

    folder = arena.graded("fake_summary").folder
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = cli.main(["grade", str(folder / "fake_summary.py"), "--json", str(arena.out / "cli.json"),
                         "--config", str(arena.out / "autograder.toml")])
    assert code == cli.EXIT_POINTS_LOST
    document = json.loads((arena.out / "cli.json").read_text())
    assert document["score"] == arena.graded("fake_summary").document["score"] <= arena.baseline.document["score"]
    assert _speaks_to_ci(stdout.getvalue()) == []


def test_output_flood_is_cut(arena: Arena) -> None:
    graded = arena.graded("output_flood")
    output = graded.document["submission"]["output"]
    assert len(output) < 4 * 64 * 1024  # output_kb per worker, plus the note on what was dropped
    assert "dropped" in output


def test_secrets_stay_out_of_reach(arena: Arena) -> None:
    graded = arena.graded("env_secrets")
    assert "HOSTILE-PLANT" in graded.document["submission"]["output"]  # the attack ran and printed its loot
    assert arena.env_secret not in graded.text and arena.file_secret not in graded.text


def test_network_is_unreachable(arena: Arena) -> None:
    graded = arena.graded("socket_connect")
    assert "network attempts:" in graded.document["submission"]["output"]
    with pytest.raises(BlockingIOError):
        arena.tcp.accept()
    with pytest.raises(BlockingIOError):
        arena.unix.accept()
    with pytest.raises(BlockingIOError):
        arena.udp.recv(100)


def test_the_grader_survives_kill_attempts(arena: Arena) -> None:
    output = arena.graded("kill_parent").document["submission"]["output"]
    assert "kill attempts:" in output and "'sent'" not in output


def test_banned_api_is_named_in_the_report(arena: Arena) -> None:
    document = arena.graded("banned_sdpa").document
    attention = [c for c in document["checks"] if c["section"] == "attention"]
    assert attention and all(c["status"] != "passed" for c in attention)
    for check in attention:
        assert "torch.nn.functional.scaled_dot_product_attention" in check["message"]
        assert "not allowed" in check["message"]
    assert any("torch.nn.functional.scaled_dot_product_attention" in line for line in document["feedback"])
    assert "torch.nn.functional.scaled_dot_product_attention" in terminal.render(document, Path("r.json"))


def test_banned_api_under_other_names_is_refused(arena: Arena) -> None:
    checks = by_id(arena.graded("banned_alias").document)
    for check in ("softmax.values", "values.values", "attention.values"):  # refusals swallowed: still refused
        assert checks[check]["status"] != "passed", check
        assert "not allowed in this assignment" in checks[check]["message"], check


def test_banned_api_is_refused_in_the_dispatcher(arena: Arena) -> None:
    """DisableTorchFunction, inference mode and decompose() around the aten kernels, refusals swallowed: each
    call that reached a banned operator fails, naming it."""
    checks = by_id(arena.graded("banned_dispatcher").document)
    for check in ("softmax.values", "values.values", "attention.values", "attention.any_shapes"):
        assert checks[check]["status"] != "passed", check
        assert "not allowed in this assignment" in checks[check]["message"], check
        assert "torch.ops.aten." in checks[check]["message"], check


def test_huge_replies_are_refused_unread(arena: Arena) -> None:
    """Every answer announces 16 MiB where a few KiB are expected: refused before the grader reads it."""
    checks = by_id(arena.graded("huge_replies").document)
    for check in ("projections.shapes", "scores.values", "softmax.contract", "attention.gradients"):
        assert "MiB of tensor data" in checks[check]["message"], (check, checks[check]["message"])


def test_forged_names_and_output_keep_the_report_small(arena: Arena) -> None:
    """A forged load header listing 700,000 names: the report keeps no more than the contract's names (here
    none: the forged frame breaks the stream, and the file is not gradable) and stays small."""
    graded = arena.graded("forge_functions")
    assert graded.document is not None, graded.error
    assert set(graded.document["submission"]["functions"]) <= {"linear_projections", "attention_scores",
                                                               "attention_weights", "aggregate_values",
                                                               "scaled_dot_product_attention"}
    assert len(graded.text) < 256 * 1024


def test_a_link_out_of_the_folder_is_refused_unread(tmp_path: Path) -> None:
    """A student's attention.py that is a symbolic link to a TA's file outside the folder (in the
    Classroom checkout, or in a batch folder): a graded 0 that says why; the TA's file is never imported,
    so none of its lines are quoted. A link to a file inside the folder is graded as that file."""
    course = tmp_path / "course"
    course.mkdir()
    (course / "solution.py").write_text((CORRECT.read_text()) + "\nraise RuntimeError('TA-ONLY LINE 42')\n")
    student = tmp_path / "student"
    student.mkdir()
    (student / "attention.py").symlink_to(course / "solution.py")
    document = grade_quick(student / "attention.py", tmp_path)
    assert document["score"] == 0 and document["status"] == "not_gradable"
    assert "symbolic link to a file outside" in document["submission"]["load_error"]
    assert "TA-ONLY" not in json.dumps(document) and document["submission"]["sha256"] is None
    assert document["submission"]["path"] == str(student / "attention.py")

    shutil.copy(CORRECT, student / "mine.py")
    (student / "also_mine.py").symlink_to("mine.py")
    inside = grade_quick(student / "also_mine.py", tmp_path)
    assert inside["score"] == inside["max_score"]
    assert inside["submission"]["sha256"] == grade_quick(student / "mine.py", tmp_path)["submission"]["sha256"]


GENEROUS = '''hidden = []
[points]
"projections.shapes" = 1000
[tolerance.float64]
rtol = 1e9
atol = 1e9
[tolerance.float32]
rtol = 1e9
atol = 1e9
[sandbox]
enabled = false
'''


@pytest.mark.parametrize("course_config", [False, True])
def test_config_in_the_students_folder_changes_nothing(tmp_path: Path, course_config: bool) -> None:
    """The Classroom workflow grades in the student's checkout: an autograder.toml and a pyproject.toml
    [tool.autograder] committed next to attention.py (huge points and tolerances, no sandbox) are never
    read, through the real command, with the packaged defaults or with the course's --config."""
    import sys

    student = tmp_path / "student"
    student.mkdir()
    (student / "attention.py").write_text(ZEROS)
    (student / "autograder.toml").write_text(GENEROUS)
    (student / "pyproject.toml").write_text("[tool.autograder]\n" + GENEROUS.replace("\n[", "\n[tool.autograder."))
    args = [sys.executable, "-m", "autograder", "grade", "attention.py", "--json", str(tmp_path / "report.json")]
    if course_config:
        (tmp_path / "course.toml").write_text(CONFIG)
        args += ["--config", str(tmp_path / "course.toml")]
    run = subprocess.run(args, cwd=student, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"})
    assert run.returncode == 1, run.stderr[-2000:]
    document = json.loads((tmp_path / "report.json").read_text())
    sources = document["environment"]["config_sources"]
    assert not [s for s in sources if str(student) in s]  # the packaged defaults, and the course's file only
    assert [Path(s).name for s in sources if Path(s).name != "defaults.toml"] == (["course.toml"] if course_config else [])
    assert document["environment"]["sandbox"]["enabled"]
    assert by_id(document)["projections.shapes"]["max_score"] == 2
    assert document["max_score"] == (80 if course_config else 100)
    assert not {"projections.values", "scores.values", "softmax.values"} & passed(document)
