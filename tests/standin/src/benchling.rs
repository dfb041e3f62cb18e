//! A Benchling API stand-in: OAuth token, entries (from the recorded fixture),
//! exports and task polling with scripted outcomes, ZIP downloads, app canvases, bulk name
//! look-ups, and injected faults (429, 5xx bursts, slow answers, expired tokens). Every request
//! is recorded for assertions, with `Authorization` values hidden.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::archive::sample_export;
use crate::stub::{FileBody, StubRequest, StubResponse, StubServer};

/// The recorded `GET /entries/etr_0uKCQZ8f` response the stand-in serves by default.
pub const ENTRY_FIXTURE: &str = include_str!("../../fixtures/benchling-events/entry.json");

/// The id of the fixture entry.
pub const FIXTURE_ENTRY_ID: &str = "etr_0uKCQZ8f";

/// The download an export ends with unless a [`TaskScript`] names another.
pub const DEFAULT_DOWNLOAD: &str = "export.zip";

/// Bulk-get routes as Benchling names them: link type, collection, id parameter, list key.
const BULK_GETS: &[(&str, &str, &str, &str)] = &[
    (
        "custom_entity",
        "custom-entities",
        "customEntityIds",
        "customEntities",
    ),
    (
        "dna_sequence",
        "dna-sequences",
        "dnaSequenceIds",
        "dnaSequences",
    ),
    (
        "aa_sequence",
        "aa-sequences",
        "aaSequenceIds",
        "aaSequences",
    ),
    ("batch", "batches", "batchIds", "batches"),
    ("container", "containers", "containerIds", "containers"),
    ("plate", "plates", "plateIds", "plates"),
    ("box", "boxes", "boxIds", "boxes"),
    ("location", "locations", "locationIds", "locations"),
    ("entry", "entries", "entryIds", "entries"),
];

/// A Benchling secret (the JSON of `BenchlingSecret`) for services that talk to a stand-in
/// started with these OAuth client credentials: tenant `standin`, packages under `benchling/`
/// in `bucket`, webhook verification on.
pub fn secret_json(client_id: &str, client_secret: &str, bucket: &str) -> String {
    json!({
        "tenant": "standin",
        "client_id": client_id,
        "client_secret": client_secret,
        "app_definition_id": "appdef_standin",
        "user_bucket": bucket,
        "pkg_prefix": "benchling",
        "pkg_key": "experiment_id",
        "log_level": "INFO",
        "enable_webhook_verification": true,
    })
    .to_string()
}

/// A request as the stand-in received it; an `Authorization` value is cut to its scheme
/// (`Bearer`), so recordings never hold credentials.
pub type RecordedRequest = StubRequest;

/// How an export task ends.
#[derive(Clone, Debug)]
pub enum TaskScript {
    /// `running` polls answer `RUNNING`, then `SUCCEEDED` with a `downloadURL` to
    /// `/downloads/{download}` on the stand-in.
    Succeed {
        /// Polls that see `RUNNING` first.
        running: usize,
        /// Name of a registered download.
        download: String,
    },
    /// `running` polls answer `RUNNING`, then `FAILED` with this message and errors.
    Fail {
        /// Polls that see `RUNNING` first.
        running: usize,
        /// Benchling's `message`.
        message: String,
        /// Benchling's `errors`.
        errors: Vec<String>,
    },
}

/// A fault served instead of (or before) the normal answer to the next API call.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this status and a Benchling error body.
    Status(u16),
    /// 429 with `Retry-After: {0}` (seconds).
    RateLimited(u64),
    /// Wait this long, then answer normally (for client timeouts).
    Delay(Duration),
}

enum Download {
    Bytes(Vec<u8>),
    File(PathBuf),
}

struct Task {
    running: usize,
    outcome: TaskScript,
}

struct State {
    base_url: String,
    client_id: String,
    client_secret: String,
    token_lifetime: u64,
    tokens: HashSet<String>,
    token_requests: usize,
    next_id: u64,
    entries: HashMap<String, Value>,
    scripts: VecDeque<TaskScript>,
    tasks: HashMap<String, Task>,
    downloads: HashMap<String, Download>,
    canvases: HashMap<String, Value>,
    entities: HashMap<(String, String), String>,
    faults: VecDeque<Fault>,
    requests: Vec<RecordedRequest>,
    /// Whether downloads answer `range` headers (S3 does); see
    /// [`BenchlingStandIn::ignore_ranges`].
    ranges: bool,
}

/// The running stand-in; it stops when dropped.
pub struct BenchlingStandIn {
    server: StubServer,
    state: Arc<Mutex<State>>,
}

