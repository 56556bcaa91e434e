"""Run the packaged examples the way Lambda does: under AWS's own runtime interface client.

`awslambdaric` (PyPI) is the Python runtime interface client AWS publishes: the loop that, in
a Lambda execution environment, imports the handler, asks the Runtime API for the next event,
calls the handler and posts its result or error. Here it talks to a small Runtime API stub
(`RuntimeApiStub`, on 127.0.0.1) that hands out the sample events and collects what comes back.

Layout, as in Lambda: the x86_64 layer ZIP extracted into a layer folder (its `python/` is
`/opt/python`), a function ZIP into a task folder (`/var/task`). awslambdaric, its two
dependencies and nothing else live in a venv with `include-system-site-packages = false`.
A small launcher (`LAUNCHER`), run by that venv's CPython 3.12, builds `sys.path` like AWS's
bootstrap does (task folder; the layer's `python/lib/python3.12/site-packages` and `python/`
with `site.addsitedir`; the stdlib; the distributions the runtime provides (botocore,
jmespath, ..., installed with pip like run_handlers_test.py does); awslambdaric's venv last)
and calls awslambdaric's `main` with the handler the function's manifest names. The process
gets the manifest's `environment` plus what Lambda itself sets, and is killed by PID once
the stub has seen the runtime come back for the event after the last one (or on timeout).

The launcher also records where every imported module came from (on request through its
stdin while the runtime waits for an event, and at exit), and, when asked to, every file
opened under the task folder (an audit hook), which shows whether importing read the shipped
.pyc or compiled the .py.

The python3.13 function without layers (src/greeter_py313:lambda) runs the same way in a
CPython 3.13 venv of its own (skipped only when no CPython 3.13 is found).
"""

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import pytest

from tests.e2e_support import (
    FUNCTIONS,
    LAYER_ZIPS,
    PY313_FUNCTION,
    PY313_RUNTIME,
    PY313_VERSION,
    RUNTIME,
    artifact,
    elf_entries,
    events_dir,
    extract,
    extract_cached,
    find_runtime_python,
    install_runtime_provided,
    load_manifest,
    native_code_problems,
    pip_install,
    pyc_cache_tag,
    require_runtime_python,
    sqs_message_ids,
)

# Pinned: the runtime protocol details this test relies on were read from this version.
AWSLAMBDARIC = "awslambdaric==4.2.2"
RIC_TOP_LEVEL = "awslambdaric"
# Every wait of a run (startup and all invocations) ends by this many seconds.
RUN_TIMEOUT = 60.0
# How often blocked threads look at their stop flag and deadline.
POLL = 0.05
API = "/2018-06-01/runtime"
ACCOUNT_ARN = "arn:aws:lambda:us-east-1:123456789012:function:"

LAUNCHER = r'''
"""Starts awslambdaric like the bootstrap of Lambda's python3.X runtime, in this layout."""
import _imp
import atexit
import json
import os
import site
import sys
import threading

spec_path, handler = sys.argv[1], sys.argv[2]
with open(spec_path) as f:
    spec = json.load(f)

# Files opened under a folder (the task): importing from the shipped unchecked-hash .pyc opens
# only the .pyc; compiling from source (no usable .pyc) opens the .py.
opened = []
if spec.get("record_opens_under"):
    opens_root = spec["record_opens_under"] + os.sep

    def audit(event, args):
        if event == "open" and isinstance(args[0], str) and args[0].startswith(opens_root):
            opened.append(args[0])

    sys.addaudithook(audit)

# site.main() ran in awslambdaric's venv: sys.path is [this script's folder, the stdlib...,
# the venv's site-packages]. Rebuild it in Lambda's order, awslambdaric's venv last.
venv_site = [p for p in sys.path[1:] if os.path.basename(p) == "site-packages"]
stdlib = [p for p in sys.path[1:] if p not in venv_site]
sys.path[:] = [spec["task"]]
for layer_dir in spec["layer_dirs"]:
    if os.path.isdir(layer_dir):
        site.addsitedir(layer_dir)
sys.path.extend(stdlib)
site.addsitedir(spec["runtime_dir"])
for path in venv_site:
    site.addsitedir(path)


def origins():
    found = {}
    for name, module in list(sys.modules.items()):
        location = getattr(module, "__file__", None)
        if location is None:
            locations = list(getattr(module, "__path__", None) or [])
            location = locations[0] if locations else None
        found[name] = location
    return found


def dump(reason):
    data = {
        "reason": reason,
        "sys_path": list(sys.path),
        "stdlib": stdlib,
        "venv_site": venv_site,
        "before_handler": before_handler,
        "modules": origins(),
        "opened": list(opened),
        "version": list(sys.version_info[:3]),
        "cache_tag": sys.implementation.cache_tag,
        "dont_write_bytecode": sys.flags.dont_write_bytecode,
        "check_hash_based_pycs": _imp.check_hash_based_pycs,
    }
    partial = spec["modules_out"] + ".partial"
    with open(partial, "w") as f:
        json.dump(data, f)
    os.replace(partial, spec["modules_out"])


def serve_dump_requests():
    # The runtime's main thread waits for the next event in runtime_client (without the GIL).
    # A raw read: a daemon thread blocked in sys.stdin's buffered reader aborts the exit.
    while os.read(0, 4096):
        dump("request")


import awslambdaric.__main__ as ric_main

before_handler = origins()
atexit.register(dump, "exit")
threading.Thread(target=serve_dump_requests, daemon=True).start()
ric_main.main([ric_main.__file__, handler])
'''


# ---------------------------------------------------------------------------------------------
# The Runtime API stub.
# ---------------------------------------------------------------------------------------------


class Invocation(NamedTuple):
    name: str
    request_id: str
    event: bytes


class Posted(NamedTuple):
    headers: Dict[str, str]  # Lower-case names.
    body: bytes

    def json(self):
        return json.loads(self.body.decode("utf-8"))


