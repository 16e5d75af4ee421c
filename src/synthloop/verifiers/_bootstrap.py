"""Runs first inside every sandboxed child (`python -I -B -c <this file's text> <config json>`).

Stdlib only: the child must not depend on synthloop being importable. The order is what makes it
work: joining the pids cgroup, namespaces and mounts need root, so they come first (the cgroup
before the mounts turn read-only); then `unshare(CLONE_NEWPID)` and a fork: the first child is
pid 1 of a new PID namespace, mounts a fresh /proc (so the code sees only its own processes),
drops its capabilities and forks the process that runs the code (pid 2), then reaps and reports
pid 2's wait status through a pipe. The outer process relays that status as its own, so the parent
sees the code's exit code or signal. When pid 1 exits the kernel kills everything left in the
namespace. In pid 2: the resource limits, every capability dropped (so the code cannot remount,
raise a hard limit, leave the cgroup or the namespaces), and the audit-hook guard last, just
before the untrusted code runs.

Markers for the parent go to stderr as lines starting with the run's nonce:
`<nonce> violation <category>: <detail>`, `<nonce> memory`, `<nonce> setup_failed <detail>`.
"""

import json
import os
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
CLONE_NEWPID = 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND = 32, 1024, 2048, 4096
MS_REC, MS_PRIVATE, MS_RELATIME = 16384, 1 << 18, 1 << 21
MOUNT_FLAGS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC, "noatime": MS_NOATIME,
               "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME}
PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_SET_PDEATHSIG, PR_SET_DUMPABLE = 38, 24, 1, 4
CAP_VERSION_3 = 0x20080522


def _marker(nonce, text):
    os.write(2, ("\n%s %s\n" % (nonce, text)).encode("utf-8", "replace"))


# -- kernel layers (need root; done through libc because Python 3.11 has no os.unshare) ------------
def _libc():
    import ctypes

    return ctypes, ctypes.CDLL(None, use_errno=True)


def _call(ctypes, rc, what):
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, "%s: %s" % (what, os.strerror(err)))


def _join_pids_cgroup(ctypes, libc, workdir, cgroup):
    """Move this process (and so everything it starts) into the pids cgroup the parent made for
    this run: the kernel refuses any fork or thread past its `pids.max`, whatever the route."""
    if not cgroup:
        raise OSError(22, "pids_cgroup: the parent made no cgroup for this run")
    with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
        f.write("0")


