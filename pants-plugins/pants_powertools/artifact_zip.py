"""Deterministic, Lambda-ready ZIP archives: the one place where an artifact's bytes are decided.

Lambda extracts a ZIP into /var/task (function) or /opt (layer) and runs it as a user that does
not own the files, so modes must be normalized; CI caches and deployment diffs key on the
sha256, so every byte (entry order, timestamps, attributes, compression level) is fixed here.

This module also runs as a standalone script inside one sandboxed Pants `Process` (see `main`),
when bytecode is wanted by the interpreter of the target runtime. It therefore imports nothing
but the stdlib, never a sibling module, and keeps to CPython 3.9 syntax.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import hashlib
import importlib.util
import io
import json
import os
import posixpath
import py_compile
import re
import stat
import subprocess
import sys
import tempfile
import warnings
import zipfile
import zlib
from contextlib import ExitStack
from dataclasses import dataclass
from email.parser import HeaderParser
from typing import (
    IO,
    Callable,
    Collection,
    Dict,
    FrozenSet,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
    Union,
)

# The earliest time a ZIP (DOS) timestamp can hold; any fixed value works, this one is the
# convention of reproducible-build tools, so archives compare equal with theirs.
ZIP_EPOCH: Tuple[int, int, int, int, int, int] = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
DIR_MODE = 0o755
EXECUTABLE_MODE = 0o755
# zlib's default, spelled out: changing it changes every sha256 this plugin has ever produced.
COMPRESS_LEVEL = 6
_UNIX = 3  # ZIP "version made by" host system: Unix, so external_attr carries st_mode.
_MSDOS_DIRECTORY = 0x10
# PEP 552 flags word of a .pyc: bit 0 = hash-based, bit 1 = check_source.
_PYC_HASH_BASED = 0b01
_PYC_HEADER_SIZE = 16

PathLike = Union[str, "os.PathLike[str]"]
Source = Union[PathLike, bytes]
Entry = Tuple[str, bytes]


class ArtifactZipError(Exception):
    """A problem with the inputs that the user must fix (shown without a traceback)."""


def canonicalize_name(name: str) -> str:
    """PEP 503 normalization, so `Python_Dateutil` and `python-dateutil` are one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


# --------------------------------------------------------------------------------------------
# Reading inputs lazily: excluded files (botocore is ~80 MB unzipped) are never decompressed.
# --------------------------------------------------------------------------------------------


class _Item:
    """One regular file of an input tree, read only when written or compared."""

    __slots__ = ("size", "origin", "_read")

    def __init__(self, size: int, origin: str, read: Callable[[], bytes]) -> None:
        self.size = size
        self.origin = origin
        self._read = read

    def read(self) -> bytes:
        return self._read()


def is_executable_content(data: bytes) -> bool:
    """0755 for native code and scripts, decided by content alone.

    Input modes are not trustworthy: Pants hard-links large files into sandboxes from its store
    with `r-x` bits, so the same file would be 0644 or 0755 depending on its size and on how it
    was materialized, and the ZIP's bytes would depend on the build machine.
    """
    return data[:4] == b"\x7fELF" or data[:2] == b"#!"


