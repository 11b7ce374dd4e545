#!/usr/bin/env python3
"""The Squall runtime: runs one task's payload and records what happened.

This file is the whole program but for the scheduler modules beside it
(``schedulers/*.py``, loaded only by the agent commands that name one). It uses
only the standard library of Python 3.8 or newer because the same files are
copied to HPC login nodes, compute nodes and cloud machines where nothing else
may be installed. The controller never
talks to it: it only reads the files it writes (nodes never call back).

    python3 squall_runtime.py run TASK_DIR
    python3 squall_runtime.py version

and, as the controller's agent on an HPC login node (read-only, JSON out; SCHED names the scheduler
module shipped beside this file, ``schedulers/SCHED.py``: everything the runtime asks a batch scheduler
lives there):

    python3 squall_runtime.py stage JOB_DIR < request.json     write small files; which inputs are missing
    python3 squall_runtime.py read JOB_DIR < paths.json        read many small files at once
    python3 squall_runtime.py submit SCHED JOB_DIR NAME [QUEUE SECONDS]  submit job.sh once (idempotent)
    python3 squall_runtime.py poll SCHED JOB_DIR...            the scheduler's records and task statuses, one call
    python3 squall_runtime.py wait SECONDS SINCE JOB_DIR...    until a task's state changes (status files
                                                               only; one written since SINCE: at once),
                                                               at most SECONDS
    python3 squall_runtime.py teardown SCHED NAME [JOB_DIR]    cancel by name, remove the job folder
    python3 squall_runtime.py inventory WORK_ROOT [SCHED]      Squall's folders and scheduler jobs there
    python3 squall_runtime.py test-only SCHED < job.sh         when the scheduler would start it
    python3 squall_runtime.py limits SCHED                     the account's limits as the scheduler keeps them
    python3 squall_runtime.py image ENGINE CACHE ARCHIVE SHA256 load a job's image archive once (podman/docker
                                                               load), cached by digest: its image id
    python3 squall_runtime.py peers JOB_ID add|remove < req.json let a multi-node task's first host in with the
                                                               job's own key (authorized_keys), or drop it

and, on a machine with no scheduler (the ``ssh`` executor):

    python3 squall_runtime.py start JOB_DIR INDEX...           start tasks detached (idempotent), at most
                                                               host CPUs // task cpus at once (slot locks)
    python3 squall_runtime.py poll none JOB_DIR...             task statuses; runtimes that died are named
    python3 squall_runtime.py stop JOB_DIR [remove]            kill the job's process groups; remove it

A task of several processes (MPI ranks over nodes) names a ``launcher`` in task.json (``srun --mpi=pmix``):
the runtime runs in the allocation's first node and starts the payload through it.

TASK_DIR holds ``task.json`` (written by the controller) and receives:
``status.json`` (state and heartbeat, replaced atomically), ``stdout.log``,
``stderr.log``, ``manifest.json`` (the outputs with size and sha256) and the
payload's own folders ``in/``, ``out/`` and ``tmp/``.
"""

from __future__ import print_function

import base64
import ctypes
import errno
import fcntl
import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time

RUNTIME_VERSION = "0.12.0"
TASK_FORMAT = 1  # the layout of task.json this runtime reads (squall.sites.workarea.TASK_FORMAT)
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
# Only these variables of the runtime's own environment reach the payload.
ENV_ALLOW = ("PATH", "LANG", "LC_ALL", "TZ", "TERM")
STOP_SIGNALS = ("USR1", "USR2")  # what a task.json's stop_signals may name (Grid Engine's -notify sends USR2)
ENV_PREFIX = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")  # a variable's name, or a prefix of names (SLURM_)
CONTAINER_RUNTIMES = ("apptainer", "singularity", "podman", "docker")
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
HASH_BLOCK = 1 << 20
HASHERS = 4  # files hashed at once by ``verify``
WAIT_CHECKS_PER_S = 100  # status files ``wait`` looks at per second (the host's file-system load)
WAIT_MIN_PERIOD = 0.05
WAIT_MAX = 60.0
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)  # no room left: the file system is full, or the account's quota
DISK_FULL_EXIT = 28  # the runtime's exit when not even the task's status could be written (ENOSPC's number)
NEARLY_FULL = 1 << 20  # bytes free below which a failed payload is said to have met a full file system


def now():
    return time.time()


def write_json(path, data):
    """Write JSON so that a reader never sees a half-written file."""
    write_text_atomically(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def write_text_atomically(path, text, mode=0o644):
    write_bytes_atomically(path, text.encode(), mode)


def write_bytes_atomically(path, data, mode=0o644):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)  # whatever the umask left
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def overwrite_in_place(path, data):
    """Write over an existing file's own blocks: what still works on a full file system, where a new file
    (the atomic way) gets no room. A reader may see it half-written, so it is the last resort."""
    with open(path, "r+b") as handle:
        handle.write(data)
        handle.truncate()


def full_file_system(path):
    """Why a write under ``path`` fails for want of room, or None: the file system's free bytes and inodes."""
    try:
        info = os.statvfs(path)
    except OSError:
        return None
    free = info.f_bavail * info.f_frsize
    if free >= NEARLY_FULL and not (info.f_files and info.f_favail == 0):
        return None
    return ("no space left on device: the file system of %s is full (%d bytes%s free); free space in the "
            "site's work root or ask the site for more quota" % (path, free, "" if info.f_favail else ", no inodes"))


