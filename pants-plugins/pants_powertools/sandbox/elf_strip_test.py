"""Tests for stripping symbol tables: real extension modules still import, the loaded image is
unchanged when segments follow the symbols (auditwheel's layout), and every file the function
cannot prove safe is left alone."""

from __future__ import annotations

import importlib
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from pants_powertools.sandbox import elf_strip

# ------------------------------------------------------------------------------ a synthetic ELF

PAGE = 0x1000
SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_RELA, SHT_NOBITS = 1, 2, 3, 4, 8
SHF_ALLOC = 0x2
PT_LOAD = 1


def synthetic_elf(
    endian: str = "<",
    *,
    symtab_at: int = 0x1000,
    symbols: int = 0x60,
    rela_links_symtab: bool = False,
    e_type: int = 3,
    elf_class: int = 2,
    load_over_symtab: bool = False,
) -> bytes:
    """A shared object laid out as auditwheel leaves them: code, then `.symtab`, `.strtab` and
    `.shstrtab`, the section headers, and last a page-aligned `PT_LOAD` that patchelf appended.

    sections: 0 null, 1 .text (alloc), 2 .bss (nobits), 3 .symtab, 4 .strtab, 5 .shstrtab,
    6 .dynamic (alloc, in the appended segment), 7 .rela.x (optional, links .symtab).
    """
    names = b"\0.text\0.bss\0.symtab\0.strtab\0.shstrtab\0.dynamic\0.rela.x\0"

    def name(n: str) -> int:
        return names.index(n.encode() + b"\0")

    text_at, text_size = 0x200, 0x180
    symtab_size, strtab_size = 24 * symbols, 0x7F3
    strtab_at = symtab_at + symtab_size
    shstrtab_at = strtab_at + strtab_size
    shoff = (shstrtab_at + len(names) + 7) // 8 * 8
    sections: List[Tuple[int, int, int, int, int, int, int, int, int, int]] = [
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        (name(".text"), SHT_PROGBITS, SHF_ALLOC | 0x4, text_at, text_at, text_size, 0, 0, 16, 0),
        (name(".bss"), SHT_NOBITS, SHF_ALLOC | 1, 0x380, text_at + text_size, 0x40, 0, 0, 8, 0),
        (name(".symtab"), SHT_SYMTAB, 0, 0, symtab_at, symtab_size, 4, 7, 8, 24),
        (name(".strtab"), SHT_STRTAB, 0, 0, strtab_at, strtab_size, 0, 0, 1, 0),
        (name(".shstrtab"), SHT_STRTAB, 0, 0, shstrtab_at, len(names), 0, 0, 1, 0),
    ]
    shnum = len(sections) + 1 + (1 if rela_links_symtab else 0)
    tail_at = (shoff + shnum * 64 + PAGE - 1) // PAGE * PAGE
    tail_vaddr = 0x9000  # Congruent to tail_at modulo the page.
    sections.append((name(".dynamic"), 6, SHF_ALLOC | 0x1, tail_vaddr, tail_at, 0x90, 0, 0, 8, 16))
    if rela_links_symtab:
        sections.append((name(".rela.x"), SHT_RELA, 0, 0, text_at, 0x18, 3, 1, 8, 24))
    first_load = symtab_at + 8 if load_over_symtab else text_at + text_size
    segments = [
        (PT_LOAD, 5, 0, 0, 0, first_load, first_load + 0x40, PAGE),
        (PT_LOAD, 6, tail_at, tail_vaddr, tail_vaddr, 0x90, 0x90, PAGE),
        (2, 6, tail_at, tail_vaddr, tail_vaddr, 0x90, 0x90, 8),  # PT_DYNAMIC
    ]
    size = tail_at + 0x90
    data = bytearray(size)
    data[:16] = b"\x7fELF" + bytes([elf_class, 1 if endian == "<" else 2, 1]) + bytes(9)
    header = (e_type, 62, 1, 0, 64, shoff, 0, 64, 56, len(segments), 64, shnum, 5)
    struct.pack_into(endian + "HHIQQQIHHHHHH", data, 16, *header)
    for i, segment in enumerate(segments):
        struct.pack_into(endian + "IIQQQQQQ", data, 64 + i * 56, *segment)
    for offset, length, fill in (
        (text_at, text_size, 0xC3),
        (symtab_at, symtab_size, 0x11),
        (strtab_at, strtab_size, 0x22),
        (tail_at, 0x90, 0x33),
    ):
        data[offset : offset + length] = bytes([fill]) * length
    data[shstrtab_at : shstrtab_at + len(names)] = names
    for i, section in enumerate(sections):
        struct.pack_into(endian + "IIQQQQIIQQ", data, shoff + i * 64, *section)
    return bytes(data)


def parse(data: bytes) -> Tuple[List[elf_strip._Segment], List[elf_strip._Section]]:
    header = elf_strip._header(data)
    assert header is not None
    return elf_strip._segments(data, header), elf_strip._sections(data, header)


