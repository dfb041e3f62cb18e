//! The container image, checked without a Docker engine: the workspace's `Dockerfile` and
//! `.dockerignore` against what `cargo metadata` says the workspace builds.
//!
//! A small parser reads the Dockerfile (comment lines, line continuations, stages). The checks
//! then say what the image must be: exactly the four services and the operator CLI, built with
//! `--locked` in a `rust:<rust-version>` stage and copied from it to `/usr/local/bin/` of a
//! distroless image that runs as UID 1000, with exec-form commands and no shell. Each check also
//! runs on a bad Dockerfile, so it is known to report what it should.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The binaries the image carries: the four services and the operator CLI.
const IMAGE_BINS: [&str; 5] = [
    "ingress",
    "exporter",
    "packager",
    "canvas",
    "benchling-webhook",
];

/// Where the image puts them.
const BIN_DIR: &str = "/usr/local/bin/";

/// What keeps the image under 40 MB to pull: the release build stripped, with fat LTO and one
/// codegen unit (docs/deploy.md, "Sizes").
const SIZE_PROFILE: [&str; 3] = [
    "CARGO_PROFILE_RELEASE_STRIP=symbols",
    "CARGO_PROFILE_RELEASE_LTO=fat",
    "CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1",
];

/// Programs that would make a command run through a shell.
const SHELLS: [&str; 6] = ["sh", "bash", "dash", "ash", "zsh", "busybox"];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(name: &str) -> String {
    let path = workspace_root().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// The parser

/// One instruction: continuation lines joined, comment lines dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Instruction {
    /// Upper case: `FROM`, `RUN`, `COPY`, …
    keyword: String,
    /// Everything after the keyword, on one line.
    args: String,
    /// The 1-based line the instruction starts on.
    line: usize,
}

/// Splits a Dockerfile into instructions. A line whose first non-blank character is `#` is a
/// comment (parser directives included), also in the middle of a continued instruction; a line
/// ending in `\` continues on the next one; blank lines are skipped.
fn parse(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (body, continues) = match line.strip_suffix('\\') {
            Some(body) => (body.trim_end(), true),
            None => (line, false),
        };
        let (start, mut joined) = pending.take().unwrap_or((index + 1, String::new()));
        if !joined.is_empty() && !body.is_empty() {
            joined.push(' ');
        }
        joined.push_str(body);
        if continues {
            pending = Some((start, joined));
        } else {
            out.push(instruction(start, &joined));
        }
    }
    if let Some((start, joined)) = pending {
        out.push(instruction(start, &joined));
    }
    out
}

fn instruction(line: usize, text: &str) -> Instruction {
    let (keyword, args) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    Instruction {
        keyword: keyword.to_ascii_uppercase(),
        args: args.trim().to_owned(),
        line,
    }
}

/// A build stage: its `FROM` and the instructions up to the next one.
#[derive(Debug)]
struct Stage {
    /// The `AS` name, lower case (stage names are case-insensitive).
    name: Option<String>,
    /// The base: an image, or an earlier stage's name. Global `ARG`s are expanded.
    base: String,
    instructions: Vec<Instruction>,
}

#[derive(Debug)]
struct Dockerfile {
    stages: Vec<Stage>,
}

impl Dockerfile {
    fn parse(text: &str) -> Self {
        let mut global_args = BTreeMap::new();
        let mut stages: Vec<Stage> = Vec::new();
        for instruction in parse(text) {
            match (instruction.keyword.as_str(), stages.last_mut()) {
                ("FROM", _) => {
                    let words: Vec<&str> = instruction
                        .args
                        .split_whitespace()
                        .filter(|w| !w.starts_with("--"))
                        .collect();
                    let name = match words.as_slice() {
                        [_, as_, name, ..] if as_.eq_ignore_ascii_case("as") => {
                            Some(name.to_ascii_lowercase())
                        }
                        _ => None,
                    };
                    let base = expand(words.first().copied().unwrap_or(""), &global_args);
                    stages.push(Stage {
                        name,
                        base,
                        instructions: Vec::new(),
                    });
                }
                ("ARG", None) => {
                    let (name, default) = instruction
                        .args
                        .split_once('=')
                        .unwrap_or((&instruction.args, ""));
                    global_args.insert(name.trim().to_owned(), default.trim().to_owned());
                }
                (_, Some(stage)) => stage.instructions.push(instruction),
                (_, None) => {}
            }
        }
        Self { stages }
    }

