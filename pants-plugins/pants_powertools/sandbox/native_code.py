"""Proves that the native code in a Lambda artifact can load on the Lambda runtime.

A wheel for the wrong architecture, a musllinux wheel or one built against a newer glibc than
the runtime's installs and zips without complaint, and fails only at the first import in AWS
(`Runtime.ImportModuleError: ... cannot open shared object file`, `version GLIBC_2.28 not
found`, `wrong ELF class`). This module reads the ELF headers of each native file to find
that out at build time.

STANDARD LIBRARY ONLY, and CPython 3.9 syntax: it runs in a sandboxed process under the Lambda
runtime's own CPython (3.9-3.13) as well as in the plugin's unit tests. It reads only the ELF
header, the program headers and the few sections it needs, through `struct.unpack_from`, so a
layer with hundreds of extension modules costs no full copies of them.
"""

from __future__ import annotations

import argparse
import json
import re
import struct
import sys
import zipfile
from dataclasses import dataclass, replace
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

ELF_MAGIC = b"\x7fELF"

# e_machine values (System V ABI / elf.h) of Lambda's two architectures, and a few others that
# wheels for other platforms carry, for a message that says what the file was built for.
EM_X86_64 = 62
EM_AARCH64 = 183
MACHINE_BY_ARCHITECTURE: Dict[str, int] = {
    "x86_64": EM_X86_64,
    "arm64": EM_AARCH64,
    "aarch64": EM_AARCH64,
}
MACHINE_NAMES: Dict[int, str] = {
    3: "i386 (32-bit x86)",
    8: "MIPS",
    20: "PowerPC",
    21: "ppc64",
    22: "s390x",
    40: "32-bit ARM",
    EM_X86_64: "x86_64",
    EM_AARCH64: "arm64 (aarch64)",
    243: "RISC-V",
}

ELFCLASS64 = 2
ELFDATA2LSB = 1
ET_EXEC = 2
ET_DYN = 3

PT_LOAD = 1
PT_DYNAMIC = 2
PT_INTERP = 3

SHT_DYNAMIC = 6
SHT_DYNSYM = 11
SHT_GNU_VERNEED = 0x6FFFFFFE
SHT_GNU_VERSYM = 0x6FFFFFFF

DT_NULL = 0
DT_NEEDED = 1
DT_STRTAB = 5
DT_STRSZ = 10
DT_VERNEED = 0x6FFFFFFE
DT_VERNEEDNUM = 0x6FFFFFFF

VER_FLG_WEAK = 0x2
SHN_UNDEF = 0

# Amazon Linux 2023 runtimes (python3.12 and later) have glibc 2.34: named in the advice when a
# file needs a glibc newer than Amazon Linux 2's 2.26 but no newer than that.
NEWEST_LAMBDA_GLIBC: Tuple[int, int] = (2, 34)
NEWEST_LAMBDA_GLIBC_RUNTIMES = "python3.12 or later"

_NATIVE_NAME = re.compile(r"\.so(\.\d+)*$")
_GLIBC_VERSION = re.compile(r"^GLIBC_(\d+)\.(\d+)(?:\.(\d+))?$")
_MUSL_NEEDED = re.compile(r"^(libc\.musl-[^/]*\.so\.\d+|ld-musl-[^/]*\.so\.\d+)$")

# Files that are never ELF: not worth opening when looking for native code under any name.
_NEVER_NATIVE_SUFFIXES = (
    ".py",
    ".pyc",
    ".pyi",
    ".pyx",
    ".pxd",
    ".txt",
    ".md",
    ".rst",
    ".json",
    ".toml",
    ".cfg",
    ".ini",
    ".yaml",
    ".yml",
    ".html",
    ".css",
    ".js",
    ".csv",
    ".typed",
    ".h",
    ".c",
    ".cpp",
)


class ElfError(ValueError):
    """The data starts like ELF but its headers point outside of it."""


@dataclass(frozen=True)
class NativeProblem:
    """One reason a native file cannot load on the target; `message` starts with the file."""

    path: str
    kind: str  # "invalid", "architecture", "musl" or "glibc"
    message: str
    distribution: Optional[str] = None


@dataclass(frozen=True)
class _Section:
    sh_type: int
    offset: int
    size: int
    link: int
    info: int
    entsize: int


@dataclass(frozen=True)
class _VersionNeed:
    library: str
    version: str
    index: int  # vna_other: what .gnu.version entries of symbols needing it hold


