//! Archive validation and streaming against archives built here: well-formed ones, and a corpus of
//! hostile ones made with the zip writer and, where the writer would refuse, patched bytes.

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Write};

use bw_exporter::archive::{
    Archive, ArchiveError, ArchiveLimits, MAX_NAME_BYTES, NameError, sanitize,
};
use bw_standin::archive::{build, deflated, stored};
use bw_testkit::archive::{headers, put_u32, rename, u16_at, u32_at, with_symlink};
use bw_testkit::sample::pattern;
use proptest::prelude::*;
use zip::write::SimpleFileOptions;

fn open(bytes: &[u8], limits: ArchiveLimits) -> Result<Archive, ArchiveError> {
    let mut spool = tempfile::NamedTempFile::new().expect("temp file");
    spool.write_all(bytes).expect("spool");
    // The archive keeps its own handle, so the file may be unlinked when `spool` drops.
    Archive::open(spool.path(), limits)
}

fn read_member(archive: &mut Archive, index: usize) -> Result<Vec<u8>, ArchiveError> {
    let mut reader = archive.open_member(index)?;
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[test]
fn well_formed_archive_streams_back_identical_bytes() {
    let big = pattern(2 << 20, 1);
    let image = pattern(300 << 10, 2);
    let text = "Notebook entry\n".repeat(100);
    let files: &[(&str, SimpleFileOptions, &[u8])] = &[
        ("docs/", stored(), b""),
        ("docs/images/", stored(), b""),
        ("docs/readme.md", deflated(), text.as_bytes()),
        ("docs/images/plot.png", stored(), &image),
        ("données/résumé.txt", deflated(), "été".as_bytes()),
        ("日本語/ノート.txt", deflated(), "ノート".as_bytes()),
        ("empty.txt", deflated(), b""),
        ("raw/big.bin", deflated(), &big),
    ];
    let mut archive = open(&build(files), ArchiveLimits::default()).expect("valid archive");

    let expected: BTreeMap<&str, &[u8]> = files
        .iter()
        .filter(|(name, ..)| !name.ends_with('/'))
        .map(|(name, _, data)| (*name, *data))
        .collect();
    let members = archive.members().to_vec();
    let listed: Vec<&str> = members.iter().map(|member| member.name.as_str()).collect();
    assert_eq!(
        listed,
        [
            "docs/readme.md",
            "docs/images/plot.png",
            "données/résumé.txt",
            "日本語/ノート.txt",
            "empty.txt",
            "raw/big.bin",
        ]
    );
    for member in &members {
        let want = expected[member.name.as_str()];
        assert_eq!(member.size, want.len() as u64, "{}", member.name);
        let got = read_member(&mut archive, member.index).expect("member streams");
        assert_eq!(
            crc32fast::hash(&got),
            crc32fast::hash(want),
            "{}",
            member.name
        );
        assert_eq!(got, want, "{}", member.name);
    }
}

#[test]
fn directories_cannot_be_opened_as_members() {
    let zip = build(&[("docs/", stored(), b""), ("docs/a.txt", stored(), b"a")]);
    let mut archive = open(&zip, ArchiveLimits::default()).expect("valid archive");
    assert!(matches!(
        archive.open_member(0),
        Err(ArchiveError::NoSuchMember { index: 0 })
    ));
    assert_eq!(read_member(&mut archive, 1).expect("file"), b"a");
}

#[test]
fn cp437_name_without_utf8_flag_decodes() {
    let mut zip = build(&[("Qber.txt", stored(), b"x")]);
    let (cd, _) = headers(&zip)[0];
    assert_eq!(
        u16_at(&zip, cd + 8) & (1 << 11),
        0,
        "ASCII names carry no UTF-8 flag"
    );
    rename(&mut zip, 0, b"\x81ber.txt");
    let archive = open(&zip, ArchiveLimits::default()).expect("valid archive");
    assert_eq!(archive.members()[0].name.as_str(), "über.txt");
}

/// An archive with one benign member and one whose name is patched to `name`.
fn with_name(name: &[u8]) -> Vec<u8> {
    let placeholder = "Q".repeat(name.len());
    let mut zip = build(&[
        ("ok.txt", stored(), b"fine"),
        (&placeholder, stored(), b"data"),
    ]);
    rename(&mut zip, 1, name);
    zip
}

#[test]
fn hostile_names_are_rejected() {
    let cases: &[(&[u8], NameError)] = &[
        (b"../evil", NameError::ParentDirSegment),
        (b"docs/../../evil", NameError::ParentDirSegment),
        (b"/etc/passwd", NameError::Absolute),
        (b"docs\\..\\evil", NameError::Backslash),
        (b"C:evil.txt", NameError::DriveLetter),
        (b"c:/windows/evil", NameError::DriveLetter),
        (b"a//b", NameError::EmptySegment),
        (b"a/./b", NameError::CurrentDirSegment),
        (b"nul\0.txt", NameError::ControlCharacter),
        (b"log\n[INFO] forged", NameError::ControlCharacter),
    ];
    for (name, reason) in cases {
        match open(&with_name(name), ArchiveLimits::default()) {
            Err(ArchiveError::UnsafeName { raw, reason: got }) => {
                assert_eq!(raw, *name);
                assert_eq!(got, *reason, "{}", name.escape_ascii());
            }
            Err(other) => panic!("{}: wrong error {other}", name.escape_ascii()),
            Ok(_) => panic!("{} accepted", name.escape_ascii()),
        }
    }
}

#[test]
fn hostile_name_cannot_inject_into_logs() {
    let error = open(&with_name(b"x\n\x1b[31mFAKE"), ArchiveLimits::default())
        .err()
        .expect("rejected");
    let message = error.to_string();
    assert!(
        !message.contains('\n') && !message.contains('\x1b'),
        "{message}"
    );
    assert!(error.is_permanent());
}

#[test]
fn hostile_directory_name_is_rejected() {
    let mut zip = build(&[("QQ/", stored(), b""), ("ok.txt", stored(), b"fine")]);
    rename(&mut zip, 0, b"../");
    assert!(matches!(
        open(&zip, ArchiveLimits::default()),
        Err(ArchiveError::UnsafeName {
            reason: NameError::ParentDirSegment,
            ..
        })
    ));
}

#[test]
fn invalid_utf8_with_flag_is_rejected() {
    let mut zip = build(&[("é.txt", stored(), b"x")]);
    let (cd, _) = headers(&zip)[0];
    assert_ne!(
        u16_at(&zip, cd + 8) & (1 << 11),
        0,
        "non-ASCII names carry the flag"
    );
    rename(&mut zip, 0, b"\xff\xfe.txt");
    assert!(matches!(
        open(&zip, ArchiveLimits::default()),
        Err(ArchiveError::UnsafeName {
            reason: NameError::NotUtf8,
            ..
        })
    ));
}

#[test]
fn symlink_is_rejected() {
    let zip = with_symlink("link", "/etc/passwd");
    match open(&zip, ArchiveLimits::default()) {
        Err(ArchiveError::NotRegularFile { name, kind }) => {
            assert_eq!(name.as_str(), "link");
            assert_eq!(kind, "symbolic link");
        }
        other => panic!("expected a symlink rejection, got {:?}", other.err()),
    }
}

#[test]
fn fifo_and_device_are_rejected() {
    for (mode, kind) in [(0o010_644, "FIFO"), (0o020_644, "character device")] {
        let mut zip = build(&[("ok.txt", stored(), b"fine"), ("dev", stored(), b"")]);
        let (cd, _) = headers(&zip)[1];
        assert_eq!(zip[cd + 5], 3, "written on Unix, so the mode is read");
        put_u32(&mut zip, cd + 38, mode << 16);
        match open(&zip, ArchiveLimits::default()) {
            Err(ArchiveError::NotRegularFile { kind: got, .. }) => assert_eq!(got, kind),
            other => panic!("expected {kind} rejection, got {:?}", other.err()),
        }
    }
}

#[test]
fn exact_duplicate_names_are_rejected() {
    let mut zip = build(&[("a.txt", stored(), b"one"), ("QQQQQ", stored(), b"two")]);
    rename(&mut zip, 1, b"a.txt");
    assert!(matches!(
        open(&zip, ArchiveLimits::default()),
        Err(ArchiveError::DuplicateEntries)
    ));
}

#[test]
fn names_that_decode_alike_are_duplicates() {
    // The same name twice: once UTF-8 with the flag, once CP437 without it.
    let mut zip = build(&[("ü.txt", stored(), b"one"), ("Q.txt", stored(), b"two")]);
    rename(&mut zip, 1, b"\x81.txt");
    match open(&zip, ArchiveLimits::default()) {
        Err(ArchiveError::DuplicateName { name }) => assert_eq!(name.as_str(), "ü.txt"),
        other => panic!("expected a duplicate, got {:?}", other.err()),
    }
}

#[test]
fn names_differing_in_case_are_distinct() {
    let zip = build(&[("A.txt", stored(), b"one"), ("a.txt", stored(), b"two")]);
    let archive = open(&zip, ArchiveLimits::default()).expect("case-sensitive names");
    assert_eq!(archive.members().len(), 2);
}

#[test]
fn file_that_is_also_a_directory_is_rejected() {
    let zip = build(&[("a", stored(), b"file"), ("a/b", stored(), b"nested")]);
    match open(&zip, ArchiveLimits::default()) {
        Err(ArchiveError::FileIsDirectory { name }) => assert_eq!(name.as_str(), "a"),
        other => panic!("expected a conflict, got {:?}", other.err()),
    }
}

#[test]
fn too_many_members_is_rejected() {
    let files: Vec<(String, SimpleFileOptions, &[u8])> = (0..4)
        .map(|i| (format!("f{i}.txt"), stored(), &b"x"[..]))
        .collect();
    let files: Vec<_> = files.iter().map(|(n, o, d)| (n.as_str(), *o, *d)).collect();
    let limits = ArchiveLimits {
        max_members: 3,
        ..ArchiveLimits::default()
    };
    assert!(matches!(
        open(&build(&files), limits),
        Err(ArchiveError::TooManyMembers { count: 4, limit: 3 })
    ));
    let at_limit = ArchiveLimits {
        max_members: 4,
        ..ArchiveLimits::default()
    };
    assert!(open(&build(&files), at_limit).is_ok());
}

#[test]
fn bomb_by_ratio_is_rejected() {
    let zeros = vec![0u8; 5 << 20];
    let zip = build(&[
        ("ok.txt", stored(), b"fine"),
        ("zeros.bin", deflated(), &zeros),
    ]);
    match open(&zip, ArchiveLimits::default()) {
        Err(error @ ArchiveError::Bomb { .. }) => {
            let ArchiveError::Bomb {
                name,
                size,
                compressed_size,
                ratio,
            } = &error
            else {
                unreachable!()
            };
            assert_eq!(name.as_str(), "zeros.bin");
            assert_eq!(*size, 5 << 20);
            assert!(*size > compressed_size * ratio);
            assert!(error.is_permanent());
        }
        other => panic!("expected a bomb, got {:?}", other.err()),
    }
}

#[test]
fn small_compressible_file_is_not_a_bomb() {
    // Far beyond the ratio, but under `bomb_min_bytes`.
    let zeros = vec![0u8; 1 << 20];
    let zip = build(&[("zeros.bin", deflated(), &zeros)]);
    let mut archive = open(&zip, ArchiveLimits::default()).expect("under the minimum");
    assert_eq!(read_member(&mut archive, 0).expect("streams"), zeros);
}

#[test]
fn total_size_over_limit_is_rejected() {
    let a = pattern(60, 3);
    let b = pattern(60, 4);
    let zip = build(&[("a.bin", stored(), &a), ("b.bin", stored(), &b)]);
    let limits = ArchiveLimits {
        max_total_bytes: 100,
        ..ArchiveLimits::default()
    };
    match open(&zip, limits) {
        Err(ArchiveError::TotalTooLarge { name, limit }) => {
            assert_eq!(name.as_str(), "b.bin");
            assert_eq!(limit, 100);
        }
        other => panic!("expected total too large, got {:?}", other.err()),
    }
}

#[test]
fn encrypted_entry_is_rejected() {
    let mut zip = build(&[("secret.txt", stored(), b"data")]);
    let (cd, lh) = headers(&zip)[0];
    zip[cd + 8] |= 1;
    zip[lh + 6] |= 1;
    assert!(matches!(
        open(&zip, ArchiveLimits::default()),
        Err(ArchiveError::Encrypted { .. })
    ));
}

#[test]
fn header_that_understates_the_size_fails_while_streaming() {
    let data = vec![b'x'; 1000];
    let mut zip = build(&[("big.txt", deflated(), &data)]);
    let (cd, lh) = headers(&zip)[0];
    put_u32(&mut zip, cd + 24, 10);
    put_u32(&mut zip, lh + 22, 10);
    let mut archive = open(&zip, ArchiveLimits::default()).expect("sizes look harmless");
    assert_eq!(archive.members()[0].size, 10);

    let mut reader = archive.open_member(0).expect("opens");
    let mut delivered = Vec::new();
    let error = ArchiveError::from(reader.read_to_end(&mut delivered).expect_err("overrun"));
    assert!(delivered.len() <= 10, "{} bytes escaped", delivered.len());
    match &error {
        ArchiveError::LargerThanDeclared { name, declared } => {
            assert_eq!(name.as_str(), "big.txt");
            assert_eq!(*declared, 10);
        }
        other => panic!("expected an overrun, got {other}"),
    }
    assert!(error.is_permanent());
}

#[test]
fn header_that_overstates_the_size_fails_while_streaming() {
    let data = pattern(100, 5);
    let mut zip = build(&[("short.bin", stored(), &data)]);
    let (cd, lh) = headers(&zip)[0];
    put_u32(&mut zip, cd + 24, 200);
    put_u32(&mut zip, lh + 22, 200);
    let mut archive = open(&zip, ArchiveLimits::default()).expect("opens");
    assert!(matches!(
        read_member(&mut archive, 0),
        Err(ArchiveError::SmallerThanDeclared {
            declared: 200,
            read: 100,
            ..
        })
    ));
}

#[test]
fn crc_mismatch_is_an_error() {
    let data = pattern(5000, 6);
    let mut zip = build(&[("data.bin", deflated(), &data)]);
    let (cd, lh) = headers(&zip)[0];
    let wrong = u32_at(&zip, cd + 16) ^ 1;
    put_u32(&mut zip, cd + 16, wrong);
    put_u32(&mut zip, lh + 14, wrong);

    // The zip crate checks the CRC at EOF on its own...
    let mut plain = zip::ZipArchive::new(Cursor::new(zip.clone())).expect("parses");
    let mut sink = Vec::new();
    assert!(
        plain
            .by_index(0)
            .expect("entry")
            .read_to_end(&mut sink)
            .is_err()
    );

    // ...and the archive reader reports it as a typed error.
    let mut archive = open(&zip, ArchiveLimits::default()).expect("opens");
    assert!(matches!(
        read_member(&mut archive, 0),
        Err(ArchiveError::CrcMismatch { .. })
    ));
}

#[test]
fn garbage_is_malformed_and_permanent() {
    let error = open(b"definitely not a zip file", ArchiveLimits::default())
        .err()
        .expect("rejected");
    assert!(matches!(error, ArchiveError::Malformed(_)), "{error}");
    assert!(error.is_permanent());
}

#[test]
fn missing_file_is_transient() {
    let dir = tempfile::tempdir().expect("temp dir");
    let error = Archive::open(dir.path().join("absent.zip"), ArchiveLimits::default())
        .err()
        .expect("no file");
    assert!(matches!(error, ArchiveError::Io(_)));
    assert!(!error.is_permanent());
}

#[test]
fn sanitize_examples() {
    let ok = |raw: &[u8]| sanitize(raw, true).map(|name| name.as_str().to_owned());
    assert_eq!(ok(b"a.txt"), Ok("a.txt".to_owned()));
    assert_eq!(
        ok(b"docs/images/plot.png"),
        Ok("docs/images/plot.png".to_owned())
    );
    assert_eq!(
        ok("données/été.txt".as_bytes()),
        Ok("données/été.txt".to_owned())
    );
    assert_eq!(ok(b"..hidden/...txt"), Ok("..hidden/...txt".to_owned()));
    assert_eq!(
        ok(b"ab:c"),
        Ok("ab:c".to_owned()),
        "only a single letter is a drive"
    );
    assert_eq!(
        ok(b"x/C:y"),
        Ok("x/C:y".to_owned()),
        "a drive only counts first"
    );
    assert_eq!(ok(b""), Err(NameError::Empty));
    assert_eq!(ok(b"a/"), Err(NameError::EmptySegment));
    assert_eq!(ok(b".."), Err(NameError::ParentDirSegment));
    assert_eq!(ok(b"."), Err(NameError::CurrentDirSegment));
    assert_eq!(ok(b"a\x7fb"), Err(NameError::ControlCharacter));
    assert_eq!(ok("a\u{85}b".as_bytes()), Err(NameError::ControlCharacter));
    assert_eq!(
        ok(&[b'a'; MAX_NAME_BYTES]).map(|name| name.len()),
        Ok(MAX_NAME_BYTES)
    );
    assert_eq!(ok(&[b'a'; MAX_NAME_BYTES + 1]), Err(NameError::TooLong));
    // 400 CP437 high bytes are 800+ bytes of UTF-8; 600 are over the limit once decoded.
    assert!(sanitize(&[0x81; 400], false).is_ok());
    assert_eq!(sanitize(&[0x81; 600], false), Err(NameError::TooLong));
    // Without the flag, control bytes stay control characters rather than CP437 glyphs.
    assert_eq!(sanitize(b"a\x01b", false), Err(NameError::ControlCharacter));
}

/// The invariants every accepted name must satisfy, checked independently of `sanitize`.
fn assert_safe(name: &str) {
    assert!(!name.is_empty());
    assert!(name.len() <= MAX_NAME_BYTES, "{} bytes", name.len());
    assert!(!name.starts_with('/'), "{name:?}");
    assert!(!name.contains('\\'), "{name:?}");
    assert!(!name.chars().any(char::is_control), "{name:?}");
    let bytes = name.as_bytes();
    assert!(
        !(bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':'),
        "{name:?}"
    );
    for segment in name.split('/') {
        assert!(!matches!(segment, "" | "." | ".."), "{name:?}");
    }
}

/// Name-like inputs built from the pieces attacks are made of.
fn hostile_names() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop::sample::select(vec![
        "..", ".", "", "a", "é", "b\\c", "C:", "/", "\0", "\u{1b}", "\n", "\u{85}", "日本",
    ]);
    (
        prop::collection::vec(piece, 0..8),
        prop::collection::vec(any::<u8>(), 0..4),
    )
        .prop_map(|(pieces, tail)| {
            let mut name = pieces.join("/").into_bytes();
            name.extend(tail);
            name
        })
}