def _clean_path(name: str, origin: str) -> str:
    """Relative POSIX path without `.`/empty parts; refuses absolute or `..` paths (zip-slip)."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or ".." in parts:
        raise ArtifactZipError(f"{origin}: refusing unsafe path {name!r} (absolute or '..').")
    return "/".join(parts)


def _normalize_prefix(prefix: str) -> str:
    """`"python"`, `"python/"` and `"/python/"` all mean the directory `python/`."""
    cleaned = _clean_path(prefix, "prefix")
    return cleaned + "/" if cleaned else ""


def _bytes_reader(data: bytes) -> Callable[[], bytes]:
    return lambda: data


def _file_reader(path: str) -> Callable[[], bytes]:
    def read() -> bytes:
        with open(path, "rb") as f:
            return f.read()

    return read


def _zip_reader(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[], bytes]:
    return lambda: zf.read(info)


def _load_dir(root: str) -> Dict[str, _Item]:
    """Files under `root`, following symlinks (pex venvs may link into the PEX_ROOT)."""
    items: Dict[str, _Item] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        for filename in sorted(filenames):
            full = os.path.join(dirpath, filename)
            st = os.stat(full)  # Follows symlinks; a dangling link raises, which is right.
            if not stat.S_ISREG(st.st_mode):
                continue
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            items[_clean_path(rel, root)] = _Item(st.st_size, full, _file_reader(full))
    return items


def _load_zip(zf: zipfile.ZipFile, origin: str) -> Dict[str, _Item]:
    """Regular files of a ZIP; in-archive symlinks are resolved to the file they point at."""
    infos: Dict[str, zipfile.ZipInfo] = {}
    for info in zf.infolist():
        if info.is_dir():
            continue
        infos[_clean_path(info.filename, origin)] = info  # A repeated name: the last one wins.

    def unix_mode(info: zipfile.ZipInfo) -> int:
        return (info.external_attr >> 16) if info.create_system == _UNIX else 0

    items: Dict[str, _Item] = {}
    for name, info in infos.items():
        target_info = info
        seen = {name}
        while stat.S_ISLNK(unix_mode(target_info)):
            link = zf.read(target_info).decode("utf-8")
            base = posixpath.dirname(_clean_path(target_info.filename, origin))
            target = posixpath.normpath(posixpath.join(base, link))
            if target in seen or target not in infos:
                raise ArtifactZipError(
                    f"{origin}: symlink {name!r} -> {link!r} does not point at a file in the "
                    "archive; Lambda ZIPs cannot carry symlinks, so rebuild the input without them."
                )
            seen.add(target)
            target_info = infos[target]
        items[name] = _Item(
            target_info.file_size,
            f"{origin}!{name}",
            _zip_reader(zf, target_info),
        )
    return items


def _load(source: Source, stack: ExitStack) -> Dict[str, _Item]:
    """Files of a directory, a ZIP file, or ZIP bytes, keyed by their relative path."""
    if isinstance(source, (bytes, bytearray)):
        zf = stack.enter_context(zipfile.ZipFile(io.BytesIO(bytes(source))))
        return _load_zip(zf, "<zip bytes>")
    path = os.fspath(source)
    if os.path.isdir(path):
        return _load_dir(path)
    try:
        zf = stack.enter_context(zipfile.ZipFile(path))
    except (OSError, zipfile.BadZipFile) as e:
        raise ArtifactZipError(f"{path}: not a directory or a readable ZIP file ({e}).") from e
    return _load_zip(zf, path)


# --------------------------------------------------------------------------------------------
# Distributions: which files belong to which installed wheel.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Distribution:
    """An installed distribution found at the tree's root, and the files its RECORD claims."""

    name: str  # PEP 503-normalized.
    version: str
    dist_info: str  # e.g. "boto3-1.35.0.dist-info"
    files: FrozenSet[str]
    top_level: FrozenSet[str]  # From top_level.txt: package or module names.


def _parse_dist_info(
    dist_info: str, files: Mapping[str, _Item], root: str
) -> Optional[_Distribution]:
    """Name, version and owned files of one `*.dist-info` dir; None if it has no METADATA."""
    metadata = files.get(f"{root}{dist_info}/METADATA")
    if metadata is None:
        return None
    headers = HeaderParser().parsestr(metadata.read().decode("utf-8", "replace"))
    stem = dist_info[: -len(".dist-info")]
    fallback_name, _, fallback_version = stem.partition("-")
    name = canonicalize_name((headers.get("Name") or fallback_name).strip())
    version = (headers.get("Version") or fallback_version).strip()

    owned: Set[str] = set()
    record = files.get(f"{root}{dist_info}/RECORD")
    if record is not None:
        text = record.read().decode("utf-8", "replace")
        for row in csv.reader(io.StringIO(text)):
            if not row or not row[0]:
                continue
            rel = posixpath.normpath(row[0].replace("\\", "/"))
            if rel.startswith("../") or rel == ".." or rel.startswith("/"):
                continue  # Scripts and data installed outside site-packages.
            owned.add(root + rel)

    top_level: Set[str] = set()
    top_txt = files.get(f"{root}{dist_info}/top_level.txt")
    if top_txt is not None:
        for line in top_txt.read().decode("utf-8", "replace").splitlines():
            line = line.strip().replace("\\", "/")
            if line:
                top_level.add(line.split("/")[0])
    return _Distribution(name, version, dist_info, frozenset(owned), frozenset(top_level))