def is_native_name(path: str) -> bool:
    """Whether `path` is named like a shared library or an extension module (`x.so`, `x.so.1.2`)."""
    return _NATIVE_NAME.search(path) is not None


def may_be_native(path: str) -> bool:
    """Whether the file is worth reading the first bytes of to see if it is ELF (any name but
    obvious text and Python files: executables in `bin/` and vendored libraries with odd names)."""
    if path.endswith("/"):
        return False
    return is_native_name(path) or not path.lower().endswith(_NEVER_NATIVE_SUFFIXES)


def is_elf(data: bytes) -> bool:
    return data[:4] == ELF_MAGIC


def glibc_version(text: str) -> Optional[Tuple[int, int]]:
    """`(2, 28)` for `"2.28"` or `"GLIBC_2.28"`, else None."""
    match = re.match(r"^(?:GLIBC_)?(\d+)\.(\d+)", text.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def _version_text(version: Tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def _cstring(data: bytes, offset: int, limit: int) -> str:
    """The NUL-terminated string at `offset`, not reading past `limit`."""
    if offset < 0 or offset >= limit:
        raise ElfError(f"string offset {offset} outside its table")
    end = data.find(b"\0", offset, limit)
    if end < 0:
        raise ElfError("unterminated string")
    return bytes(data[offset:end]).decode("utf-8", errors="replace")


class _Elf:
    """The parts of a little-endian ELF64 file the checks need, read lazily with bounds checks."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)
        if self.size < 64:
            raise ElfError("shorter than an ELF header")
        (
            self.e_type,
            self.e_machine,
            _version,
            _entry,
            self.e_phoff,
            self.e_shoff,
            _flags,
            _ehsize,
            self.e_phentsize,
            self.e_phnum,
            self.e_shentsize,
            self.e_shnum,
            _shstrndx,
        ) = struct.unpack_from("<HHIQQQIHHHHHH", data, 16)

    def _unpack(self, fmt: str, offset: int) -> Tuple[int, ...]:
        if offset < 0 or offset + struct.calcsize(fmt) > self.size:
            raise ElfError("a header points past the end of the file")
        return struct.unpack_from(fmt, self.data, offset)

    def program_headers(self) -> List[Tuple[int, int, int, int, int]]:
        """(p_type, p_offset, p_vaddr, p_filesz, p_memsz) of every program header."""
        if self.e_phnum == 0:
            return []
        if self.e_phentsize < 56:
            raise ElfError("program header entries are too small")
        headers = []
        for i in range(self.e_phnum):
            p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz, p_memsz, _align = self._unpack(
                "<IIQQQQQQ", self.e_phoff + i * self.e_phentsize
            )
            headers.append((p_type, p_offset, p_vaddr, p_filesz, p_memsz))
        return headers

    def sections(self) -> List[_Section]:
        if self.e_shoff == 0:
            return []
        if self.e_shentsize < 64:
            raise ElfError("section header entries are too small")
        count = self.e_shnum
        if count == 0:
            # More than 0xff00 sections: the real count is in section 0's sh_size.
            count = self._unpack("<Q", self.e_shoff + 32)[0]
        if self.e_shoff + count * self.e_shentsize > self.size:
            raise ElfError("the section headers point past the end of the file")
        sections = []
        for i in range(count):
            _name, sh_type, _flags, _addr, offset, size, link, info, _align, entsize = self._unpack(
                "<IIQQQQIIQQ", self.e_shoff + i * self.e_shentsize
            )
            sections.append(_Section(sh_type, offset, size, link, info, entsize))
        return sections

    def check_range(self, offset: int, size: int) -> None:
        if offset < 0 or size < 0 or offset + size > self.size:
            raise ElfError("a section points past the end of the file")

    def interpreter(self) -> Optional[str]:
        for p_type, p_offset, _vaddr, p_filesz, _memsz in self.program_headers():
            if p_type == PT_INTERP:
                self.check_range(p_offset, p_filesz)
                return _cstring(self.data, p_offset, p_offset + p_filesz)
        return None

    def _dynamic_entries(self, offset: int, size: int) -> List[Tuple[int, int]]:
        self.check_range(offset, size)
        entries = []
        for entry in range(offset, offset + size - 15, 16):
            tag, value = struct.unpack_from("<qQ", self.data, entry)
            if tag == DT_NULL:
                break
            entries.append((tag, value))
        return entries

    def _verneed(self, offset: int, count: int, strtab: int, strtab_end: int) -> List[_VersionNeed]:
        """Walks the Elf64_Verneed chain and each one's Elf64_Vernaux chain (skipping weak ones)."""
        needs: List[_VersionNeed] = []
        seen = 0
        while seen < count:
            _vn_version, vn_cnt, vn_file, vn_aux, vn_next = self._unpack("<HHIII", offset)
            library = _cstring(self.data, strtab + vn_file, strtab_end)
            aux = offset + vn_aux
            for _ in range(vn_cnt):
                _hash, flags, other, vna_name, vna_next = self._unpack("<IHHII", aux)
                if not flags & VER_FLG_WEAK:
                    version = _cstring(self.data, strtab + vna_name, strtab_end)
                    needs.append(_VersionNeed(library, version, other))
                if vna_next == 0:
                    break
                aux += vna_next
            seen += 1
            if vn_next == 0:
                break
            offset += vn_next
        return needs

    def dynamic_info(self) -> Tuple[List[str], List[_VersionNeed]]:
        """(DT_NEEDED libraries, version needs) from the section headers, or from the dynamic
        segment when the file has none (stripped with `sstrip`; the loader needs only that)."""
        sections = self.sections()
        if sections:
            return self._from_sections(sections)
        return self._from_segments()

    def _from_sections(self, sections: List[_Section]) -> Tuple[List[str], List[_VersionNeed]]:
        def strtab(index: int) -> Tuple[int, int]:
            if not 0 <= index < len(sections):
                raise ElfError("a section links to a missing string table")
            table = sections[index]
            self.check_range(table.offset, table.size)
            return table.offset, table.offset + table.size

        needed: List[str] = []
        needs: List[_VersionNeed] = []
        for section in sections:
            if section.sh_type == SHT_DYNAMIC:
                start, end = strtab(section.link)
                for tag, value in self._dynamic_entries(section.offset, section.size):
                    if tag == DT_NEEDED:
                        needed.append(_cstring(self.data, start + value, end))
            elif section.sh_type == SHT_GNU_VERNEED:
                start, end = strtab(section.link)
                self.check_range(section.offset, section.size)
                # sh_info holds the number of entries; vn_next == 0 also ends the chain.
                needs.extend(self._verneed(section.offset, section.info, start, end))
        return needed, needs

    def _file_offset(self, loads: List[Tuple[int, int, int, int, int]], address: int) -> int:
        for _type, p_offset, p_vaddr, p_filesz, _memsz in loads:
            if p_vaddr <= address < p_vaddr + p_filesz:
                return p_offset + (address - p_vaddr)
        raise ElfError(f"address {address:#x} is in no loaded segment")

    def _from_segments(self) -> Tuple[List[str], List[_VersionNeed]]:
        headers = self.program_headers()
        loads = [h for h in headers if h[0] == PT_LOAD]
        dynamic = next((h for h in headers if h[0] == PT_DYNAMIC), None)
        if dynamic is None:
            return [], []
        tags: Dict[int, List[int]] = {}
        for tag, value in self._dynamic_entries(dynamic[1], dynamic[3]):
            tags.setdefault(tag, []).append(value)
        if DT_STRTAB not in tags:
            return [], []
        start = self._file_offset(loads, tags[DT_STRTAB][0])
        end = start + tags.get(DT_STRSZ, [self.size - start])[0]
        self.check_range(start, end - start)
        needed = [_cstring(self.data, start + value, end) for value in tags.get(DT_NEEDED, [])]
        needs: List[_VersionNeed] = []
        if DT_VERNEED in tags:
            offset = self._file_offset(loads, tags[DT_VERNEED][0])
            needs = self._verneed(offset, tags.get(DT_VERNEEDNUM, [1 << 16])[0], start, end)
        return needed, needs

    def symbol_needing(self, version_index: int) -> Optional[str]:
        """An undefined dynamic symbol whose .gnu.version entry is `version_index`, or None."""
        sections = self.sections()
        versym = next((s for s in sections if s.sh_type == SHT_GNU_VERSYM), None)
        if versym is None or not 0 <= versym.link < len(sections):
            return None
        dynsym = sections[versym.link]
        if dynsym.sh_type != SHT_DYNSYM or not 0 <= dynsym.link < len(sections):
            return None
        names = sections[dynsym.link]
        self.check_range(versym.offset, versym.size)
        self.check_range(dynsym.offset, dynsym.size)
        self.check_range(names.offset, names.size)
        entsize = dynsym.entsize or 24
        if entsize < 24:
            return None
        count = min(dynsym.size // entsize, versym.size // 2)
        for i in range(1, count):
            if (
                struct.unpack_from("<H", self.data, versym.offset + 2 * i)[0] & 0x7FFF
                != version_index
            ):
                continue
            entry = dynsym.offset + i * entsize
            st_name, _info, _other, st_shndx = struct.unpack_from("<IBBH", self.data, entry)
            if st_shndx == SHN_UNDEF and st_name:
                return _cstring(self.data, names.offset + st_name, names.offset + names.size)
        return None


def check_native_file(
    path_in_zip: str, data: bytes, architecture: str, max_glibc: Tuple[int, int]
) -> List[NativeProblem]:
    """The reasons the file cannot load on Lambda's `architecture` with glibc `max_glibc`; empty
    when it can, and for data that is not ELF. `data` may be any buffer (bytes, mmap)."""
    if architecture not in MACHINE_BY_ARCHITECTURE:
        raise ValueError(f"Unknown Lambda architecture {architecture!r}: x86_64 or arm64.")
    if not is_elf(data):
        return []
    try:
        return _check_elf(path_in_zip, data, architecture, max_glibc)
    except (ElfError, struct.error) as e:
        return [
            NativeProblem(
                path_in_zip,
                "invalid",
                f"{path_in_zip} starts like a native library but is not a valid ELF file ({e}); "
                "Lambda cannot load it. Rebuild or reinstall the distribution it comes from.",
            )
        ]


def _check_elf(
    path: str, data: bytes, architecture: str, max_glibc: Tuple[int, int]
) -> List[NativeProblem]:
    if len(data) < 20:
        raise ElfError("shorter than an ELF header")
    ei_class, ei_data = data[4], data[5]
    if ei_class != ELFCLASS64 or ei_data != ELFDATA2LSB:
        fmt = "<H" if ei_data == ELFDATA2LSB else ">H"
        machine = struct.unpack_from(fmt, data, 18)[0]
        bits = "64" if ei_class == ELFCLASS64 else "32"
        layout = f"{bits}-bit {'little' if ei_data == ELFDATA2LSB else 'big'}-endian"
        return [_wrong_architecture(path, architecture, machine, layout)]
    elf = _Elf(data)
    if elf.e_type not in (ET_EXEC, ET_DYN):
        return []  # object files (.o) and core dumps are never loaded
    if elf.e_machine != MACHINE_BY_ARCHITECTURE[architecture]:
        return [_wrong_architecture(path, architecture, elf.e_machine, None)]

    problems: List[NativeProblem] = []
    interpreter = elf.interpreter()
    needed, needs = elf.dynamic_info()
    musl = [lib for lib in needed if _MUSL_NEEDED.match(lib)]
    if musl or (interpreter and "/ld-musl-" in interpreter):
        what = f"needs {musl[0]}" if musl else f"asks for the loader {interpreter}"
        problems.append(
            NativeProblem(
                path,
                "musl",
                f"{path} is linked against musl libc ({what}): it comes from a musllinux wheel, "
                "but Lambda runs on glibc (Amazon Linux). Use a manylinux wheel of the same "
                "distribution.",
            )
        )

    # Only glibc's own versions count. GLIBCXX_/CXXABI_ are libstdc++'s: the manylinux policy a
    # wheel passed already caps them for its glibc level, some wheels vendor a newer libstdc++
    # of their own (which then provides them), and the runtime table knows no libstdc++
    # versions; judging them here would refuse wheels that work.
    newest: Optional[Tuple[Tuple[int, ...], _VersionNeed]] = None
    for need in needs:
        match = _GLIBC_VERSION.match(need.version)
        if match is None:
            continue  # GLIBC_PRIVATE, GLIBCXX_3.4.x, CXXABI_1.3.x, OPENSSL_3.0.0, ...
        key = tuple(int(part) for part in match.groups() if part is not None)
        if newest is None or key > newest[0]:
            newest = (key, need)
    if newest is not None and newest[0][:2] > max_glibc:
        version = (newest[0][0], newest[0][1])
        need = newest[1]
        symbol = elf.symbol_needing(need.index)
        via = f" (from {need.library}" + (f", for `{symbol}`)" if symbol else ")")
        advice = (
            "Use a version of its distribution with a wheel tagged "
            f"manylinux_{max_glibc[0]}_{max_glibc[1]} or older for this architecture"
        )
        if max_glibc < NEWEST_LAMBDA_GLIBC and version <= NEWEST_LAMBDA_GLIBC:
            advice += (
                f", or a runtime with glibc {_version_text(NEWEST_LAMBDA_GLIBC)} "
                f"({NEWEST_LAMBDA_GLIBC_RUNTIMES})"
            )
        problems.append(
            NativeProblem(
                path,
                "glibc",
                f"{path} needs {need.version}{via}, newer than the runtime's glibc "
                f'{_version_text(max_glibc)}, so importing it would fail with "version '
                f"`{need.version}' not found\". {advice}.",
            )
        )
    return problems


def _wrong_architecture(
    path: str, architecture: str, machine: int, layout: Optional[str]
) -> NativeProblem:
    built_for = MACHINE_NAMES.get(machine, f"ELF machine {machine}")
    if layout is not None:
        built_for = f"{built_for}, {layout}"
    return NativeProblem(
        path,
        "architecture",
        f"{path} is built for {built_for}, but the Lambda architecture is {architecture} "
        f"(64-bit little-endian {MACHINE_NAMES[MACHINE_BY_ARCHITECTURE[architecture]]}). "
        "Use a wheel for that architecture, or set the target's architecture to match.",
    )


def format_problems(
    problems: Sequence[NativeProblem],
    distribution_of: Optional[Callable[[str], Optional[str]]] = None,
) -> str:
    """One paragraph per problem, each naming the distribution the file came from if known."""
    lines = []
    for problem in problems:
        distribution = problem.distribution or (
            distribution_of(problem.path) if distribution_of else None
        )
        prefix = f"[{distribution}] " if distribution else ""
        lines.append(f"- {prefix}{problem.message}")
    return "\n".join(lines)


def distributions_in_zip(archive: zipfile.ZipFile) -> Dict[str, str]:
    """Path in the ZIP -> `name version` of the distribution whose `*.dist-info/RECORD` lists it
    (RECORD paths are relative to the directory holding the .dist-info, e.g. `python/`)."""
    owners: Dict[str, str] = {}
    for name in archive.namelist():
        match = re.match(r"^(.*?)([^/]+)\.dist-info/RECORD$", name)
        if match is None:
            continue
        prefix, stem = match.group(1), match.group(2)
        distribution, _, version = stem.partition("-")
        label = f"{distribution} {version}".strip()
        for line in archive.read(name).decode("utf-8", errors="replace").splitlines():
            # RECORD is CSV, but a path with a comma is quoted; the path is all we need.
            path = line.rsplit(",", 2)[0].strip('"') if line.count(",") >= 2 else line
            if path and not path.startswith(("../", "/")):
                owners[prefix + path] = label
    return owners


def check_zip(
    archive: zipfile.ZipFile, architecture: str, max_glibc: Tuple[int, int]
) -> List[NativeProblem]:
    """Checks every native file in a Lambda ZIP, naming each problem's distribution."""
    owners: Optional[Dict[str, str]] = None
    problems: List[NativeProblem] = []
    for info in archive.infolist():
        if info.is_dir() or not may_be_native(info.filename) or info.file_size < 4:
            continue
        with archive.open(info) as member:
            if member.read(4) != ELF_MAGIC:
                continue
        found = check_native_file(info.filename, archive.read(info), architecture, max_glibc)
        if found:
            if owners is None:
                owners = distributions_in_zip(archive)
            problems.extend(replace(p, distribution=owners.get(p.path)) for p in found)
    return problems


def main(argv: Optional[Iterable[str]] = None) -> int:
    """`python native_code.py --architecture arm64 --max-glibc 2.26 layer.zip`: prints the
    problems and exits 1 if there are any (`--json` prints them as a JSON list instead)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--architecture", required=True, choices=sorted(MACHINE_BY_ARCHITECTURE))
    parser.add_argument("--max-glibc", required=True, help="the runtime's glibc, e.g. 2.26")
    parser.add_argument("--json", action="store_true", help="print problems as JSON")
    parser.add_argument("zips", nargs="+")
    args = parser.parse_args(list(argv) if argv is not None else None)
    max_glibc = glibc_version(args.max_glibc)
    if max_glibc is None:
        parser.error(f"--max-glibc must look like 2.26, not {args.max_glibc!r}")
    problems: List[NativeProblem] = []
    for path in args.zips:
        with zipfile.ZipFile(path) as archive:
            problems.extend(check_zip(archive, args.architecture, max_glibc))
    if args.json:
        print(json.dumps([p.__dict__ for p in problems], indent=2, sort_keys=True))
    elif problems:
        print(format_problems(problems), file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
