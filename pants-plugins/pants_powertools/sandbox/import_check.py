"""Imports a packaged Lambda function the way Lambda's Python runtime does, in a fresh interpreter.

Runs as a script inside one sandboxed Pants `Process` (see `goals/check.py`) under a CPython of
the runtime's minor version, so it imports nothing but the stdlib and keeps to CPython 3.9
syntax. The rule writes a JSON request and reads back a JSON report.

Why a second interpreter: the import must see only what Lambda would see. The child runs with
`-I -S` (no host site-packages, no PYTHON* variables), `-B` (it writes no bytecode, so the
sandbox stays clean and a recompiled module cannot hide behind a fresh `.pyc`) and
`-X importtime` (where the cold start goes). Its `sys.path` is Lambda's: the task root, then the
layers' `python/lib/python3.X/site-packages` and `python` (through `site.addsitedir`, so `.pth`
files load), the interpreter's stdlib, then the stand-in for what the runtime (and AWS's public
layer) provide.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

# Where Lambda puts things; shown instead of the scratch directories in messages.
LAMBDA_TASK_ROOT = "/var/task"
LAMBDA_OPT = "/opt"
LAMBDA_RUNTIME_DIR = "/var/runtime"

# The child's code is compiled under this name, so its frames can be left out of tracebacks.
CHILD_FILENAME = "<lambda runtime bootstrap>"
_BEGIN = "\x00import-check: begin"
_END = "\x00import-check: end"
_PYC = re.compile(r"(^|/)__pycache__/[^/]+\.cpython-3\d+(\.opt-\d)?\.pyc$")
_IMPORT_TIME = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)\s*$")
# PEP 552 flags word of a .pyc: bit 0 = hash-based.
_PYC_HASH_BASED = 0b01
_MAX_FRAMES = 6
_MAX_LISTED = 10

# A fresh interpreter's `-c` program: Lambda's bootstrap, reduced to what decides an import.
# It imports as little as it can before the handler (the rest would look free in -X importtime)
# and writes its findings as JSON to argv[1].
CHILD = r'''
import sys


def _bootstrap():
    import site
    from time import perf_counter

    result_path, handler, task_root, provided = sys.argv[1:5]
    provided = provided.split(":") if provided else []
    site_dirs = sys.argv[5:]
    # Lambda: task root first, then the layers (with their .pth files), then the interpreter's
    # own paths, then the runtime's boto3 & co. addsitedir appends, with the stdlib still on the
    # path for the .pth files' import lines; the result is then put in Lambda's order.
    interpreter_paths = list(sys.path)
    for site_dir in site_dirs:
        site.addsitedir(site_dir)
    layer_paths = [p for p in sys.path if p not in interpreter_paths]
    sys.path[:] = [task_root, *layer_paths, *interpreter_paths, *provided]

    # Every module compiled from source instead of loaded from its .pyc passes through here.
    loader = sys.modules["_frozen_importlib_external"].SourceLoader
    compile_source = loader.source_to_code
    recompiled = []

    def source_to_code(self, data, path, *, _optimize=-1):
        recompiled.append(path)
        return compile_source(self, data, path, _optimize=_optimize)

    loader.source_to_code = source_to_code

    module_name, _, attribute = handler.rpartition(".")
    module_name = module_name.replace("/", ".")
    error = None
    sys.stderr.write("\x00import-check: begin\n")
    sys.stderr.flush()
    started = perf_counter()
    try:
        __import__(module_name)
        target = getattr(sys.modules[module_name], attribute)
    except BaseException as e:  # SystemExit and KeyboardInterrupt at import fail Lambda too.
        error = e
    seconds = perf_counter() - started
    sys.stderr.write("\x00import-check: end\n")
    sys.stderr.flush()

    import inspect
    import json
    import traceback

    origins = sorted(
        {
            m.__spec__.origin
            for m in list(sys.modules.values())
            if getattr(m, "__spec__", None) is not None and m.__spec__.has_location
        }
    )
    result = {
        "seconds": seconds,
        "recompiled": recompiled,
        "origins": origins,
        "error": None,
        "problem": None,
        "defined_in": None,
    }
    if error is not None:
        frames = [
            [f.filename, f.lineno, f.name, f.line or ""]
            for f in traceback.extract_tb(error.__traceback__)
            if f.filename != "<lambda runtime bootstrap>"
            and not f.filename.startswith("<frozen importlib")
        ]
        result["error"] = {
            "type": type(error).__name__,
            "message": "".join(traceback.format_exception_only(type(error), error)).strip(),
            "frames": frames,
        }
    else:
        result["problem"] = _handler_problem(inspect, handler, target)
        result["defined_in"] = getattr(target, "__module__", None)
    with open(result_path, "w", encoding="utf-8") as f:
        json.dump(result, f)


def _handler_problem(inspect, handler, target):
    """Why Lambda could not call `target` as `handler(event, context)`, or None."""
    if isinstance(target, type):
        return (
            f"{handler} is the class {target.__name__}: Lambda would create an instance per event "
            "and fail to return it as JSON; export a function"
        )
    if not callable(target):
        return f"{handler} is not callable (a {type(target).__name__} object); export a function"
    call = target if inspect.isroutine(target) else getattr(target, "__call__", target)
    for candidate in (target, call):
        if inspect.iscoroutinefunction(candidate) or inspect.isasyncgenfunction(candidate):
            return (
                f"{handler} is an async function: Lambda's Python runtime calls it without "
                "awaiting it and returns a coroutine; wrap it in a plain function that runs "
                "asyncio.run(...)"
            )
    try:
        inspect.signature(target).bind(None, None)
    except TypeError as e:
        return f"{handler} cannot be called as handler(event, context): {e}"
    except ValueError:  # No signature to read (some builtins): nothing to say.
        pass
    return None


_bootstrap()
'''


class ImportCheckError(Exception):
    """The request cannot be checked (a bad input, not a failing function)."""


@dataclass(frozen=True)
class CheckRequest:
    function_zip: str
    layer_zips: Tuple[str, ...]  # In Lambda's order: later layers overwrite earlier ones.
    provided_zips: Tuple[str, ...]  # What the runtime (and AWS's public layer) provide.
    handler: str
    function_name: str
    environment: Mapping[str, str]
    scratch: str
    # The same, already extracted and compiled by `prepare_runtime` (a cached step of its own).
    provided_dirs: Tuple[str, ...] = ()
    timeout_seconds: float = 60.0
    slowest: int = 5

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "CheckRequest":
        return cls(
            function_zip=data["function_zip"],
            layer_zips=tuple(data.get("layer_zips", ())),
            provided_zips=tuple(data.get("provided_zips", ())),
            provided_dirs=tuple(data.get("provided_dirs", ())),
            handler=data["handler"],
            function_name=data.get("function_name", "import-check"),
            environment=dict(data.get("environment", {})),
            scratch=data["scratch"],
            timeout_seconds=float(data.get("timeout_seconds", 60.0)),
            slowest=int(data.get("slowest", 5)),
        )


@dataclass
class CheckReport:
    python: str
    ok: bool = True
    import_ms: Optional[int] = None
    slowest: List[Tuple[str, int]] = field(default_factory=list)
    failures: List[str] = field(default_factory=list)
    bytecode_checked: bool = False
    modules_from_bytecode: int = 0

    def fail(self, message: str) -> None:
        self.ok = False
        self.failures.append(message)

    def to_json(self) -> Dict[str, Any]:
        return {
            "python": self.python,
            "ok": self.ok,
            "import_ms": self.import_ms,
            "slowest": [list(pair) for pair in self.slowest],
            "failures": self.failures,
            "bytecode_checked": self.bytecode_checked,
            "modules_from_bytecode": self.modules_from_bytecode,
        }


@dataclass
class _Tree:
    """Extracted ZIPs: which ZIP wrote each file last, and which ZIPs ship bytecode."""

    owner: Dict[str, str] = field(default_factory=dict)  # normalized path -> ZIP
    with_bytecode: Set[str] = field(default_factory=set)

    def extract(self, zip_path: str, dest: str) -> None:
        try:
            with zipfile.ZipFile(zip_path) as zf:
                names = [info.filename for info in zf.infolist() if not info.is_dir()]
                zf.extractall(dest)
        except (OSError, zipfile.BadZipFile) as e:
            raise ImportCheckError(f"cannot extract {zip_path}: {e}")
        if any(_PYC.search(name) for name in names):
            self.with_bytecode.add(zip_path)
        for name in names:
            self.owner[os.path.normpath(os.path.join(dest, name))] = zip_path

    def ships_bytecode_for(self, source_path: str) -> bool:
        return self.owner.get(os.path.normpath(source_path)) in self.with_bytecode


@dataclass(frozen=True)
class _Layout:
    """The scratch directories that stand for /var/task, /opt and /var/runtime."""

    task_root: str
    opt: str
    provided: str
    runtime_dir: str
    provided_dirs: Tuple[str, ...] = ()

    def runtime_paths(self, extracted: bool) -> List[str]:
        """What comes after the stdlib on `sys.path`: the runtime's own libraries."""
        return [*((self.provided,) if extracted else ()), *self.provided_dirs]

    def _mapping(self) -> List[Tuple[str, str]]:
        return [
            (self.task_root, LAMBDA_TASK_ROOT),
            (self.opt, LAMBDA_OPT),
            (self.provided, LAMBDA_RUNTIME_DIR),
            *((d, LAMBDA_RUNTIME_DIR) for d in self.provided_dirs),
        ]

    @classmethod
    def under(cls, scratch: str, provided_dirs: Sequence[str] = ()) -> "_Layout":
        root = os.path.abspath(scratch)
        return cls(
            os.path.join(root, "task"),
            os.path.join(root, "opt"),
            os.path.join(root, "provided"),
            os.path.join(root, "runtime"),
            tuple(os.path.abspath(d) for d in provided_dirs),
        )

    def site_dirs(self) -> Tuple[str, str]:
        minor = "{}.{}".format(*sys.version_info[:2])
        return (
            os.path.join(self.opt, "python", "lib", f"python{minor}", "site-packages"),
            os.path.join(self.opt, "python"),
        )

    def lambda_path(self, path: str) -> str:
        """A scratch path as Lambda would show it."""
        for local, remote in self._mapping():
            if path == local or path.startswith(local + os.sep):
                return remote + path[len(local) :].replace(os.sep, "/")
        return path

    def lambda_text(self, text: str) -> str:
        for local, remote in self._mapping():
            text = text.replace(local, remote)
        return text