def _find_distributions(files: Mapping[str, _Item], root: str = "") -> Dict[str, _Distribution]:
    """Distributions whose `*.dist-info` sits directly under `root` (vendored ones are skipped)."""
    dist_infos = set()
    for path in files:
        if not path.startswith(root):
            continue
        parts = path[len(root) :].split("/")
        if len(parts) == 2 and parts[0].endswith(".dist-info"):
            dist_infos.add(parts[0])
    found: Dict[str, _Distribution] = {}
    for dist_info in sorted(dist_infos):
        dist = _parse_dist_info(dist_info, files, root)
        if dist is None:
            continue
        if dist.name in found:
            raise ArtifactZipError(
                f"Two installations of {dist.name} in one tree: {found[dist.name].dist_info} and "
                f"{dist.dist_info}. Rebuild the input so that it holds one version."
            )
        found[dist.name] = dist
    return found


def _dist_paths(dist: _Distribution, files: Iterable[str], root: str) -> Set[str]:
    """Every present path of `dist`: its RECORD entries and its whole `*.dist-info` dir."""
    info_prefix = f"{root}{dist.dist_info}/"
    return {p for p in files if p in dist.files or p.startswith(info_prefix)}


def _first_component(path: str, root: str) -> str:
    return path[len(root) :].split("/", 1)[0]


def _is_module_of(component: str, top: str) -> bool:
    """Whether a root-level file is the module `top` (`six.py`, `_cffi.abi3.so`, ...)."""
    return component == top + ".py" or (
        component.startswith(top + ".") and component.endswith((".so", ".pyd"))
    )


def _excluded_paths(
    files: Mapping[str, _Item],
    dists: Mapping[str, _Distribution],
    exclude: Collection[str],
    root: str,
) -> Tuple[Set[str], Dict[str, str]]:
    """Paths to drop for the excluded distributions, and those distributions {name: version}.

    RECORD is the authority, file by file, so that namespace packages shared with a kept
    distribution (`google/`, `azure/`) survive. top_level.txt, and the top-level names RECORD
    implies, then sweep files RECORD forgot, but only in names no kept distribution uses.
    """
    wanted = {canonicalize_name(n) for n in exclude}
    excluded = {n: d for n, d in dists.items() if n in wanted}
    if not excluded:
        return set(), {}
    kept = [d for n, d in dists.items() if n not in wanted]
    kept_files: Set[str] = set()
    kept_tops: Set[str] = set()
    for dist in kept:
        owned = _dist_paths(dist, files, root)
        kept_files |= owned
        kept_tops |= {_first_component(p, root) for p in owned} | set(dist.top_level)

    by_top: Dict[str, List[str]] = {}
    for path in files:
        if path.startswith(root):
            by_top.setdefault(_first_component(path, root), []).append(path)

    remove: Set[str] = set()
    for dist in excluded.values():
        owned = _dist_paths(dist, files, root)
        remove |= owned - kept_files
        tops = {_first_component(p, root) for p in owned} | set(dist.top_level)
        for top in tops - kept_tops:
            if top.endswith((".dist-info", ".data")):
                continue
            for component, paths in by_top.items():
                if component == top or _is_module_of(component, top):
                    remove.update(p for p in paths if p not in kept_files)
    return remove, {n: d.version for n, d in sorted(excluded.items())}


def list_distributions(source: Source, root: str = "") -> Dict[str, str]:
    """{PEP 503 name: version} of the distributions installed at `root` of a ZIP or directory.

    Layer ZIPs keep site-packages under `python/`: pass `root="python/"` for those.
    """
    with ExitStack() as stack:
        files = _load(source, stack)
        dists = _find_distributions(files, _normalize_prefix(root))
        return {name: dists[name].version for name in sorted(dists)}


def distribution_sizes(source: Source, root: str = "") -> Dict[str, int]:
    """{PEP 503 name: unzipped bytes} per distribution, to name the culprits of a size error."""
    with ExitStack() as stack:
        files = _load(source, stack)
        return _distribution_sizes(files, _find_distributions(files, _normalize_prefix(root)),
                                   _normalize_prefix(root))


