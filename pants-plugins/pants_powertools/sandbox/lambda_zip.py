"""Writes one deterministic, Lambda-ready ZIP: the one place where an artifact's bytes are decided.

Runs as a script inside one sandboxed Pants `Process` (see `util_rules/lambda_zip.py`), under the
Lambda runtime's CPython when bytecode is wanted, so it imports nothing but the stdlib and its
sandbox sibling `native_code`, and keeps to CPython 3.9 syntax. The rule writes a JSON request
and reads back a JSON report; nothing else crosses the boundary.

Lambda extracts a ZIP into /var/task (function) or /opt (layer) and runs it as a user that does
not own the files, so modes are normalized; CI caches and deployment diffs key on the sha256, so
every byte (entry order, timestamps, attributes, compression level) is fixed here.
"""

from __future__ import annotations

import argparse
import base64
import csv
import fnmatch
import hashlib
import io
import json
import os
import posixpath
import re
import stat
import sys
import tempfile
import zipfile
import zlib
from contextlib import ExitStack
from dataclasses import dataclass, field
from email.parser import HeaderParser
from typing import (
    IO,
    Any,
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

try:  # As a script, the siblings sit next to it in the sandbox; in tests, they are package modules.
    from pants_powertools.sandbox import bytecode, elf_strip, native_code, slim
except ImportError:  # pragma: no cover - exercised by the sandboxed Process
    import bytecode  # type: ignore[no-redef]  # pants: no-infer-dep
    import elf_strip  # type: ignore[no-redef]  # pants: no-infer-dep
    import native_code  # type: ignore[no-redef]  # pants: no-infer-dep
    import slim  # type: ignore[no-redef]  # pants: no-infer-dep

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
# How many of the largest first-party files the report names, for size-limit errors.
_LARGEST_FILES = 10

PathLike = Union[str, "os.PathLike[str]"]


class ArtifactZipError(Exception):
    """A problem with the inputs that the user must fix (shown without a traceback)."""


def canonicalize_name(name: str) -> str:
    """PEP 503 normalization, so `Python_Dateutil` and `python-dateutil` are one distribution.

    The same rule as `distributions.canonicalize_name`: this script may import only the stdlib.
    """
    return re.sub(r"[-_.]+", "-", name).lower()


# --------------------------------------------------------------------------------------------
# Reading inputs lazily: excluded files (botocore is ~80 MB unzipped) are never decompressed.
# --------------------------------------------------------------------------------------------


class _Item:
    """One regular file of an input tree, read only when written or compared."""

    __slots__ = ("size", "origin", "_read", "first_party", "checked")

    def __init__(
        self,
        size: int,
        origin: str,
        read: Callable[[], bytes],
        first_party: bool = False,
        checked: bool = False,
    ) -> None:
        self.size = size
        self.origin = origin
        self._read = read
        self.first_party = first_party
        # Native code already checked by an earlier step of the same build (a ZIP input).
        self.checked = checked

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
            checked=True,
        )
    return items


def _load(source: PathLike, stack: ExitStack) -> Dict[str, _Item]:
    """Files of a directory or a ZIP file, keyed by their relative path."""
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
            rel = _record_path(row[0])
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


def _record_path(cell: str) -> str:
    """A RECORD row's path, relative to the directory that holds the dist-info."""
    return posixpath.normpath(cell.replace("\\", "/"))


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


def _distribution_sizes(
    files: Mapping[str, _Item], dists: Mapping[str, _Distribution], root: str
) -> Dict[str, int]:
    """Bytes per distribution: its RECORD files, its dist-info, and the .pyc of its sources."""
    pycs_by_source: Dict[str, List[str]] = {}
    for path in files:
        parsed = bytecode.source_of_pyc(path) if "__pycache__" in path else None
        if parsed is not None:
            pycs_by_source.setdefault(parsed[0], []).append(path)
    sizes: Dict[str, int] = {}
    for name in sorted(dists):
        paths = _dist_paths(dists[name], files, root)
        paths |= {pyc for src in list(paths) for pyc in pycs_by_source.get(src, ())}
        sizes[name] = sum(files[p].size for p in paths)
    return sizes


