//! The export archives the benchmark serves: their shapes, and the ZIP files themselves, written
//! once to disk and kept for later runs (the bytes are deterministic).

use std::fs::{self, File};
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use bw_testkit::sample::pattern;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

/// One export shape: how many members of which size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// The name used on the command line and in the results.
    pub name: &'static str,
    /// How the results describe it.
    pub label: &'static str,
    /// Members in the archive.
    pub members: usize,
    /// Bytes of every member.
    pub member_bytes: usize,
}

/// The shapes of issue 3: two of about 50 MB, one of 1 GiB.
pub const SHAPES: [Shape; 3] = [
    Shape {
        name: "small",
        label: "200 × 256 KiB",
        members: 200,
        member_bytes: 256 * 1024,
    },
    Shape {
        name: "many",
        label: "2,000 × 25.6 KiB",
        members: 2_000,
        member_bytes: 26_214,
    },
    Shape {
        name: "large",
        label: "8 × 128 MiB (1 GiB)",
        members: 8,
        member_bytes: 128 * 1024 * 1024,
    },
];

/// Not in the issue and not run by default: one tiny member, so nearly all of the exporter's
/// time is its fixed cost per job (queues, Benchling calls, bookkeeping), which explains the
/// ratios of the fast shapes.
pub const TINY: Shape = Shape {
    name: "tiny",
    label: "1 × 1 KiB (fixed cost)",
    members: 1,
    member_bytes: 1024,
};

impl Shape {
    /// The shape called `name`.
    pub fn named(name: &str) -> anyhow::Result<Self> {
        SHAPES
            .into_iter()
            .chain([TINY])
            .find(|shape| shape.name == name)
            .with_context(|| format!("unknown shape {name:?} (small, many, large or tiny)"))
    }

    /// The bytes of all members together.
    pub fn total_bytes(&self) -> u64 {
        (self.members * self.member_bytes) as u64
    }

    /// The name of member `index` (from 0) in the archive, which is also its key below the
    /// package prefix.
    pub fn member_name(index: usize) -> String {
        format!("data/part-{:04}.bin", index + 1)
    }

    /// The archive's file name; it carries the shape's numbers, so a changed shape never
    /// reuses a stale archive.
    fn file_name(&self) -> String {
        format!("{}-{}x{}.zip", self.name, self.members, self.member_bytes)
    }
}

/// The archive of `shape` in `dir`, written if missing.
///
/// Members are deflated and generated one at a time, straight into the file, so the archive is
/// never in memory. It is written under a temporary name and renamed when complete, so an
/// interrupted run never leaves a truncated archive to be reused.
pub fn archive(shape: Shape, dir: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join(shape.file_name());
    if path.is_file() {
        return Ok(path);
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let partial = path.with_extension("zip.partial");
    let file = File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let mut zip = ZipWriter::new(BufWriter::new(file));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for index in 0..shape.members {
        zip.start_file(Shape::member_name(index), options)?;
        zip.write_all(&pattern(shape.member_bytes, index as u64))?;
    }
    zip.finish()?
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;
    fs::rename(&partial, &path)?;
    Ok(path)
}

/// Extracts `zip` into `dest` with `unzip -q -o` (replacing what is there).
pub fn unzip(zip: &Path, dest: &Path) -> anyhow::Result<()> {
    let status = Command::new("unzip")
        .arg("-q")
        .arg("-o")
        .arg(zip)
        .arg("-d")
        .arg(dest)
        .status()
        .context("running unzip")?;
    if !status.success() {
        bail!("unzip {} failed: {status}", zip.display());
    }
    Ok(())
}

/// Every regular file below `root` with its size, as (path relative to `root`, size), sorted.
pub fn files_below(root: &Path) -> anyhow::Result<Vec<(String, u64)>> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                let path = entry.path();
                let relative = path
                    .strip_prefix(root)?
                    .to_str()
                    .context("a file name is not UTF-8")?
                    .to_owned();
                found.push((relative, entry.metadata()?.len()));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Checks that a result holds exactly the shape's members: their count and total size.
pub fn check(shape: Shape, what: &str, count: usize, bytes: u64) -> anyhow::Result<()> {
    if count != shape.members || bytes != shape.total_bytes() {
        bail!(
            "{what} holds {count} files of {bytes} bytes in all; expected {} of {}",
            shape.members,
            shape.total_bytes()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_match_the_issue() {
        let mb = |shape: Shape| shape.total_bytes() as f64 / 1e6;
        assert!((52.0..53.0).contains(&mb(Shape::named("small").unwrap())));
        assert!((52.0..53.0).contains(&mb(Shape::named("many").unwrap())));
        assert_eq!(Shape::named("large").unwrap().total_bytes(), 1 << 30);
        assert_eq!(Shape::named("tiny").unwrap(), TINY);
        assert!(Shape::named("huge").is_err());
        assert_eq!(Shape::member_name(0), "data/part-0001.bin");
    }
}
