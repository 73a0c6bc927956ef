//! The ELF structure check made before a file is mapped.
//!
//! The dynamic loader maps a library's segments as its program headers describe them; a file
//! cut short (a copy in progress, a truncated download) makes it map pages past the end of the
//! file, and the first touch of such a page kills the process with SIGBUS. So every table and
//! every segment or section with file content must lie inside the file before `dlopen` sees it.
//! Only the headers are read (through [`object::ReadCache`]), not the whole file.

use std::fs::File;
use std::path::Path;

use object::read::elf::{FileHeader, ProgramHeader as _, SectionHeader as _};
use object::{FileKind, ReadCache, ReadRef};

use crate::loader::RejectReason;

/// Checks that `path` is a complete ELF file: its program header table, section header table,
/// segments and sections all end within the file.
pub(crate) fn check(path: &Path) -> Result<(), RejectReason> {
    let file = File::open(path).map_err(|e| RejectReason::Unreadable(e.to_string()))?;
    let len = file
        .metadata()
        .map_err(|e| RejectReason::Unreadable(e.to_string()))?
        .len();
    let data = ReadCache::new(file);
    check_data(&data, len)
}

fn check_data<'a, R: ReadRef<'a>>(data: R, len: u64) -> Result<(), RejectReason> {
    let magic = data.read_bytes_at(0, len.min(4)).unwrap_or_default();
    if magic.len() < 4 {
        return Err(RejectReason::NotALibrary("file too short".into()));
    }
    if magic != object::elf::ELFMAG {
        return Err(RejectReason::NotALibrary("invalid ELF header".into()));
    }
    match FileKind::parse(data) {
        Ok(FileKind::Elf32) => {
            check_elf::<object::elf::FileHeader32<object::Endianness>, R>(data, len)
        }
        Ok(FileKind::Elf64) => {
            check_elf::<object::elf::FileHeader64<object::Endianness>, R>(data, len)
        }
        Ok(_) | Err(_) => Err(malformed("unknown ELF class")),
    }
}

fn check_elf<'a, H: FileHeader, R: ReadRef<'a>>(data: R, len: u64) -> Result<(), RejectReason> {
    within(len, "ELF header", 0, size_of::<H>() as u64)?;
    let header = H::parse(data).map_err(|e| malformed(e.to_string()))?;
    let endian = header.endian().map_err(|e| malformed(e.to_string()))?;

    let phoff: u64 = header.e_phoff(endian).into();
    let phnum = u64::from(header.e_phnum(endian));
    let phentsize = u64::from(header.e_phentsize(endian));
    if phoff != 0 {
        within(
            len,
            "program header table",
            phoff,
            phnum.saturating_mul(phentsize),
        )?;
    }
    let segments = header
        .program_headers(endian, data)
        .map_err(|e| malformed(e.to_string()))?;
    if segments.is_empty() {
        return Err(malformed("no program headers: not a loadable library"));
    }
    for (i, segment) in segments.iter().enumerate() {
        let what = format!("segment {i} ({})", segment_type(segment.p_type(endian)));
        within(
            len,
            &what,
            segment.p_offset(endian).into(),
            segment.p_filesz(endian).into(),
        )?;
    }
    let shoff: u64 = header.e_shoff(endian).into();
    // An e_shnum of 0 with a table means the count is in section 0, which must be there.
    let shnum = u64::from(header.e_shnum(endian)).max(1);
    let shentsize = u64::from(header.e_shentsize(endian));
    if shoff != 0 {
        within(
            len,
            "section header table",
            shoff,
            shnum.saturating_mul(shentsize),
        )?;
    }

    let sections = header
        .section_headers(endian, data)
        .map_err(|e| malformed(e.to_string()))?;
    for (i, section) in sections.iter().enumerate() {
        if section.sh_type(endian) == object::elf::SHT_NOBITS {
            continue;
        }
        within(
            len,
            &format!("section {i}"),
            section.sh_offset(endian).into(),
            section.sh_size(endian).into(),
        )?;
    }
    Ok(())
}

/// `Truncated` unless `offset + size` is at most `len`.
fn within(len: u64, what: &str, offset: u64, size: u64) -> Result<(), RejectReason> {
    match offset.checked_add(size) {
        Some(end) if end <= len => Ok(()),
        end => Err(RejectReason::Truncated {
            len,
            what: what.into(),
            end: end.unwrap_or(u64::MAX),
        }),
    }
}

fn malformed(what: impl Into<String>) -> RejectReason {
    RejectReason::MalformedElf(what.into())
}

fn segment_type(p_type: u32) -> String {
    use object::elf::*;
    match p_type {
        PT_LOAD => "PT_LOAD".into(),
        PT_DYNAMIC => "PT_DYNAMIC".into(),
        PT_INTERP => "PT_INTERP".into(),
        PT_NOTE => "PT_NOTE".into(),
        PT_PHDR => "PT_PHDR".into(),
        PT_TLS => "PT_TLS".into(),
        PT_GNU_EH_FRAME => "PT_GNU_EH_FRAME".into(),
        PT_GNU_STACK => "PT_GNU_STACK".into(),
        PT_GNU_RELRO => "PT_GNU_RELRO".into(),
        other => format!("type {other:#x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This test executable is itself a complete ELF file; every prefix of it is truncated.
    fn own_image() -> Vec<u8> {
        std::fs::read(std::env::current_exe().unwrap()).unwrap()
    }

    #[test]
    fn a_complete_elf_file_passes() {
        let image = own_image();
        assert_eq!(check_data(image.as_slice(), image.len() as u64), Ok(()));
    }

    #[test]
    fn every_cut_is_truncated_naming_the_sizes() {
        let image = own_image();
        for cut in [64, 100, 1000, 5000, image.len() / 2, image.len() - 1] {
            let reason = check_data(&image[..cut], cut as u64).unwrap_err();
            let RejectReason::Truncated { len, end, .. } = &reason else {
                panic!("cut at {cut}: {reason}");
            };
            assert_eq!(*len, cut as u64);
            assert!(*end > *len, "{reason}");
            let text = reason.to_string();
            assert!(
                text.starts_with(&format!("truncated: file is {cut} bytes, ")),
                "{text}"
            );
        }
    }

    #[test]
    fn short_and_foreign_files_are_not_libraries() {
        assert_eq!(
            check_data(&b"\x7fEL"[..], 3),
            Err(RejectReason::NotALibrary("file too short".into()))
        );
        assert_eq!(
            check_data(&b"#!/bin/sh\n"[..], 10),
            Err(RejectReason::NotALibrary("invalid ELF header".into()))
        );
    }

    #[test]
    fn an_elf_header_with_a_bad_class_is_malformed() {
        let mut image = own_image();
        image[4] = 9; // EI_CLASS
        let reason = check_data(image.as_slice(), image.len() as u64).unwrap_err();
        assert!(matches!(reason, RejectReason::MalformedElf(_)), "{reason}");
    }
}