    /// The stage a `--from=` or `FROM` names: by `AS` name or by index.
    fn stage(&self, reference: &str) -> Option<&Stage> {
        match reference.parse::<usize>() {
            Ok(index) => self.stages.get(index),
            Err(_) => {
                let reference = reference.to_ascii_lowercase();
                self.stages
                    .iter()
                    .find(|s| s.name.as_deref() == Some(reference.as_str()))
            }
        }
    }

    /// The image a stage finally rests on, following `FROM <earlier stage>`.
    fn image_of<'a>(&'a self, mut stage: &'a Stage) -> &'a str {
        for _ in 0..self.stages.len() {
            match self.stage(&stage.base) {
                Some(parent) if !std::ptr::eq(parent, stage) => stage = parent,
                _ => break,
            }
        }
        &stage.base
    }
}

/// Expands `$NAME` and `${NAME}` with the global `ARG` defaults (unknown names become empty).
fn expand(text: &str, args: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, tail) = match after.strip_prefix('{') {
            Some(braced) => match braced.split_once('}') {
                Some((name, tail)) => (name, tail),
                None => (braced, ""),
            },
            None => {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                after.split_at(end)
            }
        };
        out.push_str(args.get(name).map_or("", String::as_str));
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// A `COPY` instruction's parts (shell or JSON form).
#[derive(Debug)]
struct Copy {
    from: Option<String>,
    sources: Vec<String>,
    dest: String,
}

fn parse_copy(args: &str) -> Copy {
    let mut from = None;
    let mut rest = args.trim();
    while let Some(flag) = rest.strip_prefix("--") {
        let (word, tail) = flag.split_once(char::is_whitespace).unwrap_or((flag, ""));
        if let Some(stage) = word.strip_prefix("from=") {
            from = Some(stage.to_owned());
        }
        rest = tail.trim_start();
    }
    let mut paths: Vec<String> = serde_json::from_str(rest)
        .unwrap_or_else(|_| rest.split_whitespace().map(str::to_owned).collect());
    let dest = paths.pop().unwrap_or_default();
    Copy {
        from,
        sources: paths,
        dest,
    }
}

/// The `cargo` invocations in a `RUN`: the words after `cargo`, up to the end of that command.
fn cargo_commands(run: &str) -> Vec<Vec<String>> {
    let words: Vec<String> = serde_json::from_str(run.trim())
        .unwrap_or_else(|_| run.split_whitespace().map(str::to_owned).collect());
    let mut out = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for word in words {
        if matches!(word.as_str(), "&&" | "||" | ";" | "|") {
            out.extend(current.take());
            continue;
        }
        let (word, ends) = match word.strip_suffix(';') {
            Some(word) => (word.to_owned(), true),
            None => (word, false),
        };
        match current.as_mut() {
            Some(command) => command.push(word),
            None if word == "cargo" => current = Some(Vec::new()),
            None => {}
        }
        if ends {
            out.extend(current.take());
        }
    }
    out.extend(current);
    out
}

/// The `--bin` values of a cargo command.
fn bins_of(command: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut words = command.iter();
    while let Some(word) = words.next() {
        if word == "--bin" {
            out.extend(words.next().cloned());
        } else if let Some(bin) = word.strip_prefix("--bin=") {
            out.insert(bin.to_owned());
        }
    }
    out
}

