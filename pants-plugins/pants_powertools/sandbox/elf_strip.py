"""Symbol tables and debug sections out of ELF shared objects, for `slim`, as `strip` would.

`.symtab`, `.strtab` and `.debug_*` serve debuggers and profilers. The dynamic loader maps a
shared object's program segments (`PT_LOAD`) and finds symbols through `.dynsym`, so it never
reads them: numpy's `_multiarray_umath` and its OpenBLAS carry ~1.5 MB of them (0.35 MB zipped).

Conservative by construction: `strip_symbols` returns None (ship the file as it is) for
anything but a 64-bit ELF shared object whose droppable sections sit together, outside every
segment and every kept section, with no kept section linked to them. It then cuts them out,
moving what follows down by a multiple of the largest alignment it has (auditwheel's patchelf
appends `PT_LOAD` segments after them, whose file offsets must stay congruent to their
addresses), and zeroes the remainder. The result is checked before it is returned: every
segment and every kept section has the same bytes, address and attributes as before.

Stdlib only, CPython 3.9 syntax: it runs under the Lambda runtime's CPython beside
`lambda_zip.py`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from typing import List, Optional, Set, Tuple

_ELF_MAGIC = b"\x7fELF"
_ELFCLASS64 = 2
_ENDIAN = {1: "<", 2: ">"}  # e_ident[EI_DATA]
_ET_DYN = 3
_EHDR_SIZE = 64
_PHDR_SIZE = 56
_SHDR_SIZE = 64
_SHN_XINDEX = 0xFFFF
_SHF_ALLOC = 0x2
_SHT_PROGBITS = 1
_SHT_SYMTAB = 2
_SHT_STRTAB = 3
_SHT_RELA = 4
_SHT_NOBITS = 8
_SHT_REL = 9
_DEBUG_PREFIXES = (".debug_", ".zdebug_")


@dataclass(frozen=True)
class _Header:
    endian: str
    e_phoff: int
    e_shoff: int
    e_phnum: int
    e_shnum: int
    e_shstrndx: int


@dataclass(frozen=True)
class _Segment:
    p_type: int
    p_flags: int
    p_offset: int
    p_vaddr: int
    p_paddr: int
    p_filesz: int
    p_memsz: int
    p_align: int


@dataclass(frozen=True)
class _Section:
    name: int  # Offset in the section name table.
    sh_type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    info: int
    addralign: int
    entsize: int

    def occupies_file(self) -> bool:
        return self.sh_type != _SHT_NOBITS and self.size > 0


def _header(data: bytes) -> Optional[_Header]:
    if len(data) < _EHDR_SIZE or data[:4] != _ELF_MAGIC or data[4] != _ELFCLASS64:
        return None
    endian = _ENDIAN.get(data[5])
    if endian is None:
        return None
    (e_type, e_phoff, e_shoff, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx) = (
        struct.unpack_from(endian + "H", data, 16)
        + struct.unpack_from(endian + "QQ", data, 32)
        + struct.unpack_from(endian + "HHHHH", data, 54)
    )
    if (
        e_type != _ET_DYN
        or e_phentsize != _PHDR_SIZE
        or e_shentsize != _SHDR_SIZE
        or e_shnum == 0  # 0 means extended numbering: more than 0xff00 sections.
        or e_shstrndx in (0, _SHN_XINDEX)
        or e_shstrndx >= e_shnum
        or e_phoff + e_phnum * _PHDR_SIZE > len(data)
        or e_shoff + e_shnum * _SHDR_SIZE > len(data)
    ):
        return None
    return _Header(endian, e_phoff, e_shoff, e_phnum, e_shnum, e_shstrndx)


def _segments(data: bytes, h: _Header) -> List[_Segment]:
    return [
        _Segment(*struct.unpack_from(h.endian + "IIQQQQQQ", data, h.e_phoff + i * _PHDR_SIZE))
        for i in range(h.e_phnum)
    ]


def _sections(data: bytes, h: _Header) -> List[_Section]:
    return [
        _Section(*struct.unpack_from(h.endian + "IIQQQQIIQQ", data, h.e_shoff + i * _SHDR_SIZE))
        for i in range(h.e_shnum)
    ]


def _name(data: bytes, names: _Section, section: _Section) -> str:
    start = names.offset + section.name
    end = data.find(b"\0", start, names.offset + names.size)
    return data[start:end].decode("ascii", "replace") if end >= 0 else ""


def _droppable(data: bytes, sections: List[_Section], shstrndx: int) -> Set[int]:
    """Indices of `.symtab` with its `.strtab`, and of `.debug_*` sections, none of them loaded."""
    names = sections[shstrndx]
    drop: Set[int] = set()
    for index, section in enumerate(sections):
        name = _name(data, names, section)
        if section.flags & _SHF_ALLOC or not section.occupies_file():
            continue
        if section.sh_type == _SHT_SYMTAB and name == ".symtab":
            drop.add(index)
            table = section.link
            if 0 < table < len(sections) and table != shstrndx:
                strtab = sections[table]
                if (
                    strtab.sh_type == _SHT_STRTAB
                    and not strtab.flags & _SHF_ALLOC
                    and _name(data, names, strtab) == ".strtab"
                ):
                    drop.add(table)
        elif section.sh_type == _SHT_PROGBITS and name.startswith(_DEBUG_PREFIXES):
            drop.add(index)
    return drop


def _overlaps(start: int, end: int, lo: int, hi: int) -> bool:
    return start < hi and lo < end


def strip_symbols(data: bytes) -> Optional[bytes]:
    """`data` without its symbol table and debug sections; None when there are none, or when
    the file is not one this function can prove it rewrites safely."""
    h = _header(data)
    if h is None:
        return None
    segments = _segments(data, h)
    sections = _sections(data, h)
    if any(s.occupies_file() and s.offset + s.size > len(data) for s in sections):
        return None
    drop = _droppable(data, sections, h.e_shstrndx)
    if not drop:
        return None
    kept = [i for i in range(len(sections)) if i not in drop]
    for i in kept:  # Nothing kept may refer to what goes.
        section = sections[i]
        if section.link in drop:
            return None
        if section.sh_type in (_SHT_REL, _SHT_RELA) and section.info in drop:
            return None

    lo = min(sections[i].offset for i in drop)
    hi = max(sections[i].offset + sections[i].size for i in drop)
    # The span from the first dropped byte to the last must hold nothing else.
    occupied: List[Tuple[int, int]] = [
        (0, _EHDR_SIZE),
        (h.e_phoff, h.e_phoff + h.e_phnum * _PHDR_SIZE),
        (h.e_shoff, h.e_shoff + h.e_shnum * _SHDR_SIZE),
    ]
    occupied += [(s.p_offset, s.p_offset + s.p_filesz) for s in segments if s.p_filesz]
    occupied += [
        (sections[i].offset, sections[i].offset + sections[i].size)
        for i in kept
        if sections[i].occupies_file()
    ]
    if any(_overlaps(start, end, lo, hi) for start, end in occupied if end > start):
        return None
    if any(lo <= s.p_offset < hi for s in segments) or any(
        lo <= sections[i].offset < hi for i in kept
    ):
        return None  # An empty segment or section placed inside the span.

    # What follows the span moves down by a multiple of the alignment of everything that moves.
    alignment = 1
    for segment in segments:
        if segment.p_offset >= hi:
            alignment = max(alignment, segment.p_align)
    for i in kept:
        if sections[i].offset >= hi:
            alignment = max(alignment, sections[i].addralign)
    if h.e_phoff >= hi or h.e_shoff >= hi:
        alignment = max(alignment, 8)
    shift = (hi - lo) // alignment * alignment

    def moved(offset: int) -> int:
        return offset - shift if offset >= hi else offset

    out = bytearray(data[:lo])
    out += bytes(hi - lo - shift)
    out += data[hi:]
    e_phoff, e_shoff = moved(h.e_phoff), moved(h.e_shoff)
    struct.pack_into(h.endian + "QQ", out, 32, e_phoff, e_shoff)
    for i, s in enumerate(segments):
        struct.pack_into(
            h.endian + "IIQQQQQQ",
            out,
            e_phoff + i * _PHDR_SIZE,
            s.p_type,
            s.p_flags,
            moved(s.p_offset),
            s.p_vaddr,
            s.p_paddr,
            s.p_filesz,
            s.p_memsz,
            s.p_align,
        )
    for i, c in enumerate(sections):
        offset, size, info = (lo, 0, 0) if i in drop else (moved(c.offset), c.size, c.info)
        struct.pack_into(
            h.endian + "IIQQQQIIQQ",
            out,
            e_shoff + i * _SHDR_SIZE,
            c.name,
            c.sh_type,
            c.flags,
            c.addr,
            offset,
            size,
            c.link,
            info,
            c.addralign,
            c.entsize,
        )
    result = bytes(out)
    return result if _same_image(data, result, drop) else None


def _same_image(before: bytes, after: bytes, dropped: Set[int]) -> bool:
    """Whether `after` loads as `before` does: the same ELF header but for the table offsets, the
    same segments (bytes, addresses, sizes, alignment) and the same kept sections, only at other
    file offsets; the dropped sections empty."""
    h0, h1 = _header(before), _header(after)
    if h0 is None or h1 is None or before[:32] != after[:32] or before[48:64] != after[48:64]:
        return False
    # The first segment maps the ELF header and usually the program headers: their offsets are
    # compared field by field here, and left out of the byte comparison below.
    masks = [(32, 48)] + [
        (h0.e_phoff + i * _PHDR_SIZE + 8, h0.e_phoff + i * _PHDR_SIZE + 16)
        for i in range(h0.e_phnum)
    ]
    for s0, s1 in zip(_segments(before, h0), _segments(after, h1)):
        if replace(s0, p_offset=s1.p_offset) != s1:
            return False
        if s1.p_align > 1 and (s1.p_offset - s1.p_vaddr) % s1.p_align:
            return False
        if s1.p_offset + s1.p_filesz > len(after) or not _equal_but(
            before, s0.p_offset, after, s1.p_offset, s0.p_filesz, masks
        ):
            return False
    for i, (c0, c1) in enumerate(zip(_sections(before, h0), _sections(after, h1))):
        if i in dropped:
            if c1.size != 0 or replace(c0, offset=c1.offset, size=0, info=0) != c1:
                return False
            continue
        if replace(c0, offset=c1.offset) != c1:
            return False
        if c1.occupies_file() and (
            c1.offset + c1.size > len(after)
            or before[c0.offset : c0.offset + c0.size] != after[c1.offset : c1.offset + c1.size]
        ):
            return False
    return True


def _equal_but(
    before: bytes,
    start0: int,
    after: bytes,
    start1: int,
    size: int,
    masks: List[Tuple[int, int]],
) -> bool:
    """`before[start0:start0+size] == after[start1:start1+size]`, but for the `masks` (ranges
    of `before`, at the same place relative to the start in `after`), without copies."""
    b, a = memoryview(before), memoryview(after)
    pos = 0
    for mask_start, mask_end in sorted(masks):
        lo, hi = max(mask_start - start0, pos), min(mask_end - start0, size)
        if hi <= lo:
            continue
        if b[start0 + pos : start0 + lo] != a[start1 + pos : start1 + lo]:
            return False
        pos = hi
    return b[start0 + pos : start0 + size] == a[start1 + pos : start1 + size]