# --------------------------------------------------------------------------------------------


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
    dst: IO[bytes],
    inspect: Optional[Callable[[str, _Item, bytes], None]] = None,
) -> None:
    """Sorted entries, a directory entry for every parent, fixed times and modes.

    `inspect` sees each file's bytes as they are written (for the native-code check), so no
    file is read twice.
    """
    dirs: Set[str] = set()
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
    with zipfile.ZipFile(dst, "w", allowZip64=True) as zf:
        for name in sorted(set(items) | dirs):
            if name.endswith("/"):
                zf.writestr(_zipinfo(name, stat.S_IFDIR | DIR_MODE), b"")
            else:
                item = items[name]
                data = item.read()
                if inspect is not None and data[:4] == b"\x7fELF":
                    inspect(name, item, data)
                mode = EXECUTABLE_MODE if is_executable_content(data) else FILE_MODE
                zf.writestr(_zipinfo(name, stat.S_IFREG | mode), data, compresslevel=COMPRESS_LEVEL)


# --------------------------------------------------------------------------------------------
# The pipeline: merge, filter, exclude, compile, check native code, prefix, write, report.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    path: str  # A directory or a ZIP in the sandbox.
    first_party: bool = False  # Compile errors here fail the build; in third-party code they warn.


@dataclass(frozen=True)
class NativeTarget:
    architecture: str  # AWS's name: x86_64 or arm64.
    max_glibc: Tuple[int, int]  # The runtime's glibc: no GLIBC_x.y symbol version newer.


@dataclass(frozen=True)
class ZipSpec:
    """What to write; the JSON form is what `util_rules/lambda_zip.py` sends."""

    output: str
    sources: Tuple[Source, ...]
    files: Tuple[Tuple[str, str], ...] = ()  # (arcname, sandbox path) added as first party.
    prefix: str = ""
    exclude_top_level: Tuple[str, ...] = ()
    exclude_distributions: Tuple[str, ...] = ()
    # Also write these excluded distributions' files to this ZIP: the import check's stand-in
    # for what the runtime (and AWS's public layer) provide.
    excluded_output: Optional[str] = None
    stand_in_distributions: Tuple[str, ...] = ()
    python_version: Optional[str] = None  # Compile bytecode for this `3.X`, by this interpreter.
    native: Optional[NativeTarget] = None
    workers: int = 1
    # Leave out the distributions' tests, stubs, C sources and docs (see `slim.slim_paths`), and
    # the symbol tables of their native code (`elf_strip`).
    slim: bool = False
    # Report these distributions' METADATA text (e.g. Powertools', for a function's extras check).
    metadata_of: Tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any], workers: int = 1) -> "ZipSpec":
        native = data.get("native")
        return cls(
            output=data["output"],
            sources=tuple(Source(s["path"], bool(s.get("first_party"))) for s in data["sources"]),
            files=tuple((a, p) for a, p in data.get("files", [])),
            prefix=data.get("prefix", ""),
            exclude_top_level=tuple(data.get("exclude_top_level", ())),
            exclude_distributions=tuple(data.get("exclude_distributions", ())),
            excluded_output=data.get("excluded_output"),
            stand_in_distributions=tuple(data.get("stand_in_distributions", ())),
            python_version=data.get("python_version"),
            native=(
                NativeTarget(
                    native["architecture"],
                    (int(native["max_glibc"][0]), int(native["max_glibc"][1])),
                )
                if native
                else None
            ),
            workers=workers,
            slim=bool(data.get("slim", False)),
            metadata_of=tuple(data.get("metadata_of", ())),
        )