class _Connection:
    """Reads HTTP/1.1 requests off one socket, never blocking past the stub's stop/deadline."""

    def __init__(self, sock: socket.socket, running: Callable[[], bool]) -> None:
        self.sock = sock
        self.running = running
        self.buf = b""

    def _fill(self) -> bool:
        while self.running():
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return False
            if not data:
                return False
            self.buf += data
            return True
        return False

    def _until(self, marker: bytes) -> Optional[bytes]:
        while marker not in self.buf:
            if not self._fill():
                return None
        head, _, self.buf = self.buf.partition(marker)
        return head

    def _exactly(self, n: int) -> Optional[bytes]:
        while len(self.buf) < n:
            if not self._fill():
                return None
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_request(self) -> Optional[Tuple[str, str, Dict[str, str], bytes]]:
        head = self._until(b"\r\n\r\n")
        if head is None:
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, path, _version = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("expect", "").lower() == "100-continue":
            self.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size_line = self._until(b"\r\n")
                if size_line is None:
                    return None
                size = int(size_line.split(b";")[0], 16)
                chunk = self._exactly(size + 2)
                if chunk is None:
                    return None
                if size == 0:
                    break
                body += chunk[:-2]
        else:
            whole = self._exactly(int(headers.get("content-length", "0")))
            if whole is None:
                return None
            body = whole
        return method, path, headers, body

    def reply(
        self, status: int, reason: str, body: bytes = b"", headers: Tuple[Tuple[str, str], ...] = ()
    ) -> None:
        # One write, Content-Length always: no Nagle/delayed-ACK stalls (see LAMBDA-RUNTIME.md).
        head = ["HTTP/1.1 %d %s" % (status, reason), "Content-Length: %d" % len(body)]
        head.extend("%s: %s" % header for header in headers)
        self.sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)


class RuntimeApiStub:
    """The Lambda Runtime API on 127.0.0.1 (an ephemeral port), for one runtime process.

    Hands out `invocations` in order on `GET .../invocation/next`, then holds the next
    `/next` open as Lambda does between events; records responses, errors and init errors.
    Also receives X-Ray segments on a UDP port (the address Lambda gives the X-Ray SDK).
    Every thread stops by itself at `stop()` or at the deadline.
    """

    def __init__(self, invocations: List[Invocation], function_arn: str, timeout: float) -> None:
        self.function_arn = function_arn
        self.deadline = time.monotonic() + timeout
        self._stopped = threading.Event()
        self._cond = threading.Condition()
        self._pending = list(invocations)
        self.invocations = list(invocations)
        self.next_requests = 0
        self.first_request = None  # type: Optional[float]
        self.responses = {}  # type: Dict[str, Posted]
        self.errors = {}  # type: Dict[str, Posted]
        self.init_errors = []  # type: List[Posted]
        self.unexpected = []  # type: List[str]
        self.xray = []  # type: List[Dict]
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(8)
        self._server.settimeout(POLL)
        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._udp.bind(("127.0.0.1", 0))
        self._udp.settimeout(POLL)
        self.address = "127.0.0.1:%d" % self._server.getsockname()[1]
        self.xray_address = "127.0.0.1:%d" % self._udp.getsockname()[1]
        self._threads = [
            threading.Thread(target=self._accept_loop, daemon=True),
            threading.Thread(target=self._udp_loop, daemon=True),
        ]

    def running(self) -> bool:
        return not self._stopped.is_set() and time.monotonic() < self.deadline

    def start(self) -> "RuntimeApiStub":
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        with self._cond:
            self._cond.notify_all()
        for thread in list(self._threads):
            thread.join(timeout=5)
        self._server.close()
        self._udp.close()

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Waits (at most `timeout` seconds, never past the deadline) for `predicate`."""
        end = min(time.monotonic() + timeout, self.deadline)
        with self._cond:
            while not predicate():
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, POLL))
            return True

    def _accept_loop(self) -> None:
        while self.running():
            try:
                sock, _ = self._server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            sock.settimeout(POLL)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _udp_loop(self) -> None:
        while self.running():
            try:
                data = self._udp.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            # An X-Ray daemon datagram: a JSON header line, then the segment document.
            _header, _, document = data.decode("utf-8", errors="replace").partition("\n")
            with self._cond:
                self.xray.append(json.loads(document))
                self._cond.notify_all()

    def _serve(self, sock: socket.socket) -> None:
        conn = _Connection(sock, self.running)
        try:
            while True:
                request = conn.read_request()
                if request is None:
                    return
                if not self._handle(conn, *request):
                    return
        except OSError:
            return
        finally:
            sock.close()

    def _handle(
        self, conn: _Connection, method: str, path: str, headers: Dict[str, str], body: bytes
    ) -> bool:
        with self._cond:
            if self.first_request is None:
                self.first_request = time.monotonic()
        accepted = (202, "Accepted", b'{"status":"OK"}', (("Content-Type", "application/json"),))
        match = re.match(API + r"/invocation/([^/]+)/(response|error)$", path)
        if method == "GET" and path == API + "/invocation/next":
            invocation = self._next_invocation()
            if invocation is None:
                return False  # Stopped while the runtime waited: drop the connection.
            conn.reply(
                200,
                "OK",
                invocation.event,
                (
                    ("Content-Type", "application/json"),
                    ("Lambda-Runtime-Aws-Request-Id", invocation.request_id),
                    ("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000)),
                    ("Lambda-Runtime-Invoked-Function-Arn", self.function_arn),
                    ("Lambda-Runtime-Trace-Id", trace_header(invocation.request_id)),
                ),
            )
            return True
        if (
            method == "POST"
            and match
            and match.group(1) in {i.request_id for i in self.invocations}
        ):
            with self._cond:
                target = self.responses if match.group(2) == "response" else self.errors
                target[match.group(1)] = Posted(headers, body)
                self._cond.notify_all()
            conn.reply(*accepted)
            return True
        if method == "POST" and path == API + "/init/error":
            with self._cond:
                self.init_errors.append(Posted(headers, body))
                self._cond.notify_all()
            conn.reply(*accepted)
            return True
        with self._cond:
            self.unexpected.append("%s %s" % (method, path))
            self._cond.notify_all()
        conn.reply(400, "Bad Request", b'{"errorType":"InvalidRequest"}')
        return True

    def _next_invocation(self) -> Optional[Invocation]:
        with self._cond:
            self.next_requests += 1
            self._cond.notify_all()
            while not self._pending:
                if not self.running():
                    return None
                self._cond.wait(POLL)
            return self._pending.pop(0)

    def answered(self) -> int:
        return len(self.responses) + len(self.errors)


def trace_header(request_id: str) -> str:
    """A sampled X-Ray trace header, unique per request id."""
    digits = hashlib.sha256(request_id.encode("utf-8")).hexdigest()
    return "Root=1-65a4f1d8-%s;Parent=%s;Sampled=1" % (digits[:24], digits[24:40])


# ---------------------------------------------------------------------------------------------
# Running a function under awslambdaric.
# ---------------------------------------------------------------------------------------------


class RicVenv(NamedTuple):
    python: Path  # The venv's interpreter.
    site_packages: Path
    top_level: frozenset  # Import names the venv's distributions install.


class RicRun(NamedTuple):
    name: str
    environment: Dict[str, str]
    invocations: List[Invocation]
    stub: RuntimeApiStub  # Stopped; holds what the runtime posted.
    finished: bool  # Every invocation was answered and the runtime asked for the next one.
    exit_code: Optional[int]  # When the runtime exited by itself; None when killed.
    startup_s: float  # Process start to its first request (`/next`, or its init error).
    stdout: str
    stderr: str
    modules: Optional[Dict]  # The launcher's record: sys.path, module origins.

    def request_id(self, name: str) -> str:
        [request_id] = [i.request_id for i in self.invocations if i.name == name]
        return request_id

    def response(self, name: str):
        request_id = self.request_id(name)
        assert request_id not in self.stub.errors, self.stub.errors[request_id].body
        return self.stub.responses[request_id].json()

    def logs(self) -> List[Dict]:
        """The Powertools Logger's JSON lines on the runtime's stdout."""
        found = []
        for line in self.stdout.split("\n"):
            parsed = _json_or_none(line)
            if isinstance(parsed, dict) and "level" in parsed and "service" in parsed:
                found.append(parsed)
        return found

    def emf(self) -> List[Dict]:
        """The Powertools Metrics' CloudWatch embedded metric format blobs on stdout."""
        found = []
        for line in self.stdout.split("\n"):
            parsed = _json_or_none(line)
            if isinstance(parsed, dict) and "_aws" in parsed:
                found.append(parsed)
        return found

    def describe(self) -> str:
        return "run %s: stdout:\n%s\nstderr:\n%s\nunexpected requests: %s" % (
            self.name,
            self.stdout[-4000:],
            self.stderr[-4000:],
            self.stub.unexpected,
        )


