"""Tests for native_code: synthetic ELF files built here with `struct`, and real ones from the
CPython installs on this machine, checked against `readelf`/`objdump` when those exist."""

from __future__ import annotations

import glob
import io
import os
import random
import re
import shutil
import struct
import subprocess
import zipfile
from typing import List, Optional, Sequence, Tuple

import pytest

from pants_powertools.sandbox.native_code import (
    EM_AARCH64,
    EM_X86_64,
    NativeProblem,
    check_native_file,
    check_zip,
    format_problems,
    glibc_version,
    is_native_name,
    main,
    may_be_native,
)

AL2 = (2, 26)
AL2023 = (2, 34)

# (library, [(version, [undefined symbols needing it])])
Needs = Sequence[Tuple[str, Sequence[Tuple[str, Sequence[str]]]]]


class _StrTab:
    def __init__(self) -> None:
        self.data = bytearray(b"\0")

    def add(self, text: str) -> int:
        offset = len(self.data)
        self.data += text.encode() + b"\0"
        return offset


def build_elf(
    machine: int = EM_X86_64,
    needed: Sequence[str] = ("libc.so.6",),
    needs: Needs = (
        ("libc.so.6", (("GLIBC_2.2.5", ("malloc",)), ("GLIBC_2.17", ("clock_gettime",)))),
    ),
    interpreter: Optional[str] = None,
    e_type: int = 3,
    with_sections: bool = True,
) -> bytes:
    """A minimal little-endian ELF64 shared object: one PT_LOAD mapping the whole file at
    address 0 (so addresses equal offsets), PT_DYNAMIC, optionally PT_INTERP, and sections
    .dynstr, .dynsym, .gnu.version, .gnu.version_r, .dynamic, .interp, .shstrtab."""
    dynstr = _StrTab()
    symbols: List[Tuple[int, int]] = []  # (name offset, version index)
    verneed = bytearray()
    index = 2
    for n, (library, versions) in enumerate(needs):
        file_name = dynstr.add(library)
        verneed += struct.pack(
            "<HHIII",
            1,
            len(versions),
            file_name,
            16,
            0 if n == len(needs) - 1 else 16 + 16 * len(versions),
        )
        for v, (version, names) in enumerate(versions):
            last = v == len(versions) - 1
            verneed += struct.pack("<IHHII", 0, 0, index, dynstr.add(version), 0 if last else 16)
            symbols.extend((dynstr.add(name), index) for name in names)
            index += 1
    needed_offsets = [dynstr.add(library) for library in needed]

    dynsym = bytearray(24) + b"".join(
        struct.pack("<IBBHQQ", name, 0x12, 0, 0, 0, 0) for name, _ in symbols
    )
    versym = struct.pack("<H", 0) + b"".join(struct.pack("<H", version) for _, version in symbols)
    interp = (interpreter.encode() + b"\0") if interpreter else b""

    phnum = 3 if interpreter else 2
    body = bytearray(64 + 56 * phnum)
    offsets = {}

    def place(name: str, blob: bytes) -> None:
        while len(body) % 8:
            body.append(0)
        offsets[name] = len(body)
        body.extend(blob)

    place(".dynstr", bytes(dynstr.data))
    place(".dynsym", bytes(dynsym))
    place(".gnu.version", versym)
    place(".gnu.version_r", bytes(verneed))
    dynamic = b"".join(struct.pack("<qQ", 1, offset) for offset in needed_offsets)
    dynamic += struct.pack("<qQqQ", 5, offsets[".dynstr"], 10, len(dynstr.data))
    dynamic += struct.pack(
        "<qQqQqQ", 6, offsets[".dynsym"], 11, 24, 0x6FFFFFF0, offsets[".gnu.version"]
    )
    if needs:
        dynamic += struct.pack(
            "<qQqQ", 0x6FFFFFFE, offsets[".gnu.version_r"], 0x6FFFFFFF, len(needs)
        )
    dynamic += struct.pack("<qQ", 0, 0)
    place(".dynamic", dynamic)
    if interp:
        place(".interp", interp)

    shstrtab = _StrTab()
    # (name, sh_type, link, info, entsize)
    layout = [
        (".dynstr", 3, 0, 0, 0),
        (".dynsym", 11, 1, 1, 24),
        (".gnu.version", 0x6FFFFFFF, 2, 0, 2),
        (".gnu.version_r", 0x6FFFFFFE, 1, len(needs), 0),
        (".dynamic", 6, 1, 0, 16),
    ] + ([(".interp", 1, 0, 0, 0)] if interp else [])
    name_offsets = [shstrtab.add(name) for name, *_ in layout]
    shstrtab_name = shstrtab.add(".shstrtab")
    place(".shstrtab", bytes(shstrtab.data))
    section_headers = bytearray(64)
    sizes = {
        ".dynstr": len(dynstr.data),
        ".dynsym": len(dynsym),
        ".gnu.version": len(versym),
        ".gnu.version_r": len(verneed),
        ".dynamic": len(dynamic),
        ".interp": len(interp),
    }
    for name_offset, (name, sh_type, link, info, entsize) in zip(name_offsets, layout):
        section_headers += struct.pack(
            "<IIQQQQIIQQ",
            name_offset,
            sh_type,
            2,
            offsets[name],
            offsets[name],
            sizes[name],
            link,
            info,
            8,
            entsize,
        )
    section_headers += struct.pack(
        "<IIQQQQIIQQ", shstrtab_name, 3, 0, 0, offsets[".shstrtab"], len(shstrtab.data), 0, 0, 1, 0
    )
    shnum = len(layout) + 2
    place("shdrs", bytes(section_headers) if with_sections else b"")

    total = len(body)
    phdrs = struct.pack("<IIQQQQQQ", 1, 5, 0, 0, 0, total, total, 0x1000)
    phdrs += struct.pack(
        "<IIQQQQQQ",
        2,
        6,
        offsets[".dynamic"],
        offsets[".dynamic"],
        0,
        len(dynamic),
        len(dynamic),
        8,
    )
    if interp:
        phdrs += struct.pack(
            "<IIQQQQQQ",
            3,
            4,
            offsets[".interp"],
            offsets[".interp"],
            0,
            len(interp),
            len(interp),
            1,
        )
    body[64 : 64 + len(phdrs)] = phdrs
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header = ident + struct.pack(
        "<HHIQQQIHHHHHH",
        e_type,
        machine,
        1,
        0,
        64,
        offsets["shdrs"] if with_sections else 0,
        0,
        64,
        56,
        phnum,
        64,
        shnum if with_sections else 0,
        shnum - 1 if with_sections else 0,
    )
    body[:64] = header
    return bytes(body)


