"""Bytecode for Lambda: PEP 552 unchecked-hash `.pyc`, valid whatever timestamps extraction gives
files, compiled by the runtime's CPython for `lambda_zip.py` in the same sandbox.

Stdlib only, CPython 3.9 syntax. Also run as a script (`bytecode.py --compile-shard FILE`) by
`compile_all`, so that each shard is compiled by a fresh interpreter.
"""

from __future__ import annotations

import importlib.util
import json
import os
import posixpath
import py_compile
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Protocol, Sequence, Tuple

# PEP 552 flags word of a .pyc: bit 0 = hash-based, bit 1 = check_source.
_PYC_HASH_BASED = 0b01
_PYC_HEADER_SIZE = 16
# Bytecode is compiled in up to this many child processes, one per this many modules.
_MAX_SHARDS = 4
_JOBS_PER_SHARD = 200


class BytecodeError(Exception):
    """Bytecode that cannot be compiled reproducibly; shown to the user as it is."""


class Item(Protocol):
    """A file of the ZIP being written: its bytes on demand."""

    def read(self) -> bytes:
        ...


# (relative path, source file, .pyc to write, the code's filename as Lambda will see it)
Job = Tuple[str, str, str, str]


@dataclass(frozen=True)
class CompileFailure:
    path: str
    line: Optional[int]
    message: str

    def describe(self) -> str:
        where = f"{self.path}, line {self.line}" if self.line else self.path
        return f"{where}: {self.message}"


def pyc_tag_path(rel_source: str) -> str:
    """`a/b.py` -> `a/__pycache__/b.cpython-3XY.pyc` for the running interpreter, no opt tag."""
    return importlib.util.cache_from_source(rel_source, optimization="").replace(os.sep, "/")


def _compile_one(job: Job) -> Optional[CompileFailure]:
    """Compile one file; None on success. Top-level, so worker processes can run it."""
    rel, source, cfile, dfile = job
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Invalid-escape warnings etc. are the library's business.
        try:
            py_compile.compile(
                source,
                cfile=cfile,
                dfile=dfile,
                doraise=True,
                optimize=0,  # Lambda runs without -O, so it looks for the untagged .pyc.
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            )
        except py_compile.PyCompileError as e:
            error = e.exc_value
            if isinstance(error, SyntaxError):
                return CompileFailure(rel, error.lineno, f"{type(error).__name__}: {error.msg}")
            return CompileFailure(rel, None, f"{e.exc_type_name}: {error}")
    return None


def _check_hash_seed() -> None:
    """Before CPython 3.11, marshal writes frozenset constants (`x in {"a", "b"}`) in hash
    order, which string-hash randomization changes from run to run; 3.11+ writes them sorted.
    The Process sets PYTHONHASHSEED=0; refuse to write unstable bytes without it."""
    if sys.version_info < (3, 11) and sys.flags.hash_randomization:
        raise BytecodeError(
            "Bytecode compiled by CPython < 3.11 depends on the hash seed: run with "
            "PYTHONHASHSEED=0."
        )


# CPython 3.11+ stores each instruction's end line and columns in code objects, for the `^^^^`
# under the failing expression in tracebacks: about a fifth of a .pyc's zipped size. Compiled
# under this flag, a module keeps its line numbers (tracebacks still name the file and line and
# show the source line from the shipped .py), and any interpreter loads it. Earlier versions
# have no such tables.
_NO_COLUMNS: Tuple[str, ...] = ("-X", "no_debug_ranges") if sys.version_info >= (3, 11) else ()