@dataclass
class Report:
    """What went into the ZIP, for the manifest, the size budget and the build's messages."""

    sha256: str = ""
    code_sha256: str = ""
    size: int = 0
    unzipped_size: int = 0  # Sum of file sizes, as Lambda counts against its 250 MB quota.
    file_count: int = 0
    distributions: Dict[str, str] = field(default_factory=dict)
    distribution_sizes: Dict[str, int] = field(default_factory=dict)
    excluded_distributions: Dict[str, str] = field(default_factory=dict)
    compiled: int = 0
    warnings: List[str] = field(default_factory=list)
    largest_first_party: List[Tuple[str, int]] = field(default_factory=list)
    # {category: {"files": N, "bytes": unzipped size}} left out by slim; {} when slim is off.
    slimmed: Dict[str, Dict[str, int]] = field(default_factory=dict)
    # Test or docs directories slim kept because code outside them imports them.
    slim_kept: List[str] = field(default_factory=list)
    metadata: Dict[str, str] = field(default_factory=dict)  # {PEP 503 name: METADATA text}

    def to_json(self) -> Dict[str, Any]:
        return {
            "sha256": self.sha256,
            "code_sha256": self.code_sha256,
            "size": self.size,
            "unzipped_size": self.unzipped_size,
            "file_count": self.file_count,
            "distributions": self.distributions,
            "distribution_sizes": self.distribution_sizes,
            "excluded_distributions": self.excluded_distributions,
            "compiled": self.compiled,
            "warnings": self.warnings,
            "largest_first_party": [list(pair) for pair in self.largest_first_party],
            "slimmed": self.slimmed,
            "slim_kept": self.slim_kept,
            "metadata": self.metadata,
            # Deflate bytes depend on the zlib build (zlib-ng differs): say which one made them.
            "zlib": zlib.ZLIB_RUNTIME_VERSION,
        }


def _is_dropped_always(path: str) -> bool:
    """Files no Lambda artifact should carry, whatever the input."""
    parts = path.split("/")
    if parts[-1].endswith((".pyc", ".pyo")) and "__pycache__" not in parts:
        return True  # Python 2 style sibling .pyc: never valid on Lambda.
    if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "direct_url.json":
        return True  # PEP 610: records the absolute path of the wheel on the build machine.
    return False


def _merge(sources: Sequence[Dict[str, _Item]]) -> Dict[str, _Item]:
    """Union of inputs; the same path with different bytes is an error naming both origins."""
    merged: Dict[str, _Item] = {}
    for items in sources:
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


def _python_tag(python_version: Optional[str]) -> Optional[str]:
    if python_version is None:
        return None
    if not re.fullmatch(r"3\.\d+", python_version):
        raise ArtifactZipError(f"python_version must look like '3.12', not {python_version!r}.")
    tag = "cpython-" + python_version.replace(".", "")
    running = sys.implementation.cache_tag
    if sys.implementation.name != "cpython" or running != tag:
        raise ArtifactZipError(
            f"Bytecode for Python {python_version} must be compiled by CPython {python_version}, "
            f"but this is {sys.implementation.name} {sys.version.split()[0]}."
        )
    return tag


def _compile_items(
    files: Dict[str, _Item], out_prefix: str, workers: int, stack: ExitStack
) -> Tuple[Dict[str, _Item], List[bytecode.CompileFailure], List[bytecode.CompileFailure]]:
    """Compile the .py files that lack a kept .pyc, in a scratch copy holding only sources.

    First-party code keeps its column positions (the `^^^^` under the failing expression in a
    traceback); third-party code is compiled without them (`bytecode.compile_all`): ~18% off
    its zipped .pyc, while its tracebacks keep file, line and source line.

    Returns the new .pyc items, then the first-party and the third-party failures.
    """
    tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="lambda_zip-"))
    jobs: List[bytecode.Job] = []
    for rel in sorted(files):
        if not rel.endswith(".py") or bytecode.pyc_tag_path(rel) in files:
            continue
        full = os.path.join(tmp, "src", *rel.split("/"))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(files[rel].read())
        cfile = os.path.join(tmp, "pyc", *bytecode.pyc_tag_path(rel).split("/"))
        # The code's filename: where Lambda will find it, so output is independent of `tmp`.
        jobs.append((rel, full, cfile, out_prefix + rel))
    pyc_items: Dict[str, _Item] = {}
    first_party: List[bytecode.CompileFailure] = []
    third_party: List[bytecode.CompileFailure] = []
    columns = [files[job[0]].first_party for job in jobs]
    for job, failure in zip(jobs, bytecode.compile_all(jobs, workers, columns)):
        rel = job[0]
        if failure is not None:
            (first_party if files[rel].first_party else third_party).append(failure)
            continue
        with open(job[2], "rb") as f:
            data = f.read()  # Read now: the scratch dir goes away with the stack.
        pyc_items[bytecode.pyc_tag_path(rel)] = _Item(
            len(data), f"compiled {rel}", _bytes_reader(data), files[rel].first_party
        )
    return pyc_items, first_party, third_party


