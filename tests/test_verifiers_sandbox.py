"""The sandbox: limits, isolation layers, the guard, and clean-up. Each run takes ~50 ms."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from synthloop.errors import VerifierError
from synthloop.verifiers.sandbox import SandboxLimits, isolation_layers, run_sandboxed

FAST = SandboxLimits(timeout_s=1.5, memory_mb=256)


def run(code: str, limits: SandboxLimits = FAST) -> tuple[str, list[str], str]:
    result = run_sandboxed(textwrap.dedent(code), limits=limits)
    return result.stdout, result.violations, result.stderr


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A server in the test process that the sandboxed code must never reach."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


def assert_no_connection(server: socket.socket) -> None:
    with pytest.raises(BlockingIOError):
        server.accept()


def test_runs_code_and_captures_output() -> None:
    result = run_sandboxed("import sys\nprint('hello')\nprint('oops', file=sys.stderr)\nsys.exit(3)", limits=FAST)
    assert (result.returncode, result.timed_out, result.killed_by) == (3, False, None)
    assert result.stdout == "hello\n"
    assert "oops" in result.stderr
    assert result.duration > 0


def test_files_and_args_are_available() -> None:
    code = "import sys, helper\nprint(helper.VALUE, sys.argv[1:])"
    result = run_sandboxed(code, files={"helper.py": "VALUE = 42", "data/x.txt": "x"}, args=["a", "b"], limits=FAST)
    assert result.stdout.strip() == "42 ['a', 'b']"


def test_file_names_must_stay_inside_the_work_dir() -> None:
    with pytest.raises(VerifierError, match="relative path"):
        run_sandboxed("pass", files={"../escape.py": ""})
    with pytest.raises(VerifierError, match="relative path"):
        run_sandboxed("pass", files={"/etc/escape.py": ""})


def test_environment_is_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_API_KEY", "sk-do-not-leak-123")
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    out, _, _ = run("""
        import os, sys
        print(sorted(os.environ))
        print(open('/proc/self/environ', 'rb').read())
        print(sys.flags.isolated, sys.flags.dont_write_bytecode, sys.stdin.read() == '')
    """)
    assert "sk-do-not-leak-123" not in out and "FAKE_API_KEY" not in out
    assert "/somewhere/else" not in out
    assert out.splitlines()[-1] == "1 1 True"


def test_wall_clock_timeout_kills_the_process() -> None:
    result = run_sandboxed("import time\nwhile True:\n    time.sleep(0.01)", limits=SandboxLimits(timeout_s=0.5))
    assert result.timed_out and result.killed_by == "time"
    assert result.returncode == -signal.SIGKILL
    assert result.duration < 3


def test_time_spent_waiting_for_a_cpu_does_not_count_against_the_wall_clock() -> None:
    """Half a second of CPU work under a 1 s limit, on one CPU shared with three busy loops (about
    2 s of wall clock): the time other load held the CPU is granted back, so the verdict is the
    one a quiet machine gives."""
    if not hasattr(os, "sched_setaffinity") or not os.path.exists("/proc/self/schedstat"):
        pytest.skip("needs Linux schedstats and CPU affinity")
    cpu = {min(os.sched_getaffinity(0))}
    before = os.sched_getaffinity(0)
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True) for _ in range(3)]
    try:
        for hog in hogs:
            os.sched_setaffinity(hog.pid, cpu)
        os.sched_setaffinity(0, cpu)  # the sandbox's processes inherit it
        code = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5:\n    pass\nprint('done')"
        result = run_sandboxed(code, limits=SandboxLimits(timeout_s=1.0))
    finally:
        os.sched_setaffinity(0, before)
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert result.duration > 1.0  # it did wait for the CPU
    assert (result.timed_out, result.returncode, result.stdout.strip()) == (False, 0, "done")


def test_cpu_limit_stops_a_busy_loop_before_the_wall_clock() -> None:
    result = run_sandboxed("while True:\n    pass", limits=SandboxLimits(timeout_s=20, cpu_s=1))
    assert result.killed_by == "time" and not result.timed_out
    assert result.returncode in (-signal.SIGXCPU, -signal.SIGKILL)
    assert result.duration < 10


def test_memory_limit() -> None:
    result = run_sandboxed("x = bytearray(2 * 1024**3)", limits=SandboxLimits(memory_mb=128))
    assert result.killed_by == "memory"
    assert result.returncode != 0


def test_output_is_truncated_keeping_head_and_tail() -> None:
    result = run_sandboxed("print('x' * 1_000_000)\nprint('THE END')", limits=SandboxLimits(max_output_bytes=2000))
    assert result.truncated
    assert len(result.stdout) < 2200
    assert result.stdout.startswith("xxx") and result.stdout.rstrip().endswith("THE END")


def test_work_dir_is_fresh_and_removed() -> None:
    result = run_sandboxed("import os\nopen('scratch.txt', 'w').write('ok')\nprint(os.getcwd())\nprint(sorted(os.listdir()))", limits=FAST)
    workdir, listing = result.stdout.splitlines()
    assert listing == "['_sandbox_main.py', 'scratch.txt']"
    assert not Path(workdir).exists()


def test_network_is_blocked(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    out, violations, _ = run(f"""
        import socket
        for attempt in (lambda: socket.create_connection(('127.0.0.1', {port}), timeout=1),
                        lambda: socket.getaddrinfo('localhost', {port}),
                        lambda: socket.socket().bind(('127.0.0.1', 0))):
            try:
                attempt()
                print('CONNECTED')
            except OSError as e:
                print('blocked', type(e).__name__)
    """)
    assert "CONNECTED" not in out
    assert out.count("blocked PermissionError") == 3
    assert [v.split(":")[0] for v in violations] == ["network_blocked"] * 3
    assert_no_connection(listener)


@pytest.mark.skipif("netns" not in isolation_layers(), reason="needs a network namespace (root)")
def test_network_namespace_has_only_loopback() -> None:
    """Kernel layer, independent of the guard: the child's namespace has no route anywhere."""
    out, _, _ = run("print([line.split(':')[0].strip() for line in open('/proc/self/net/dev').readlines()[2:]])")
    assert out.strip() == "['lo']"


