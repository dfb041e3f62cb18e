//! Well-formed ZIP archives from the zip writer, and the sample export the stand-in serves when
//! no test registers its own.

use std::io::{Cursor, Write as _};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

/// Members written compressed.
pub fn deflated() -> SimpleFileOptions {
    SimpleFileOptions::default().compression_method(CompressionMethod::Deflated)
}

/// Members written as they are.
pub fn stored() -> SimpleFileOptions {
    SimpleFileOptions::default().compression_method(CompressionMethod::Stored)
}

/// A ZIP holding `files` (name, options, bytes) in order; names ending in `/` are directories.
///
/// # Panics
/// When the writer refuses a member.
pub fn build(files: &[(&str, SimpleFileOptions, &[u8])]) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, options, data) in files {
        if let Some(dir) = name.strip_suffix('/') {
            zip.add_directory(dir, *options).expect("add directory");
        } else {
            zip.start_file(*name, *options).expect("start file");
            zip.write_all(data).expect("write file");
        }
    }
    zip.finish().expect("finish").into_inner()
}

/// The export served for every entry on local runs: a note and a small table.
pub fn sample_export() -> Vec<u8> {
    let table: String = std::iter::once("well,od600\n".to_owned())
        .chain((1..=12).map(|i| format!("A{i},{:.3}\n", 0.1 * f64::from(i))))
        .collect();
    build(&[
        (
            "README.txt",
            deflated(),
            b"Sample attachment served by the local Benchling stand-in.\n",
        ),
        ("data/plate-1.csv", deflated(), table.as_bytes()),
    ])
}