def elf_header_only(ei_class: int, ei_data: int, machine: int) -> bytes:
    """The first 20 bytes of an ELF file of another class or byte order, padded to 64."""
    fmt = "<HH" if ei_data == 1 else ">HH"
    return (
        b"\x7fELF" + bytes([ei_class, ei_data, 1, 0]) + bytes(8) + struct.pack(fmt, 3, machine)
    ).ljust(64, b"\0")


def kinds(problems: Sequence[NativeProblem]) -> List[str]:
    return [p.kind for p in problems]


GLIBC_2_28 = (("libc.so.6", (("GLIBC_2.2.5", ("malloc",)), ("GLIBC_2.28", ("fcntl64",)))),)


def test_good_x86_64_file_passes() -> None:
    assert check_native_file("pkg/_ext.so", build_elf(), "x86_64", AL2) == []


@pytest.mark.parametrize("with_sections", [True, False])
def test_newer_glibc_fails_on_amazon_linux_2_and_passes_on_2023(with_sections: bool) -> None:
    data = build_elf(needs=GLIBC_2_28, with_sections=with_sections)
    problems = check_native_file("pkg/_ext.so", data, "x86_64", AL2)
    assert kinds(problems) == ["glibc"]
    message = problems[0].message
    assert message.startswith("pkg/_ext.so needs GLIBC_2.28 (from libc.so.6")
    assert (
        "glibc 2.26" in message and "manylinux_2_26" in message and "python3.12 or later" in message
    )
    # Symbol names come from .dynsym, which a file without section headers does not locate.
    assert ("`fcntl64`" in message) == with_sections
    assert check_native_file("pkg/_ext.so", data, "x86_64", AL2023) == []