def test_writing_outside_the_work_dir_is_blocked(tmp_path: Path) -> None:
    target = tmp_path / "owned-by-the-test.txt"
    out, violations, _ = run(f"""
        import os
        for attempt in (lambda: open({str(target)!r}, 'w').write('pwned'),
                        lambda: os.rename('nothing', {str(target)!r}),
                        lambda: os.remove({str(tmp_path)!r})):
            try:
                attempt()
                print('WROTE')
            except OSError as e:
                print('blocked', type(e).__name__)
    """)
    assert "WROTE" not in out
    assert [v.split(":")[0] for v in violations] == ["fs_blocked"] * 3
    assert not target.exists() and tmp_path.exists()


@pytest.mark.skipif("readonly_fs" not in isolation_layers(), reason="needs a mount namespace (root)")
def test_read_only_mounts_stop_what_the_guard_misses(tmp_path: Path) -> None:
    """A dir_fd-relative open slips past the guard's path check; the read-only mount still holds."""
    target = tmp_path / "via-dir-fd.txt"
    out, violations, _ = run(f"""
        import os
        fd = os.open({str(tmp_path)!r}, os.O_RDONLY)
        try:
            os.close(os.open('via-dir-fd.txt', os.O_WRONLY | os.O_CREAT, dir_fd=fd))
            print('WROTE')
        except OSError as e:
            print('kernel said', e.strerror)
    """)
    assert violations == []  # the guard did not see it ...
    assert "kernel said Read-only file system" in out  # ... the mount namespace did
    assert not target.exists()


def test_spawning_processes_is_blocked() -> None:
    out, violations, _ = run("""
        import os, subprocess
        for attempt in (os.fork, lambda: os.system('true'), lambda: subprocess.run(['true']),
                        lambda: os.execv('/bin/true', ['true'])):
            try:
                attempt()
                print('SPAWNED')
            except OSError as e:
                print('blocked', type(e).__name__)
    """)
    assert "SPAWNED" not in out
    assert [v.split(":")[0] for v in violations] == ["spawn_blocked"] * 4


def test_guard_refuses_raising_limits_ctypes_and_signals() -> None:
    out, violations, _ = run("""
        import os, resource
        for attempt in (lambda: resource.setrlimit(resource.RLIMIT_AS, (-1, -1)),
                        lambda: __import__('ctypes'),
                        lambda: os.kill(1, 0)):
            try:
                attempt()
                print('ALLOWED')
            except OSError as e:
                print('blocked')
    """)
    assert "ALLOWED" not in out
    assert [v.split(":")[0] for v in violations] == ["limits_blocked", "ctypes_blocked", "signal_blocked"]


@pytest.mark.skipif("drop_caps" not in isolation_layers(), reason="needs root to drop capabilities")
def test_child_has_no_capabilities() -> None:
    out, _, _ = run("print(open('/proc/self/status').read().split('CapEff:')[1].split()[0])")
    assert int(out, 16) == 0


def test_isolation_probe_is_cached() -> None:
    assert isolation_layers() is isolation_layers()
    if os.geteuid() != 0:
        assert isolation_layers() == ()