def _strip_native(
    files: Dict[str, _Item], candidates: Iterable[str]
) -> Tuple[int, Dict[str, Tuple[str, int]]]:
    """Replace each native file among `candidates` by itself without symbol tables and debug
    sections (`elf_strip`); returns how many bytes they lost, and each changed file's new
    RECORD hash and size.

    The stripped bytes are made again when the file is written, so no copy stays in memory.
    """
    saved = 0
    rehashed: Dict[str, Tuple[str, int]] = {}
    for path in sorted(candidates):
        item = files.get(path)
        if item is None or not native_code.is_native_name(path):
            continue
        data = item.read()
        if not native_code.is_elf(data):
            continue
        stripped = elf_strip.strip_symbols(data)
        if stripped is None:
            continue
        files[path] = _Item(
            len(stripped),
            item.origin,
            _stripped_reader(item, len(stripped)),
            item.first_party,
            item.checked,
        )
        saved += len(data) - len(stripped)
        rehashed[path] = (record_hash(stripped), len(stripped))
    return saved, rehashed


def record_hash(data: bytes) -> str:
    """A RECORD row's hash field (PEP 376/627): sha256, urlsafe base64 without padding."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def record_without(text: str, gone: Set[str], rehashed: Mapping[str, Tuple[str, int]]) -> str:
    """A RECORD as it must read after slim: no rows for files left out, the new hash and size
    for files that changed; every other row byte for byte as it was."""
    out: List[str] = []
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        rows = list(csv.reader([body])) if body else []
        if not rows or not rows[0] or not rows[0][0]:
            out.append(line)
            continue
        row = rows[0]
        path = _record_path(row[0])
        if path in gone:
            continue
        if path in rehashed and len(row) >= 3:
            new_hash, new_size = rehashed[path]
            row = [row[0], new_hash if row[1] else "", str(new_size) if row[2] else "", *row[3:]]
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator=line[len(body) :]).writerow(row)
            out.append(buffer.getvalue())
            continue
        out.append(line)
    return "".join(out)


def _rewrite_records(
    files: Dict[str, _Item],
    dists: Mapping[str, _Distribution],
    gone: Set[str],
    rehashed: Mapping[str, Tuple[str, int]],
) -> None:
    """Keep each RECORD true to what ships: `importlib.metadata.files()` lists its rows and
    tools that verify an installation check their hashes."""
    touched = gone | set(rehashed)
    for dist in dists.values():
        path = f"{dist.dist_info}/RECORD"
        item = files.get(path)
        if item is None or not dist.files & touched:
            continue
        text = item.read().decode("utf-8", "surrogateescape")
        rewritten = record_without(text, gone, rehashed)
        if rewritten != text:
            data = rewritten.encode("utf-8", "surrogateescape")
            files[path] = _Item(len(data), item.origin, _bytes_reader(data), item.first_party)


def _stripped_reader(item: _Item, size: int) -> Callable[[], bytes]:
    def read() -> bytes:
        stripped = elf_strip.strip_symbols(item.read())
        if stripped is None or len(stripped) != size:  # Only if the input changed under us.
            raise ArtifactZipError(f"{item.origin}: changed while the ZIP was written.")
        return stripped

    return read


def _owner_lookup(
    dists: Mapping[str, _Distribution], files: Iterable[str]
) -> Callable[[str], Optional[str]]:
    owners: Dict[str, str] = {}
    paths = list(files)
    for name, dist in dists.items():
        for path in _dist_paths(dist, paths, ""):
            owners[path] = f"{name} {dist.version}"
    return owners.get


def build_zip(spec: ZipSpec) -> Report:
    """Turn directories and ZIPs into one deterministic Lambda ZIP at `spec.output`.

    Steps, in order: drop root entries matching `exclude_top_level` (`bin`); drop `__pycache__`
    and .pyc except hash-based ones matching their source; drop `exclude_distributions` using
    their RECORD; add `files`; with `slim`, drop the distributions' tests, stubs, C sources and
    docs and strip the symbol tables of their native code; compile unchecked-hash .pyc with
    THIS interpreter (which must be the runtime's); check native code against the target; put
    everything under `prefix` (`python/` for layers); write.
    """
    out_prefix = _normalize_prefix(spec.prefix)
    python_tag = _python_tag(spec.python_version)
    stack = ExitStack()
    try:
        loaded: List[Dict[str, _Item]] = []
        for source in spec.sources:
            items = {}
            for path, item in _load(source.path, stack).items():
                if _is_dropped_always(path):
                    continue
                if any(
                    fnmatch.fnmatchcase(path.split("/", 1)[0], p) for p in spec.exclude_top_level
                ):
                    continue
                item.first_party = source.first_party
                items[path] = item
            loaded.append(items)
        extras: Dict[str, _Item] = {}
        for arcname, sandbox_path in spec.files:
            name = _clean_path(arcname, "files")
            with open(sandbox_path, "rb") as f:
                data = f.read()
            extras[name] = _Item(len(data), f"generated {name}", _bytes_reader(data), True)
        files = _merge(loaded + [extras])
        # What slim must never touch, even where a third-party input has the same bytes.
        first_party_paths = {
            p for source, items in zip(spec.sources, loaded) if source.first_party for p in items
        } | set(extras)

        # Bytecode caches are decided separately from everything else.
        pycs: Dict[str, Tuple[_Item, str, str]] = {}
        for path in [p for p in files if "__pycache__" in p.split("/")]:
            item = files.pop(path)
            parsed = bytecode.source_of_pyc(path)
            if parsed is not None:
                pycs[path] = (item, parsed[0], parsed[1])

        dists = _find_distributions(files)
        wanted = {canonicalize_name(name) for name in spec.metadata_of}
        metadata = {
            name: files[f"{dists[name].dist_info}/METADATA"].read().decode("utf-8", "replace")
            for name in sorted(wanted & set(dists))
        }
        removed, excluded = _excluded_paths(files, dists, spec.exclude_distributions, "")
        if spec.excluded_output:
            stand_in, _ = _excluded_paths(files, dists, spec.stand_in_distributions, "")
            with open(spec.excluded_output, "wb") as stand_in_zip:
                _write_items({p: files[p] for p in stand_in}, stand_in_zip)
        for path in removed:
            del files[path]
        for name in excluded:
            del dists[name]

        slimmed: Dict[str, Dict[str, int]] = {}
        slim_kept: List[str] = []
        if spec.slim:
            # Before bytecode: a left-out source neither keeps its .pyc nor gets one compiled.
            owned = {path for dist in dists.values() for path in dist.files}
            slim_paths, slim_kept = slim.slim_paths(files, owned, first_party_paths)
            slimmed = slim.slim_summary(files, slim_paths)
            for path in slim_paths:
                del files[path]
            saved, rehashed = _strip_native(files, owned - first_party_paths)
            slimmed["symbols"] = {"files": len(rehashed), "bytes": saved}
            _rewrite_records(files, dists, set(slim_paths), rehashed)

        for path, (item, source_path, tag) in pycs.items():
            if source_path in files and bytecode.keep_pyc(
                item, files[source_path], tag, python_tag
            ):
                files[path] = item

        report = Report(
            excluded_distributions=excluded,
            slimmed=slimmed,
            slim_kept=slim_kept,
            metadata=metadata,
        )
        if python_tag is not None:
            pyc_items, first_party_failures, third_party_failures = _compile_items(
                files, out_prefix, spec.workers, stack
            )
            if first_party_failures:
                raise ArtifactZipError(
                    "First-party code does not compile for Python "
                    f"{spec.python_version}, so the function would fail at import:\n"
                    + "\n".join(f"  {failure.describe()}" for failure in first_party_failures)
                    + "\nFix the syntax (or the `runtime`, if the code needs a newer Python)."
                )
            for failure in third_party_failures:
                report.warnings.append(
                    f"Not compiled for Python {spec.python_version}, shipped as source: "
                    f"{out_prefix}{failure.describe()}"
                )
            files.update(pyc_items)
            report.compiled = len(pyc_items)

        owner = _owner_lookup(dists, files)
        problems: List[Any] = []

        def check(name: str, item: _Item, data: bytes) -> None:
            if spec.native is None or item.checked:
                return
            problems.extend(
                native_code.check_native_file(
                    name, data, spec.native.architecture, spec.native.max_glibc
                )
            )

        output = {out_prefix + path: item for path, item in files.items()}
        tmp_out = spec.output + ".tmp"
        with open(tmp_out, "wb") as out_zip:
            _write_items(output, out_zip, check)
        if problems:
            os.unlink(tmp_out)
            native = spec.native
            assert native is not None
            raise ArtifactZipError(
                f"Native code that cannot load on Lambda {native.architecture} "
                f"(glibc {native.max_glibc[0]}.{native.max_glibc[1]}):\n"
                + native_code.format_problems(problems, lambda path: owner(path[len(out_prefix) :]))
            )
        os.replace(tmp_out, spec.output)
        with open(spec.output, "rb") as f:
            zip_bytes = f.read()

        sizes = _distribution_sizes(files, dists, "")
        first_party_files = sorted(
            ((out_prefix + p, item.size) for p, item in files.items() if item.first_party),
            key=lambda pair: (-pair[1], pair[0]),
        )
        digest = hashlib.sha256(zip_bytes)
        report.sha256 = digest.hexdigest()
        report.code_sha256 = base64.b64encode(digest.digest()).decode("ascii")
        report.size = len(zip_bytes)
        report.unzipped_size = sum(item.size for item in output.values())
        report.file_count = len(output)
        report.distributions = {n: dists[n].version for n in sorted(dists)}
        report.distribution_sizes = dict(sorted(sizes.items()))
        report.largest_first_party = first_party_files[:_LARGEST_FILES]
        return report
    finally:
        stack.close()


# --------------------------------------------------------------------------------------------
# Command line, for the sandboxed Process.
# --------------------------------------------------------------------------------------------


def main(argv: Optional[Sequence[str]] = None) -> int:
    """`lambda_zip.py REQUEST.json REPORT.json [--workers N]`; exit 1 with a message on a user
    error, which the rule shows as it is."""
    parser = argparse.ArgumentParser(prog="lambda_zip.py", description=__doc__)
    parser.add_argument("request", nargs="?", help="The JSON request written by the rule.")
    parser.add_argument("report", nargs="?", help="Where to write the JSON report.")
    parser.add_argument("--workers", type=int, default=1, help="Processes that compile bytecode.")
    args = parser.parse_args(argv)
    if not args.request or not args.report:
        parser.error("REQUEST and REPORT are required")
    try:
        with open(args.request, encoding="utf-8") as f:
            spec = ZipSpec.from_json(json.load(f), workers=max(1, args.workers))
        report = build_zip(spec)
        with open(args.report, "w", encoding="utf-8") as f:
            json.dump(report.to_json(), f, indent=2, sort_keys=True)
            f.write("\n")
    except (ArtifactZipError, bytecode.BytecodeError, OSError) as e:
        print(f"{e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