def _json_or_none(line: str):
    try:
        return json.loads(line)
    except ValueError:
        return None


def layer_path_dirs(layer: Path) -> List[Path]:
    """What Lambda's bootstrap puts on sys.path for a layer extracted into `layer` (/opt)."""
    return [layer / "python" / "lib" / RUNTIME / "site-packages", layer / "python"]


def lambda_environment(
    function_name: str, manifest: Dict, task: Path, handler: str, stub: RuntimeApiStub, home: Path
) -> Dict[str, str]:
    """What Lambda sets for a function (and no more), then the manifest's `environment`.

    Left unset on purpose (LAMBDA-RUNTIME.md): AWS_EXECUTION_ENV,
    AWS_LAMBDA_INITIALIZATION_TYPE, _LAMBDA_TELEMETRY_LOG_FD.
    """
    xray_host, _, xray_port = stub.xray_address.partition(":")
    env = {
        "PATH": os.defpath,
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "HOME": str(home),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_RUNTIME_API": stub.address,
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/" + function_name,
        "AWS_LAMBDA_LOG_STREAM_NAME": "2024/01/15/[$LATEST]0123456789abcdef0123456789abcdef",
        "LAMBDA_TASK_ROOT": str(task),
        "_HANDLER": handler,
        "AWS_XRAY_DAEMON_ADDRESS": stub.xray_address,
        "_AWS_XRAY_DAEMON_ADDRESS": xray_host,
        "_AWS_XRAY_DAEMON_PORT": xray_port,
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    }
    environment = manifest["environment"]
    assert isinstance(environment, dict), manifest
    env.update({str(k): str(v) for k, v in environment.items()})
    return env


def run_under_ric(
    venv: RicVenv,
    launcher: Path,
    workdir: Path,
    name: str,
    manifest: Dict,
    task: Path,
    layer: Optional[Path],
    runtime_dir: Path,
    events: List[Tuple[str, bytes]],
    record_task_opens: bool = False,
) -> RicRun:
    """Starts the runtime on `task` (+ `layer`), feeds it `events` and collects everything
    (with `record_task_opens`, also the files the process opened under `task`)."""
    function_name = "pants-powertools-" + name
    invocations = [
        Invocation(event_name, "%s-%02d-%s" % (name, i, event_name), event)
        for i, (event_name, event) in enumerate(events)
    ]
    stub = RuntimeApiStub(invocations, ACCOUNT_ARN + function_name, RUN_TIMEOUT)
    run_dir = workdir / ("run-" + name)
    run_dir.mkdir()
    modules_out = run_dir / "modules.json"
    spec = {
        "task": str(task),
        "layer_dirs": [] if layer is None else [str(p) for p in layer_path_dirs(layer)],
        "runtime_dir": str(runtime_dir),
        "modules_out": str(modules_out),
        "record_opens_under": str(task) if record_task_opens else None,
    }
    (run_dir / "spec.json").write_text(json.dumps(spec))
    handler = manifest["handler"]
    env = lambda_environment(function_name, manifest, task, handler, stub, run_dir)
    stub.start()
    exit_code = None
    finished = False
    try:
        with open(str(run_dir / "stdout"), "wb") as out, open(str(run_dir / "stderr"), "wb") as err:
            started = time.monotonic()
            proc = subprocess.Popen(
                [
                    str(venv.python),
                    "-s",
                    "-E",
                    "-B",
                    str(launcher),
                    str(run_dir / "spec.json"),
                    handler,
                ],
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=err,
                cwd=str(task),
                env=env,
            )
            stdin = proc.stdin
            assert stdin is not None  # stdin=PIPE
            try:
                stub.wait_until(
                    lambda: stub.next_requests > len(invocations)
                    or bool(stub.init_errors)
                    or proc.poll() is not None,
                    RUN_TIMEOUT,
                )
                finished = stub.next_requests > len(invocations) and stub.answered() == len(
                    invocations
                )
                if proc.poll() is None and finished:
                    # The runtime waits for an event now: ask the launcher where modules came from.
                    try:
                        stdin.write(b"dump\n")
                        stdin.flush()
                    except OSError:
                        # It exited meanwhile: then there is no record (and exit_code says so).
                        pass
                    stub.wait_until(lambda: modules_out.exists(), 10)
                elif proc.poll() is None:
                    # Not done (an init error, a crash, or the deadline): give it a moment to exit.
                    stub.wait_until(lambda: proc.poll() is not None, 10)
                exit_code = proc.poll()
            finally:
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGKILL)  # The runtime never exits by itself.
                proc.wait(timeout=10)
                stdin.close()
    finally:
        stub.stop()
    first = stub.first_request if stub.first_request is not None else time.monotonic()
    # Shown by pytest with the output of a failing test (or always, with -s).
    print(
        "%s: process start to first Runtime API request %.3f s, %d of %d events answered, "
        "exit %s" % (name, first - started, stub.answered(), len(invocations), exit_code)
    )
    return RicRun(
        name=name,
        environment=env,
        invocations=invocations,
        stub=stub,
        finished=finished,
        exit_code=exit_code,
        startup_s=first - started,
        # Bytes, then decoded: text mode would turn awslambdaric's \r separators into \n.
        stdout=(run_dir / "stdout").read_bytes().decode("utf-8", errors="replace"),
        stderr=(run_dir / "stderr").read_bytes().decode("utf-8", errors="replace"),
        modules=json.loads(modules_out.read_text()) if modules_out.exists() else None,
    )