def _shards(jobs: Sequence[int]) -> List[Sequence[int]]:
    """Contiguous slices, their number a function of the job count alone (never of the cores)."""
    count = min(_MAX_SHARDS, max(1, len(jobs) // _JOBS_PER_SHARD))
    size = -(-len(jobs) // count) if jobs else 0
    return [jobs[i : i + size] for i in range(0, len(jobs), size)] if jobs else []


def compile_all(
    jobs: Sequence[Job], workers: int, columns: Optional[Sequence[bool]] = None
) -> List[Optional[CompileFailure]]:
    """Compile in fresh child processes, `workers` at a time; one result per job, in order.

    `columns[i]` says whether job i keeps column positions (all do when `columns` is None):
    jobs without them are compiled by children started with `-X no_debug_ranges`.

    marshal marks objects by reference count, so a .pyc's bytes depend on what the compiling
    process did before (seen: the first modules a pool worker compiles differ). Each shard is
    therefore compiled by a new interpreter, and the shards depend only on the job list: the
    bytes are the same for any number of cores.
    """
    _check_hash_seed()
    keep = [True] * len(jobs) if columns is None else list(columns)
    if len(keep) != len(jobs):
        raise ValueError("compile_all: one `columns` entry per job")
    shards: List[Tuple[bool, Sequence[int]]] = []
    for with_columns in (True, False):
        indices = [i for i in range(len(jobs)) if keep[i] == with_columns]
        shards.extend((with_columns, shard) for shard in _shards(indices))
    pending = list(enumerate(shards))
    running: List[Tuple[int, Any]] = []
    results: List[Optional[CompileFailure]] = [None] * len(jobs)
    with tempfile.TemporaryDirectory(prefix="lambda_zip-shards-") as tmp:
        while pending or running:
            while pending and len(running) < max(1, workers):
                index, (with_columns, shard) = pending.pop(0)
                shard_file = os.path.join(tmp, f"{index}.json")
                with open(shard_file, "w", encoding="utf-8") as f:
                    json.dump([list(jobs[i]) for i in shard], f)
                child = subprocess.Popen(
                    [
                        sys.executable,
                        *(() if with_columns else _NO_COLUMNS),
                        "-S",
                        "-B",
                        os.path.abspath(__file__),
                        "--compile-shard",
                        shard_file,
                    ],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
                running.append((index, child))
            index, child = running.pop(0)
            out, err = child.communicate()
            if child.returncode != 0:
                raise BytecodeError("Compiling bytecode failed:\n" + err.decode("utf-8", "replace"))
            for i, found in zip(shards[index][1], json.loads(out.decode("utf-8"))):
                if found:
                    results[i] = CompileFailure(found["path"], found["line"], found["message"])
    return results


def _compile_shard(shard_file: str) -> None:
    with open(shard_file, encoding="utf-8") as f:
        jobs = [(rel, src, cfile, dfile) for rel, src, cfile, dfile in json.load(f)]
    out: List[Optional[Dict[str, Any]]] = []
    for job in jobs:
        failure = _compile_one(job)
        out.append(
            None
            if failure is None
            else {"path": failure.path, "line": failure.line, "message": failure.message}
        )
    json.dump(out, sys.stdout)


def _pyc_flags(header: bytes) -> Optional[int]:
    if len(header) < _PYC_HEADER_SIZE:
        return None
    return int.from_bytes(header[4:8], "little")


def source_of_pyc(path: str) -> Optional[Tuple[str, str]]:
    """`a/__pycache__/b.cpython-312.pyc` -> (`a/b.py`, `cpython-312`); None for other pycs."""
    directory, _, filename = path.rpartition("/")
    if posixpath.basename(directory) != "__pycache__":
        return None
    parts = filename.split(".")
    if len(parts) != 3 or parts[2] != "pyc":  # Skips `.opt-1.pyc`: Lambda never runs with -O.
        return None
    parent = posixpath.dirname(directory)
    return (f"{parent}/{parts[0]}.py" if parent else f"{parts[0]}.py"), parts[1]


def keep_pyc(pyc: Item, source: Item, tag: str, python_tag: Optional[str]) -> bool:
    """Keep a hash-based .pyc only if it is for the target and provably matches its source.

    Timestamp-based ones (pip's, the host's) are dropped: with fixed ZIP timestamps they are
    stale on arrival and Python would recompile them into a read-only /var/task on every cold
    start. A hash-based one is checked against its source when this interpreter can compute the
    hash (same magic number); otherwise it is trusted, as only our own processes write them.
    """
    if python_tag is not None and tag != python_tag:
        return False
    data = pyc.read()
    flags = _pyc_flags(data)
    if flags is None or not flags & _PYC_HASH_BASED:
        return False
    if data[:4] == importlib.util.MAGIC_NUMBER:
        return data[8:16] == importlib.util.source_hash(source.read())
    return True


def compile_tree(root: str, out: str, prefix: str, workers: int) -> List[str]:
    """Compile every .py under `root` into `out` as the ZIP step compiles third-party code
    (unchecked-hash, without column tables, the code's filename `prefix` + its path), each .pyc
    at its `__pycache__` path relative to `out`.

    Ahead of the ZIP steps, so that one compile serves several ZIPs (`layer_build.py`). A file
    that does not compile gets no .pyc; the ZIP step then tries again and reports it.
    Returns the paths (relative to `root`) of the files that compiled.
    """
    jobs: List[Job] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in filenames:
            if not name.endswith(".py"):
                continue
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            cfile = os.path.join(out, *pyc_tag_path(rel).split("/"))
            jobs.append((rel, full, cfile, prefix + rel))
    jobs.sort()
    failures = compile_all(jobs, workers, [False] * len(jobs))
    return [job[0] for job, failure in zip(jobs, failures) if failure is None]


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "--compile-shard":
        sys.exit("usage: bytecode.py --compile-shard SHARD.json")
    _compile_shard(sys.argv[2])
