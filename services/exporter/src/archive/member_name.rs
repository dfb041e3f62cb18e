//! Member names: which raw ZIP member names are safe to use as object keys, and how they are
//! decoded.
//!
//! # Decisions
//!
//! - **Names are object keys, not paths.** Each member name becomes a key under the package
//!   prefix. [`sanitize`] therefore accepts only plain relative names: `/`-separated segments, none
//!   of them empty, `.` or `..`, no backslash, no drive letter, no control character, and at most
//!   [`MAX_NAME_BYTES`] bytes. Bad names are rejected, never rewritten. `a/./b` and `a//b` could be
//!   normalised, but a rewritten name can collide with another member, and no legitimate export
//!   contains such names.
//! - **Encoding.** When the UTF-8 flag (general purpose bit 11) is set, the name must be valid
//!   UTF-8. When it is not set, the name is decoded as IBM code page 437, as APPNOTE 4.4.4 requires.
//!   Some tools, such as macOS Archive Utility, write UTF-8 names without setting the flag. Their
//!   non-ASCII names come out as CP437 mojibake, which is safe and visible. Guessing the encoding
//!   instead would let the same bytes become different names depending on their content. The zip
//!   crate applies an Info-ZIP Unicode Path extra field (0x7075) when its CRC matches the name, and
//!   sets the flag when it does.
//! - **Reserved names** (a top-level member named like a packager file, such as `entry.json`) are
//!   not refused here but where keys are planned (`publish`), because they depend on the package
//!   layout rather than on the ZIP.

use std::fmt;

/// The longest member name accepted, in bytes of UTF-8.
pub const MAX_NAME_BYTES: usize = 1024;

/// A member name that passed [`sanitize`]: safe to append to the package prefix as-is.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberName(String);

impl MemberName {
    /// The name, `/`-separated and relative.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for MemberName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MemberName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for MemberName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// Why a member name was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("empty name")]
    Empty,
    /// The name is longer than [`MAX_NAME_BYTES`].
    #[error("longer than {MAX_NAME_BYTES} bytes")]
    TooLong,
    /// The UTF-8 flag is set but the name is not UTF-8.
    #[error("not valid UTF-8 although the UTF-8 flag is set")]
    NotUtf8,
    /// A control character (NUL, escape, newline, …).
    #[error("contains a control character")]
    ControlCharacter,
    /// A backslash, which Windows tools read as a separator.
    #[error("contains a backslash")]
    Backslash,
    /// Starts with `/`.
    #[error("is an absolute path")]
    Absolute,
    /// Starts with a Windows drive letter (`C:`).
    #[error("starts with a drive letter")]
    DriveLetter,
    /// Two separators in a row, or a trailing separator.
    #[error("has an empty segment")]
    EmptySegment,
    /// A `.` segment.
    #[error("has a `.` segment")]
    CurrentDirSegment,
    /// A `..` segment.
    #[error("has a `..` segment")]
    ParentDirSegment,
}

/// Checks a raw member name and decodes it, rejecting anything that is not a plain relative name.
///
/// `utf8_flag` is the entry's language encoding flag. Without it the bytes are CP437 (see the
/// module documentation).
pub fn sanitize(raw: &[u8], utf8_flag: bool) -> Result<MemberName, NameError> {
    if raw.is_empty() {
        return Err(NameError::Empty);
    }
    // Checked before decoding as well, so an overlong name is never decoded. CP437 decoding can
    // triple the length, which is why the decoded name is checked again below.
    if raw.len() > MAX_NAME_BYTES {
        return Err(NameError::TooLong);
    }
    let name = if utf8_flag {
        std::str::from_utf8(raw)
            .map_err(|_| NameError::NotUtf8)?
            .to_owned()
    } else {
        raw.iter().copied().map(cp437_char).collect()
    };
    if name.len() > MAX_NAME_BYTES {
        return Err(NameError::TooLong);
    }
    if name.chars().any(char::is_control) {
        return Err(NameError::ControlCharacter);
    }
    if name.contains('\\') {
        return Err(NameError::Backslash);
    }
    if name.starts_with('/') {
        return Err(NameError::Absolute);
    }
    if let [drive, b':', ..] = name.as_bytes()
        && drive.is_ascii_alphabetic()
    {
        return Err(NameError::DriveLetter);
    }
    for segment in name.split('/') {
        match segment {
            "" => return Err(NameError::EmptySegment),
            "." => return Err(NameError::CurrentDirSegment),
            ".." => return Err(NameError::ParentDirSegment),
            _ => {}
        }
    }
    Ok(MemberName(name))
}

/// Code page 437 from 0x80 to 0xFF. The lower half is ASCII.
const CP437_HIGH: [char; 128] = [
    'Ç', 'ü', 'é', 'â', 'ä', 'à', 'å', 'ç', 'ê', 'ë', 'è', 'ï', 'î', 'ì', 'Ä', 'Å', //
    'É', 'æ', 'Æ', 'ô', 'ö', 'ò', 'û', 'ù', 'ÿ', 'Ö', 'Ü', '¢', '£', '¥', '₧', 'ƒ', //
    'á', 'í', 'ó', 'ú', 'ñ', 'Ñ', 'ª', 'º', '¿', '⌐', '¬', '½', '¼', '¡', '«', '»', //
    '░', '▒', '▓', '│', '┤', '╡', '╢', '╖', '╕', '╣', '║', '╗', '╝', '╜', '╛', '┐', //
    '└', '┴', '┬', '├', '─', '┼', '╞', '╟', '╚', '╔', '╩', '╦', '╠', '═', '╬', '╧', //
    '╨', '╤', '╥', '╙', '╘', '╒', '╓', '╫', '╪', '┘', '┌', '█', '▄', '▌', '▐', '▀', //
    'α', 'ß', 'Γ', 'π', 'Σ', 'σ', 'µ', 'τ', 'Φ', 'Θ', 'Ω', 'δ', '∞', 'φ', 'ε', '∩', //
    '≡', '±', '≥', '≤', '⌠', '⌡', '÷', '≈', '°', '∙', '·', '√', 'ⁿ', '²', '■', '\u{a0}',
];

fn cp437_char(byte: u8) -> char {
    match byte.checked_sub(0x80) {
        None => char::from(byte),
        Some(high) => CP437_HIGH[usize::from(high)],
    }
}