/// An exec-form (JSON array) `CMD`/`ENTRYPOINT`/`RUN`; `None` for shell form.
fn exec_form(args: &str) -> Option<Vec<String>> {
    let args = args.trim();
    if args.starts_with('[') {
        serde_json::from_str(args).ok()
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// The checks

#[derive(Debug, Clone, PartialEq, Eq)]
enum Problem {
    NoStages,
    NotDistroless(String),
    NotRust {
        image: String,
        rust_version: String,
    },
    NoCargoBuild,
    NotLocked(String),
    /// A size setting of the image's release build is missing from the builder's environment.
    NotSizeProfile(&'static str),
    BuiltBins(BTreeSet<String>),
    CopyNotFromBuilder(String),
    NotAWorkspaceBin(String),
    CopiedBins(BTreeSet<String>),
    User(Option<String>),
    ShellForm(String),
    Shell(String),
    NoCmd,
    CmdNotABinary(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoStages => write!(f, "no FROM"),
            Self::NotDistroless(image) => {
                write!(
                    f,
                    "the final stage is based on {image}, not gcr.io/distroless/…"
                )
            }
            Self::NotRust {
                image,
                rust_version,
            } => write!(
                f,
                "the builder is based on {image}, not rust:{rust_version} (the workspace's rust-version)"
            ),
            Self::NoCargoBuild => write!(f, "no stage runs `cargo build`"),
            Self::NotLocked(command) => write!(f, "`cargo {command}` has no --locked"),
            Self::NotSizeProfile(setting) => write!(
                f,
                "the builder does not set {setting} before cargo build (docs/deploy.md, Sizes)"
            ),
            Self::BuiltBins(bins) => {
                write!(f, "cargo build builds {bins:?}, not exactly {IMAGE_BINS:?}")
            }
            Self::CopyNotFromBuilder(dest) => {
                write!(
                    f,
                    "{dest} is not copied from the stage that runs cargo build"
                )
            }
            Self::NotAWorkspaceBin(name) => {
                write!(f, "{BIN_DIR}{name} is not a [[bin]] of the workspace")
            }
            Self::CopiedBins(bins) => write!(
                f,
                "the final stage copies {bins:?} to {BIN_DIR}, not exactly {IMAGE_BINS:?}"
            ),
            Self::User(user) => write!(f, "the final stage's USER is {user:?}, not 1000:1000"),
            Self::ShellForm(instruction) => write!(f, "{instruction} is in shell form"),
            Self::Shell(instruction) => write!(f, "{instruction} runs a shell"),
            Self::NoCmd => write!(f, "the final stage has no CMD"),
            Self::CmdNotABinary(cmd) => {
                write!(f, "CMD {cmd} is not one of the copied binaries")
            }
        }
    }
}

/// Everything wrong with `dockerfile`, given the workspace's `[[bin]]` names and rust-version.
fn check(dockerfile: &str, workspace_bins: &BTreeSet<String>, rust_version: &str) -> Vec<Problem> {
    let file = Dockerfile::parse(dockerfile);
    let mut problems = Vec::new();
    let Some(last) = file.stages.last() else {
        return vec![Problem::NoStages];
    };
    let expected: BTreeSet<String> = IMAGE_BINS.iter().map(|b| (*b).to_owned()).collect();

    // The base image.
    let runtime_image = file.image_of(last);
    if !runtime_image.starts_with("gcr.io/distroless/") {
        problems.push(Problem::NotDistroless(runtime_image.to_owned()));
    }

    // Every cargo build, install and chef cook is --locked.
    for stage in &file.stages {
        for run in stage.instructions.iter().filter(|i| i.keyword == "RUN") {
            for command in cargo_commands(&run.args) {
                let words: Vec<&str> = command.iter().map(String::as_str).collect();
                let locks = matches!(
                    words.as_slice(),
                    ["build" | "install", ..] | ["chef", "cook", ..]
                );
                if locks && !command.iter().any(|w| w == "--locked" || w == "--frozen") {
                    problems.push(Problem::NotLocked(command.join(" ")));
                }
            }
        }
    }

    // The builder: the stage the final stage copies its first binary from (other stages, such
    // as compose's stand-ins, may build other binaries), else the last stage that builds.
    let build_of = |stage: &'_ Stage| {
        stage
            .instructions
            .iter()
            .filter(|i| i.keyword == "RUN")
            .flat_map(|i| cargo_commands(&i.args))
            .find(|c| c.first().is_some_and(|w| w == "build"))
    };
    let builder = last
        .instructions
        .iter()
        .filter(|i| i.keyword == "COPY")
        .map(|i| parse_copy(&i.args))
        .find(|copy| copy.dest.starts_with(BIN_DIR))
        .and_then(|copy| file.stage(copy.from.as_deref()?))
        .and_then(|stage| Some((stage, build_of(stage)?)))
        .or_else(|| {
            file.stages
                .iter()
                .rev()
                .find_map(|stage| Some((stage, build_of(stage)?)))
        });
    let Some((builder, build)) = builder else {
        problems.push(Problem::NoCargoBuild);
        return problems;
    };
    let builder_image = file.image_of(builder);
    let version_follows = builder_image
        .strip_prefix("rust:")
        .and_then(|tag| tag.strip_prefix(rust_version))
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['-', '.']));
    if !version_follows {
        problems.push(Problem::NotRust {
            image: builder_image.to_owned(),
            rust_version: rust_version.to_owned(),
        });
    }
    if bins_of(&build) != expected {
        problems.push(Problem::BuiltBins(bins_of(&build)));
    }
    let before_build: Vec<&Instruction> = builder
        .instructions
        .iter()
        .take_while(|i| i.keyword != "RUN" || !i.args.contains("cargo build"))
        .collect();
    for setting in SIZE_PROFILE {
        if !before_build
            .iter()
            .any(|i| i.keyword == "ENV" && i.args.contains(setting))
        {
            problems.push(Problem::NotSizeProfile(setting));
        }
    }

    // What the final stage copies into /usr/local/bin.
    let mut copied = BTreeSet::new();
    for instruction in last.instructions.iter().filter(|i| i.keyword == "COPY") {
        let copy = parse_copy(&instruction.args);
        if !copy.dest.starts_with(BIN_DIR) {
            continue;
        }
        let from_builder = copy
            .from
            .as_deref()
            .and_then(|from| file.stage(from))
            .is_some_and(|stage| std::ptr::eq(stage, builder));
        if !from_builder {
            problems.push(Problem::CopyNotFromBuilder(copy.dest.clone()));
        }
        let names: Vec<String> = match copy.dest.strip_prefix(BIN_DIR) {
            Some("") => copy
                .sources
                .iter()
                .map(|s| s.rsplit('/').next().unwrap_or(s).to_owned())
                .collect(),
            Some(name) => vec![name.to_owned()],
            None => Vec::new(),
        };
        for name in names {
            if !workspace_bins.contains(&name) {
                problems.push(Problem::NotAWorkspaceBin(name.clone()));
            }
            copied.insert(name);
        }
    }
    if copied != expected {
        problems.push(Problem::CopiedBins(copied.clone()));
    }

    // Who it runs as. No USER means root.
    let user = last
        .instructions
        .iter()
        .rfind(|i| i.keyword == "USER")
        .map(|i| i.args.clone());
    if !matches!(user.as_deref(), Some("1000:1000" | "1000")) {
        problems.push(Problem::User(user));
    }

    // What it runs: exec form, no shell, one of the copied binaries.
    let mut cmd = None;
    let mut has_cmd = false;
    for instruction in &last.instructions {
        if !matches!(instruction.keyword.as_str(), "CMD" | "ENTRYPOINT") {
            continue;
        }
        has_cmd |= instruction.keyword == "CMD";
        let shown = format!("{} {}", instruction.keyword, instruction.args);
        let Some(words) = exec_form(&instruction.args) else {
            problems.push(Problem::ShellForm(shown));
            continue;
        };
        let shell = words.iter().any(|w| {
            let program = w.rsplit('/').next().unwrap_or(w);
            SHELLS.contains(&program) || w == "-c"
        });
        if shell {
            problems.push(Problem::Shell(shown));
        }
        if instruction.keyword == "CMD" {
            cmd = words.first().cloned();
        }
    }
    match cmd {
        None if !has_cmd => problems.push(Problem::NoCmd),
        None => {}
        Some(program) => {
            let known = program
                .strip_prefix(BIN_DIR)
                .is_some_and(|name| copied.contains(name));
            if !known {
                problems.push(Problem::CmdNotABinary(program));
            }
        }
    }
    problems
}