def sha256_file(path):
    """Read into one buffer (a fresh 1 MiB ``read`` per block is an allocation the kernel maps and unmaps)."""
    digest = hashlib.sha256()
    buffer = bytearray(HASH_BLOCK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while True:
            count = handle.readinto(buffer)
            if not count:
                return digest.hexdigest()
            digest.update(view[:count])


def sha256_files(paths):
    """Each file's sha256, several at once: hashlib releases the GIL, so every core hashes."""
    if len(paths) < 2:
        return [sha256_file(path) for path in paths]
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(min(len(paths), os.cpu_count() or 1, HASHERS)) as pool:
        return list(pool.map(sha256_file, paths))


def glob_regex(pattern):
    """A glob where ``*`` stays inside one folder and ``**/`` spans folders."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile("^" + out + "$", re.DOTALL)


def build_manifest(out_dir, patterns):
    """Regular files under ``out_dir`` matching ``patterns``; symlinks are never followed."""
    regexes = [glob_regex(p) for p in patterns]
    files, skipped = [], []
    for root, dirs, names in os.walk(out_dir):
        dirs.sort()
        for name in sorted(names):
            full = os.path.join(root, name)
            rel = os.path.relpath(full, out_dir).replace(os.sep, "/")
            if not any(r.match(rel) for r in regexes):
                continue
            mode = os.lstat(full).st_mode
            if not stat.S_ISREG(mode):
                skipped.append({"path": rel, "reason": "not a regular file"})
                continue
            files.append({"path": rel, "size": os.path.getsize(full), "sha256": sha256_file(full)})
    return {"files": files, "skipped": skipped}


def exit_code_of(wait_status):
    if os.WIFSIGNALED(wait_status):
        return -os.WTERMSIG(wait_status)
    return os.WEXITSTATUS(wait_status)


# --- network isolation -----------------------------------------------------


def _unshare(flags):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _bring_loopback_up():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        iff_up_loopback_running = 0x1 | 0x8 | 0x40
        fcntl.ioctl(sock, 0x8914, struct.pack("16sH", b"lo", iff_up_loopback_running))
    finally:
        sock.close()


def isolate_network():
    """Move the calling process into a new, empty network namespace.

    As root a plain network namespace is enough; otherwise an unprivileged user
    namespace comes first, with the caller's own uid and gid mapped so that
    files keep their owner. Only loopback exists inside, and it is brought up.
    """
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:
        _unshare(CLONE_NEWNET)
    else:
        _unshare(CLONE_NEWUSER | CLONE_NEWNET)
        with open("/proc/self/setgroups", "w") as handle:
            handle.write("deny")
        with open("/proc/self/uid_map", "w") as handle:
            handle.write("%d %d 1" % (uid, uid))
        with open("/proc/self/gid_map", "w") as handle:
            handle.write("%d %d 1" % (gid, gid))
    try:
        _bring_loopback_up()
    except OSError:
        pass


def can_isolate_network():
    """Try isolation in a throw-away child; return (ok, note)."""
    if not sys.platform.startswith("linux"):
        return False, "network namespaces need Linux"
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        try:
            isolate_network()
            os.write(write_fd, b"ok")
        except BaseException as exc:  # report anything, the parent decides
            os.write(write_fd, str(exc).encode()[:200])
        os._exit(0)
    os.close(write_fd)
    answer = os.read(read_fd, 256).decode(errors="replace")
    os.close(read_fd)
    os.waitpid(pid, 0)
    if answer == "ok":
        return True, "new network namespace (loopback only)"
    return False, "network namespace refused: %s" % (answer or "unknown error")


# --- the sandbox (bubblewrap) -----------------------------------------------

# the machine's programs and libraries, read-only (a merged-/usr system has symlinks for the others)
SANDBOX_SYSTEM = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


def sandbox_argv(sandbox, task_dir, command):
    """``command`` inside a bubblewrap sandbox: its own mount, PID, IPC, UTS and network namespaces (loopback
    only), the system folders read-only, a private ``/tmp``, ``/proc`` of its own PID namespace, and of the
    rest of the machine only ``task_dir`` — read-only but for its ``out/`` and ``tmp/``.

    ``sandbox``: ``bwrap`` (its path) and, when the runtime runs as root, ``setpriv``, ``uid`` and ``gid``: the
    unprivileged account the payload runs as. bwrap then runs as root (so it can bind folders only root can
    reach) and hands the payload to ``setpriv``, which drops to that account with no capabilities left and
    ``no_new_privs``. Otherwise bwrap runs as the caller in a user namespace of its own.
    """
    argv = [sandbox["bwrap"], "--die-with-parent", "--unshare-pid", "--unshare-net", "--unshare-ipc",
            "--unshare-uts", "--unshare-cgroup-try"]
    dropping = sandbox.get("uid") is not None
    argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"] if dropping else ["--unshare-user"]
    for path in SANDBOX_SYSTEM:
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    parent = os.path.dirname(task_dir)
    parents = []
    while parent not in ("/", "/tmp"):
        parents.append(parent)
        parent = os.path.dirname(parent)
    for folder in reversed(parents):  # made in the sandbox's own root: traversable whatever the host's modes
        argv += ["--perms", "0755", "--dir", folder]
    argv += ["--ro-bind", task_dir, task_dir]
    for name in ("out", "tmp"):
        argv += ["--bind", os.path.join(task_dir, name), os.path.join(task_dir, name)]
    argv += ["--chdir", task_dir]
    if dropping:
        argv += [sandbox["setpriv"], "--reuid=%d" % sandbox["uid"], "--regid=%d" % sandbox["gid"],
                 "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    return argv + list(command)


def hand_over(task_dir, uid, gid):
    """What the payload reads or writes becomes ``uid``'s: its inputs, script and list (read-only to it in
    the sandbox) and its ``out/`` and ``tmp/``. Symlinks are changed, never followed."""
    for name in ("in", "script", "out", "tmp", "inputs.txt"):
        chown_tree(os.path.join(task_dir, name), uid, gid)


def chown_tree(top, uid, gid):
    if not os.path.lexists(top):
        return
    os.lchown(top, uid, gid)
    if os.path.islink(top) or not os.path.isdir(top):
        return
    for root, dirs, names in os.walk(top):  # never into a symlinked folder
        for name in dirs + names:
            os.lchown(os.path.join(root, name), uid, gid)


# --- the task --------------------------------------------------------------


class Task(object):
    """One task folder and the run of its payload."""

    def __init__(self, task_dir):
        self.dir = os.path.abspath(task_dir)
        with open(os.path.join(self.dir, "task.json")) as handle:
            self.spec = json.load(handle)
        if not isinstance(self.spec, dict):
            raise ValueError("task.json is not a mapping")
        self.status_path = os.path.join(self.dir, "status.json")
        self.status = {
            "runtime_version": RUNTIME_VERSION,
            "job_id": self.spec.get("job_id"),
            "index": self.spec.get("index"),
            "pid": os.getpid(),
            "state": "queued",
            "created_at": now(),
        }
        self.lock = threading.RLock()  # the signal handler may run inside save()
        self.reason = None  # "timeout" or "cancelled" once decided
        self.pgid = None
        self.container_name = None  # a podman/docker container the payload runs in
        self.done = threading.Event()

    def save(self, **changes):
        with self.lock:
            self.status.update(changes)
            self.status["heartbeat_at"] = now()
            try:
                write_json(self.status_path, self.status)
            except OSError as exc:
                if exc.errno not in DISK_FULL:
                    raise
                overwrite_in_place(self.status_path, json.dumps(self.status, sort_keys=True).encode())

    # signals and limits

    def stop(self, reason):
        """Stop the payload's whole process group: TERM, then KILL after a grace."""
        with self.lock:
            if self.reason is None:
                self.reason = reason
            pgid = self.pgid
        if pgid is None:
            return
        _killpg(pgid, signal.SIGTERM)
        grace = float(self.spec.get("kill_grace", 5))
        timer = threading.Timer(grace, _killpg, (pgid, signal.SIGKILL))
        timer.daemon = True
        timer.start()
        if self.container_name:  # the container's processes are the engine's (conmon), not in our group
            stopper = threading.Thread(target=stop_container,
                                       args=(self.spec["container"]["runtime"], self.container_name,
                                             self.spec["container"].get("conf"), grace))
            stopper.daemon = True
            stopper.start()

    def on_signal(self, signum, frame):
        self.stop("cancelled")

    def heartbeat(self, interval):
        while not self.done.wait(interval):
            try:
                self.save()
            except OSError:  # no room even in place: the next beat, or the end, tries again
                pass

    # the run

    def environment(self):
        """The payload's scrubbed environment. In a sandbox the task folder is read-only, so ``HOME`` is
        its ``tmp/``, as ``TMPDIR``."""
        env = {}
        # the site's set-up lines (module load ...) may set more that the payload needs: the site names them
        kept = [k for k in self.spec.get("keep_env") or [] if isinstance(k, str) and k.isupper()]
        for key in ENV_ALLOW + tuple(kept):
            if key in os.environ:
                env[key] = os.environ[key]
        if self.spec.get("launcher"):  # a launcher starts the ranks inside the scheduler's allocation: it needs
            # the scheduler's variables of this allocation, and those the executor sets for it (task.json)
            prefixes = tuple(p for p in self.spec.get("launcher_env_prefixes") or [] if ENV_PREFIX.match(p))
            env.update((k, v) for k, v in os.environ.items() if prefixes and k.startswith(prefixes))
            env.update((k, str(v)) for k, v in (self.spec.get("launcher_env") or {}).items() if ENV_PREFIX.match(k))
        env.setdefault("PATH", DEFAULT_PATH)
        env.setdefault("LANG", "C.UTF-8")
        try:
            user = pwd.getpwuid(os.getuid()).pw_name
        except KeyError:
            user = str(os.getuid())
        env.update(
            {
                "HOME": os.path.join(self.dir, "tmp") if self.spec.get("sandbox") else self.dir,
                "USER": user,
                "LOGNAME": user,
                "TMPDIR": os.path.join(self.dir, "tmp"),
                "SQUALL_JOB_ID": str(self.spec.get("job_id", "")),
                "SQUALL_TASK_INDEX": str(self.spec.get("index", 0)),
                "SQUALL_TASK_COUNT": str(self.spec.get("count", 1)),
                "SQUALL_TASK_DIR": self.dir,
                "SQUALL_INPUT_DIR": os.path.join(self.dir, "in"),
                "SQUALL_OUTPUT_DIR": os.path.join(self.dir, "out"),
                "SQUALL_INPUT_LIST": os.path.join(self.dir, "inputs.txt"),
            }
        )
        return env

    def argv(self, env):
        """The payload's command line and the environment of the process started (for a podman or docker
        container: the engine's own, while the payload's goes in an env file)."""
        launcher = list(self.spec.get("launcher") or [])
        if launcher and os.path.basename(launcher[0]) == "mpirun":  # ranks on other hosts get this environment
            launcher += [word for key in sorted(env) for word in ("-x", key)]
        command = launcher + list(self.spec["command"])
        container = self.spec.get("container")
        if not container:
            return command, env
        runtime = container["runtime"]
        if runtime == "auto":
            runtime = next((r for r in CONTAINER_RUNTIMES if shutil.which(r, path=env["PATH"])), None)
            if runtime is None:
                raise RuntimeError("no container runtime found (tried %s)" % ", ".join(CONTAINER_RUNTIMES))
        if runtime not in ENGINES:
            return container_argv(runtime, container["image"], self.dir, env, command), env
        self.container_name = container_name(self.dir)
        env_file = os.path.join(self.dir, "tmp", ".container.env")
        write_env_file(env_file, env)
        argv = engine_argv(runtime, container["image"], self.dir, env_file, self.container_name, command)
        return argv, engine_env(container.get("conf"), env["PATH"])

    def acquire_slot(self):
        """Wait for one of the machine's slots; return its lock file.

        ``slots`` gives the lock folder and either a ``count`` or the task's
        ``cpus`` (then the count is this host's CPUs // cpus, at least 1).
        """
        slots = self.spec.get("slots")
        if not slots:
            return None
        folder = os.path.expanduser(slots["dir"])
        count = slots.get("count") or max(1, (os.cpu_count() or 1) // max(1, int(slots.get("cpus", 1))))
        os.makedirs(folder, mode=0o700, exist_ok=True)
        while self.reason is None:
            for number in range(int(count)):
                handle = open(os.path.join(folder, "slot-%d" % number), "a")
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return handle
                except OSError as exc:
                    handle.close()
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
            time.sleep(0.05)
        return None

    def run(self):
        if self.spec.get("format") != TASK_FORMAT:
            self.save(state="failed", exit_code=None, finished_at=now(),
                      error="task.json has format %r; runtime %s reads format %d: the controller and the "
                            "site's runtime differ (squall site enrol)"
                            % (self.spec.get("format"), RUNTIME_VERSION, TASK_FORMAT))
            return 2
        for name in ("in", "out", "tmp"):
            os.makedirs(os.path.join(self.dir, name), exist_ok=True)
        # and the signals the executor says its scheduler sends before it kills a task (task.json)
        warnings = [getattr(signal, "SIG" + name) for name in self.spec.get("stop_signals") or []
                    if name in STOP_SIGNALS]
        for signum in [signal.SIGTERM, signal.SIGINT, signal.SIGHUP] + warnings:
            signal.signal(signum, self.on_signal)
        self.save(state="queued")
        beat = threading.Thread(target=self.heartbeat, args=(float(self.spec.get("heartbeat", 2)),))
        beat.daemon = True
        beat.start()
        slot = self.acquire_slot()
        if self.reason is not None:
            return self.finish(None, 0.0, 0, "cancelled while queued")
        env = self.environment()
        try:
            argv, process_env = self.argv(env)
        except (RuntimeError, ValueError) as exc:
            return self.finish(127, 0.0, 0, str(exc))
        isolated, note, preexec = False, "not requested", None
        sandbox = self.spec.get("sandbox")
        if self.container_name:  # the engine gives the container no network (the engine itself keeps its own)
            isolated, note = True, "container with --network none"
        elif sandbox:
            if sandbox.get("uid") is not None:
                hand_over(self.dir, sandbox["uid"], sandbox["gid"])
            argv = sandbox_argv(sandbox, self.dir, argv)
            isolated, note = True, "bubblewrap sandbox (own mount, PID and network namespaces)"
        elif self.spec.get("launcher"):  # the ranks of one task talk to each other (and srun to Slurm)
            note = "several processes started by %s: they need the nodes' network" % self.spec["launcher"][0]
        elif self.spec.get("isolate_network", True):
            isolated, note = can_isolate_network()
            preexec = isolate_network if isolated else None
        stdout = open(os.path.join(self.dir, "stdout.log"), "ab")
        stderr = open(os.path.join(self.dir, "stderr.log"), "ab")
        started = now()
        try:
            proc = subprocess.Popen(
                argv,
                cwd=self.dir,
                env=process_env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
                preexec_fn=preexec,
            )
        except OSError as exc:
            stderr.write(("squall-runtime: cannot start payload: %s\n" % exc).encode())
            stderr.flush()
            return self.finish(127, 0.0, 0, "cannot start payload: %s" % exc)
        with self.lock:
            self.pgid = proc.pid
        self.save(
            state="running",
            payload_pid=proc.pid,
            pgid=proc.pid,
            started_at=started,
            network_isolated=isolated,
            isolation_note=note,
        )
        if self.reason is not None:  # a signal came before the group existed
            self.stop(self.reason)
        limit = threading.Timer(float(self.spec["walltime"]), self.stop, ("timeout",))
        limit.daemon = True
        limit.start()
        _, wait_status, usage = os.wait4(proc.pid, 0)
        proc.returncode = exit_code_of(wait_status)
        limit.cancel()
        wall = now() - started
        _killpg(proc.pid, signal.SIGKILL)  # anything the payload left running
        if sandbox and sandbox.get("uid") is not None:  # the outputs are collected as the runtime's own
            chown_tree(os.path.join(self.dir, "out"), os.getuid(), os.getgid())
        if self.container_name:  # an engine killed before it could remove its container
            remove_container(self.spec["container"]["runtime"], self.container_name, self.spec["container"].get("conf"))
        stdout.close()
        stderr.close()
        if slot is not None:
            slot.close()
        return self.finish(proc.returncode, wall, usage.ru_maxrss, None)

    def finish(self, exit_code, wall, max_rss_kb, error):
        self.done.set()
        manifest = build_manifest(os.path.join(self.dir, "out"), self.spec.get("outputs") or ["**"])
        full = None
        try:
            write_json(os.path.join(self.dir, "manifest.json"), manifest)
        except OSError as exc:
            if exc.errno not in DISK_FULL:
                raise
            full = full_file_system(self.dir) or "no room to write the task's manifest: %s" % exc.strerror
        if exit_code != 0 and full is None:
            full = full_file_system(self.dir)
        if full:
            error = "%s (%s)" % (full, error) if error else full
        if self.reason is not None:
            state = self.reason
        elif exit_code == 0 and full is None:
            state = "succeeded"
        else:
            state = "failed"
        self.save(
            state=state,
            exit_code=exit_code,
            wall_time=round(wall, 3),
            max_rss_kb=max_rss_kb,
            finished_at=now(),
            error=error,
            outputs=len(manifest["files"]),
        )
        return 0 if state == "succeeded" else 1


def container_argv(runtime, image, task_dir, env, command):
    """Apptainer/Singularity: the command line that runs ``command`` in ``image``, task folder bound in
    place (no package on the test machines: tested as a command line only)."""
    if runtime in ("apptainer", "singularity"):
        argv = [runtime, "exec", "--containall", "--cleanenv", "--bind", "%s:%s" % (task_dir, task_dir)]
        argv += ["--pwd", task_dir]
        for key in sorted(env):
            argv += ["--env", "%s=%s" % (key, env[key])]
        return argv + [image] + command
    raise RuntimeError("unknown container runtime %r" % runtime)


# podman and docker -------------------------------------------------------------------------------

ENGINES = ("podman", "docker")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")  # an archive's digest, an image's id


def container_name(task_dir):
    """One name per task folder, so that a stop finds the container."""
    return "squall-" + hashlib.sha256(os.path.realpath(task_dir).encode()).hexdigest()[:24]


def engine_env(conf, path):
    """The engine's own environment: the account's home (rootless storage lives there), its runtime
    folder, and the site's containers.conf (hosts where the engine's defaults fail)."""
    env = {"PATH": path or DEFAULT_PATH, "LANG": "C.UTF-8"}
    try:
        env["HOME"] = pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        env["HOME"] = "/tmp"
    for key in ("XDG_RUNTIME_DIR", "CONTAINERS_CONF"):
        if os.environ.get(key):
            env[key] = os.environ[key]
    if conf:
        env["CONTAINERS_CONF"] = conf
    return env


def write_env_file(path, env):
    """The payload's scrubbed environment for ``--env-file`` (0600, never on a command line)."""
    lines = []
    for key in sorted(env):
        if "\n" in env[key] or "\0" in env[key]:
            raise ValueError("environment variable %s holds a newline: cannot pass it to a container" % key)
        lines.append("%s=%s\n" % (key, env[key]))
    write_text_atomically(path, "".join(lines), 0o600)


def engine_argv(engine, image, task_dir, env_file, name, command):
    """``podman run``: no network, the task folder bound in place as the working folder, the account's own
    uid inside (rootless: ``--userns keep-id``), the payload's environment from ``env_file``."""
    argv = [engine, "run", "--rm", "--name", name, "--network", "none", "--env-file", env_file]
    if os.getuid() == 0 or engine == "docker":
        argv += ["--user", "%d:%d" % (os.getuid(), os.getgid())]
    else:
        argv += ["--userns", "keep-id"]
    argv += ["--volume", "%s:%s" % (task_dir, task_dir), "--workdir", task_dir]
    return argv + [image] + command


def stop_container(engine, name, conf, grace):
    """TERM the container, KILL it after ``grace`` (its PID 1 may ignore TERM)."""
    subprocess.call([engine, "stop", "--time", str(int(max(1, grace))), name], env=engine_env(conf, None),
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def remove_container(engine, name, conf):
    subprocess.call([engine, "rm", "--force", "--ignore", name] if engine == "podman" else
                    [engine, "rm", "--force", name], env=engine_env(conf, None),
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def load_image(engine, cache, archive, digest, conf=None):
    """Load ``archive`` (an oci-archive or docker-archive) once per digest: its image id is kept in
    ``CACHE/sha256-DIGEST.id`` and reused while the engine still has that image. One loader at a time."""
    if engine not in ENGINES or not SHA256_HEX.match(digest):
        return {"error": "bad engine or digest"}
    env = engine_env(conf, os.environ.get("PATH"))
    os.makedirs(cache, mode=0o700, exist_ok=True)
    record = os.path.join(cache, "sha256-%s.id" % digest)
    with open(os.path.join(cache, ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        known = read_json(record, {}).get("image_id")
        if known and subprocess.call([engine, "image", "exists" if engine == "podman" else "inspect", known],
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0:
            return {"image_id": known, "loaded": False}
        if sha256_file(archive) != digest:
            return {"error": "%s: sha256 differs from %s" % (archive, digest)}
        loaded = subprocess.run([engine, "load", "--input", archive], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, universal_newlines=True)
        if loaded.returncode != 0:
            return {"error": "%s load: %s" % (engine, (loaded.stderr or loaded.stdout).strip()[-500:])}
        reference = loaded.stdout.strip().splitlines()[-1].split(": ", 1)[-1].split(",")[0].strip()
        found = subprocess.run([engine, "image", "inspect", "--format", "{{.Id}}", reference], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        image_id = found.stdout.strip().replace("sha256:", "")
        if found.returncode != 0 or not SHA256_HEX.match(image_id):
            return {"error": "%s load gave no image id for %r: %s" % (engine, reference, found.stderr.strip()[-300:])}
        write_json(record, {"image_id": image_id, "reference": reference})
        return {"image_id": image_id, "loaded": True}


def _killpg(pgid, signum):
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


# --- the controller's agent on a login node -----------------------------------


def inside(root, rel, resolved=False):
    """The real path of ``rel`` under ``root`` (``resolved``: ``root`` is a real path already); ValueError if
    it would leave it."""
    root = root if resolved else os.path.realpath(root)
    path = os.path.realpath(os.path.join(root, rel))
    if os.path.isabs(rel) or not path.startswith(root + os.sep):
        raise ValueError("%r leaves %s" % (rel, root))
    return path


def resolver(root):
    """``inside`` for many paths under one root, each folder resolved once (a job has thousands of inputs in a
    few folders); a path that is itself a symbolic link is resolved in full."""
    root, folders = os.path.realpath(root), {}

    def resolve(rel):
        folder, name = os.path.split(rel)
        if name in ("", ".", "..") or os.path.isabs(rel):
            raise ValueError("%r is not a file under %s" % (rel, root))
        if folder not in folders:
            folders[folder] = inside(root, folder, resolved=True) if folder else root
        path = os.path.join(folders[folder], name)
        return inside(root, rel, resolved=True) if os.path.islink(path) else path

    return resolve


STAGED_RECORD = ".squall-staged.json"


PART = ".squall-part"  # the suffix of an input on its way (see ``part_of``)


def part_of(rel):
    """Where an input is uploaded before it is checked: a hidden name beside its own. A transfer cut short
    leaves only this, never a truncated file under the input's name; ``verify`` moves it into place."""
    head, tail = os.path.split(rel)
    return os.path.join(head, "." + tail + PART)


def verify(job_dir, entries):
    """Which manifest entries are not yet exact copies under ``job_dir``; uploads that arrived whole and right
    (``part_of``) are moved under their own names first, one cut short is reported to be resumed.

    A file's sha256 is remembered in ``.squall-staged.json`` against its size
    and mtime, so re-verifying unchanged inputs reads no file content.
    """
    record_path = os.path.join(job_dir, STAGED_RECORD)
    try:
        with open(record_path) as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        record = {}
    missing, partial, dirs = [], {}, set()
    resolve = resolver(job_dir)
    found, unhashed = {}, []
    for entry in entries:
        path = resolve(entry["path"])
        try:
            info = os.stat(path)
        except OSError:
            info = None
        found[entry["path"]] = (path, info)
        if info is not None and info.st_size == entry["size"]:
            known = record.get(entry["path"])
            if not (known and known[:2] == [info.st_size, info.st_mtime_ns]):
                unhashed.append(entry["path"])
    for rel, digest in zip(unhashed, sha256_files([found[rel][0] for rel in unhashed])):
        info = found[rel][1]
        record[rel] = [info.st_size, info.st_mtime_ns, digest]
    wrong = [entry for entry in entries if not (found[entry["path"]][1] is not None
                                                and found[entry["path"]][1].st_size == entry["size"]
                                                and record[entry["path"]][2] == entry["sha256"])]
    arrived = _arrived(job_dir, [(found[e["path"]][0], e) for e in wrong])
    for entry in wrong:
        path = found[entry["path"]][0]
        if path in arrived:
            info = os.stat(path)
            record[entry["path"]] = [info.st_size, info.st_mtime_ns, entry["sha256"]]
            continue
        missing.append(entry["path"])
        dirs.add(os.path.dirname(path))
        size = _size(part_of(path))
        if size and size < entry["size"]:
            partial[entry["path"]] = size  # an interrupted upload: resume from here
    for folder in sorted(dirs):
        os.makedirs(folder, mode=0o700, exist_ok=True)
    if (unhashed or arrived) and os.path.isdir(job_dir):  # re-verifying unchanged inputs writes nothing
        write_json(record_path, record)
    return {"missing": missing, "partial": partial}


def _size(path):
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def _arrived(job_dir, wanted):
    """Of ``wanted`` (path, manifest entry), the paths whose upload is whole and right, now moved into place;
    a whole upload with the wrong content is removed (it is sent again)."""
    whole = [(path, entry) for path, entry in wanted if _size(part_of(path)) == entry["size"]]
    arrived = set()
    for (path, entry), digest in zip(whole, sha256_files([part_of(path) for path, _ in whole])):
        if digest == entry["sha256"]:
            os.replace(part_of(path), path)
            arrived.add(path)
        else:
            os.unlink(part_of(path))
    return arrived


def write_files(job_dir, files):
    """Write many small files at once: ``{rel: {"data": base64, "mode": int}}``."""
    for rel, item in sorted(files.items()):
        path = inside(job_dir, rel)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        write_bytes_atomically(path, base64.b64decode(item["data"]), item.get("mode", 0o600))
    return {"written": len(files)}


def read_files(job_dir, rels):
    """Read many small files at once: ``{rel: base64 or null}``."""
    result = {}
    for rel in rels:
        try:
            with open(inside(job_dir, rel), "rb") as handle:
                result[rel] = base64.b64encode(handle.read()).decode()
        except (OSError, ValueError):
            result[rel] = None
    return result


def read_json(path, default=None):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return default


FINAL_STATES = ("succeeded", "failed", "timeout", "cancelled")


def poll(job_dirs, scheduler=None):
    """Every task's status.json under each job folder (None: the folder is gone); the scheduler's records
    if one is named.

    Without a scheduler the runtimes run on this machine: a task whose runtime
    process is gone before it wrote a final state is listed in ``dead``.
    """
    jobs, started = {}, now()
    for job_dir in job_dirs:
        if not os.path.isdir(job_dir):
            jobs[job_dir] = None
            continue
        tasks = {}
        for name in os.listdir(job_dir):
            if name.startswith("task-"):
                tasks[name[5:]] = read_json(os.path.join(job_dir, name, "status.json"))
        launch = read_json(os.path.join(job_dir, "launch.json"), {})
        job = {"tasks": tasks, "launched_at": launch.get("at")}
        if scheduler is None:
            job["dead"] = sorted(index for index, pid in (launch.get("pids") or {}).items()
                                 if (tasks.get(index) or {}).get("state") not in FINAL_STATES
                                 and not runtime_alive(pid, os.path.join(job_dir, "task-" + index)))
        jobs[job_dir] = job
    if scheduler is None:
        return {"scheduler": [], "jobs": jobs, "now": now(), "started": started}
    records, silent = load_scheduler(scheduler).records()
    return {"scheduler": records, "scheduler_silent": silent, "jobs": jobs, "now": now(), "started": started}


def wait_for_change(timeout, since, job_dirs):
    """Return once a task's state under ``job_dirs`` changes, or after ``timeout`` seconds.

    A remote controller learns that a task ended within a fraction of a second
    instead of at its next poll, without asking the scheduler more often: only
    the tasks' status files are looked at (a stat each; a file is read again
    only when it was replaced, so heartbeats wake no one), at most
    ``WAIT_CHECKS_PER_S`` files per second, so a job of many tasks is checked
    less often, down to once per ``timeout`` (on a shared file system every
    stat is a metadata request). A status file written since ``since`` (this
    host's clock when the controller's last poll began) ends the wait at once:
    the poll may not have seen it (a quick task ends between poll and wait).
    """
    files = [os.path.join(d, name, "status.json") for d in job_dirs if os.path.isdir(d)
             for name in os.listdir(d) if name.startswith("task-")]
    files += [os.path.join(d, "launch.json") for d in job_dirs]  # a folder removed also changes this
    deadline = time.monotonic() + timeout
    period = max(WAIT_MIN_PERIOD, len(files) / WAIT_CHECKS_PER_S)
    stamps = {path: file_stamp(path) for path in files}
    written_since = [path for path, stamp in stamps.items() if stamp and stamp[1] >= since * 1e9]
    if any(path.endswith("/status.json") for path in written_since) \
            or any(stamps[os.path.join(d, "launch.json")] is None for d in job_dirs):
        return {"changed": True}
    states = {path: (read_json(path) or {}).get("state") for path in files}
    while time.monotonic() + period < deadline:
        time.sleep(period)
        for path in files:
            stamp = file_stamp(path)
            if stamp == stamps[path]:
                continue
            stamps[path] = stamp
            if stamp is None or (read_json(path) or {}).get("state") != states[path]:
                return {"changed": True}
    time.sleep(max(0.0, deadline - time.monotonic()))
    return {"changed": False}


def file_stamp(path):
    """What changes when a file is replaced (status files are renamed into place), or None if it is gone."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns, info.st_size


SCHEDULER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
ARRAY_NAME = re.compile(r"^squall-[A-Za-z0-9_-]{1,64}$")  # what a scheduler knows a Squall job by
QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # a partition or cluster queue (squall.inventory.Partition)


def load_scheduler(name):
    """The scheduler module shipped beside this file (``schedulers/NAME.py``): what the runtime asks a batch
    scheduler (submit, records, cancel, test-only, limits, jobs) lives there, not here."""
    if not SCHEDULER_NAME.match(name or ""):
        raise ValueError("not a scheduler name: %r" % name)
    path = os.path.join(os.path.dirname(os.path.realpath(__file__)), "schedulers", name + ".py")
    if not os.path.isfile(path):
        raise ValueError("no scheduler module %s beside the runtime" % path)
    import importlib.util

    spec = importlib.util.spec_from_file_location("squall_scheduler_" + name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def submit(scheduler, job_dir, name, queue=None, seconds=None):
    """Submit ``job_dir/job.sh`` unless a job called ``name`` exists; record and return its id. ``queue`` and
    ``seconds``: for a script that names neither (the health job)."""
    if not ARRAY_NAME.match(name) or queue is not None and not (QUEUE_NAME.match(queue) and seconds.isdigit()):
        raise ValueError("submit: bad name, queue or seconds")
    job, submitted = load_scheduler(scheduler).submit(job_dir, name, queue, seconds)
    if not submitted:
        return {"scheduler_job": job, "resubmitted": False}
    write_json(os.path.join(job_dir, "launch.json"), {"scheduler_job": job, "at": now()})
    return {"scheduler_job": job}


def teardown(scheduler, name, job_dir=None):
    """Cancel the account's jobs called ``name`` (through ``scheduler``); end what still runs in ``job_dir`` and remove it, if given
    (a squall-* folder)."""
    load_scheduler(scheduler).cancel(name)
    if job_dir:
        end_processes(job_dir)
        shutil.rmtree(job_dir, ignore_errors=True)
    return {"cancelled": name, "removed": job_dir}


def runtime_alive(pid, task_dir):
    """Whether ``pid`` is still the runtime of ``task_dir`` (not a reused pid, not a zombie).

    A process caught in the middle of its exec shows an empty command line for
    an instant: it is the runtime just started (a kernel thread, the only
    other process without one, has kthreadd, pid 2, for parent).
    """
    try:
        with open("/proc/%d/cmdline" % int(pid), "rb") as handle:
            words = handle.read().split(b"\0")
        with open("/proc/%d/stat" % int(pid)) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return False
    if fields[0] == "Z":
        return False
    if words == [b""]:
        return fields[1] != "2"
    return "run" in [w.decode(errors="replace") for w in words] and task_dir.encode() in words


def start(job_dir, indexes, env=None):
    """Start each task's runtime detached (its own session: it outlives the SSH connection); once only.

    The pids go to ``launch.json`` before this returns, so ``poll`` and
    ``stop`` know them; a task already started is left alone. ``env``: the
    runtimes' environment (default: this process's); they run isolated from
    ``PYTHON*`` variables and site packages (``-I -S``: the runtime needs the
    standard library only, and starts faster).
    """
    with open(os.path.join(job_dir, ".launch.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        launch = read_json(os.path.join(job_dir, "launch.json"), {})
        pids = launch.get("pids") or {}
        started = []
        for index in indexes:
            if str(index) in pids:
                continue
            task_dir = os.path.join(job_dir, "task-%d" % int(index))
            if not os.path.isfile(os.path.join(task_dir, "task.json")):
                raise ValueError("%s has no task.json" % task_dir)
            # the runtime's own words (a crash before it could write its status) go to runtime.log
            with open(os.devnull, "rb") as null, open(os.path.join(task_dir, "runtime.log"), "ab") as log:
                proc = subprocess.Popen([sys.executable, "-I", "-S", os.path.abspath(__file__), "run", task_dir],
                                        stdin=null, stdout=log, stderr=log, close_fds=True, start_new_session=True,
                                        env=env)
            pids[str(index)] = proc.pid
            started.append(int(index))
        write_json(os.path.join(job_dir, "launch.json"), {"at": launch.get("at") or now(), "pids": pids})
    return {"started": started, "pids": pids}


def stop(job_dir, remove=False, grace=5.0):
    """Stop every task of ``job_dir`` started here: TERM the runtimes (they stop their payloads), then KILL.

    Only processes that are still this job's runtimes, or payload groups
    recorded in a status that is not final, are signalled.
    """
    if not os.path.basename(os.path.normpath(job_dir)).startswith("squall-"):
        raise ValueError("%r is not a Squall job folder" % job_dir)
    launch = read_json(os.path.join(job_dir, "launch.json"), {})
    runtimes, groups = [], []
    for index, pid in sorted((launch.get("pids") or {}).items()):
        task_dir = os.path.join(job_dir, "task-" + index)
        status = read_json(os.path.join(task_dir, "status.json"), {}) or {}
        if runtime_alive(pid, task_dir):
            runtimes.append(int(pid))
        if status.get("state") not in FINAL_STATES and status.get("pgid"):
            groups.append(int(status["pgid"]))
    for pid in runtimes:
        _kill(pid, signal.SIGTERM)
    deadline = now() + grace + 1
    while now() < deadline and any(_exists(pid) for pid in runtimes):
        time.sleep(0.1)
    for pgid in groups:
        _killpg(pgid, signal.SIGKILL)
    for pid in runtimes:
        _killpg(pid, signal.SIGKILL)
    if remove:
        end_processes(job_dir)
        shutil.rmtree(job_dir, ignore_errors=True)
        peer_keys(os.path.basename(os.path.normpath(job_dir))[len("squall-"):], "remove")
    return {"stopped": len(runtimes), "removed": job_dir if remove else None}


DELETED = " (deleted)"  # what the kernel appends to a working folder that was removed


def squall_processes(work_root):
    """This account's processes that belong to a squall-* folder under ``work_root``: working in it or naming
    it on their command line — a payload that left its process group (``setsid``), a runtime whose job was
    torn down without it. Folders removed since count (``gone``). This process and its parents never do."""
    root = os.path.realpath(work_root).rstrip("/") + "/"
    mine = set()
    pid = os.getpid()
    while pid > 1:
        mine.add(pid)
        pid = _parent(pid)
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in mine:
            continue
        try:
            if os.stat("/proc/" + name).st_uid != os.getuid():
                continue
            cwd = os.readlink("/proc/%s/cwd" % name)
            with open("/proc/%s/cmdline" % name, "rb") as handle:
                words = handle.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        for place in [cwd] + words:
            gone = place.endswith(DELETED)
            place = place[:-len(DELETED)] if gone else place
            folder = place[len(root):].split("/")[0] if place.startswith(root) else ""
            if folder.startswith("squall-"):
                found.append({"pid": int(name), "folder": root + folder, "args": " ".join(words)[:200],
                              "gone": not os.path.isdir(root + folder)})
                break
    return found


def _parent(pid):
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def end_processes(job_dir, pids=None, grace=2.0):
    """TERM, then KILL after ``grace``, this account's processes of ``job_dir`` (only ``pids`` if given),
    each checked again to still belong to it: a pid reused since the listing is left alone."""
    job_dir = os.path.realpath(job_dir).rstrip("/")
    if not os.path.basename(job_dir).startswith("squall-"):
        raise ValueError("%r is not a Squall job folder" % job_dir)

    def of_the_job():
        return [p["pid"] for p in squall_processes(os.path.dirname(job_dir))
                if p["folder"] == job_dir and (pids is None or p["pid"] in pids)]

    ended = of_the_job()
    for pid in ended:
        _kill(pid, signal.SIGTERM)
    deadline = now() + grace
    while now() < deadline and of_the_job():
        time.sleep(0.1)
    for pid in of_the_job():
        _kill(pid, signal.SIGKILL)
    return {"ended": ended}


JOB_ID = re.compile(r"^[0-9a-z-]{1,64}$")
PUBLIC_KEY = re.compile(r"^ssh-ed25519 [A-Za-z0-9+/]{60,100}={0,2}$")
ADDRESS = re.compile(r"^[0-9a-fA-F.:]{2,45}$")


def peer_keys(job_id, action, request=None):
    """A multi-node task's key on this host: ``add`` lets the task's first host in with the job's own key
    (``restrict``, only from its addresses); ``remove`` drops it. Lines end with ``squall-job-ID``."""
    if not JOB_ID.match(job_id) or action not in ("add", "remove"):
        raise ValueError("bad job id or action")
    marker = " squall-job-%s" % job_id
    ssh_dir = os.path.expanduser("~/.ssh")
    path = os.path.join(ssh_dir, "authorized_keys")
    if action == "remove" and not os.path.isfile(path):
        return {"keys": 0}  # nothing was ever let in: the account's ~/.ssh is left as it is
    os.makedirs(ssh_dir, mode=0o700, exist_ok=True)
    with open(os.path.join(ssh_dir, ".squall-keys.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with open(path) as handle:
                lines = [line for line in handle.read().splitlines() if not line.endswith(marker)]
        except FileNotFoundError:
            lines = []
        if action == "add":
            key, sources = request.get("key", ""), request.get("from") or []
            if not PUBLIC_KEY.match(key) or not sources or not all(ADDRESS.match(a) for a in sources):
                raise ValueError("bad peer key request")
            lines.append('restrict,from="%s" %s%s' % (",".join(sources), key, marker))
        write_text_atomically(path, "".join(line + "\n" for line in lines), 0o600)
    return {"keys": 1 if action == "add" else 0}


def _kill(pid, signum):
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _exists(pid):
    """False once ``pid`` has exited (a zombie counts as gone: its parent, not us, reaps it)."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def inventory(work_root, scheduler=None):
    """This account's job folders under ``work_root``, its scheduler's jobs called squall-* (if it has a
    scheduler) and the processes still working in such folders."""
    jobs = load_scheduler(scheduler).jobs() if scheduler else []
    return {"folders": job_folders(work_root), "jobs": jobs, "processes": squall_processes(work_root)}


def job_folders(work_root):
    """Each squall-* folder under ``work_root`` with its owner marker (None if missing or unreadable)."""
    folders = []
    if os.path.isdir(work_root):
        for name in sorted(os.listdir(work_root)):
            path = os.path.join(work_root, name)
            if name.startswith("squall-") and os.path.isdir(path) and not os.path.islink(path):
                try:
                    with open(os.path.join(path, "owner.json")) as handle:
                        owner = json.load(handle)
                except (OSError, ValueError):
                    owner = None
                folders.append({"path": path, "name": name, "mtime": os.path.getmtime(path), "owner": owner})
    return folders


def serve():
    """Answer agent calls one after another over one connection: a request is a line of JSON
    (``{"args": [...], "stdin": base64 or null}``), its answer a line of JSON (``{"code", "out", "err"}``).

    The controller keeps one such process per host instead of a new SSH
    session and interpreter per call. ``run`` is not served: tasks are started
    detached by ``start``.
    """
    import io

    # the protocol keeps its own copies of stdin and stdout; what a command's children inherit is /dev/null,
    # so nothing they print or read can mix with a request or an answer
    requests, answers = os.fdopen(os.dup(0), "r"), os.fdopen(os.dup(1), "w")
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    for line in requests:
        request = json.loads(line)
        args, data = request["args"], base64.b64decode(request.get("stdin") or "")
        out, err = io.StringIO(), io.StringIO()
        saved = sys.stdin, sys.stdout, sys.stderr
        sys.stdin, sys.stdout, sys.stderr = io.TextIOWrapper(io.BytesIO(data)), out, err
        try:
            code = 2 if args[:1] in (["run"], ["serve"]) else main(args)
        except Exception as exc:  # an agent call's own failure is its answer; the loop goes on
            code, err = 1, io.StringIO("%s: %s" % (type(exc).__name__, exc))
        finally:
            sys.stdin, sys.stdout, sys.stderr = saved
        answers.write(json.dumps({"code": code, "out": out.getvalue(), "err": err.getvalue()}) + "\n")
        answers.flush()
    return 0


def main(argv=None):
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["serve"] and argv is None:
        return serve()
    if args == ["version"]:
        print(RUNTIME_VERSION)
        return 0
    if len(args) == 2 and args[0] == "run":
        try:
            task = Task(args[1])
        except (OSError, ValueError) as exc:
            print("squall_runtime: cannot read %s/task.json: %s" % (args[1], exc), file=sys.stderr)
            return 2
        try:
            return task.run()
        except OSError as exc:
            if exc.errno not in DISK_FULL:
                raise
            print("squall_runtime: %s" % (full_file_system(task.dir) or exc), file=sys.stderr)
            return DISK_FULL_EXIT
    if len(args) == 2 and args[0] == "stage":
        request = json.load(sys.stdin)
        write_files(args[1], request["files"])
        print(json.dumps(verify(args[1], request["inputs"])))
        return 0
    if len(args) == 2 and args[0] == "read":
        print(json.dumps(read_files(args[1], json.load(sys.stdin))))
        return 0
    if len(args) >= 2 and args[0] == "poll":
        print(json.dumps(poll(args[2:], scheduler=None if args[1] == "none" else args[1])))
        return 0
    if len(args) >= 3 and args[0] == "wait" and re.match(r"^[0-9]{1,2}(\.[0-9]{1,3})?$", args[1]) \
            and re.match(r"^[0-9]{1,12}(\.[0-9]{1,9})?$", args[2]):
        print(json.dumps(wait_for_change(min(float(args[1]), WAIT_MAX), float(args[2]), args[3:])))
        return 0
    if len(args) >= 2 and args[0] == "start":
        print(json.dumps(start(args[1], [int(i) for i in args[2:]])))
        return 0
    if len(args) in (2, 3) and args[0] == "stop" and args[2:] in ([], ["remove"]):
        print(json.dumps(stop(args[1], remove=args[2:] == ["remove"])))
        return 0
    if len(args) in (4, 6) and args[0] == "submit":
        print(json.dumps(submit(*args[1:])))
        return 0
    if len(args) in (3, 4) and args[0] == "teardown":
        print(json.dumps(teardown(*args[1:])))
        return 0
    if len(args) == 2 and args[0] == "test-only":
        print(json.dumps(load_scheduler(args[1]).test_only(sys.stdin.read())))
        return 0
    if len(args) == 2 and args[0] == "limits":
        print(json.dumps(load_scheduler(args[1]).limits()))
        return 0
    if len(args) == 3 and args[0] == "peers":
        print(json.dumps(peer_keys(args[1], args[2], json.load(sys.stdin) if args[2] == "add" else None)))
        return 0
    if len(args) in (5, 6) and args[0] == "image":
        print(json.dumps(load_image(*args[1:])))
        return 0
    if len(args) >= 2 and args[0] == "end" and all(a.isdigit() for a in args[2:]):
        print(json.dumps(end_processes(args[1], [int(a) for a in args[2:]] or None)))
        return 0
    if len(args) in (2, 3) and args[0] == "inventory":
        print(json.dumps(inventory(*args[1:])))
        return 0
    print("usage: squall_runtime.py run TASK_DIR | version | stage|read JOB_DIR | submit SCHEDULER JOB_DIR NAME [QUEUE SECONDS] | "
          "poll SCHEDULER|none JOB_DIR... | teardown SCHEDULER NAME [JOB_DIR] | inventory ROOT [SCHEDULER] | "
          "start JOB_DIR INDEX... | stop JOB_DIR [remove] | test-only SCHEDULER | limits SCHEDULER | image ENGINE CACHE ARCHIVE SHA256 [CONF] | "
          "peers JOB_ID add|remove | end JOB_DIR [PID...]",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