/// Names that are already safe: non-empty segments that are not `.` or `..`.
fn safe_names() -> impl Strategy<Value = String> {
    let chars = prop::sample::select(vec![
        'a', 'Z', '0', '9', '.', '-', '_', ' ', '(', ')', ':', 'é', 'ü', '日', '😀',
    ]);
    let segment = prop::collection::vec(chars, 1..40)
        .prop_map(|chars| chars.into_iter().collect::<String>())
        .prop_filter("not . or ..", |segment| segment != "." && segment != "..");
    prop::collection::vec(segment, 1..8)
        .prop_map(|segments| segments.join("/"))
        .prop_filter(
            "not a drive letter",
            |name| !matches!(name.as_bytes(), [drive, b':', ..] if drive.is_ascii_alphabetic()),
        )
        .prop_filter("within the limit", |name| name.len() <= MAX_NAME_BYTES)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn sanitize_accepts_only_safe_names(raw in prop::collection::vec(any::<u8>(), 0..1100), utf8 in any::<bool>()) {
        if let Ok(name) = sanitize(&raw, utf8) {
            assert_safe(name.as_str());
        }
    }

    #[test]
    fn sanitize_rejects_hostile_pieces(raw in hostile_names(), utf8 in any::<bool>()) {
        if let Ok(name) = sanitize(&raw, utf8) {
            assert_safe(name.as_str());
        }
    }

    #[test]
    fn safe_names_round_trip(name in safe_names()) {
        let sanitized = sanitize(name.as_bytes(), true);
        prop_assert_eq!(sanitized.as_ref().map(|n| n.as_str()), Ok(name.as_str()));
        if name.is_ascii() {
            // Without the flag, ASCII reads the same as CP437.
            let cp437 = sanitize(name.as_bytes(), false);
            prop_assert_eq!(cp437.as_ref().map(|n| n.as_str()), Ok(name.as_str()));
        }
    }
}