def _distribution_sizes(
    files: Mapping[str, _Item], dists: Mapping[str, _Distribution], root: str
) -> Dict[str, int]:
    """Bytes per distribution: its RECORD files, its dist-info, and the .pyc of its sources."""
    pycs_by_source: Dict[str, List[str]] = {}
    for path in files:
        parsed = _source_of_pyc(path) if "__pycache__" in path else None
        if parsed is not None:
            pycs_by_source.setdefault(parsed[0], []).append(path)
    sizes: Dict[str, int] = {}
    for name in sorted(dists):
        paths = _dist_paths(dists[name], files, root)
        paths |= {pyc for src in list(paths) for pyc in pycs_by_source.get(src, ())}
        sizes[name] = sum(files[p].size for p in paths)
    return sizes


# --------------------------------------------------------------------------------------------
# Bytecode (PEP 552 unchecked-hash .pyc): valid whatever timestamps extraction gives files.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompileResult:
    """What `compile_bytecode` did, as relative source paths."""

    compiled: Tuple[str, ...]
    # Sources this interpreter cannot compile (e.g. Python-2-only files some wheels carry);
    # they stay as source, exactly as pip leaves them.
    failed: Tuple[str, ...]


def _pyc_tag_path(rel_source: str) -> str:
    """`a/b.py` -> `a/__pycache__/b.cpython-3XY.pyc` for the running interpreter, no opt tag."""
    return importlib.util.cache_from_source(rel_source, optimization="").replace(os.sep, "/")


def _compile_one(args: Tuple[str, str, str]) -> Optional[str]:
    """Compile one file; return None on success or the error text. Top-level for pickling."""
    source, cfile, dfile = args
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
            return e.msg
    return None


def _hash_seed_matters() -> bool:
    """True if this interpreter's .pyc bytes would depend on the per-process hash seed.

    Before CPython 3.11, marshal writes frozenset constants (`x in {"a", "b"}`) in hash order,
    which string-hash randomization changes from run to run; 3.11+ writes them sorted.
    """
    return sys.version_info < (3, 11) and bool(sys.flags.hash_randomization)


def compile_bytecode(
    tree_dir: PathLike, *, dfile_prefix: str = "", force: bool = False, workers: int = 1
) -> CompileResult:
    """Write `__pycache__/X.cpython-3XY.pyc` (unchecked-hash) next to every `.py` under tree_dir.

    Must run BY a CPython of the target runtime's minor version: the .pyc name, magic number
    and bytecode are that interpreter's. `dfile_prefix` + the relative path becomes the code's
    filename, so output does not depend on where `tree_dir` is (Python replaces it with the
    real path at import anyway). Existing unchecked-hash .pycs are kept unless `force`.
    """
    root = os.fspath(tree_dir)
    if _hash_seed_matters():
        return _compile_in_child(root, dfile_prefix, force, workers)

    jobs: List[Tuple[str, str, str]] = []
    rels: List[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for filename in sorted(filenames):
            if not filename.endswith(".py"):
                continue
            full = os.path.join(dirpath, filename)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            cfile = os.path.join(root, *_pyc_tag_path(rel).split("/"))
            if not force and _is_unchecked_hash_pyc_file(cfile):
                continue
            jobs.append((full, cfile, dfile_prefix + rel))
            rels.append(rel)

    errors: List[Optional[str]]
    if workers > 1 and len(jobs) >= 64:
        errors = _compile_parallel(jobs, workers)
    else:
        errors = [_compile_one(job) for job in jobs]
    compiled = tuple(r for r, e in zip(rels, errors) if e is None)
    failed = tuple(r for r, e in zip(rels, errors) if e is not None)
    return CompileResult(compiled, failed)


def _compile_parallel(jobs: Sequence[Tuple[str, str, str]], workers: int) -> List[Optional[str]]:
    """Compile in worker processes; output is identical, only faster on many cores."""
    try:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(_compile_one, jobs, chunksize=32))
    except (OSError, NotImplementedError, ImportError):
        # Some sandboxes forbid the semaphores a pool needs; serial is always correct.
        return [_compile_one(job) for job in jobs]


def _compile_in_child(root: str, dfile_prefix: str, force: bool, workers: int) -> CompileResult:
    """Re-run the compilation in this same interpreter with PYTHONHASHSEED=0 (see above)."""
    cmd = [sys.executable, "-S", "-B", os.path.abspath(__file__), "--compile-tree", root,
           "--dfile-prefix", dfile_prefix, "--workers", str(workers)]
    if force:
        cmd.append("--force")
    env = dict(os.environ, PYTHONHASHSEED="0")
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise ArtifactZipError(
            "Compiling bytecode failed:\n" + proc.stderr.decode("utf-8", "replace")
        )
    result = json.loads(proc.stdout.decode("utf-8"))
    return CompileResult(tuple(result["compiled"]), tuple(result["failed"]))


