//! A Lambda Runtime API on 127.0.0.1, as Lambda serves it to a function's process: the
//! function's `lambda_runtime` loop long-polls `invocation/next`, and answers each
//! invocation at `invocation/{id}/response` or `invocation/{id}/error`. A test queues
//! invocations and awaits their answers. Several polls may wait at once, as in Lambda's
//! concurrent mode.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Notify};

/// One invocation to send.
pub struct Invoke {
    pub request_id: String,
    pub payload: Vec<u8>,
    pub timeout: Duration,
    pub function_arn: String,
    pub trace_id: Option<String>,
}

impl Invoke {
    /// An invocation of `payload` with a 60-second timeout.
    pub fn new(request_id: &str, payload: Vec<u8>) -> Self {
        Invoke {
            request_id: request_id.to_owned(),
            payload,
            timeout: Duration::from_secs(60),
            function_arn: "arn:aws:lambda:eu-west-1:123456789012:function:processor".to_owned(),
            trace_id: None,
        }
    }

    /// The same invocation, traced under `trace_id`.
    pub fn traced(mut self, trace_id: &str) -> Self {
        self.trace_id = Some(trace_id.to_owned());
        self
    }
}

/// How the function answered an invocation.
#[derive(Debug, PartialEq)]
pub enum Answer {
    Response(Value),
    Error(Value),
}

#[derive(Default)]
struct Shared {
    queue: Mutex<VecDeque<Invoke>>,
    queued: Notify,
    waiting: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
}

/// The emulator; it serves until dropped.
pub struct RuntimeApi {
    address: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl RuntimeApi {
    /// Starts serving on a free port of 127.0.0.1.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1");
        let address = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let server = tokio::spawn(serve(listener, Arc::clone(&shared)));
        RuntimeApi { address, shared, server }
    }

    /// The value of `AWS_LAMBDA_RUNTIME_API` for the function.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// Sends one invocation and waits (up to 30 s) for the function's answer.
    pub async fn invoke(&self, invoke: Invoke) -> Answer {
        let (answer, answered) = oneshot::channel();
        let id = invoke.request_id.clone();
        self.shared.waiting.lock().unwrap().insert(id.clone(), answer);
        self.shared.queue.lock().unwrap().push_back(invoke);
        self.shared.queued.notify_one();
        tokio::time::timeout(Duration::from_secs(30), answered)
            .await
            .unwrap_or_else(|_| panic!("no answer to invocation {id} within 30 s"))
            .expect("the emulator keeps the answer channel")
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, Infallible>(route(request, &shared).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn route(request: Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    const PREFIX: &str = "/2018-06-01/runtime/";
    let path = request.uri().path().to_owned();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return status(StatusCode::NOT_FOUND);
    };
    if rest == "invocation/next" {
        return next(shared).await;
    }
    let body = request.into_body().collect().await.map(|body| body.to_bytes()).unwrap_or_default();
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let answer = match rest.strip_prefix("invocation/").and_then(|rest| rest.split_once('/')) {
        Some((id, "response")) => (id, Answer::Response(parsed)),
        Some((id, "error")) => (id, Answer::Error(parsed)),
        _ => return status(StatusCode::ACCEPTED), // init/error and the like: noted, not used
    };
    if let Some(waiting) = shared.waiting.lock().unwrap().remove(answer.0) {
        let _ = waiting.send(answer.1);
    }
    status(StatusCode::ACCEPTED)
}

/// Waits for a queued invocation and hands it out with Lambda's headers.
async fn next(shared: &Shared) -> Response<Full<Bytes>> {
    let invoke = loop {
        let notified = shared.queued.notified();
        if let Some(invoke) = shared.queue.lock().unwrap().pop_front() {
            break invoke;
        }
        notified.await;
    };
    let deadline = SystemTime::now() + invoke.timeout;
    let deadline_ms = deadline.duration_since(UNIX_EPOCH).unwrap().as_millis().to_string();
    let mut response = Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("lambda-runtime-aws-request-id", &invoke.request_id)
        .header("lambda-runtime-deadline-ms", deadline_ms)
        .header("lambda-runtime-invoked-function-arn", &invoke.function_arn);
    if let Some(trace_id) = &invoke.trace_id {
        response = response.header("lambda-runtime-trace-id", trace_id);
    }
    response.body(Full::new(Bytes::from(invoke.payload))).unwrap()
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    Response::builder().status(code).body(Full::new(Bytes::new())).unwrap()
}

/// Points `lambda_runtime` at `api` through the environment it reads when a `Runtime` is
/// made; callers hold [`ENVIRONMENT`] until then.
pub fn configure_environment(api: &RuntimeApi, max_concurrency: Option<u32>) {
    std::env::set_var("AWS_LAMBDA_RUNTIME_API", api.address());
    std::env::set_var("AWS_LAMBDA_FUNCTION_NAME", "processor");
    std::env::set_var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128");
    std::env::set_var("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST");
    std::env::set_var("KINESIS_PROCESSOR_METRICS", "off");
    match max_concurrency {
        Some(n) => std::env::set_var("AWS_LAMBDA_MAX_CONCURRENCY", n.to_string()),
        None => std::env::remove_var("AWS_LAMBDA_MAX_CONCURRENCY"),
    }
}

/// Serializes the tests of a binary that set the process's environment.
pub static ENVIRONMENT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