def test_newest_of_several_libraries_is_reported() -> None:
    needs = (
        ("libm.so.6", (("GLIBC_2.29", ("exp",)),)),
        ("libc.so.6", (("GLIBC_2.2.5", ("free",)), ("GLIBC_2.27", ("memfd_create",)))),
    )
    (problem,) = check_native_file(
        "m.so", build_elf(needed=("libm.so.6", "libc.so.6"), needs=needs), "x86_64", AL2
    )
    assert "GLIBC_2.29 (from libm.so.6, for `exp`)" in problem.message


def test_glibc_newer_than_any_runtime_does_not_suggest_another_runtime() -> None:
    needs = (("libc.so.6", (("GLIBC_2.38", ("strlcpy",)),)),)
    (problem,) = check_native_file("x.so", build_elf(needs=needs), "x86_64", AL2)
    assert "python3.12" not in problem.message
    assert kinds(check_native_file("x.so", build_elf(needs=needs), "x86_64", AL2023)) == ["glibc"]


def test_libstdcxx_and_private_versions_are_not_judged() -> None:
    needs = (
        (
            "libstdc++.so.6",
            (("GLIBCXX_3.4.30", ("_ZSt4cout",)), ("CXXABI_1.3.13", ("__cxa_throw",))),
        ),
        ("libc.so.6", (("GLIBC_PRIVATE", ("_dl_x",)), ("GLIBC_2.17", ("clock_gettime",)))),
    )
    assert (
        check_native_file(
            "x.so", build_elf(needed=("libstdc++.so.6", "libc.so.6"), needs=needs), "x86_64", AL2
        )
        == []
    )


@pytest.mark.parametrize(
    "machine, architecture, built_for",
    [
        (EM_AARCH64, "x86_64", "arm64 (aarch64)"),
        (EM_X86_64, "arm64", "x86_64"),
        (EM_X86_64, "aarch64", "x86_64"),
    ],
)
def test_wrong_machine_fails(machine: int, architecture: str, built_for: str) -> None:
    (problem,) = check_native_file("a/b.so.1.2", build_elf(machine=machine), architecture, AL2)
    assert problem.kind == "architecture"
    assert problem.message.startswith(
        f"a/b.so.1.2 is built for {built_for}, but the Lambda architecture is {architecture}"
    )


def test_right_machine_for_arm64_passes() -> None:
    assert check_native_file("b.so", build_elf(machine=EM_AARCH64), "arm64", AL2) == []


@pytest.mark.parametrize(
    "header, fragment",
    [
        (elf_header_only(1, 1, 3), "i386 (32-bit x86), 32-bit little-endian"),
        (elf_header_only(1, 1, 40), "32-bit ARM, 32-bit little-endian"),
        (elf_header_only(2, 2, 21), "ppc64, 64-bit big-endian"),
        (elf_header_only(2, 2, 22), "s390x, 64-bit big-endian"),
    ],
)
def test_other_class_or_byte_order_is_the_wrong_architecture(header: bytes, fragment: str) -> None:
    (problem,) = check_native_file("old.so", header, "x86_64", AL2)
    assert problem.kind == "architecture" and fragment in problem.message


def test_musl_needed_fails() -> None:
    data = build_elf(needed=("libc.musl-x86_64.so.1",), needs=())
    (problem,) = check_native_file("pkg/_ext.so", data, "x86_64", AL2)
    assert problem.kind == "musl"
    assert "needs libc.musl-x86_64.so.1" in problem.message and "manylinux wheel" in problem.message


def test_musl_interpreter_fails() -> None:
    data = build_elf(
        needed=(), needs=(), interpreter="/lib/ld-musl-aarch64.so.1", e_type=2, machine=EM_AARCH64
    )
    (problem,) = check_native_file("bin/tool", data, "arm64", AL2)
    assert problem.kind == "musl" and "the loader /lib/ld-musl-aarch64.so.1" in problem.message


def test_glibc_interpreter_passes() -> None:
    data = build_elf(interpreter="/lib64/ld-linux-x86-64.so.2", e_type=2)
    assert check_native_file("bin/tool", data, "x86_64", AL2) == []


def test_object_files_are_not_loaded_so_not_judged() -> None:
    assert check_native_file("x.o", build_elf(machine=EM_AARCH64, e_type=1), "x86_64", AL2) == []