def _pyc_flags(header: bytes) -> Optional[int]:
    if len(header) < _PYC_HEADER_SIZE:
        return None
    return int.from_bytes(header[4:8], "little")


def _is_unchecked_hash_pyc_file(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return _pyc_flags(f.read(_PYC_HEADER_SIZE)) == _PYC_HASH_BASED
    except OSError:
        return False


def _source_of_pyc(path: str) -> Optional[Tuple[str, str]]:
    """`a/__pycache__/b.cpython-312.pyc` -> (`a/b.py`, `cpython-312`); None for other pycs."""
    directory, _, filename = path.rpartition("/")
    if posixpath.basename(directory) != "__pycache__":
        return None
    parts = filename.split(".")
    if len(parts) != 3 or parts[2] != "pyc":  # Skips `.opt-1.pyc`: Lambda never runs with -O.
        return None
    parent = posixpath.dirname(directory)
    return (f"{parent}/{parts[0]}.py" if parent else f"{parts[0]}.py"), parts[1]


def _keep_pyc(pyc: _Item, source: _Item, tag: str, python_tag: Optional[str]) -> bool:
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


# --------------------------------------------------------------------------------------------
# Writing.
# --------------------------------------------------------------------------------------------


def _zipinfo(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
    info.create_system = _UNIX  # Otherwise 0 on Windows, and Lambda would see no modes.
    info.external_attr = mode << 16
    if stat.S_ISDIR(mode):
        info.external_attr |= _MSDOS_DIRECTORY
        info.compress_type = zipfile.ZIP_STORED
    else:
        info.compress_type = zipfile.ZIP_DEFLATED
    return info


def _write_items(
    items: Mapping[str, _Item],
    dst: Union[PathLike, IO[bytes]],
    explicit_dirs: Collection[str] = (),
    compresslevel: int = COMPRESS_LEVEL,
) -> None:
    """Sorted entries, a directory entry for every parent, fixed times and modes."""
    dirs: Set[str] = {d.rstrip("/") + "/" for d in explicit_dirs}
    for name in items:
        parent = posixpath.dirname(name)
        while parent and parent + "/" not in dirs:
            dirs.add(parent + "/")
            parent = posixpath.dirname(parent)
    for d in dirs:
        if d[:-1] in items:
            raise ArtifactZipError(
                f"{items[d[:-1]].origin}: {d[:-1]!r} is a file in one input and a directory in "
                "another; a ZIP cannot hold both."
            )
    if isinstance(dst, (str, os.PathLike)):
        # Write beside the destination and rename, so a crash never leaves a half ZIP behind.
        dst_path = os.fspath(dst)
        tmp = dst_path + ".tmp"
        try:
            with open(tmp, "wb") as f:
                _write_items(items, f, explicit_dirs, compresslevel)
            os.replace(tmp, dst_path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return
    if not dst.seekable():
        # Unseekable streams get data descriptors (flag bit 3): valid, but different bytes.
        raise ArtifactZipError("write_zip needs a seekable destination for stable bytes.")
    with zipfile.ZipFile(dst, "w", allowZip64=True) as zf:
        for name in sorted(set(items) | dirs):
            if name.endswith("/"):
                zf.writestr(_zipinfo(name, stat.S_IFDIR | DIR_MODE), b"")
            else:
                data = items[name].read()
                mode = EXECUTABLE_MODE if is_executable_content(data) else FILE_MODE
                zf.writestr(
                    _zipinfo(name, stat.S_IFREG | mode), data, compresslevel=compresslevel
                )


def write_zip(
    entries: Iterable[Entry],
    dst: Union[PathLike, IO[bytes]],
    *,
    compresslevel: int = COMPRESS_LEVEL,
) -> None:
    """Write (arcname, data) entries as a deterministic Lambda ZIP.

    Entries are written sorted by name, with a directory entry for every parent, timestamps
    of 1980-01-01, Unix modes 0644 (0755 for directories and for ELF files and scripts, by content) and deflate at a
    fixed level. An arcname ending in `/` adds an (empty) directory. Nothing is filtered:
    use `normalize_zip` for `__pycache__` and distribution exclusion.
    """
    items: Dict[str, _Item] = {}
    dirs: List[str] = []
    for arcname, data in entries:
        name = _clean_path(arcname, "write_zip")
        if arcname.endswith("/"):
            if data:
                raise ArtifactZipError(f"Directory entry {arcname!r} cannot have data.")
            if name:
                dirs.append(name)
            continue
        if not name:
            raise ArtifactZipError(f"Invalid entry name {arcname!r}.")
        if name in items:
            raise ArtifactZipError(f"Duplicate entry {name!r}.")
        items[name] = _Item(len(data), name, _bytes_reader(bytes(data)))
    _write_items(items, dst, dirs, compresslevel)


# --------------------------------------------------------------------------------------------
# The whole pipeline: merge, filter, exclude, compile, prefix, write.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NormalizeResult:
    """What went into a normalized ZIP, for the manifest and the size budget."""

    distributions: Dict[str, str]  # Kept: {PEP 503 name: version}, sorted.
    excluded_distributions: Dict[str, str]  # Found and dropped.
    distribution_sizes: Dict[str, int]  # Kept, unzipped bytes (including their .pyc).
    file_count: int
    unzipped_size: int  # Sum of file sizes, as Lambda counts against its 250 MB quota.
    compiled: Tuple[str, ...] = ()
    compile_failures: Tuple[str, ...] = ()
    excluded_paths: int = 0

    def to_json_dict(self) -> Dict[str, object]:
        return {
            "distributions": self.distributions,
            "excluded_distributions": self.excluded_distributions,
            "distribution_sizes": self.distribution_sizes,
            "file_count": self.file_count,
            "unzipped_size": self.unzipped_size,
            "compiled": len(self.compiled),
            "compile_failures": list(self.compile_failures),
            "excluded_paths": self.excluded_paths,
        }


def _is_dropped_always(path: str) -> bool:
    """Files no Lambda artifact should carry, whatever the input."""
    parts = path.split("/")
    if parts[-1].endswith((".pyc", ".pyo")) and "__pycache__" not in parts:
        return True  # Python 2 style sibling .pyc: never valid on Lambda.
    if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "direct_url.json":
        return True  # PEP 610: records the absolute path of the wheel on the build machine.
    return False


def _merge(
    sources: Sequence[Dict[str, _Item]], extra_files: Mapping[str, _Item]
) -> Dict[str, _Item]:
    """Union of inputs; the same path with different bytes is an error naming both origins."""
    merged: Dict[str, _Item] = {}
    for items in list(sources) + [dict(extra_files)]:
        for path, item in items.items():
            other = merged.get(path)
            if other is None:
                merged[path] = item
                continue
            if other.size != item.size or other.read() != item.read():
                raise ArtifactZipError(
                    f"Two inputs provide {path!r} with different contents: {other.origin} and "
                    f"{item.origin}. Rename one, or exclude one of them."
                )
    return merged


def normalize_zip(
    src_zip_path: Union[Source, Sequence[Source]],
    dst_zip_path: Union[PathLike, IO[bytes]],
    prefix: str = "",
    exclude_top_level: Collection[str] = (),
    *,
    strip_prefix: str = "",
    exclude_distributions: Collection[str] = (),
    extra_files: Optional[Mapping[str, bytes]] = None,
    bytecode: bool = False,
    python_version: Optional[str] = None,
    keep_hash_pycs: bool = True,
    workers: int = 1,
    compresslevel: int = COMPRESS_LEVEL,
) -> NormalizeResult:
    """Turn ZIPs and/or directories into one deterministic Lambda ZIP.

    Steps, in order: keep only paths under `strip_prefix` (and remove it); drop root entries
    matching `exclude_top_level` (fnmatch patterns, e.g. `bin`, `*.pth`); drop `__pycache__`
    and .pyc except hash-based ones matching their source; drop `exclude_distributions` using
    their RECORD; add `extra_files` ({arcname: data}); if `bytecode`, compile
    unchecked-hash .pyc with THIS interpreter (which must be the runtime's, see
    `python_version`); put everything under `prefix` (`python/` for layers); write.
    """
    sources = (
        [src_zip_path]
        if isinstance(src_zip_path, (str, bytes, bytearray, os.PathLike))
        else list(src_zip_path)
    )
    strip = _normalize_prefix(strip_prefix)
    out_prefix = _normalize_prefix(prefix)
    running_tag = sys.implementation.cache_tag
    python_tag: Optional[str] = None
    if python_version is not None:
        if not re.fullmatch(r"3\.\d+", python_version):
            raise ArtifactZipError(f"python_version must look like '3.12', not {python_version!r}.")
        python_tag = "cpython-" + python_version.replace(".", "")
    if bytecode:
        if sys.implementation.name != "cpython" or not running_tag:
            raise ArtifactZipError("Bytecode for Lambda must be compiled by CPython.")
        if python_tag is not None and running_tag != python_tag:
            raise ArtifactZipError(
                f"Bytecode for Python {python_version} must be compiled by CPython "
                f"{python_version}, but this is {sys.version.split()[0]} ({sys.executable})."
            )

    with ExitStack() as stack:
        loaded: List[Dict[str, _Item]] = []
        for source in sources:
            items = {}
            for path, item in _load(source, stack).items():
                if not path.startswith(strip) or _is_dropped_always(path[len(strip) :]):
                    continue
                rel = path[len(strip) :]
                if any(fnmatch.fnmatchcase(rel.split("/", 1)[0], p) for p in exclude_top_level):
                    continue
                items[rel] = item
            loaded.append(items)
        extras: Dict[str, _Item] = {}
        for arcname, data in (extra_files or {}).items():
            name = _clean_path(arcname, "extra_files")
            extras[name] = _Item(len(data), f"extra file {name}", _bytes_reader(bytes(data)))
        files = _merge(loaded, extras)

        # Bytecode caches are decided separately from everything else.
        pycs: Dict[str, Tuple[_Item, str, str]] = {}
        for path in [p for p in files if "__pycache__" in p.split("/")]:
            item = files.pop(path)
            parsed = _source_of_pyc(path)
            if parsed is not None:
                pycs[path] = (item, parsed[0], parsed[1])

        dists = _find_distributions(files)
        removed, excluded = _excluded_paths(files, dists, exclude_distributions, "")
        for path in removed:
            del files[path]
        for name in excluded:
            del dists[name]

        if keep_hash_pycs:
            for path, (item, source, tag) in pycs.items():
                if source in files and _keep_pyc(item, files[source], tag, python_tag):
                    files[path] = item

        compiled: Tuple[str, ...] = ()
        failures: Tuple[str, ...] = ()
        if bytecode:
            compiled, failures, pyc_items = _compile_items(files, out_prefix, workers, stack)
            files.update(pyc_items)

        sizes = _distribution_sizes(files, dists, "")
        output = {out_prefix + path: item for path, item in files.items()}
        _write_items(output, dst_zip_path, (), compresslevel)
        return NormalizeResult(
            distributions={n: dists[n].version for n in sorted(dists)},
            excluded_distributions=excluded,
            distribution_sizes=dict(sorted(sizes.items())),
            file_count=len(output),
            unzipped_size=sum(item.size for item in output.values()),
            compiled=compiled,
            compile_failures=failures,
            excluded_paths=len(removed),
        )


def _compile_items(
    files: Dict[str, _Item], out_prefix: str, workers: int, stack: ExitStack
) -> Tuple[Tuple[str, ...], Tuple[str, ...], Dict[str, _Item]]:
    """Compile the .py files that lack a kept .pyc, in a scratch copy holding only sources."""
    tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="artifact_zip-"))
    wanted = [
        p for p in sorted(files) if p.endswith(".py") and _pyc_tag_path(p) not in files
    ]
    for path in wanted:
        full = os.path.join(tmp, *path.split("/"))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(files[path].read())
    result = compile_bytecode(tmp, dfile_prefix=out_prefix, force=True, workers=workers)
    pyc_items: Dict[str, _Item] = {}
    for rel in result.compiled:
        pyc_rel = _pyc_tag_path(rel)
        full = os.path.join(tmp, *pyc_rel.split("/"))
        data = _file_reader(full)()  # Read now: the scratch dir goes away with the stack.
        pyc_items[pyc_rel] = _Item(len(data), f"compiled {rel}", _bytes_reader(data))
    return result.compiled, result.failed, pyc_items


# --------------------------------------------------------------------------------------------
# Command line, for the sandboxed Process.
# --------------------------------------------------------------------------------------------


def _split_names(values: Sequence[str]) -> List[str]:
    """`--exclude-dist a,b --exclude-dist c` -> [a, b, c]."""
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="artifact_zip.py",
        description="Build a deterministic AWS Lambda ZIP from ZIPs and/or directories.",
        fromfile_prefix_chars="@",
    )
    parser.add_argument("--src", action="append", default=[], metavar="ZIP_OR_DIR",
                        help="Input ZIP or directory; repeat to merge several.")
    parser.add_argument("--file", action="append", default=[], metavar="ARCNAME=PATH",
                        help="Add one file at ARCNAME (before --prefix), e.g. lambda_function.py.")
    parser.add_argument("--out", metavar="ZIP", help="Output ZIP path.")
    parser.add_argument("--strip-prefix", default="",
                        help="Keep only input paths under this directory, relative to it.")
    parser.add_argument("--prefix", default="", help="Put every entry under this directory, "
                        "e.g. python/ for a layer.")
    parser.add_argument("--exclude-top-level", action="append", default=[], metavar="PATTERN",
                        help="Drop root-level files/dirs matching this fnmatch pattern.")
    parser.add_argument("--exclude-dist", action="append", default=[], metavar="NAME[,NAME]",
                        help="Drop this installed distribution (files from its RECORD).")
    parser.add_argument("--compile", action="store_true",
                        help="Add unchecked-hash .pyc compiled by this interpreter.")
    parser.add_argument("--python-version", metavar="X.Y",
                        help="Target runtime's Python: checked against this interpreter when "
                        "compiling; .pyc for other versions are dropped.")
    parser.add_argument("--no-keep-hash-pycs", action="store_true",
                        help="Drop every .pyc found in the inputs, even hash-based ones.")
    parser.add_argument("--workers", type=int, default=1,
                        help="Processes for --compile (output is the same for any value).")
    parser.add_argument("--report", metavar="JSON",
                        help="Write distributions, sizes and the ZIP's sha256 here.")
    # Internal: compile a directory in place (used to re-run with PYTHONHASHSEED=0).
    parser.add_argument("--compile-tree", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--dfile-prefix", default="", help=argparse.SUPPRESS)
    parser.add_argument("--force", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry point; returns the exit status (1 with a message on a user error)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.compile_tree:
            result = compile_bytecode(
                args.compile_tree, dfile_prefix=args.dfile_prefix, force=args.force,
                workers=args.workers,
            )
            json.dump({"compiled": list(result.compiled), "failed": list(result.failed)},
                      sys.stdout)
            return 0
        if not args.out or not (args.src or args.file):
            parser.error("--out and at least one --src or --file are required")
        extra: Dict[str, bytes] = {}
        for spec in args.file:
            arcname, sep, path = spec.partition("=")
            if not sep or not arcname or not path:
                parser.error(f"--file takes ARCNAME=PATH, got {spec!r}")
            with open(path, "rb") as f:
                extra[arcname] = f.read()
        result_ = normalize_zip(
            args.src,
            args.out,
            prefix=args.prefix,
            exclude_top_level=args.exclude_top_level,
            strip_prefix=args.strip_prefix,
            exclude_distributions=_split_names(args.exclude_dist),
            extra_files=extra,
            bytecode=args.compile,
            python_version=args.python_version,
            keep_hash_pycs=not args.no_keep_hash_pycs,
            workers=args.workers,
        )
        for failure in result_.compile_failures:
            print(f"artifact_zip: could not compile {failure}; shipped as source only.",
                  file=sys.stderr)
        if args.report:
            with open(args.out, "rb") as f:
                zip_bytes = f.read()
            report = result_.to_json_dict()
            report["sha256"] = hashlib.sha256(zip_bytes).hexdigest()
            report["size"] = len(zip_bytes)
            # Deflate bytes depend on the zlib build (zlib-ng differs): say which one made them.
            report["zlib"] = zlib.ZLIB_RUNTIME_VERSION
            with open(args.report, "w", encoding="utf-8") as f:
                json.dump(report, f, indent=2, sort_keys=True)
                f.write("\n")
    except (ArtifactZipError, OSError) as e:
        print(f"artifact_zip: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