def _new_netns(ctypes, libc, workdir, cgroup):
    """A fresh network namespace: only a loopback interface, and it is down."""
    _call(ctypes, libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")


def _readonly_fs(ctypes, libc, workdir, cgroup):
    """A private mount namespace where every mount is read-only except the work directory."""
    _call(ctypes, libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _call(ctypes, libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    wd = workdir.encode()
    _call(ctypes, libc.mount(wd, wd, None, MS_BIND, None), "bind the work dir")
    with open("/proc/self/mountinfo", "rb") as f:
        lines = f.read().decode("utf-8", "replace").splitlines()
    for line in lines:
        fields = line.split()
        point = fields[4].encode().decode("unicode_escape")  # mountinfo escapes spaces as \040
        if point == workdir:
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for opt in fields[5].split(","):
            flags |= MOUNT_FLAGS.get(opt, 0)
        rc = libc.mount(None, point.encode(), None, flags, None)
        if rc != 0 and os.path.exists(point):
            _call(ctypes, rc, "remount %s read-only" % point)


def _drop_caps(ctypes, libc, workdir, cgroup=""):
    """No capabilities, now or after an exec: the code cannot undo the layers above."""
    _call(ctypes, libc.prctl(PR_SET_NO_NEW_PRIVS, ctypes.c_ulong(1), ctypes.c_ulong(0), ctypes.c_ulong(0),
                             ctypes.c_ulong(0)), "PR_SET_NO_NEW_PRIVS")
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(cap), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)):
            break  # EINVAL: past the last capability this kernel knows
    header = (ctypes.c_uint32 * 2)(CAP_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    _call(ctypes, libc.capset(header, data), "capset")


def _new_pidns(ctypes, libc, workdir, cgroup):
    """Only marks the namespace: the next fork (in `main`) creates its pid 1."""
    _call(ctypes, libc.unshare(CLONE_NEWPID), "unshare(CLONE_NEWPID)")


def mount_fresh_proc(ctypes, libc):
    """In the new PID namespace: a read-only /proc that lists only this namespace's processes."""
    flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
    _call(ctypes, libc.mount(b"proc", b"/proc", b"proc", flags, None), "mount a fresh /proc")


LAYERS = {"pids_cgroup": _join_pids_cgroup, "netns": _new_netns, "readonly_fs": _readonly_fs,
          "pidns": _new_pidns, "drop_caps": _drop_caps}
ORDER = ("pids_cgroup", "netns", "readonly_fs", "pidns")  # drop_caps happens after the forks


def apply_layers(names, workdir, probe, cgroup):
    """Apply the named layers (drop_caps aside) in a fixed order. Probe mode reports what works
    instead of failing."""
    done, errors = [], {}
    ctypes, libc = _libc()
    for name in ORDER:
        if name not in names:
            continue
        try:
            LAYERS[name](ctypes, libc, workdir, cgroup)
            done.append(name)
        except OSError as e:
            if not probe:
                raise
            errors[name] = str(e)
    return done, errors


def forget_ctypes():
    for mod in [m for m in sys.modules if m == "ctypes" or m.startswith(("ctypes.", "_ctypes"))]:
        del sys.modules[mod]  # re-importing ctypes now goes through the guard's import check


def apply_limits(limits):
    import resource

    def cap(res, soft, hard=None):
        resource.setrlimit(res, (soft, soft if hard is None else hard))

    cap(resource.RLIMIT_AS, limits["memory_bytes"])
    cap(resource.RLIMIT_CPU, limits["cpu_s"], limits["cpu_s"] + 1)
    cap(resource.RLIMIT_FSIZE, limits["file_size_bytes"])
    cap(resource.RLIMIT_CORE, 0)
    cap(resource.RLIMIT_NOFILE, limits["open_files"])
    if os.geteuid() != 0:  # the kernel never applies RLIMIT_NPROC to root: the pids cgroup bounds root
        cap(resource.RLIMIT_NPROC, limits["processes"])


# -- the in-process guard (a second layer: audit hooks can be bypassed) --------------------------
NET_EVENTS = {"socket.connect", "socket.bind", "socket.getaddrinfo", "socket.gethostbyname",
              "socket.gethostbyname_ex", "socket.gethostbyaddr", "socket.getnameinfo", "socket.sendto",
              "socket.sendmsg"}
SPAWN_EVENTS = {"os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
                "subprocess.Popen", "pty.spawn"}
#: event -> indexes of its path arguments that must stay inside the work directory
PATH_EVENTS = {"os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.chmod": (0,), "os.chown": (0,),
               "os.truncate": (0,), "os.utime": (0,), "os.rename": (0, 1), "os.link": (1,), "os.symlink": (1,),
               "shutil.rmtree": (0,), "os.mkfifo": (0,), "os.mknod": (0,), "os.setxattr": (0,),
               "os.removexattr": (0,)}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
WRITABLE_DEVICES = {"/dev/null"}


def install_guard(state):
    workdir, nonce = state.workdir, state.nonce
    realpath, fspath, getpid, getpgid = os.path.realpath, os.fsdecode, os.getpid, os.getpgid

    def inside(path):
        if isinstance(path, int):
            return True  # an already-open descriptor: the read-only mounts decide
        full = realpath(fspath(path))
        return full == workdir or full.startswith(workdir + os.sep) or full in WRITABLE_DEVICES

    def block(category, detail):
        message = "%s: %s" % (category, detail)
        state.violations.append(message)
        _marker(nonce, "violation " + message)
        raise PermissionError("[sandbox] " + message)

    def opens_for_writing(mode, flags):
        return bool(flags & WRITE_FLAGS) if isinstance(flags, int) else any(c in (mode or "") for c in "wax+")

    def hook(event, args):
        if event in NET_EVENTS:
            block("network_blocked", "%s%r" % (event, tuple(args[1:2]) if event in ("socket.connect", "socket.bind") else tuple(args[:2])))
        elif event in SPAWN_EVENTS:
            block("spawn_blocked", "%s %r" % (event, args[:2]))
        elif event == "open" and opens_for_writing(args[1], args[2]) and not inside(args[0]):
            block("fs_blocked", "open(%r) for writing outside the work directory" % (args[0],))
        elif event in PATH_EVENTS:
            for i in PATH_EVENTS[event]:
                if i < len(args) and args[i] is not None and not inside(args[i]):
                    block("fs_blocked", "%s(%r) outside the work directory" % (event, args[i]))
        elif event == "os.kill" and args[0] not in (0, getpid()):
            block("signal_blocked", "os.kill(%r, %r)" % tuple(args[:2]))
        elif event == "os.killpg" and args[0] != getpgid(0):
            block("signal_blocked", "os.killpg(%r, %r)" % tuple(args[:2]))
        elif event in ("resource.setrlimit", "resource.prlimit"):
            block("limits_blocked", event)
        elif event.startswith("ctypes.") or (event == "import" and args[0].split(".")[0] in ("ctypes", "_ctypes")):
            block("ctypes_blocked", "%s %r" % (event, args[0] if args else ""))

    sys.addaudithook(hook)


# -- main -----------------------------------------------------------------------------------------
def relay(status):
    """Leave the way the waited-for process left: same exit code, or same signal."""
    if os.WIFSIGNALED(status):
        import signal

        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF if os.WIFEXITED(status) else 1)


def reap_until(pid):
    """pid 1's job: reap every orphan that the namespace hands it until `pid` exits."""
    while True:
        try:
            got, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 1 << 8
        if got == pid:
            return status


def pid_namespace_init(cfg, layers, status_w):
    """pid 1: a fresh /proc, no capabilities, then fork the code's process (pid 2, which returns
    from here); pid 1 itself reaps, reports pid 2's status, and exits, which kills the rest."""
    ctypes, libc = _libc()
    libc.prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(9), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))
    mount_fresh_proc(ctypes, libc)
    if "drop_caps" in layers:
        _drop_caps(ctypes, libc, cfg["workdir"])
    pid = os.fork()
    if pid == 0:
        os.close(status_w)
        return
    libc.prctl(PR_SET_DUMPABLE, ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))
    status = reap_until(pid)
    os.write(status_w, str(status).encode())
    os._exit(0)