@pytest.mark.parametrize("data", [b"", b"not an elf", b"INPUT(-lfoo)\n", b"\x7fEL"])
def test_non_elf_data_is_no_problem(data: bytes) -> None:
    assert check_native_file("libfoo.so", data, "x86_64", AL2) == []


def test_every_truncation_is_reported_as_invalid() -> None:
    data = build_elf(needs=GLIBC_2_28, interpreter="/lib64/ld-linux-x86-64.so.2")
    for cut in range(4, len(data)):
        problems = check_native_file("t.so", data[:cut], "x86_64", AL2)
        assert kinds(problems) == ["invalid"], cut
    assert "t.so starts like a native library but is not a valid ELF file" in problems[0].message


def test_corrupt_files_never_crash() -> None:
    data = build_elf(needs=GLIBC_2_28, interpreter="/lib64/ld-linux-x86-64.so.2")
    rng = random.Random(1234)
    for _ in range(3000):
        corrupt = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            corrupt[rng.randrange(4, len(corrupt))] = rng.randrange(256)
        for problem in check_native_file("c.so", bytes(corrupt), "x86_64", AL2):
            assert problem.kind in {"invalid", "architecture", "musl", "glibc"}


def test_unknown_architecture_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="x86_64 or arm64"):
        check_native_file("x.so", build_elf(), "amd64", AL2)


@pytest.mark.parametrize(
    "path, native",
    [
        ("numpy/core/_multiarray_umath.cpython-312-x86_64-linux-gnu.so", True),
        ("numpy.libs/libgfortran-040039e1.so.5.0.0", True),
        ("libffi.so.8", True),
        ("lib.so.1.2", True),
        ("pkg/module.py", False),
        ("pkg/so.py", False),
        ("lib.so.x", False),
        ("lib.sox", False),
        ("lib.dylib", False),
    ],
)
def test_native_names(path: str, native: bool) -> None:
    assert is_native_name(path) is native


def test_may_be_native_skips_text_but_not_executables() -> None:
    assert may_be_native("bin/tool") and may_be_native("x.so")
    assert (
        not may_be_native("pkg/__init__.py")
        and not may_be_native("pkg/")
        and not may_be_native("a/METADATA.txt")
    )


def test_glibc_version_parsing() -> None:
    assert glibc_version("2.26") == (2, 26) and glibc_version("GLIBC_2.2.5") == (2, 2)
    assert glibc_version("GLIBC_PRIVATE") is None


def _layer_zip(members: Sequence[Tuple[str, bytes]]) -> zipfile.ZipFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return zipfile.ZipFile(io.BytesIO(buffer.getvalue()))


def test_check_zip_names_the_distribution_from_its_record(tmp_path) -> None:
    record = (
        "fastthing/__init__.py,sha256=x,10\n"
        "fastthing/_speed.cpython-39-x86_64-linux-gnu.so,sha256=y,2000\n"
        '"fastthing/odd,name.so",sha256=z,2000\n'
        "fastthing-2.1.0.dist-info/RECORD,,\n"
    )
    archive = _layer_zip(
        [
            ("python/fastthing/__init__.py", b"\x7fELF but a .py is never read"),
            ("python/fastthing/_speed.cpython-39-x86_64-linux-gnu.so", build_elf(needs=GLIBC_2_28)),
            ("python/fastthing/odd,name.so", build_elf(machine=EM_AARCH64)),
            ("python/fastthing/bin/helper", build_elf(needed=("libc.musl-x86_64.so.1",), needs=())),
            ("python/fastthing/fine.so", build_elf()),
            ("python/fastthing/data.so", b"not elf"),
            ("python/fastthing-2.1.0.dist-info/RECORD", record.encode()),
        ]
    )
    problems = check_zip(archive, "x86_64", AL2)
    assert [(p.path.rsplit("/", 1)[1], p.kind, p.distribution) for p in problems] == [
        ("_speed.cpython-39-x86_64-linux-gnu.so", "glibc", "fastthing 2.1.0"),
        ("odd,name.so", "architecture", "fastthing 2.1.0"),
        ("helper", "musl", None),
    ]
    rendered = format_problems(problems)
    assert rendered.startswith(
        "- [fastthing 2.1.0] python/fastthing/_speed.cpython-39-x86_64-linux-gnu.so "
        "needs GLIBC_2.28"
    )
    assert "\n- python/fastthing/bin/helper is linked against musl" in rendered

    zip_path = tmp_path / "layer.zip"
    with zipfile.ZipFile(zip_path, "w") as out:
        out.writestr("python/fine.so", build_elf())
    assert main(["--architecture", "x86_64", "--max-glibc", "2.26", str(zip_path)]) == 0
    assert main(["--architecture", "arm64", "--max-glibc", "2.26", str(zip_path)]) == 1