# -- the kernel bounds every route to a new process (never an unbounded fork bomb here) -----------
KERNEL_PIDS = pytest.mark.skipif(
    not {"pids_cgroup", "pidns"} <= set(isolation_layers()), reason="needs a pids cgroup and a PID namespace (root)"
)
BOUNDED = SandboxLimits(timeout_s=10, memory_mb=256, processes=8)
NO_GUARD = SandboxLimits(timeout_s=10, memory_mb=256, processes=8, audit_guard=False)
SPAWN_50 = """
import os, sys, time
started, refused = 0, ""
for _ in range(50):
    try:
        {spawn}
        started += 1
    except OSError as e:
        refused = type(e).__name__
        break
print(started, refused)
"""
ROUTES = {
    "os.fork": "pid = os.fork()\n        if pid == 0:\n            time.sleep(3); os._exit(0)",
    "os.posix_spawn": "os.posix_spawn('/bin/sleep', ['sleep', '3'], {})",
    "ctypes libc fork": (
        "import ctypes; libc = ctypes.CDLL(None, use_errno=True); pid = libc.fork()\n"
        "        if pid == 0:\n            libc.sleep(3); libc._exit(0)\n"
        "        if pid < 0:\n            raise OSError(ctypes.get_errno(), 'fork')"
    ),
}


def spawn_counts(spawn: str, limits: SandboxLimits) -> tuple[int, str]:
    out = run_sandboxed(SPAWN_50.replace("{spawn}", spawn), limits=limits).stdout.split()
    return int(out[0]), out[1] if len(out) > 1 else ""


@KERNEL_PIDS
@pytest.mark.parametrize("route", sorted(ROUTES))
def test_kernel_bounds_processes_by_every_route_without_the_guard(route: str) -> None:
    """The guard off, so only the kernel stands in the way: 50 attempts, a limit of 8."""
    started, refused = spawn_counts(ROUTES[route], NO_GUARD)
    assert started < 8
    assert refused == "BlockingIOError"  # EAGAIN from the pids cgroup


@KERNEL_PIDS
def test_a_spawn_that_bypasses_the_guard_is_still_bounded() -> None:
    """`_posixsubprocess.fork_exec` raises no audit event: the guard never sees it; the kernel does."""
    spawn = ("import _posixsubprocess; _posixsubprocess.fork_exec([b'/bin/sleep', b'3'], [b'/bin/sleep'], True, (), "
             "None, None, -1, -1, -1, -1, -1, -1, *os.pipe(), False, False, -1, None, None, None, -1, None, False)")
    result = run_sandboxed(SPAWN_50.replace("{spawn}", spawn), limits=BOUNDED)
    started, refused = result.stdout.split()
    assert result.violations == []  # the guard saw nothing ...
    assert int(started) < 8 and refused == "BlockingIOError"  # ... the pids cgroup stopped it


@KERNEL_PIDS
def test_processes_left_behind_die_with_the_run() -> None:
    """A bypassing child that would sleep 30 s (holding the output pipe) ends when the code does."""
    code = ("import _posixsubprocess, os\n_posixsubprocess.fork_exec([b'/bin/sleep', b'30'], [b'/bin/sleep'], False, (), "
            "None, None, -1, -1, -1, -1, -1, -1, *os.pipe(), False, False, -1, None, None, None, -1, None, False)\nprint('left')")
    result = run_sandboxed(code, limits=SandboxLimits(timeout_s=20))
    assert result.stdout.strip() == "left" and not result.timed_out
    assert result.duration < 10


@pytest.mark.skipif("pidns" not in isolation_layers(), reason="needs a PID namespace (root)")
def test_proc_shows_only_the_sandboxs_processes() -> None:
    out, _, _ = run("""
        import os
        print(os.getpid(), sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))
        print(open('/proc/1/cmdline', 'rb').read().split(b'\\0')[0].endswith(b'python3.11') or 'python' in open('/proc/1/comm').read())
    """)
    pid_line, init_line = out.splitlines()
    assert pid_line == "2 [1, 2]"  # pid 1 is the sandbox's own reaper; nothing from the host
    assert init_line == "True"


@pytest.mark.skipif("pidns" not in isolation_layers(), reason="needs a PID namespace (root)")
def test_exit_codes_and_signals_pass_through_the_namespace() -> None:
    assert run_sandboxed("import sys; sys.exit(7)", limits=FAST).returncode == 7
    killed = run_sandboxed("import os, signal; os.kill(os.getpid(), signal.SIGTERM)", limits=FAST)
    assert killed.returncode == -signal.SIGTERM and killed.killed_by == "signal"
