"""Run untrusted Python (teacher-written solutions and tests) in a separate, limited process.

What it protects against (kernel-enforced when marked *, in-process otherwise):

- running forever: a wall-clock limit kills the whole process group*, RLIMIT_CPU caps CPU time*;
  time the code spent waiting for a CPU that other load held does not count against the wall
  clock (up to `LOAD_GRACE` x the limit), so a verdict does not change with the machine's load;
- eating memory or disk: RLIMIT_AS*, RLIMIT_FSIZE*, RLIMIT_NOFILE*, no core files*;
- the network: a fresh network namespace* (only loopback, and it is down) when the machine allows it
  (root or an equivalent capability; probed once per process), plus the guard;
- writing outside its work directory: a private mount namespace where every mount is read-only
  except the fresh work directory*, when the machine allows it, plus the guard;
- starting processes by any route (fork, spawn, ctypes, `_posixsubprocess`): a pids cgroup per run*
  bounds them (threads included), and a PID namespace* with a fresh read-only /proc hides every
  other process on the machine and kills whatever the code left behind when it ends;
- undoing the above: all capabilities are dropped and `no_new_privs` is set* before the code runs;
- secrets: the environment is rebuilt from scratch (no `*_API_KEY` or anything else inherited),
  `python -I -B` ignores `PYTHON*` variables and the user site, stdin is /dev/null;
- spawning processes, signalling other processes, raising limits, ctypes: refused by the guard.

The guard is a `sys.addaudithook` hook installed just before the code runs. It turns attempts into
clear reasons (`network_blocked: ...`, `fs_blocked: ...`, `spawn_blocked: ...`) but it is *not* a
security boundary: audit hooks can be bypassed (ctypes tricks, `_posixsubprocess`, C extensions).
The kernel layers are the boundaries.

What it does NOT protect against: reading world-readable (or, since the child runs as root here,
root-readable) files; filesystem unix sockets (not namespaced); CPU side channels; kernel
exploits. A spawn that bypasses the guard is bounded and contained, but not reported. Without the
kernel layers (not root) only the rlimits (RLIMIT_NPROC included), the clean environment and the
guard remain. For hostile code at scale, run the whole verifier inside a container with gVisor or
a microVM.
"""

from __future__ import annotations

import functools
import json
import math
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Literal

from synthloop.errors import VerifierError

KilledBy = Literal["time", "memory", "signal"]
_BOOTSTRAP = (Path(__file__).with_name("_bootstrap.py")).read_text(encoding="utf-8")
_MAIN = "_sandbox_main.py"
#: The wall-clock limit is extended by the time the code waited for a CPU, up to this many times
#: the limit (so a starved machine still ends every run).
LOAD_GRACE = 10.0
_SETUP_FAILED_EXIT = 70


@dataclass(frozen=True)
class SandboxLimits:
    """Per-run limits. `cpu_s=None` means the wall-clock timeout (rounded up)."""

    timeout_s: float = 5.0
    memory_mb: int = 512
    cpu_s: int | None = None
    file_size_mb: int = 16
    open_files: int = 256
    processes: int = 64  # the pids cgroup's limit (root), else RLIMIT_NPROC (not root)
    max_output_bytes: int = 64_000
    #: Off only to test the kernel layers on their own; never for untrusted code.
    audit_guard: bool = True

    def for_child(self) -> dict[str, int]:
        return {
            "memory_bytes": self.memory_mb * 2**20,
            "cpu_s": self.cpu_s if self.cpu_s is not None else max(1, math.ceil(self.timeout_s)),
            "file_size_bytes": self.file_size_mb * 2**20,
            "open_files": self.open_files,
            "processes": self.processes,
        }


@dataclass
class SandboxResult:
    """What happened. `duration` is wall-clock seconds; output is decoded and possibly truncated
    (head and tail kept, so the last lines a harness prints survive)."""

    returncode: int | None
    timed_out: bool
    stdout: str
    stderr: str
    duration: float
    killed_by: KilledBy | None
    violations: list[str] = field(default_factory=list)
    layers: tuple[str, ...] = ()
    truncated: bool = False