def lambda_environment(request: CheckRequest, layout: _Layout, config_dir: str) -> Dict[str, str]:
    """The variables Lambda sets for a function (a fresh environment, nothing inherited), with
    fake credentials so botocore clients construct at import. AWS_EXECUTION_ENV,
    AWS_LAMBDA_INITIALIZATION_TYPE and _LAMBDA_TELEMETRY_LOG_FD stay unset: they change what
    runtime libraries do."""
    name = request.function_name
    env = {
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2024/01/01/[$LATEST]00000000000000000000000000000000",
        "AWS_ACCESS_KEY_ID": "ASIAIMPORTCHECK00000",
        "AWS_SECRET_ACCESS_KEY": "import-check-fake-secret-access-key-000000",
        "AWS_SESSION_TOKEN": "import-check-fake-session-token",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        # Keep botocore off the build machine's ~/.aws and off the instance metadata service.
        "AWS_CONFIG_FILE": os.path.join(config_dir, "config"),
        "AWS_SHARED_CREDENTIALS_FILE": os.path.join(config_dir, "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "LAMBDA_TASK_ROOT": layout.task_root,
        "LAMBDA_RUNTIME_DIR": layout.runtime_dir,
        "_HANDLER": request.handler,
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LD_LIBRARY_PATH": os.pathsep.join(
            [
                layout.task_root,
                os.path.join(layout.task_root, "lib"),
                os.path.join(layout.opt, "lib"),
            ]
        ),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.update(request.environment)
    env.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    return env


def parse_import_times(stderr: str) -> Tuple[List[Tuple[str, int]], str]:
    """(module, cumulative µs) imported while the handler loaded, and the rest of stderr."""
    times: List[Tuple[str, int]] = []
    other: List[str] = []
    inside = False
    for line in stderr.splitlines():
        if line == _BEGIN:
            inside = True
            continue
        if line == _END:
            inside = False
            continue
        match = _IMPORT_TIME.match(line)
        if match:
            if inside:
                times.append((match.group(4), int(match.group(2))))
            continue
        if not line.startswith("import time: self"):
            other.append(line)
    return times, "\n".join(other).strip()


def slowest_modules(
    times: Sequence[Tuple[str, int]], handler_modules: Sequence[str], count: int
) -> List[Tuple[str, int]]:
    """The `count` slowest imports by cumulative time, in ms, without the handler's own modules
    (the re-export and where the function is defined), whose time is the whole import's."""
    ranked = sorted(
        ((name, us) for name, us in times if name not in handler_modules),
        key=lambda t: (-t[1], t[0]),
    )
    return [(name, int(round(us / 1000))) for name, us in ranked[:count]]


def _pyc_reason(source_path: str) -> str:
    """Why the running interpreter compiled `source_path` instead of loading its .pyc."""
    cached = importlib.util.cache_from_source(source_path)
    if not os.path.exists(cached):
        pycache = os.path.dirname(cached)
        stem = os.path.splitext(os.path.basename(source_path))[0] + "."
        others = sorted(
            n for n in (os.listdir(pycache) if os.path.isdir(pycache) else ()) if n.startswith(stem)
        )
        if others:
            return f"only {', '.join(others)}, none for {sys.implementation.cache_tag}"
        return "no .pyc shipped"
    with open(cached, "rb") as f:
        header = f.read(16)
    if header[:4] != importlib.util.MAGIC_NUMBER:
        return "its .pyc was compiled by another Python version"
    if not int.from_bytes(header[4:8], "little") & _PYC_HASH_BASED:
        return "its .pyc is timestamp-based, invalid once extracted from a ZIP"
    return "its .pyc does not match the source"


def _describe_error(error: Mapping[str, Any], module: str, layout: _Layout) -> str:
    """The exception as a short traceback: Lambda's paths, the last frames, no bootstrap."""
    lines = [f"importing {module} failed:"]
    for filename, lineno, name, text in error["frames"][-_MAX_FRAMES:]:
        lines.append(f'    File "{layout.lambda_path(filename)}", line {lineno}, in {name}')
        if text:
            lines.append(f"      {text}")
    lines.extend(f"  {line}" for line in layout.lambda_text(error["message"]).splitlines())
    return "\n".join(lines)


def run_check(request: CheckRequest) -> CheckReport:
    """Extract the ZIPs as Lambda would, import the handler in a fresh interpreter, report."""
    report = CheckReport(python="{}.{}.{}".format(*sys.version_info[:3]))
    layout = _Layout.under(request.scratch, request.provided_dirs)
    for path in (layout.task_root, layout.opt, layout.provided, layout.runtime_dir):
        os.makedirs(path, exist_ok=True)
    tree = _Tree()
    tree.extract(request.function_zip, layout.task_root)
    for layer in request.layer_zips:
        tree.extract(layer, layout.opt)
    for provided in request.provided_zips:
        # Extracted, not zipimported: botocore reads its service models from the file system.
        _Tree().extract(provided, layout.provided)

    root = os.path.dirname(layout.task_root)
    result_path = os.path.join(root, "result.json")
    argv = [
        sys.executable,
        "-I",
        "-S",
        "-B",
        "-X",
        "importtime",
        "-c",
        compile_child(),
        result_path,
        request.handler,
        layout.task_root,
        ":".join(layout.runtime_paths(extracted=bool(request.provided_zips))),
        *layout.site_dirs(),
    ]
    try:
        child = subprocess.run(
            argv,
            cwd=layout.task_root,
            env=lambda_environment(request, layout, os.path.join(root, "aws")),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=request.timeout_seconds,
        )
    except subprocess.TimeoutExpired:
        report.fail(
            f"importing {request.handler} took longer than {request.timeout_seconds:g} s "
            "(Lambda's init phase allows 10 s); is the module waiting on the network?"
        )
        return report
    stderr = child.stderr.decode("utf-8", errors="replace")
    times, other_stderr = parse_import_times(stderr)
    if not os.path.exists(result_path):
        tail = "\n".join(
            (other_stderr or child.stdout.decode("utf-8", errors="replace")).splitlines()[-10:]
        )
        report.fail(
            f"the interpreter exited with code {child.returncode} while importing "
            f"{request.handler}" + (f":\n{layout.lambda_text(tail)}" if tail else "")
        )
        return report
    with open(result_path, encoding="utf-8") as f:
        result = json.load(f)

    module_name = request.handler.rpartition(".")[0].replace("/", ".")
    report.import_ms = int(round(result["seconds"] * 1000))
    report.slowest = slowest_modules(
        times, [module_name, result.get("defined_in") or module_name], request.slowest
    )
    if result["error"] is not None:
        report.fail(_describe_error(result["error"], module_name, layout))
    elif result["problem"]:
        report.fail(result["problem"])

    report.bytecode_checked = bool(tree.with_bytecode)
    if report.bytecode_checked:
        recompiled = sorted({p for p in result["recompiled"] if tree.ships_bytecode_for(p)})
        report.modules_from_bytecode = sum(
            1
            for origin in result["origins"]
            if origin.endswith(".py") and tree.ships_bytecode_for(origin)
        ) - len(recompiled)
        if recompiled:
            listed = [
                f"{layout.lambda_path(p)} ({_pyc_reason(p)})" for p in recompiled[:_MAX_LISTED]
            ]
            more = len(recompiled) - _MAX_LISTED
            report.fail(
                "shipped .pyc not used for: "
                + ", ".join(listed)
                + (f", and {more} more" if more > 0 else "")
            )
    return report


def prepare_runtime(zips: Sequence[str], dest: str, workers: int = 1) -> None:
    """Extract the stand-in for the runtime's libraries and compile it, as the runtime's own
    libraries are: imported from source, botocore alone would add seconds to the measured
    import. Its own cached step, so a code edit re-extracts none of it."""
    import compileall
    import py_compile

    tree = _Tree()
    for path in zips:
        tree.extract(path, dest)
    compileall.compile_dir(
        dest,
        ddir=LAMBDA_RUNTIME_DIR,
        quiet=2,
        workers=workers,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )


def compile_child() -> str:
    """The child's program; `compile` with a recognizable name happens in the child."""
    return f"exec(compile({CHILD!r}, {CHILD_FILENAME!r}, 'exec'))"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """`import_check.py REQUEST.json REPORT.json`: exit 0 when the function imports cleanly, 1
    when it does not (the report says why), 2 when the request itself is unusable."""
    parser = argparse.ArgumentParser(prog="import_check.py", description=__doc__)
    parser.add_argument("request", nargs="?", help="The JSON request written by the rule.")
    parser.add_argument("report", nargs="?", help="Where to write the JSON report.")
    parser.add_argument(
        "--prepare-runtime",
        nargs="+",
        metavar=("DEST", "ZIP"),
        help="Instead of checking, extract and compile the runtime stand-in ZIPs into DEST.",
    )
    parser.add_argument("--workers", type=int, default=1, help="Processes that compile.")
    args = parser.parse_args(argv)
    if args.prepare_runtime:
        dest, *zips = args.prepare_runtime
        try:
            prepare_runtime(zips, dest, max(1, args.workers))
        except (ImportCheckError, OSError) as e:
            print(f"import check: {e}", file=sys.stderr)
            return 2
        return 0
    if not (args.request and args.report):
        parser.error("REQUEST and REPORT are required")
    try:
        with open(args.request, encoding="utf-8") as f:
            request = CheckRequest.from_json(json.load(f))
        report = run_check(request)
    except (ImportCheckError, OSError, KeyError, ValueError) as e:
        print(f"import check: {e}", file=sys.stderr)
        return 2
    with open(args.report, "w", encoding="utf-8") as f:
        json.dump(report.to_json(), f, indent=2, sort_keys=True)
        f.write("\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