// ---------------------------------------------------------------------------------------------
// .dockerignore

/// Whether `.dockerignore` (its patterns, in order) leaves `path` out of the build context: the
/// last pattern matching the path or one of its parent folders decides (`!` re-includes).
fn ignored(dockerignore: &str, path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    let mut out = false;
    for line in dockerignore.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (include, pattern) = match line.strip_prefix('!') {
            Some(pattern) => (true, pattern),
            None => (false, line),
        };
        let pattern: Vec<&str> = pattern
            .trim_matches('/')
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        if (1..=parts.len()).any(|n| glob(&pattern, &parts[..n])) {
            out = !include;
        }
    }
    out
}

/// Path glob: `**` spans any number of segments, `*` and `?` stay within one.
fn glob(pattern: &[&str], path: &[&str]) -> bool {
    match (pattern.split_first(), path.split_first()) {
        (None, None) => true,
        (Some((&"**", rest)), _) => {
            glob(rest, path)
                || path
                    .split_first()
                    .is_some_and(|(_, tail)| glob(pattern, tail))
        }
        (Some((p, rest)), Some((s, tail))) => {
            segment(p.as_bytes(), s.as_bytes()) && glob(rest, tail)
        }
        _ => false,
    }
}

fn segment(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.split_first(), text.split_first()) {
        (None, None) => true,
        (Some((b'*', rest)), _) => {
            segment(rest, text)
                || text
                    .split_first()
                    .is_some_and(|(_, tail)| segment(pattern, tail))
        }
        (Some((b'?', rest)), Some((_, tail))) => segment(rest, tail),
        (Some((p, rest)), Some((t, tail))) => p == t && segment(rest, tail),
        _ => false,
    }
}