@pytest.mark.parametrize("endian", ["<", ">"])
def test_segments_after_the_symbols_move_down_by_whole_pages(endian: str) -> None:
    data = synthetic_elf(endian)
    stripped = elf_strip.strip_symbols(data)
    assert stripped is not None
    assert len(data) - len(stripped) == PAGE  # 0x900 + 0x7f3 bytes of symbols: one page goes.
    (load0, load1, dynamic), sections = parse(stripped)
    (old0, old1, old_dynamic), old_sections = parse(data)
    # The appended segment: one page lower in the file, at the same address, same bytes.
    assert (load1.p_offset, load1.p_vaddr) == (old1.p_offset - PAGE, old1.p_vaddr)
    assert dynamic.p_offset == load1.p_offset
    assert stripped[load1.p_offset : load1.p_offset + 0x90] == b"\x33" * 0x90
    assert load0 == old0 and stripped[0x200:0x380] == data[0x200:0x380]
    # The symbol tables are empty, what is left of them zero, and the rest moved with the tail.
    symtab, strtab = sections[3], sections[4]
    assert (symtab.size, symtab.info, strtab.size) == (0, 0, 0)
    assert b"\x11" * 16 not in stripped and b"\x22" * 16 not in stripped
    assert stripped[0x1000 : 0x1000 + 0xF3] == bytes(0xF3)
    assert sections[5].offset == old_sections[5].offset - PAGE
    assert stripped[sections[5].offset :].startswith(b"\0.text\0")
    assert sections[6].offset == old_sections[6].offset - PAGE
    assert sections[2] == old_sections[2]  # .bss: no file bytes, where it was.
    # Idempotent, and the same bytes every time.
    assert elf_strip.strip_symbols(stripped) is None
    assert elf_strip.strip_symbols(data) == stripped


def test_symbols_shorter_than_the_alignment_are_zeroed_in_place() -> None:
    data = synthetic_elf(symbols=0x20)  # 0x300 + 0x7f3 bytes: less than a page.
    stripped = elf_strip.strip_symbols(data)
    assert stripped is not None and len(stripped) == len(data)
    assert stripped[0x1000 : 0x1000 + 0x300 + 0x7F3] == bytes(0x300 + 0x7F3)
    assert parse(stripped)[0] == parse(data)[0]  # Nothing moved.
    assert [s.size for s in parse(stripped)[1][3:5]] == [0, 0]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rela_links_symtab": True},  # A kept section refers to the symbol table.
        {"load_over_symtab": True},  # A segment maps part of the symbol table.
        {"e_type": 2},  # An executable, not a shared object.
        {"elf_class": 1},  # 32-bit.
    ],
)
def test_files_it_cannot_prove_safe_are_left_alone(kwargs: Dict[str, object]) -> None:
    assert elf_strip.strip_symbols(synthetic_elf(**kwargs)) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "data",
    [b"", b"\x7fELF", b"#!/bin/sh\n" * 10, bytes(4096)],
    ids=["empty", "magic only", "script", "zeros"],
)
def test_what_is_not_elf_is_left_alone(data: bytes) -> None:
    assert elf_strip.strip_symbols(data) is None


def test_a_changed_segment_fails_the_final_check() -> None:
    data = synthetic_elf()
    stripped = elf_strip.strip_symbols(data)
    assert stripped is not None
    load1 = parse(stripped)[0][1]
    broken = bytearray(stripped)
    broken[load1.p_offset] ^= 0xFF
    dropped = {3, 4}
    assert elf_strip._same_image(data, stripped, dropped)
    assert not elf_strip._same_image(data, bytes(broken), dropped)


# ------------------------------------------------------------------------------ real modules


def _extension_with_symbols() -> Optional[Path]:
    """An extension module of this interpreter that carries a symbol table (pyenv builds do)."""
    for name in ("_json", "_csv", "_struct", "math", "_decimal"):
        path = getattr(importlib.import_module(name), "__file__", None)  # None: built in.
        if path and elf_strip.strip_symbols(Path(path).read_bytes()) is not None:
            return Path(path)
    return None


def test_a_stripped_extension_module_still_imports_and_works(tmp_path: Path) -> None:
    module = _extension_with_symbols()
    if module is None:
        pytest.skip("no extension module with a symbol table in this interpreter")
    data = module.read_bytes()
    stripped = elf_strip.strip_symbols(data)
    assert stripped is not None and len(stripped) < len(data)
    (tmp_path / module.name).write_bytes(stripped)
    name = module.name.split(".")[0]
    probe = (
        "import importlib.machinery, importlib.util, sys\n"
        f"loader = importlib.machinery.ExtensionFileLoader({name!r}, sys.argv[1])\n"
        f"spec = importlib.util.spec_from_file_location({name!r}, sys.argv[1], loader=loader)\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "loader.exec_module(module)\n"
        "assert module.__file__ == sys.argv[1], module.__file__\n"
        "print(sorted(n for n in dir(module) if not n.startswith('__'))[:3])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-I", "-c", probe, str(tmp_path / module.name)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.strip().startswith(b"[")
    readelf = shutil.which("readelf")
    if readelf:
        check = subprocess.run(
            [readelf, "-a", "-W", str(tmp_path / module.name)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert check.returncode == 0 and check.stderr == b"", check.stderr.decode()