def enter_pid_namespace(cfg, layers):
    """Returns only in the code's process (pid 2). The outer process waits for pid 1 and leaves
    with the code's status; pid 1 never returns either."""
    status_r, status_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(status_r)
        try:
            pid_namespace_init(cfg, layers, status_w)
            return  # pid 2
        except OSError as e:
            _marker(cfg["nonce"], "setup_failed %s" % e)
            os._exit(70)
    os.close(status_w)
    _, init_status = os.waitpid(pid, 0)
    reported = os.read(status_r, 64)
    relay(int(reported) if reported else init_status)


def probe_pid_namespace():
    """Does a fork after unshare(CLONE_NEWPID) become pid 1, and can it mount a fresh /proc?"""
    status_r, status_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            ctypes, libc = _libc()
            mount_fresh_proc(ctypes, libc)
            ok = os.getpid() == 1 and sorted(p for p in os.listdir("/proc") if p.isdigit()) == ["1"]
            os.write(status_w, b"ok" if ok else b"no")
        except OSError as e:
            os.write(status_w, str(e).encode()[:200])
        os._exit(0)
    os.close(status_w)
    os.waitpid(pid, 0)
    answer = os.read(status_r, 256).decode()
    return answer == "ok", answer


def run_code(cfg):
    """The untrusted code's process: limits, capabilities gone, the guard, then the code."""
    workdir, nonce = cfg["workdir"], cfg["nonce"]
    try:
        if "drop_caps" in cfg["layers"] and "pidns" not in cfg["layers"]:
            ctypes, libc = _libc()
            _drop_caps(ctypes, libc, workdir)
        apply_limits(cfg["limits"])
    except OSError as e:
        _marker(nonce, "setup_failed %s" % e)
        os._exit(70)
    import runpy
    import types

    state = types.ModuleType("_synthloop_sandbox")
    state.workdir, state.nonce, state.violations = workdir, nonce, []
    sys.modules[state.__name__] = state  # the harness reads `violations` from here
    os.chdir(workdir)
    sys.path.insert(0, workdir)
    sys.argv = [cfg["main"]] + cfg["args"]
    forget_ctypes()
    if cfg.get("guard", True):
        install_guard(state)
    try:
        runpy.run_path(cfg["main"], run_name="__main__")
    except MemoryError:
        _marker(nonce, "memory")
        os._exit(1)


def probe(cfg):
    """Try every layer in this (throwaway) process and say which worked."""
    done, errors = apply_layers(cfg["layers"], cfg["workdir"], True, cfg.get("cgroup", ""))
    if "pidns" in done and "readonly_fs" not in done:
        done.remove("pidns")  # mounting a fresh /proc outside a private mount namespace would hit the host's
        errors["pidns"] = "needs readonly_fs (a private mount namespace) for its fresh /proc"
    if "pidns" in done:
        ok, why = probe_pid_namespace()
        if not ok:
            done.remove("pidns")
            errors["pidns"] = why
    if "drop_caps" in cfg["layers"]:
        try:
            ctypes, libc = _libc()
            _drop_caps(ctypes, libc, cfg["workdir"])
            done.append("drop_caps")
        except OSError as e:
            errors["drop_caps"] = str(e)
    print(json.dumps({"layers": done, "errors": errors}))


def main():
    cfg = json.loads(sys.argv[1])
    if cfg["probe"]:
        probe(cfg)
        return
    layers = cfg["layers"]
    if layers:
        try:
            apply_layers(layers, cfg["workdir"], False, cfg.get("cgroup", ""))
        except OSError as e:
            _marker(cfg["nonce"], "setup_failed %s" % e)
            os._exit(70)
    if "pidns" in layers:
        enter_pid_namespace(cfg, layers)
    run_code(cfg)


if __name__ == "__main__":  # true under `python -c`; importing this module does nothing
    main()