@functools.cache
def isolation_layers() -> tuple[str, ...]:
    """Which kernel layers this machine allows (`pids_cgroup`, `netns`, `readonly_fs`, `pidns`,
    `drop_caps`); probed once by starting a child that tries them all. Empty when not root."""
    if os.geteuid() != 0 or not sys.platform.startswith("linux"):
        return ()
    wanted = [name for name in _ALL_LAYERS if name != "pids_cgroup" or _pids_cgroup_base()]
    with tempfile.TemporaryDirectory(prefix="synthloop-probe-") as tmp, _PidsCgroup.maybe("pids_cgroup" in wanted, 8) as cg:
        cfg = _child_config(os.path.realpath(tmp), "probe", wanted, SandboxLimits(), probe=True, cgroup=cg.path)
        try:
            out = subprocess.run(_command(cfg), env=_clean_env(tmp), cwd=tmp, capture_output=True, timeout=30, check=False)
            return tuple(json.loads(out.stdout)["layers"])
        except (subprocess.SubprocessError, ValueError, KeyError):
            return ()


_ALL_LAYERS = ("pids_cgroup", "netns", "readonly_fs", "pidns", "drop_caps")
#: pids controller mount points: cgroup v1, then the v2 unified hierarchy.
_PIDS_ROOTS = ("/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup")
#: the sandbox's own two processes (the outer bootstrap and pid 1) count against the cgroup too
_OWN_PROCESSES = 2