def assert_served_like_lambda(run: RicRun) -> None:
    """Every event was answered, the runtime came back for the next one and was still running
    when it was killed, and it made no request the Runtime API does not have."""
    assert run.finished, run.describe()
    assert run.exit_code is None, run.describe()
    assert run.stub.init_errors == [], run.describe()
    assert run.stub.unexpected == [], run.describe()
    assert run.stub.next_requests == len(run.invocations) + 1, run.describe()


def module_origins(
    run: RicRun,
    task: Path,
    layer: Optional[Path],
    runtime_dir: Path,
    venv: RicVenv,
    modules: Optional[Dict[str, Optional[str]]] = None,
) -> Dict[str, str]:
    """{module: where it came from}: task, layer, runtime-provided, awslambdaric-venv, stdlib,
    built-in (no file), or the path itself when it is none of these."""
    assert run.modules is not None, "no module record from the launcher; " + run.describe()
    roots = [
        (str(task), "task"),
        (str(runtime_dir), "runtime-provided"),
        (str(venv.site_packages), "awslambdaric-venv"),
    ]
    if layer is not None:
        roots.append((str(layer), "layer"))
    # The interpreter's stdlib folder holds its site-packages, which must never be used.
    roots.extend((p, "stdlib") for p in run.modules["stdlib"] if "site-packages" not in p)
    roots.sort(key=lambda root: len(root[0]), reverse=True)
    origins = {}
    for name, location in (run.modules["modules"] if modules is None else modules).items():
        if location is None:
            origins[name] = "built-in"
            continue
        origin = next(
            (kind for root, kind in roots if location.startswith(root + os.sep)), location
        )
        if origin == "stdlib" and os.sep + "site-packages" + os.sep in location:
            origin = location
        origins[name] = origin
    return origins


def assert_isolated(
    run: RicRun, task: Path, layer: Optional[Path], runtime_dir: Path, venv: RicVenv
) -> Dict[str, str]:
    origins = module_origins(run, task, layer, runtime_dir, venv)
    assert run.modules is not None  # module_origins checked it
    known = {"task", "layer", "runtime-provided", "awslambdaric-venv", "stdlib", "built-in"}
    assert {m: o for m, o in origins.items() if o not in known and m != "__main__"} == {}
    # Only awslambdaric's own modules come from its venv; its dependencies (simplejson, ...)
    # only if awslambdaric itself loaded them before the handler's module was imported.
    before = module_origins(run, task, layer, runtime_dir, venv, run.modules["before_handler"])
    from_venv = {m for m, o in origins.items() if o == "awslambdaric-venv"}
    assert {m.split(".")[0] for m in from_venv} <= venv.top_level, sorted(from_venv)
    late = {m for m in from_venv if before.get(m) != "awslambdaric-venv"}
    assert {m for m in late if m.split(".")[0] != RIC_TOP_LEVEL} == set(), sorted(late)
    # Lambda's order: task, layer, stdlib, runtime-provided, the runtime client's folder.
    # (The layer has no python/lib/python3.12/site-packages: everything is under python/.)
    expected = [str(task)]
    if layer is not None:
        expected += [str(p) for p in layer_path_dirs(layer) if p.is_dir()]
    expected += run.modules["stdlib"] + [str(runtime_dir), str(venv.site_packages)]
    assert run.modules["sys_path"] == expected
    # The venv hid the base interpreter's site-packages (include-system-site-packages = false).
    assert [p for p in run.modules["stdlib"] if "site-packages" in p] == []
    return origins


# ---------------------------------------------------------------------------------------------
# Fixtures (module scope: one venv, one pip install, one extraction per ZIP).
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("awslambdaric")


@pytest.fixture(scope="module")
def python312():
    return require_runtime_python()