/// The literal paths that `include_str!`/`include_bytes!` in `source` name.
fn includes(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    for macro_ in ["include_str!(", "include_bytes!("] {
        for (at, _) in source.match_indices(macro_) {
            let rest = source[at + macro_.len()..].trim_start();
            if let Some(quoted) = rest.strip_prefix('"')
                && let Some((path, _)) = quoted.split_once('"')
            {
                out.push(path.to_owned());
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() && entry.file_name() != "target" {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Lexically normalises `a/b/../c` to `a/c`, relative to the workspace root.
fn relative(root: &Path, path: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for component in path.strip_prefix(root).unwrap_or(path).components() {
        match component {
            std::path::Component::ParentDir => {
                parts.pop();
            }
            std::path::Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            _ => {}
        }
    }
    parts.join("/")
}

// ---------------------------------------------------------------------------------------------
// The workspace

struct Workspace {
    root: PathBuf,
    bins: BTreeSet<String>,
    rust_version: String,
    /// Every manifest and target source, relative to the root.
    sources: Vec<String>,
    /// The folders of the members.
    members: Vec<PathBuf>,
}

fn workspace() -> Workspace {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata's JSON");
    let root = PathBuf::from(metadata["workspace_root"].as_str().expect("workspace_root"));
    let mut bins = BTreeSet::new();
    let mut rust_versions = BTreeSet::new();
    let mut sources = vec!["Cargo.toml".to_owned(), "Cargo.lock".to_owned()];
    let mut members = Vec::new();
    for package in metadata["packages"].as_array().expect("packages") {
        let manifest = Path::new(package["manifest_path"].as_str().expect("manifest_path"));
        sources.push(relative(&root, manifest));
        members.extend(manifest.parent().map(Path::to_owned));
        rust_versions.extend(package["rust_version"].as_str().map(str::to_owned));
        for target in package["targets"].as_array().expect("targets") {
            let src = target["src_path"].as_str().expect("src_path");
            sources.push(relative(&root, Path::new(src)));
            let is_bin = target["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == "bin"));
            if is_bin {
                bins.insert(target["name"].as_str().expect("name").to_owned());
            }
        }
    }
    assert_eq!(
        rust_versions.len(),
        1,
        "one rust-version for the workspace: {rust_versions:?}"
    );
    Workspace {
        root,
        bins,
        rust_version: rust_versions.pop_first().unwrap_or_default(),
        sources,
        members,
    }
}

// ---------------------------------------------------------------------------------------------
// The tests

#[test]
fn the_dockerfile_builds_the_five_binaries_into_a_distroless_image() {
    let workspace = workspace();
    for bin in IMAGE_BINS {
        assert!(
            workspace.bins.contains(bin),
            "{bin} is not a workspace [[bin]]: {:?}",
            workspace.bins
        );
    }
    let problems = check(
        &read("Dockerfile"),
        &workspace.bins,
        &workspace.rust_version,
    );
    let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(shown.is_empty(), "Dockerfile:\n  {}", shown.join("\n  "));
}

#[test]
fn the_build_context_has_what_the_build_reads_and_nothing_local() {
    let workspace = workspace();
    let dockerignore = read(".dockerignore");
    let mut needed = workspace.sources.clone();
    let mut files = Vec::new();
    for member in &workspace.members {
        rust_files(member, &mut files);
    }
    for file in files {
        let source = std::fs::read_to_string(&file).expect("a readable source");
        let dir = file.parent().expect("a folder");
        for include in includes(&source) {
            needed.push(relative(&workspace.root, &dir.join(include)));
        }
    }
    assert!(
        needed.iter().any(|p| p.starts_with("tests/fixtures/")),
        "the include_str! scan found the fixtures: {needed:?}"
    );
    let left_out: Vec<&String> = needed
        .iter()
        .filter(|p| ignored(&dockerignore, p))
        .collect();
    assert!(left_out.is_empty(), ".dockerignore leaves out {left_out:?}");
    for local in [
        "target/release/ingress",
        ".git/HEAD",
        ".local/secret.json",
        ".venv/bin/python",
    ] {
        assert!(ignored(&dockerignore, local), ".dockerignore keeps {local}");
    }
}

#[test]
fn the_parser_joins_continuations_and_drops_comments() {
    let text = "# syntax=docker/dockerfile:1\n\
                ARG RUST_VERSION=1.95\n\
                \n\
                from rust:${RUST_VERSION}-slim AS builder\n\
                RUN cargo build --release \\\n\
                \x20     # a comment inside the command\n\
                \x20     --bin a \\  \n\
                \n\
                \x20     --bin=b\n\
                \x20 # indented comment\n\
                RUN echo '# not a comment'\n";
    let instructions = parse(text);
    let shown: Vec<(&str, &str, usize)> = instructions
        .iter()
        .map(|i| (i.keyword.as_str(), i.args.as_str(), i.line))
        .collect();
    assert_eq!(
        shown,
        [
            ("ARG", "RUST_VERSION=1.95", 2),
            ("FROM", "rust:${RUST_VERSION}-slim AS builder", 4),
            ("RUN", "cargo build --release --bin a --bin=b", 5),
            ("RUN", "echo '# not a comment'", 11),
        ]
    );
    let commands = cargo_commands(&instructions[2].args);
    assert_eq!(commands.len(), 1);
    assert_eq!(
        bins_of(&commands[0]),
        BTreeSet::from(["a".to_owned(), "b".to_owned()])
    );
}

#[test]
fn the_parser_finds_stages_and_what_they_rest_on() {
    let file = Dockerfile::parse(
        "ARG BASE=debian:12\n\
         FROM --platform=$BUILDPLATFORM ${BASE} AS Base\n\
         RUN true\n\
         FROM base AS next\n\
         FROM scratch\n\
         COPY --from=0 --chmod=755 [\"/a b\", \"/usr/local/bin/\"]\n",
    );
    let names: Vec<Option<&str>> = file.stages.iter().map(|s| s.name.as_deref()).collect();
    assert_eq!(names, [Some("base"), Some("next"), None]);
    assert_eq!(file.stages[0].base, "debian:12");
    assert_eq!(file.stages[0].instructions.len(), 1);
    assert_eq!(file.image_of(&file.stages[1]), "debian:12");
    assert_eq!(file.image_of(&file.stages[2]), "scratch");
    assert!(std::ptr::eq(file.stage("BASE").unwrap(), &file.stages[0]));
    assert!(std::ptr::eq(file.stage("0").unwrap(), &file.stages[0]));
    let copy = parse_copy(&file.stages[2].instructions[0].args);
    assert_eq!(copy.from.as_deref(), Some("0"));
    assert_eq!(copy.sources, ["/a b"]);
    assert_eq!(copy.dest, "/usr/local/bin/");
    assert_eq!(
        cargo_commands("cargo install x --locked && cargo build; cargo chef cook --bin y"),
        [
            vec!["install", "x", "--locked"],
            vec!["build"],
            vec!["chef", "cook", "--bin", "y"]
        ]
    );
}

#[test]
fn the_checks_report_a_bad_dockerfile() {
    let bad = "FROM rust:1.80-slim AS builder\n\
               RUN cargo build --release --bin ingress\n\
               FROM debian:bookworm-slim AS other\n\
               FROM debian:bookworm-slim\n\
               COPY --from=builder /app/target/release/ingress /app/target/release/not-a-bin /usr/local/bin/\n\
               COPY --from=other /bin/sh /usr/local/bin/canvas\n\
               USER root\n\
               ENTRYPOINT [\"/bin/sh\", \"-c\"]\n\
               CMD /usr/local/bin/ingress --health\n";
    let bins: BTreeSet<String> = IMAGE_BINS
        .iter()
        .chain(&["local-pipeline"])
        .map(|b| (*b).to_owned())
        .collect();
    let problems = check(bad, &bins, "1.95");
    let set = |names: &[&str]| {
        names
            .iter()
            .map(|n| (*n).to_owned())
            .collect::<BTreeSet<_>>()
    };
    for expected in [
        Problem::NotDistroless("debian:bookworm-slim".into()),
        Problem::NotRust {
            image: "rust:1.80-slim".into(),
            rust_version: "1.95".into(),
        },
        Problem::NotLocked("build --release --bin ingress".into()),
        Problem::NotSizeProfile("CARGO_PROFILE_RELEASE_STRIP=symbols"),
        Problem::NotSizeProfile("CARGO_PROFILE_RELEASE_LTO=fat"),
        Problem::NotSizeProfile("CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1"),
        Problem::BuiltBins(set(&["ingress"])),
        Problem::NotAWorkspaceBin("not-a-bin".into()),
        Problem::CopyNotFromBuilder("/usr/local/bin/canvas".into()),
        Problem::CopiedBins(set(&["canvas", "ingress", "not-a-bin"])),
        Problem::User(Some("root".into())),
        Problem::Shell("ENTRYPOINT [\"/bin/sh\", \"-c\"]".into()),
        Problem::ShellForm("CMD /usr/local/bin/ingress --health".into()),
    ] {
        assert!(
            problems.contains(&expected),
            "not reported: {expected}\nreported: {problems:#?}"
        );
    }

    // No build, no CMD, no USER (which is root); a CMD must name a copied binary.
    let problems = check("FROM gcr.io/distroless/cc-debian12\n", &bins, "1.95");
    assert_eq!(problems, [Problem::NoCargoBuild]);
    let problems = check(
        "FROM rust:1.95 AS b\nRUN cargo build --locked\nFROM gcr.io/distroless/cc\nCMD [\"/bin/true\"]\n",
        &bins,
        "1.95",
    );
    assert!(problems.contains(&Problem::User(None)), "{problems:?}");
    assert!(
        problems.contains(&Problem::CmdNotABinary("/bin/true".into())),
        "{problems:?}"
    );
    let problems = check(
        "FROM rust:1.95 AS b\nRUN cargo build --locked\nFROM gcr.io/distroless/cc\nUSER 1000\n",
        &bins,
        "1.95",
    );
    assert!(problems.contains(&Problem::NoCmd), "{problems:?}");
    assert!(
        !problems.iter().any(|p| matches!(p, Problem::User(_))),
        "{problems:?}"
    );
}

#[test]
fn the_dockerignore_matcher_follows_docker() {
    let rules = "# comment\ntarget/\n**/*.log\ntests/\n!tests/fixtures\n/docs\n";
    assert!(ignored(rules, "target/release/ingress"));
    assert!(ignored(rules, "a.log"));
    assert!(ignored(rules, "services/x/y.log"));
    assert!(ignored(rules, "tests/golden/a.json"));
    assert!(!ignored(rules, "tests/fixtures/a.json"));
    assert!(ignored(rules, "docs/deploy.md"));
    assert!(!ignored(rules, "services/target.rs"));
    assert!(!ignored(rules, "Cargo.toml"));
    assert_eq!(
        includes(
            "include_str!(\n    \"../a.json\"\n); include_bytes!(\"b\"); include_str!(concat!(x))"
        ),
        ["../a.json", "b"]
    );
}