@functools.cache
def _pids_cgroup_base() -> str:
    """A cgroup directory where a child group gets a `pids.max` (so the pids controller applies),
    or "" when the machine offers none we may write."""
    for root in _PIDS_ROOTS:
        trial = os.path.join(root, f"synthloop-probe-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            os.mkdir(trial)
        except OSError:
            continue
        usable = os.path.exists(os.path.join(trial, "pids.max"))
        _rmdir_quietly(trial)
        if usable:
            return root
    return ""


def _rmdir_quietly(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass


class _PidsCgroup:
    """One run's pids cgroup: made before the child starts, emptied and removed after. The child
    joins it itself (first thing, while it still may), so everything it starts is counted."""

    def __init__(self, path: str) -> None:
        self.path = path

    @classmethod
    def maybe(cls, wanted: bool, processes: int) -> "_PidsCgroup":
        if not wanted:
            return cls("")
        path = os.path.join(_pids_cgroup_base(), f"synthloop-{os.getpid()}-{secrets.token_hex(6)}")
        try:
            os.mkdir(path)
            Path(path, "pids.max").write_text(str(processes + _OWN_PROCESSES))
        except OSError as e:
            _rmdir_quietly(path)
            raise VerifierError(
                f"the sandbox could not make its pids cgroup ({e}); the layer probed at start stopped "
                "working: check that /sys/fs/cgroup is writable, or run verification inside a container"
            ) from e
        return cls(path)

    def __enter__(self) -> "_PidsCgroup":
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.path:
            return
        for _ in range(50):
            try:
                pids = Path(self.path, "cgroup.procs").read_text().split()
            except OSError:
                return
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            try:
                os.rmdir(self.path)
                return
            except OSError:
                time.sleep(0.01)  # zombies still leaving


def run_sandboxed(
    code: str,
    *,
    files: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    limits: SandboxLimits = SandboxLimits(),
) -> SandboxResult:
    """Run `code` as `__main__` in a fresh temporary work directory (deleted afterwards), next to
    `files` (relative name -> text), with `sys.argv[1:] = args`."""
    workdir = os.path.realpath(tempfile.mkdtemp(prefix="synthloop-sbx-"))
    try:
        _write_files(Path(workdir), {**(files or {}), _MAIN: code})
        return _run(workdir, list(args), limits)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _write_files(workdir: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        rel = PurePosixPath(name)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise VerifierError(f"sandbox file name {name!r} must be a relative path inside the work directory")
        path = workdir.joinpath(*rel.parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _run(workdir: str, args: list[str], limits: SandboxLimits) -> SandboxResult:
    layers = isolation_layers()
    with _PidsCgroup.maybe("pids_cgroup" in layers, limits.processes) as cgroup:
        return _run_in(workdir, args, limits, layers, cgroup.path)


def _run_in(workdir: str, args: list[str], limits: SandboxLimits, layers: tuple[str, ...], cgroup: str) -> SandboxResult:
    nonce = secrets.token_hex(8)
    cfg = _child_config(workdir, nonce, list(layers), limits, probe=False, main=_MAIN, args=args, cgroup=cgroup)
    start = time.monotonic()
    proc = subprocess.Popen(
        _command(cfg), cwd=workdir, env=_clean_env(workdir), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, close_fds=True,
    )
    out, err = _Capped(limits.max_output_bytes), _Capped(limits.max_output_bytes)
    sinks = {proc.stdout: out, proc.stderr: err}
    deadline, granted, waits = start + limits.timeout_s, 0.0, _CpuWaits(proc.pid)
    while not (done := _pump(proc, sinks, deadline)):  # type: ignore[arg-type]
        # Time the code spent runnable but waiting for a CPU was taken by other load, not by the
        # code: it extends the deadline (up to LOAD_GRACE x the limit), so a verdict does not
        # depend on how busy the machine is. A program that sleeps or spins past its limit on a
        # quiet machine is cut at the limit, as before.
        extra = min(waits.since_last(), LOAD_GRACE * limits.timeout_s - granted)
        if extra < 0.01:
            break
        deadline, granted = deadline + extra, granted + extra
    timed_out = not done
    if timed_out:
        _kill_group(proc)
        _pump(proc, sinks, time.monotonic() + 2.0)  # type: ignore[arg-type]
    returncode = proc.wait()
    # Ended by itself as the limit passed (our SIGKILL found it already exiting): not a timeout.
    timed_out = timed_out and returncode == -signal.SIGKILL
    for stream in (proc.stdout, proc.stderr):
        if stream is not None and not stream.closed:
            stream.close()  # only if a pipe never reached EOF after the kill
    stderr = err.text()
    _raise_on_setup_failure(returncode, stderr, nonce)
    return SandboxResult(
        returncode=returncode,
        timed_out=timed_out,
        stdout=out.text(),
        stderr=stderr,
        duration=time.monotonic() - start,
        killed_by=_killed_by(timed_out, returncode, stderr, nonce),
        violations=_markers(stderr, nonce, "violation "),
        layers=layers,
        truncated=out.truncated or err.truncated,
    )


def _child_config(workdir: str, nonce: str, layers: list[str], limits: SandboxLimits, *, probe: bool,
                  main: str = "", args: Sequence[str] = (), cgroup: str = "") -> dict[str, object]:
    return {"workdir": workdir, "nonce": nonce, "layers": layers, "limits": limits.for_child(),
            "probe": probe, "main": main, "args": list(args), "cgroup": cgroup, "guard": limits.audit_guard}


def _command(cfg: Mapping[str, object]) -> list[str]:
    """`-I`: isolated (no PYTHON* variables, no user site, no script dir on sys.path); `-B`: no .pyc."""
    return [sys.executable, "-I", "-B", "-c", _BOOTSTRAP, json.dumps(cfg)]


def _clean_env(workdir: str) -> dict[str, str]:
    """Built from nothing: inherited variables (API keys, tokens, proxies) never reach the child."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONIOENCODING": "utf-8",
        "PYTHONHASHSEED": "0",
    }


class _Capped:
    """Keeps the first and last `limit // 2` bytes of a stream; drops (but drains) the middle."""

    def __init__(self, limit: int) -> None:
        self.half = max(1, limit // 2)
        self.head = bytearray()
        self.tail = bytearray()
        self.truncated = False

    def add(self, chunk: bytes) -> None:
        room = self.half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > self.half:
                self.truncated = True
                del self.tail[: len(self.tail) - self.half]

    def text(self) -> str:
        joiner = b"\n...[output truncated]...\n" if self.truncated else b""
        return (bytes(self.head) + joiner + bytes(self.tail)).decode("utf-8", "replace")


def _pump(proc: subprocess.Popen[bytes], sinks: Mapping[IO[bytes], _Capped], deadline: float) -> bool:
    """Read both pipes until EOF and the process exits; False if the deadline came first."""
    with selectors.DefaultSelector() as sel:
        for stream in sinks:
            if not stream.closed:
                sel.register(stream, selectors.EVENT_READ)
        while sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            for key, _ in sel.select(remaining):
                chunk = os.read(key.fd, 65536)
                if chunk:
                    sinks[key.fileobj].add(chunk)  # type: ignore[index]
                else:
                    sel.unregister(key.fileobj)
                    key.fileobj.close()  # type: ignore[union-attr]
    try:
        proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        return True
    except subprocess.TimeoutExpired:
        return False


class _CpuWaits:
    """How long a session's threads (the child leads its own session, and what it starts stays in
    it), and the thread watching them, waited for a CPU while runnable:
    `/proc/<pid>/task/<tid>/schedstat`'s second field (ns)."""

    def __init__(self, session: int) -> None:
        self.session = session
        self.watcher = f"/proc/{os.getpid()}/task/{threading.get_native_id()}/schedstat"
        self.seen: dict[str, int] = {}
        self._delay(self.watcher)  # the watcher's waits count from now

    def since_last(self) -> float:
        """Seconds the most delayed live thread waited since the previous call (since it started,
        for a thread of the session not seen before); 0.0 where the kernel keeps no schedstats."""
        worst = self._delay(self.watcher)
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit() or _session_of(entry.name) != self.session:
                continue
            try:
                tasks = os.listdir(f"/proc/{entry.name}/task")
            except OSError:
                continue  # it ended meanwhile
            for tid in tasks:
                worst = max(worst, self._delay(f"/proc/{entry.name}/task/{tid}/schedstat"))
        return worst / 1e9

    def _delay(self, path: str) -> int:
        """ns this thread waited since the last look (0 if it is gone)."""
        try:
            with open(path, "rb") as fh:
                delay = int(fh.read().split()[1])
        except (OSError, IndexError, ValueError):
            return 0
        new, self.seen[path] = delay - self.seen.get(path, 0), delay
        return new


def _session_of(pid: str) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()  # the name may hold spaces and parentheses
    return int(fields[3]) if len(fields) > 3 else None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """The child leads its own session, so its process group holds everything it started."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _markers(stderr: str, nonce: str, kind: str) -> list[str]:
    prefix = f"{nonce} {kind}"
    return [line[len(prefix):].strip() for line in stderr.splitlines() if line.startswith(prefix)]


def _killed_by(timed_out: bool, returncode: int, stderr: str, nonce: str) -> KilledBy | None:
    if timed_out or returncode == -signal.SIGXCPU:
        return "time"
    if _markers(stderr, nonce, "memory") or (returncode != 0 and "MemoryError" in stderr[-2000:]):
        return "memory"
    if returncode < 0:
        return "signal"
    return None


def _raise_on_setup_failure(returncode: int, stderr: str, nonce: str) -> None:
    failed = _markers(stderr, nonce, "setup_failed")
    if returncode == _SETUP_FAILED_EXIT and failed:
        raise VerifierError(
            f"the sandbox could not isolate the child ({failed[0]}); the layers probed at start "
            f"({', '.join(isolation_layers()) or 'none'}) stopped working: check the machine's "
            "namespace/capability settings, or run verification inside a container"
        )


__all__ = ["KilledBy", "SandboxLimits", "SandboxResult", "isolation_layers", "run_sandboxed"]