def install_ric_venv(python: str, venv: Path) -> RicVenv:
    """awslambdaric and its dependencies (for `python`'s version), alone in a venv of `python`
    that does not see the base interpreter's site-packages."""
    proc = subprocess.run(
        [python, "-m", "venv", "--without-pip", str(venv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout.decode(errors="replace")
    config = (venv / "pyvenv.cfg").read_text()
    assert re.search(r"^include-system-site-packages\s*=\s*false\s*$", config, re.M), config
    [site_packages] = (venv / "lib").glob("python3.*/site-packages")
    pip_install(python, ["--target", str(site_packages), AWSLAMBDARIC])
    top_level = set()
    for record in site_packages.glob("*.dist-info/RECORD"):
        for line in record.read_text().splitlines():
            top = line.split(",", 1)[0].split("/", 1)[0]
            if top and ".dist-info" not in top and top not in {"__pycache__", ".."}:
                top_level.add(top.split(".", 1)[0])
    assert RIC_TOP_LEVEL in top_level and "runtime_client" in top_level, sorted(top_level)
    return RicVenv(venv / "bin" / "python", site_packages, frozenset(top_level))


@pytest.fixture(scope="module")
def installed(python312, workdir) -> Tuple[RicVenv, Path]:
    """awslambdaric's venv and the runtime-provided distributions, installed from PyPI side
    by side (both mostly wait on the network)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        ric = pool.submit(install_ric_venv, python312, workdir / "ric-venv")
        runtime = pool.submit(
            install_runtime_provided,
            python312,
            artifact(LAYER_ZIPS["x86_64"]),
            workdir / "runtime-provided",
        )
        return ric.result(), runtime.result()


@pytest.fixture(scope="module")
def ric_venv(installed) -> RicVenv:
    return installed[0]


@pytest.fixture(scope="module")
def runtime_dir(installed) -> Path:
    return installed[1]


@pytest.fixture(scope="module")
def launcher(workdir) -> Path:
    path = workdir / "launcher.py"
    path.write_text(LAUNCHER)
    return path


@pytest.fixture(scope="module")
def layer(workdir) -> Path:
    """The x86_64 layer (the only one this machine can load), extracted as into /opt."""
    with zipfile.ZipFile(str(artifact(LAYER_ZIPS["x86_64"]))) as zf:
        assert native_code_problems(zf, "x86_64") == {}
    cache = workdir / "layers"
    cache.mkdir(exist_ok=True)
    return extract_cached(artifact(LAYER_ZIPS["x86_64"]), cache)


def _task(workdir: Path, name: str) -> Path:
    task = workdir / ("task-" + name)
    if not task.is_dir():
        extract(artifact(FUNCTIONS[name].artifact), task)
    return task


def _event(function: str, name: str) -> Tuple[str, bytes]:
    return name, (events_dir(function) / (name + ".json")).read_bytes()


ORDERS_EVENTS = [
    "get_order",
    "get_order_not_found",
    "create_order",
    "create_order_invalid",
    "list_orders",
]


@pytest.fixture(scope="module")
def orders_run(ric_venv, launcher, workdir, layer, runtime_dir) -> RicRun:
    function = FUNCTIONS["orders_api"]
    assert function.architecture == "x86_64"
    return run_under_ric(
        ric_venv,
        launcher,
        workdir,
        "orders_api",
        load_manifest(function.artifact),
        _task(workdir, "orders_api"),
        layer,
        runtime_dir,
        [_event("orders_api", name) for name in ORDERS_EVENTS],
    )


def _all_failed_event() -> bytes:
    """order_placed_batch.json with only its three bad records: every record fails, so the
    BatchProcessor raises and the invocation fails as a whole."""
    with open(str(events_dir("sqs_batch") / "order_placed_batch.json")) as f:
        event = json.load(f)
    event["Records"] = event["Records"][2:]
    return json.dumps(event).encode("utf-8")


@pytest.fixture(scope="module")
def sqs_run(ric_venv, launcher, workdir, layer, runtime_dir) -> RicRun:
    # src/sqs_batch:lambda is built for arm64 and this machine is x86_64. The function ZIP holds
    # only pure Python and architecture-independent bytecode (checked here first), so it runs
    # with the x86_64 layer, which carries the same distributions as the arm64 one (see
    # run_handlers_test.py and layer_artifacts_test.py).
    function = FUNCTIONS["sqs_batch"]
    assert function.architecture == "arm64"
    with zipfile.ZipFile(str(artifact(function.artifact))) as zf:
        assert elf_entries(zf) == {}
    events = [
        _event("sqs_batch", "order_placed"),
        _event("sqs_batch", "order_placed_batch"),
        ("all_failed", _all_failed_event()),
        _event("sqs_batch", "order_placed"),
    ]
    events[-1] = ("order_placed_again", events[-1][1])
    return run_under_ric(
        ric_venv,
        launcher,
        workdir,
        "sqs_batch",
        load_manifest(function.artifact),
        _task(workdir, "sqs_batch"),
        layer,
        runtime_dir,
        events,
    )


# ---------------------------------------------------------------------------------------------
# orders_api (x86_64).
# ---------------------------------------------------------------------------------------------


def test_orders_api_answers_api_gateway_events(orders_run):
    assert_served_like_lambda(orders_run)
    r = orders_run.response

    assert r("get_order")["statusCode"] == 200
    order = json.loads(r("get_order")["body"])
    assert order["order_id"] == "ord-1001"
    assert order["customer_id"] == "cust-42"
    assert order["total_cents"] == 2 * 1599 + 250

    assert r("get_order_not_found")["statusCode"] == 404
    assert "ord-missing" in json.loads(r("get_order_not_found")["body"])["message"]

    assert r("create_order")["statusCode"] == 201
    created = json.loads(r("create_order")["body"])
    assert created["customer_id"] == "cust-77"
    assert created["total_cents"] == 2 * 1250 + 3 * 499
    assert r("create_order")["multiValueHeaders"]["Location"] == [
        "/orders/%s" % created["order_id"]
    ]

    assert r("create_order_invalid")["statusCode"] == 422
    assert json.loads(r("create_order_invalid")["body"])["detail"]

    assert r("list_orders")["statusCode"] == 200
    assert [o["order_id"] for o in json.loads(r("list_orders")["body"])] == ["ord-1001"]
    assert orders_run.stub.errors == {}


def test_orders_api_logs_and_metrics_follow_the_manifest_environment(orders_run):
    manifest_env = load_manifest(FUNCTIONS["orders_api"].artifact)["environment"]
    service = manifest_env["POWERTOOLS_SERVICE_NAME"]
    assert service == FUNCTIONS["orders_api"].service
    function_name = orders_run.environment["AWS_LAMBDA_FUNCTION_NAME"]

    logs = orders_run.logs()
    assert logs, orders_run.describe()
    assert {log["service"] for log in logs} == {service}
    assert {log["level"] for log in logs} <= {"INFO", "WARNING", "ERROR", "CRITICAL"}
    created = json.loads(orders_run.response("create_order")["body"])
    [line] = [log for log in logs if log.get("message") == "Order created"]
    assert line["level"] == "INFO"
    assert line["order_id"] == created["order_id"]
    # The Lambda context comes from awslambdaric: Runtime API headers and Lambda's variables.
    assert line["function_name"] == function_name
    assert line["function_request_id"] == orders_run.request_id("create_order")
    assert line["function_arn"] == ACCOUNT_ARN + function_name
    assert line["cold_start"] is False
    [not_found] = [log for log in logs if log.get("message") == "Order not found"]
    assert not_found["cold_start"] is False  # The second event of the process.
    assert not_found["order_id"] == "ord-missing"
    assert not_found["function_request_id"] == orders_run.request_id("get_order_not_found")

    # Metrics, as CloudWatch embedded metric format, in the manifest's namespace: the cold
    # start once (the process served all events), and what create_order adds.
    namespace = manifest_env["POWERTOOLS_METRICS_NAMESPACE"]
    emf = orders_run.emf()
    assert {d["Namespace"] for blob in emf for d in blob["_aws"]["CloudWatchMetrics"]} == {
        namespace
    }
    cold_starts = [blob for blob in emf if "ColdStart" in blob]
    assert len(cold_starts) == 1 and emf[0] is cold_starts[0]
    assert cold_starts[0]["function_name"] == function_name
    assert cold_starts[0]["service"] == service
    [order_created] = [blob for blob in emf if "OrderCreated" in blob]
    assert order_created["OrderCreated"] == [1.0]
    assert order_created["OrderItems"] == [2.0]


def test_orders_api_is_traced_with_the_layers_xray_sdk(orders_run):
    """`tracing=True` puts POWERTOOLS_TRACE_DISABLED=false in the manifest; under Lambda's
    variables the Tracer then sends subsegments to the X-Ray daemon address, in the trace of
    each invocation's `Lambda-Runtime-Trace-Id`."""
    manifest_env = load_manifest(FUNCTIONS["orders_api"].artifact)["environment"]
    assert manifest_env["POWERTOOLS_TRACE_DISABLED"] == "false"
    handler_segments = [s for s in orders_run.stub.xray if s.get("name") == "## lambda_handler"]
    traces = {s["trace_id"] for s in handler_segments}
    expected = {
        trace_header(i.request_id).split(";")[0][len("Root=") :] for i in orders_run.invocations
    }
    assert traces == expected, orders_run.stub.xray[:3]
    created = json.loads(orders_run.response("create_order")["body"])
    annotated = [
        s
        for s in orders_run.stub.xray
        if s.get("annotations", {}).get("order_id") == created["order_id"]
    ]
    assert annotated, [s.get("name") for s in orders_run.stub.xray]


def test_orders_api_imports_come_from_task_layer_and_runtime(
    orders_run, ric_venv, layer, runtime_dir, workdir
):
    task = _task(workdir, "orders_api")
    origins = assert_isolated(orders_run, task, layer, runtime_dir, ric_venv)
    for module in ("lambda_function", "orders_api.app", "orders_api.models"):
        assert origins[module] == "task", module
    for module in (
        "aws_lambda_powertools",
        "pydantic",
        "pydantic_core._pydantic_core",
        "aws_xray_sdk",
        "typing_extensions",
    ):
        assert origins[module] == "layer", module
    # Powertools needs jmespath, which only the runtime provides (the layer leaves it out).
    assert origins["jmespath"] == "runtime-provided"
    assert origins["awslambdaric.bootstrap"] == "awslambdaric-venv"
    assert origins["runtime_client"] == "awslambdaric-venv"


# ---------------------------------------------------------------------------------------------
# sqs_batch (arm64 function ZIP, run with the x86_64 layer).
# ---------------------------------------------------------------------------------------------


def test_sqs_batch_reports_partial_batch_failures(sqs_run):
    assert_served_like_lambda(sqs_run)
    assert sqs_run.response("order_placed") == {"batchItemFailures": []}
    ids = sqs_message_ids("order_placed_batch")
    assert len(ids) == 5
    # Records 3-5 are bad: malformed JSON, schema-invalid, unknown SKU (see the event file).
    assert sqs_run.response("order_placed_batch") == {
        "batchItemFailures": [{"itemIdentifier": i} for i in ids[2:]]
    }
    # After a failed invocation the same process goes on serving.
    assert sqs_run.response("order_placed_again") == {"batchItemFailures": []}


def test_sqs_batch_error_event_is_posted_to_the_error_endpoint(sqs_run):
    request_id = sqs_run.request_id("all_failed")
    assert set(sqs_run.stub.errors) == {request_id}
    assert request_id not in sqs_run.stub.responses
    posted = sqs_run.stub.errors[request_id]
    error = posted.json()
    assert error["errorType"] == "BatchProcessingError"
    assert error["errorMessage"].startswith("All records failed processing.")
    assert error["requestId"] == request_id
    assert isinstance(error["stackTrace"], list) and error["stackTrace"]
    assert any(
        "lambda_function.py" in frame or "sqs_batch/app.py" in frame
        for frame in error["stackTrace"]
    ), error["stackTrace"]
    # The X-Ray error cause goes along in a header (awslambdaric 4.2.2 sends no error type one).
    cause = json.loads(posted.headers["lambda-runtime-function-xray-error-cause"])
    assert [e["type"] for e in cause["exceptions"]] == ["BatchProcessingError"]
    assert cause["working_directory"] == sqs_run.environment["LAMBDA_TASK_ROOT"]
    assert posted.headers["user-agent"].startswith("aws-lambda-python/3.12.")
    # awslambdaric logs it on stdout: its traceback one line, joined with \r and indented with
    # no-break spaces (the message itself keeps its own newlines).
    marker = "[ERROR] BatchProcessingError: %s\rTraceback (most recent call last):\r" % (
        error["errorMessage"]
    )
    assert sqs_run.stdout.count(marker) == 1
    trace = sqs_run.stdout.split(marker, 1)[1].split("\n", 1)[0]
    assert trace.startswith("\u00a0\u00a0File ") and "sqs_batch/app.py" in trace, trace


def test_sqs_batch_logs_structured_json(sqs_run):
    manifest_env = load_manifest(FUNCTIONS["sqs_batch"].artifact)["environment"]
    logs = sqs_run.logs()
    assert {log["service"] for log in logs} == {manifest_env["POWERTOOLS_SERVICE_NAME"]}
    ids = sqs_message_ids("order_placed_batch")
    reserved = [log for log in logs if log.get("message") == "Stock reserved"]
    assert [(log["message_id"], log["order_id"]) for log in reserved] == [
        (ids[0], "ord-2001"),  # order_placed.json (the same record)
        (ids[0], "ord-2001"),
        (ids[1], "ord-2002"),
        (ids[0], "ord-2001"),  # order_placed.json again, after the failed invocation
    ]
    assert [log["function_request_id"] for log in reserved] == [
        sqs_run.request_id(name)
        for name in (
            "order_placed",
            "order_placed_batch",
            "order_placed_batch",
            "order_placed_again",
        )
    ]
    summaries = [log for log in logs if log.get("message") == "Batch processed"]
    assert [(s["record_count"], s["failure_count"]) for s in summaries] == [(1, 0), (5, 3), (1, 0)]
    assert [s["cold_start"] for s in summaries] == [True, False, False]


def test_sqs_batch_imports_come_from_task_layer_and_runtime(
    sqs_run, ric_venv, layer, runtime_dir, workdir
):
    origins = assert_isolated(sqs_run, _task(workdir, "sqs_batch"), layer, runtime_dir, ric_venv)
    for module in ("lambda_function", "sqs_batch.app", "sqs_batch.fulfillment"):
        assert origins[module] == "task", module
    for module in ("aws_lambda_powertools.utilities.batch", "pydantic_core._pydantic_core"):
        assert origins[module] == "layer", module


# ---------------------------------------------------------------------------------------------
# Without the layer, and the arm64 artifacts.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_without_the_layer_init_fails_with_import_module_error(
    name, ric_venv, launcher, workdir, runtime_dir
):
    """The function ZIP relies on its layer (it does not bundle Powertools), even with
    everything the runtime provides on the path: Lambda reports an init error."""
    function = FUNCTIONS[name]
    event = sorted(events_dir(name).glob("*.json"))[0]
    run = run_under_ric(
        ric_venv,
        launcher,
        workdir,
        name + "-nolayer",
        load_manifest(function.artifact),
        _task(workdir, name),
        None,
        runtime_dir,
        [(event.stem, event.read_bytes())],
    )
    assert len(run.stub.init_errors) == 1, run.describe()
    posted = run.stub.init_errors[0]
    error = posted.json()
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert error["errorMessage"] == (
        "Unable to import module 'lambda_function': No module named 'aws_lambda_powertools'"
    )
    assert posted.headers.get("lambda-runtime-function-error-type") == "Runtime.ImportModuleError"
    # The runtime exits by itself (status 1) after the init error, without asking for events.
    assert run.exit_code == 1, run.describe()
    assert run.stub.next_requests == 0 and run.stub.answered() == 0
    assert run.stub.unexpected == []
    assert "[ERROR] Runtime.ImportModuleError: Unable to import module" in run.stdout
    origins = assert_isolated(run, _task(workdir, name), None, runtime_dir, ric_venv)
    assert "aws_lambda_powertools" not in origins
    assert "pydantic" not in origins


@pytest.mark.parametrize(
    "rel",
    [LAYER_ZIPS["arm64"]] + [f.artifact for f in FUNCTIONS.values() if f.architecture == "arm64"],
)
def test_arm64_native_code_is_aarch64(rel):
    """What could not be run here: every ELF file of an arm64 artifact is an AArch64 shared
    object named `.so` (a function ZIP that is run above with the x86_64 layer has none)."""
    with zipfile.ZipFile(str(artifact(rel))) as zf:
        assert native_code_problems(zf, "arm64") == {}
        shared_objects = [n for n in zf.namelist() if n.endswith(".so")]
        if rel == LAYER_ZIPS["arm64"]:
            assert any("pydantic_core" in n for n in shared_objects), shared_objects
            assert set(elf_entries(zf)) == set(shared_objects)
        else:
            assert shared_objects == [] and elf_entries(zf) == {}


# ---------------------------------------------------------------------------------------------
# greeter_py313: the python3.13 x86_64 function without layers, under CPython 3.13.
# ---------------------------------------------------------------------------------------------

PY313_EVENTS = ["hello", "hello_greeting"]


@pytest.fixture(scope="module")
def python313() -> str:
    python, tried = find_runtime_python(PY313_VERSION)
    if python is None:
        pytest.skip(
            "no CPython %d.%d (the %s runtime's version) found, so the python3.13 function "
            "cannot be run; tried: %s. Install one, e.g. `pyenv install %d.%d`."
            % (PY313_VERSION + (PY313_RUNTIME, "; ".join(tried)) + PY313_VERSION)
        )
    return python


@pytest.fixture(scope="module")
def installed313(python313, workdir) -> Tuple[RicVenv, Path]:
    """awslambdaric's venv for CPython 3.13, and what the python3.13 runtime provides that the
    function ZIP (which has no layers) leaves out, installed for CPython 3.13."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        ric = pool.submit(install_ric_venv, python313, workdir / "ric-venv-py313")
        runtime = pool.submit(
            install_runtime_provided,
            python313,
            artifact(PY313_FUNCTION.artifact),
            workdir / "runtime-provided-py313",
            "",
        )
        return ric.result(), runtime.result()


@pytest.fixture(scope="module")
def py313_task(workdir) -> Path:
    task = workdir / "task-greeter_py313"
    if not task.is_dir():
        extract(artifact(PY313_FUNCTION.artifact), task)
    return task


@pytest.fixture(scope="module")
def py313_run(installed313, launcher, workdir, py313_task) -> RicRun:
    ric_venv313, runtime_dir313 = installed313
    function = PY313_FUNCTION
    assert function.architecture == "x86_64"
    manifest = load_manifest(function.artifact)
    assert manifest["runtime"] == PY313_RUNTIME and manifest["layers"] == []
    with zipfile.ZipFile(str(artifact(function.artifact))) as zf:
        assert native_code_problems(zf, "x86_64") == {}
    return run_under_ric(
        ric_venv313,
        launcher,
        workdir,
        "greeter_py313",
        manifest,
        py313_task,
        None,
        runtime_dir313,
        [_event("greeter_py313", name) for name in PY313_EVENTS],
        record_task_opens=True,
    )


def test_py313_runs_under_cpython313_and_answers(py313_run):
    assert_served_like_lambda(py313_run)
    assert py313_run.modules is not None, py313_run.describe()
    assert py313_run.modules["version"][:2] == list(PY313_VERSION)
    assert py313_run.modules["cache_tag"] == pyc_cache_tag(PY313_VERSION)

    hello = py313_run.response("hello")
    assert hello["statusCode"] == 200
    body = json.loads(hello["body"])
    # The handler reports the interpreter it ran on.
    assert body == {
        "message": "Hello, Ada!",
        "runtime": PY313_RUNTIME,
        "cache_tag": pyc_cache_tag(PY313_VERSION),
    }
    greeting = py313_run.response("hello_greeting")
    assert greeting["statusCode"] == 200
    assert json.loads(greeting["body"])["message"] == "Bonjour, Grace!"
    assert py313_run.stub.errors == {}
    # awslambdaric names the runtime's Python in its User-Agent.
    posted = py313_run.stub.responses[py313_run.request_id("hello")]
    assert posted.headers["user-agent"].startswith("aws-lambda-python/3.13."), posted.headers


def test_py313_logs_structured_json(py313_run):
    manifest_env = load_manifest(PY313_FUNCTION.artifact)["environment"]
    logs = py313_run.logs()
    assert logs, py313_run.describe()
    assert {log["service"] for log in logs} == {manifest_env["POWERTOOLS_SERVICE_NAME"]}
    greetings = [log for log in logs if log.get("message") == "Greeting"]
    assert [(log["greeted"], log["greeting"]) for log in greetings] == [
        ("Ada", "Hello"),
        ("Grace", "Bonjour"),
    ]
    assert [log["function_request_id"] for log in greetings] == [
        py313_run.request_id(name) for name in PY313_EVENTS
    ]
    assert [log["cold_start"] for log in greetings] == [True, False]
    # The API Gateway request id, as the correlation id (correlation_paths.API_GATEWAY_REST).
    events = [
        json.loads((events_dir("greeter_py313") / (name + ".json")).read_bytes())
        for name in PY313_EVENTS
    ]
    assert [log["correlation_id"] for log in greetings] == [
        e["requestContext"]["requestId"] for e in events
    ]


def test_py313_imports_come_from_the_task_and_use_the_shipped_pyc(
    py313_run, installed313, py313_task
):
    """Powertools and its dependencies come from the function ZIP itself (no layer), jmespath
    from what the runtime provides; and every module imported from the task folder was loaded
    from its shipped CPython 3.13 .pyc: the process opened that .pyc and never its .py (an
    unchecked-hash .pyc is used without reading the source; a missing, stale or
    wrong-version one would have made CPython compile the .py)."""
    ric_venv313, runtime_dir313 = installed313
    origins = assert_isolated(py313_run, py313_task, None, runtime_dir313, ric_venv313)
    for module in (
        "lambda_function",
        "greeter_py313.app",
        "aws_lambda_powertools",
        "aws_lambda_powertools.logging.logger",
        "aws_lambda_powertools.event_handler.api_gateway",
        "typing_extensions",
    ):
        assert origins[module] == "task", module
    assert origins["jmespath"] == "runtime-provided"
    assert origins["awslambdaric.bootstrap"] == "awslambdaric-venv"

    record = py313_run.modules
    assert record is not None
    assert record["check_hash_based_pycs"] == "default"  # As in Lambda.
    assert record["dont_write_bytecode"]  # -B: nothing it imports could be cached anew.
    opened = set(record["opened"])
    assert [path for path in opened if path.endswith(".py")] == []
    tag = pyc_cache_tag(PY313_VERSION)
    from_task = {
        name: path
        for name, path in record["modules"].items()
        if origins.get(name) == "task" and path and path.endswith(".py")
    }
    assert len(from_task) > 50, sorted(from_task)
    not_from_pyc = {}
    for name, source in sorted(from_task.items()):
        folder, module_file = os.path.split(source)
        pyc = os.path.join(folder, "__pycache__", "%s.%s.pyc" % (module_file[:-3], tag))
        if pyc not in opened:
            not_from_pyc[name] = source
    assert not_from_pyc == {}
    # Nothing was written to the task folder: its files are exactly the ZIP's.
    with zipfile.ZipFile(str(artifact(PY313_FUNCTION.artifact))) as zf:
        shipped = {n.rstrip("/") for n in zf.namelist()}
    on_disk = {str(p.relative_to(py313_task)) for p in py313_task.rglob("*")}
    assert on_disk == shipped


# ---------------------------------------------------------------------------------------------
# handler_forms: handlers the build's static check cannot see through (a star import and a
# callable object), x86_64 python3.12 without layers and without third-party code.
# ---------------------------------------------------------------------------------------------

# {target name: (its ZIP, the handler's module path, what the handler says it is)}
HANDLER_FORMS = {
    "star": ("src.handler_forms/star.zip", "handler_forms.star.handler", "star-import"),
    "callable": (
        "src.handler_forms/callable.zip",
        "handler_forms.callable_obj.handler",
        "callable-object",
    ),
}
HANDLER_FORMS_EVENTS = ["ada", "anonymous"]
HANDLER_FORMS_VERSION = (3, 12)  # CPython of RUNTIME (python3.12)


@pytest.fixture(scope="module", params=sorted(HANDLER_FORMS))
def handler_form_run(request, ric_venv, launcher, workdir, runtime_dir) -> Tuple[str, Path, RicRun]:
    name = request.param
    zip_rel, source_handler, _form = HANDLER_FORMS[name]
    manifest = load_manifest(zip_rel)
    assert manifest["runtime"] == RUNTIME and manifest["architectures"] == ["x86_64"]
    assert manifest["layers"] == [] and manifest["distributions"] == {}
    assert manifest["source_handler"] == source_handler
    task = workdir / ("task-handler_forms-" + name)
    if not task.is_dir():
        extract(artifact(zip_rel), task)
    run = run_under_ric(
        ric_venv,
        launcher,
        workdir,
        "handler_forms-" + name,
        manifest,
        task,
        None,
        runtime_dir,
        [_event("handler_forms", event) for event in HANDLER_FORMS_EVENTS],
        record_task_opens=True,
    )
    return name, task, run


def test_handler_forms_run_under_awslambdaric(handler_form_run) -> None:
    name, _task_dir, run = handler_form_run
    form = HANDLER_FORMS[name][2]
    assert_served_like_lambda(run)
    assert run.stub.errors == {}
    assert run.modules is not None, run.describe()
    assert run.modules["version"][:2] == list(HANDLER_FORMS_VERSION)
    ada = run.response("ada")
    anonymous = run.response("anonymous")
    expected_ada = {
        "message": "Hello, Ada!",
        "form": form,
        "request_id": run.request_id("ada"),
        "runtime": RUNTIME,
    }
    expected_anonymous = dict(
        expected_ada, message="Hello, world!", request_id=run.request_id("anonymous")
    )
    if name == "callable":
        # One instance serves every invocation of the execution environment: its state stays.
        expected_ada["calls"], expected_anonymous["calls"] = 1, 2
    assert (ada, anonymous) == (expected_ada, expected_anonymous)
    posted = run.stub.responses[run.request_id("ada")]
    assert posted.headers["user-agent"].startswith("aws-lambda-python/3.12."), posted.headers


def test_handler_forms_import_only_the_task_and_use_the_shipped_pyc(
    handler_form_run, ric_venv, runtime_dir
) -> None:
    """The handler's module (and, for the star import, the module it re-exports from) came from
    the task folder, nothing third-party was imported, and every module imported from the task
    was loaded from its shipped CPython 3.12 .pyc (its .py was never opened)."""
    name, task, run = handler_form_run
    origins = assert_isolated(run, task, None, runtime_dir, ric_venv)
    expected = {"lambda_function", "handler_forms", HANDLER_FORMS[name][1].rpartition(".")[0]}
    if name == "star":
        expected.add("handler_forms.impl")  # Bound only through the star import.
    assert {m for m, o in origins.items() if o == "task"} == expected
    others = {o for m, o in origins.items() if o != "task" and m != "__main__"}
    assert others <= {"stdlib", "built-in", "awslambdaric-venv"}, others
    assert run.modules is not None
    opened = set(run.modules["opened"])
    assert [path for path in opened if path.endswith(".py")] == []
    tag = pyc_cache_tag(HANDLER_FORMS_VERSION)
    for module in sorted(expected):
        folder, module_file = os.path.split(run.modules["modules"][module])
        pyc = os.path.join(folder, "__pycache__", "%s.%s.pyc" % (module_file[:-3], tag))
        assert pyc in opened, (module, sorted(opened))