impl BenchlingStandIn {
    /// Starts a stand-in on an ephemeral loopback port that accepts these OAuth client
    /// credentials and serves the fixture entry.
    ///
    /// # Panics
    /// When no loopback port can be bound or the fixture is not valid JSON (the test cannot run
    /// anyway).
    pub fn start(client_id: &str, client_secret: &str) -> Self {
        Self::bind((Ipv4Addr::LOCALHOST, 0).into(), client_id, client_secret)
            .expect("bind a stand-in port")
    }

    /// Like [`BenchlingStandIn::start`], on `addr` (port 0: an ephemeral one).
    ///
    /// # Errors
    /// When `addr` cannot be bound.
    ///
    /// # Panics
    /// When the fixture is not valid JSON (it is compiled in, so never in a tested build).
    pub fn bind(addr: SocketAddr, client_id: &str, client_secret: &str) -> std::io::Result<Self> {
        let fixture: Value = serde_json::from_str(ENTRY_FIXTURE).expect("entry fixture is JSON");
        let entry = fixture["entry"].clone();
        let state = Arc::new(Mutex::new(State {
            base_url: String::new(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            token_lifetime: 900,
            tokens: HashSet::new(),
            token_requests: 0,
            next_id: 0,
            entries: HashMap::new(),
            scripts: VecDeque::new(),
            tasks: HashMap::new(),
            downloads: HashMap::new(),
            canvases: HashMap::new(),
            entities: HashMap::new(),
            faults: VecDeque::new(),
            requests: Vec::new(),
            ranges: true,
        }));
        let handler_state = Arc::clone(&state);
        let server = StubServer::bind(addr, move |request| handle(&handler_state, request))?;
        let stand_in = Self { server, state };
        stand_in.lock().base_url = stand_in.url();
        stand_in.add_entry(entry);
        Ok(stand_in)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The base URL (`BENCHLING_API_BASE_URL`); the API is under `/api/v2`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Accepts only these credentials from now on (a rotated secret). Issued tokens stay valid.
    pub fn set_credentials(&self, client_id: &str, client_secret: &str) {
        let mut state = self.lock();
        state.client_id = client_id.to_owned();
        state.client_secret = client_secret.to_owned();
    }

    /// `expires_in` of tokens issued from now on (default 900 s).
    pub fn set_token_lifetime(&self, seconds: u64) {
        self.lock().token_lifetime = seconds;
    }

    /// Revokes every issued token: the next API call gets 401.
    pub fn expire_tokens(&self) {
        self.lock().tokens.clear();
    }

    /// How many token requests arrived (accepted or not).
    pub fn token_requests(&self) -> usize {
        self.lock().token_requests
    }

    /// Serves an entry object (as in `{"entry": …}`) under its `id`; also nameable by bulk get.
    pub fn add_entry(&self, entry: Value) {
        let id = entry["id"].as_str().unwrap_or_default().to_owned();
        let mut state = self.lock();
        if let Some(name) = entry["name"].as_str() {
            state
                .entities
                .insert(("entry".to_owned(), id.clone()), name.to_owned());
        }
        state.entries.insert(id, entry);
    }

    /// Scripts the outcome of the next export started (default: succeeds at once with the
    /// download `{entry id}.zip` when one was added, else [`DEFAULT_DOWNLOAD`]).
    pub fn push_task(&self, script: TaskScript) {
        self.lock().scripts.push_back(script);
    }

    /// Serves `bytes` at `/downloads/{name}`.
    pub fn add_download(&self, name: &str, bytes: Vec<u8>) {
        self.lock()
            .downloads
            .insert(name.to_owned(), Download::Bytes(bytes));
    }

    /// Serves [`sample_export`] as [`DEFAULT_DOWNLOAD`], so every unscripted export of any
    /// entry succeeds with a note and a small table (local runs).
    pub fn add_sample_export(&self) {
        self.add_download(DEFAULT_DOWNLOAD, sample_export());
    }

    /// Streams the file at `path` from `/downloads/{name}` (large archives).
    pub fn add_download_file(&self, name: &str, path: impl Into<PathBuf>) {
        self.lock()
            .downloads
            .insert(name.to_owned(), Download::File(path.into()));
    }

    /// Makes downloads ignore `range` headers and always send the whole file, as some servers
    /// do.
    pub fn ignore_ranges(&self) {
        self.lock().ranges = false;
    }

    /// The URL of a registered download.
    pub fn download_url(&self, name: &str) -> String {
        format!("{}/downloads/{name}", self.url())
    }

    /// Registers an existing app canvas (the object `GET /app-canvases/{id}` returns).
    pub fn add_canvas(&self, canvas: Value) {
        let id = canvas["id"].as_str().unwrap_or_default().to_owned();
        self.lock().canvases.insert(id, canvas);
    }

    /// A canvas as it stands after the creates and updates received.
    pub fn canvas(&self, id: &str) -> Option<Value> {
        self.lock().canvases.get(id).cloned()
    }

    /// Makes a resource of a link type (`custom_entity`, `box`, …) nameable by bulk get.
    pub fn add_entity(&self, link_type: &str, id: &str, name: &str) {
        self.lock()
            .entities
            .insert((link_type.to_owned(), id.to_owned()), name.to_owned());
    }

    /// Serves `fault` to the next `times` API calls (token requests and downloads excluded).
    pub fn inject(&self, fault: Fault, times: usize) {
        let mut state = self.lock();
        state.faults.extend(std::iter::repeat_n(fault, times));
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Requests with this method whose path (query included) starts with `prefix`.
    pub fn requests_to(&self, method: &str, prefix: &str) -> Vec<RecordedRequest> {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.method == method && r.path.starts_with(prefix))
            .cloned()
            .collect()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

fn status_line(code: u16) -> &'static str {
    match code {
        200 => "200 OK",
        201 => "201 Created",
        202 => "202 Accepted",
        206 => "206 Partial Content",
        400 => "400 Bad Request",
        401 => "401 Unauthorized",
        403 => "403 Forbidden",
        404 => "404 Not Found",
        416 => "416 Range Not Satisfiable",
        429 => "429 Too Many Requests",
        502 => "502 Bad Gateway",
        503 => "503 Service Unavailable",
        504 => "504 Gateway Timeout",
        _ => "500 Internal Server Error",
    }
}

fn error(code: u16, message: &str) -> StubResponse {
    StubResponse::json(
        status_line(code),
        json!({"error": {"message": message, "type": "invalid_request_error"}}).to_string(),
    )
}

fn ok(code: u16, body: &Value) -> StubResponse {
    StubResponse::json(status_line(code), body.to_string())
}

fn handle(state: &Mutex<State>, request: &StubRequest) -> StubResponse {
    let (path, query) = request
        .path
        .split_once('?')
        .unwrap_or((request.path.as_str(), ""));
    let fault = {
        let mut state = lock(state);
        state.requests.push(record(request));
        if let Some(name) = path.strip_prefix("/downloads/") {
            return download(&state, name, request.header("range"));
        }
        if path == "/api/v2/token" {
            return token(&mut state, request);
        }
        state.faults.pop_front()
    };
    match fault {
        Some(Fault::Status(code)) => return error(code, "injected failure"),
        Some(Fault::RateLimited(seconds)) => {
            return error(429, "rate limit exceeded")
                .with_header("retry-after", seconds.to_string());
        }
        // Sleep without the lock, so other connections are served meanwhile.
        Some(Fault::Delay(wait)) => thread::sleep(wait),
        None => {}
    }
    let mut state = lock(state);
    let bearer = request
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "));
    if !bearer.is_some_and(|t| state.tokens.contains(t)) {
        return error(401, "Invalid or expired access token");
    }
    let Some(route) = path.strip_prefix("/api/v2/") else {
        return error(404, "no such route");
    };
    let segments: Vec<&str> = route.split('/').collect();
    match (request.method.as_str(), segments.as_slice()) {
        ("GET", ["entries"]) => list_entries(&state, query),
        ("GET", ["entries", id]) => match state.entries.get(*id) {
            Some(entry) => ok(200, &json!({ "entry": entry })),
            None => error(404, "Entry not found"),
        },
        ("POST", ["exports"]) => start_export(&mut state, request),
        ("GET", ["tasks", id]) => task(&mut state, id, request),
        ("GET", ["app-canvases", id]) => match state.canvases.get(*id) {
            Some(canvas) => ok(200, canvas),
            None => error(404, "App canvas not found"),
        },
        ("POST", ["app-canvases"]) => {
            let Some(mut canvas) = body_json(request) else {
                return error(400, "body is not JSON");
            };
            state.next_id += 1;
            let id = format!("cnvs_standin{}", state.next_id);
            canvas["id"] = json!(id);
            state.canvases.insert(id, canvas.clone());
            ok(201, &canvas)
        }
        ("PATCH", ["app-canvases", id]) => {
            let Some(update) = body_json(request) else {
                return error(400, "body is not JSON");
            };
            let Some(canvas) = state.canvases.get_mut(*id) else {
                return error(404, "App canvas not found");
            };
            if let (Value::Object(canvas), Value::Object(update)) = (&mut *canvas, update) {
                canvas.extend(update);
            }
            ok(200, canvas)
        }
        ("GET", [bulk]) => match bulk.strip_suffix(":bulk-get") {
            Some(collection) => bulk_get(&state, collection, query),
            None => error(404, "no such route"),
        },
        _ => error(404, "no such route"),
    }
}

fn record(request: &StubRequest) -> RecordedRequest {
    let headers = request
        .headers
        .iter()
        .map(|(name, value)| {
            if name == "authorization" {
                let scheme = value.split_whitespace().next().unwrap_or_default();
                (name.clone(), scheme.to_owned())
            } else {
                (name.clone(), value.clone())
            }
        })
        .collect();
    StubRequest {
        headers,
        ..request.clone()
    }
}

fn body_json(request: &StubRequest) -> Option<Value> {
    serde_json::from_slice(request.body.as_deref()?).ok()
}

fn token(state: &mut State, request: &StubRequest) -> StubResponse {
    state.token_requests += 1;
    let expected = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", state.client_id, state.client_secret))
    );
    let form = request.body.as_deref().unwrap_or_default();
    let grant = url::form_urlencoded::parse(form)
        .any(|(k, v)| k == "grant_type" && v == "client_credentials");
    if request.method != "POST" || !grant {
        return StubResponse::json(status_line(400), r#"{"error":"unsupported_grant_type"}"#);
    }
    if request.header("authorization") != Some(expected.as_str()) {
        return StubResponse::json(status_line(401), r#"{"error":"invalid_client"}"#);
    }
    state.next_id += 1;
    let token = format!("standin-token-{}", state.next_id);
    state.tokens.insert(token.clone());
    ok(
        200,
        &json!({"access_token": token, "token_type": "Bearer", "expires_in": state.token_lifetime}),
    )
}

fn start_export(state: &mut State, request: &StubRequest) -> StubResponse {
    let id = body_json(request)
        .and_then(|b| b["id"].as_str().map(str::to_owned))
        .unwrap_or_default();
    if !state.entries.contains_key(&id) {
        return error(404, "Entry not found");
    }
    // Unscripted, an entry's export is its own download when one was added, else the default.
    let own = format!("{id}.zip");
    let download = if state.downloads.contains_key(&own) {
        own
    } else {
        DEFAULT_DOWNLOAD.to_owned()
    };
    let outcome = state.scripts.pop_front().unwrap_or(TaskScript::Succeed {
        running: 0,
        download,
    });
    let running = match &outcome {
        TaskScript::Succeed { running, .. } | TaskScript::Fail { running, .. } => *running,
    };
    let task_id = uuid::Uuid::new_v4().to_string();
    state
        .tasks
        .insert(task_id.clone(), Task { running, outcome });
    ok(202, &json!({ "taskId": task_id }))
}

fn task(state: &mut State, id: &str, request: &StubRequest) -> StubResponse {
    // The address the client reached us by: bound to 0.0.0.0 in a container, the stand-in's own
    // address would not lead other containers back to it.
    let base_url = request
        .header("host")
        .map_or_else(|| state.base_url.clone(), |host| format!("http://{host}"));
    let Some(task) = state.tasks.get_mut(id) else {
        return error(404, "Task not found");
    };
    if task.running > 0 {
        task.running -= 1;
        return ok(200, &json!({"id": id, "status": "RUNNING"}));
    }
    match &task.outcome {
        TaskScript::Succeed { download, .. } => ok(
            200,
            &json!({"id": id, "status": "SUCCEEDED",
                "response": {"downloadURL": format!("{base_url}/downloads/{download}")}}),
        ),
        TaskScript::Fail {
            message, errors, ..
        } => ok(
            200,
            &json!({"id": id, "status": "FAILED", "message": message, "errors": errors}),
        ),
    }
}

/// Serves a download, or the byte range a `range` header asks for (one range, as S3 answers
/// pre-signed URLs) unless ranges are turned off.
fn download(state: &State, name: &str, range: Option<&str>) -> StubResponse {
    let len = match state.downloads.get(name) {
        Some(Download::Bytes(bytes)) => bytes.len() as u64,
        Some(Download::File(path)) => match std::fs::metadata(path) {
            Ok(metadata) => metadata.len(),
            Err(_) => return error(404, "no such download"),
        },
        None => return error(404, "no such download"),
    };
    let asked = match range.filter(|_| state.ranges) {
        None => None,
        Some(header) => match byte_range(header, len) {
            Some(range) => Some(range),
            None => {
                return error(416, "range not satisfiable")
                    .with_header("content-range", format!("bytes */{len}"));
            }
        },
    };
    let mut response = match &asked {
        None => StubResponse::json(status_line(200), Vec::new()),
        Some(range) => StubResponse::json(status_line(206), Vec::new()).with_header(
            "content-range",
            format!("bytes {}-{}/{len}", range.start, range.end - 1),
        ),
    };
    response.content_type = "application/zip";
    let range = asked.unwrap_or(0..len);
    match state.downloads.get(name) {
        Some(Download::Bytes(bytes)) => {
            // Within `len` by construction.
            response.body = bytes[range.start as usize..range.end as usize].to_vec();
        }
        Some(Download::File(path)) => {
            response.body_file = Some(FileBody {
                path: path.clone(),
                range: Some(range),
            });
        }
        None => {}
    }
    response
}

/// The bytes `bytes=A-B`, `bytes=A-` or `bytes=-N` name in an object of `len` bytes; `None`
/// when none of them exist (HTTP 416).
fn byte_range(header: &str, len: u64) -> Option<Range<u64>> {
    let (first, last) = header.strip_prefix("bytes=")?.split_once('-')?;
    let range = if first.is_empty() {
        let suffix: u64 = last.parse().ok()?;
        len.saturating_sub(suffix)..len
    } else {
        let first: u64 = first.parse().ok()?;
        let end = if last.is_empty() {
            len
        } else {
            last.parse::<u64>().ok()?.saturating_add(1).min(len)
        };
        first..end
    };
    (range.start < range.end).then_some(range)
}

/// `GET /entries` as Benchling serves it: filtered by `projectId`, `folderId` and a
/// `modifiedAt` range (`>= T AND < T`), newest first, `pageSize` at a time, with an opaque
/// `nextToken`.
fn list_entries(state: &State, query: &str) -> StubResponse {
    let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let modified = |entry: &Value| {
        entry["modifiedAt"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    let mut bounds = Vec::new();
    if let Some(range) = params.get("modifiedAt") {
        for part in range.split(" AND ") {
            let (op, at) = part.trim().split_at(part.trim().find(' ').unwrap_or(0));
            let Ok(at) = chrono::DateTime::parse_from_rfc3339(at.trim()) else {
                return error(400, "modifiedAt is not a range of RFC 3339 times");
            };
            bounds.push((op.to_owned(), at));
        }
    }
    let mut entries: Vec<&Value> = state
        .entries
        .values()
        .filter(|e| {
            ["projectId", "folderId"]
                .iter()
                .all(|key| params.get(*key).is_none_or(|want| e[*key] == want.as_str()))
        })
        .filter(|e| {
            let Some(at) = modified(e) else {
                return bounds.is_empty();
            };
            bounds.iter().all(|(op, bound)| match op.as_str() {
                ">=" => at >= *bound,
                ">" => at > *bound,
                "<" => at < *bound,
                "<=" => at <= *bound,
                _ => false,
            })
        })
        .collect();
    entries.sort_by(|a, b| {
        modified(b)
            .cmp(&modified(a))
            .then(a["id"].as_str().cmp(&b["id"].as_str()))
    });
    let size: usize = params
        .get("pageSize")
        .and_then(|s| s.parse().ok())
        .unwrap_or(50)
        .clamp(1, 50);
    let start: usize = match params.get("nextToken") {
        Some(token) => match token.strip_prefix("page-").and_then(|n| n.parse().ok()) {
            Some(start) => start,
            None => return error(400, "invalid nextToken"),
        },
        None => 0,
    };
    let page: Vec<&Value> = entries.iter().skip(start).take(size).copied().collect();
    let next = start + page.len();
    let next_token = if next < entries.len() {
        json!(format!("page-{next}"))
    } else {
        json!("")
    };
    ok(200, &json!({"entries": page, "nextToken": next_token}))
}

fn bulk_get(state: &State, collection: &str, query: &str) -> StubResponse {
    let Some((link_type, _, param, key)) = BULK_GETS.iter().find(|(_, c, _, _)| *c == collection)
    else {
        return error(404, "no such route");
    };
    let ids: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == param)
        .flat_map(|(_, v)| v.split(',').map(str::to_owned).collect::<Vec<_>>())
        .collect();
    if ids.is_empty() {
        return error(400, "no ids given");
    }
    let items: Vec<Value> = ids
        .iter()
        .filter_map(|id| {
            let name = state.entities.get(&((*link_type).to_owned(), id.clone()))?;
            Some(json!({"id": id, "name": name}))
        })
        .collect();
    ok(200, &json!({ *key: items }))
}
