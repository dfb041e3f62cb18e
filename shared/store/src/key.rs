//! Validated object keys and key prefixes.

use std::fmt;

use crate::StoreError;

/// S3's ceiling for a key, in bytes of UTF-8.
pub const MAX_KEY_LEN: usize = 1024;

/// A `/`-separated relative object key, such as `pkg/EXP-1/plate.csv`.
///
/// Construction is the only validation point, so no backend can be handed a key that escapes
/// its root or bucket prefix: there is no leading `/`, no empty, `.` or `..` segment, no
/// backslash (a separator on Windows and in hostile archives), no NUL or other control
/// character, and at most [`MAX_KEY_LEN`] bytes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(String);

impl Key {
    /// Validates `key`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Invalid`] naming the first rule the key breaks.
    pub fn new(key: impl Into<String>) -> Result<Self, StoreError> {
        let key = key.into();
        match problem(&key) {
            Some(reason) => Err(StoreError::Invalid { key, reason }),
            None => Ok(Self(key)),
        }
    }

    /// The key as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The segments in order.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Key {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for Key {
    type Error = StoreError;

    fn try_from(key: &str) -> Result<Self, StoreError> {
        Self::new(key)
    }
}

impl TryFrom<String> for Key {
    type Error = StoreError;

    fn try_from(key: String) -> Result<Self, StoreError> {
        Self::new(key)
    }
}

/// A "directory" of keys: [`Prefix::root`] (everything) or a valid key, meaning every key that
/// continues it with a `/`. `a/b` therefore covers `a/b/c` but not `a/bc`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Prefix(Option<Key>);

impl Prefix {
    /// Every key in the store.
    pub fn root() -> Self {
        Self(None)
    }

    /// Validates `prefix` like a [`Key`]; one trailing `/` is accepted and dropped, and an
    /// empty string is the root.
    ///
    /// # Errors
    ///
    /// [`StoreError::Invalid`] as for [`Key::new`].
    pub fn new(prefix: impl Into<String>) -> Result<Self, StoreError> {
        let mut prefix = prefix.into();
        if prefix.ends_with('/') {
            prefix.pop();
        }
        if prefix.is_empty() {
            return Ok(Self::root());
        }
        Key::new(prefix).map(|key| Self(Some(key)))
    }

    /// The prefix as a key, or `None` for the root.
    pub fn as_key(&self) -> Option<&Key> {
        self.0.as_ref()
    }

    /// `key` below this prefix.
    ///
    /// # Errors
    ///
    /// [`StoreError::Invalid`] when `relative` is not a valid key or the result is too long.
    pub fn join(&self, relative: &str) -> Result<Key, StoreError> {
        match &self.0 {
            None => Key::new(relative),
            Some(prefix) => {
                // Validate the relative part alone first: `..` must not cancel a segment.
                Key::new(relative)?;
                Key::new(format!("{prefix}/{relative}"))
            }
        }
    }

    /// Whether `key` lies below this prefix.
    pub fn contains(&self, key: &Key) -> bool {
        match &self.0 {
            None => true,
            Some(prefix) => key
                .as_str()
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.starts_with('/')),
        }
    }

    /// The prefix with a trailing `/` (empty for the root), as S3 listings want it.
    pub fn with_slash(&self) -> String {
        match &self.0 {
            None => String::new(),
            Some(prefix) => format!("{prefix}/"),
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.with_slash())
    }
}

/// The first rule `key` breaks, if any.
fn problem(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        return Some("empty key");
    }
    if key.len() > MAX_KEY_LEN {
        return Some("longer than 1024 bytes");
    }
    if key.starts_with('/') {
        return Some("absolute (leading '/')");
    }
    if key.contains('\\') {
        return Some("contains a backslash");
    }
    if key.chars().any(char::is_control) {
        return Some("contains a control character");
    }
    for segment in key.split('/') {
        match segment {
            "" => return Some("empty segment ('//' or trailing '/')"),
            "." | ".." => return Some("'.' or '..' segment"),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_keys_are_kept_verbatim() {
        for key in [
            "a",
            "a/b/c.txt",
            "pkg/EXP-1/..hidden",
            "ä ö/ü.md",
            "a.b/...",
            ".x",
        ] {
            assert_eq!(Key::new(key).unwrap().as_str(), key);
        }
        let long = "k".repeat(MAX_KEY_LEN);
        assert!(Key::new(long.as_str()).is_ok());
    }

    #[test]
    fn hostile_keys_are_refused() {
        for key in [
            "", "/abs", "../x", "a/../b", "a/..", "./a", "a/./b", "a//b", "a/", "a\\b", "a\0b",
            "a\nb", "a\u{7f}b",
        ] {
            assert!(
                matches!(Key::new(key), Err(StoreError::Invalid { .. })),
                "{key:?} was accepted"
            );
        }
        assert!(Key::new("k".repeat(MAX_KEY_LEN + 1)).is_err());
    }

    #[test]
    fn prefixes_cover_whole_segments_only() {
        let prefix = Prefix::new("a/b/").unwrap();
        assert_eq!(prefix.with_slash(), "a/b/");
        assert!(prefix.contains(&Key::new("a/b/c").unwrap()));
        assert!(!prefix.contains(&Key::new("a/bc").unwrap()));
        assert!(!prefix.contains(&Key::new("a/b").unwrap()));
        assert_eq!(Prefix::new("").unwrap(), Prefix::root());
        assert!(Prefix::root().contains(&Key::new("x").unwrap()));
        assert!(Prefix::new("/a").is_err());
        assert!(Prefix::new("a//").is_err());
        assert_eq!(prefix.join("c/d").unwrap().as_str(), "a/b/c/d");
        assert!(prefix.join("../c").is_err());
    }
}