def test_format_problems_uses_the_callers_mapping() -> None:
    problems = check_native_file("p/x.so", build_elf(machine=EM_AARCH64), "x86_64", AL2)
    rendered = format_problems(problems, {"p/x.so": "orjson 3.9.0"}.get)
    assert rendered.startswith("- [orjson 3.9.0] p/x.so is built for arm64")


# Real binaries: the extension modules of the CPython installs pyenv keeps on this machine.


def _pyenv_extensions() -> List[str]:
    roots = [
        os.environ.get("PYENV_ROOT", ""),
        os.path.expanduser("~/.pyenv"),
        "/root/.pyenv",
        "/opt/pyenv",
    ]
    found: List[str] = []
    for root in filter(None, dict.fromkeys(roots)):
        found.extend(
            sorted(
                glob.glob(
                    os.path.join(root, "versions", "3.*", "lib", "python3.*", "lib-dynload", "*.so")
                )
            )
        )
        if found:
            break
    return found


REAL = _pyenv_extensions()
real_only = pytest.mark.skipif(not REAL, reason="no CPython extension modules found under pyenv")


def _readelf_newest_glibc(path: str) -> Optional[str]:
    """The newest `GLIBC_x.y[.z]` that `readelf -V` lists among the file's version needs."""
    out = subprocess.run(
        ["readelf", "-V", "-W", path], capture_output=True, text=True, check=True
    ).stdout
    versions = re.findall(r"Name: GLIBC_([\d.]+)", out)
    return max(versions, key=lambda v: tuple(int(p) for p in v.split("."))) if versions else None


@real_only
def test_real_extension_modules_load_on_their_own_machine() -> None:
    # x86_64 and glibc-linked (the machine's CPython runs them); some need more than 2.26.
    machine = os.uname().machine
    architecture = {"x86_64": "x86_64", "aarch64": "arm64"}.get(machine)
    if architecture is None:
        pytest.skip(f"machine {machine}")
    other = "arm64" if architecture == "x86_64" else "x86_64"
    for path in REAL:
        with open(path, "rb") as f:
            data = f.read()
        assert check_native_file(path, data, architecture, (2, 99)) == [], path
        assert kinds(check_native_file(path, data, other, (2, 99))) == ["architecture"], path


@real_only
@pytest.mark.skipif(
    shutil.which("readelf") is None or shutil.which("objdump") is None, reason="no binutils"
)
def test_real_glibc_requirements_match_readelf_and_objdump() -> None:
    architecture = "x86_64" if os.uname().machine == "x86_64" else "arm64"
    sample = REAL[:: max(1, len(REAL) // 25)]
    checked = 0
    for path in sample:
        newest = _readelf_newest_glibc(path)
        if newest is None:
            continue
        major, minor = (int(p) for p in newest.split(".")[:2])
        with open(path, "rb") as f:
            data = f.read()
        assert check_native_file(path, data, architecture, (major, minor)) == [], path
        (problem,) = check_native_file(path, data, architecture, (major, minor - 1))
        version = f"GLIBC_{newest}"
        assert f"needs {version} (from " in problem.message, problem.message
        symbol = re.search(r"for `([^`]+)`", problem.message)
        assert symbol is not None, problem.message
        dynamic = subprocess.run(
            ["objdump", "-T", path], capture_output=True, text=True, check=True
        ).stdout
        assert any(
            "*UND*" in line
            and re.search(rf"\b{re.escape(version)}\b", line)
            and line.split()[-1] == symbol.group(1)
            for line in dynamic.splitlines()
        ), (path, symbol.group(1))
        checked += 1
    assert checked > 0
