//! Fault injection below the real SDK client: an HTTP client that answers some requests
//! itself (a throttle, a 500) or alters them before they reach moto, and forwards the rest.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use serde_json::{json, Value};

/// What to do with one request.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Let it through unchanged.
    Pass,
    /// Answer it without forwarding: an HTTP status and a JSON error body.
    Answer { status: u16, error_type: &'static str, message: &'static str },
    /// Forward it with one SQS batch entry given an invalid `DelaySeconds`, so that the
    /// server itself refuses that entry (a partial batch failure).
    InvalidDelayForEntry(&'static str),
}

impl Fault {
    /// A throttling answer, which the SDK retries as such.
    pub fn throttle() -> Fault {
        Fault::Answer { status: 400, error_type: "ThrottlingException", message: "Rate exceeded" }
    }

    /// An internal error, which the SDK retries as transient.
    pub fn internal_error() -> Fault {
        Fault::Answer { status: 500, error_type: "InternalFailure", message: "injected 500" }
    }
}

/// The plan for requests whose target operation matches: faults in order, then `after`.
#[derive(Debug)]
pub struct FaultPlan {
    operation: &'static str,
    queue: Mutex<VecDeque<Fault>>,
    after: Fault,
    seen: AtomicU32,
}

/// A fault-injecting HTTP client.
pub type Faulty = Intercepting<FaultPlan>;

impl Faulty {
    /// Faults for requests to `operation` (e.g. `"AmazonSQS.SendMessageBatch"`): the
    /// `first` ones in order, then `after` for every later one.
    pub fn new(operation: &'static str, first: Vec<Fault>, after: Fault) -> Faulty {
        let queue = Mutex::new(first.into());
        Intercepting::with(FaultPlan { operation, queue, after, seen: AtomicU32::new(0) })
    }

    /// How many requests to the operation were made.
    pub fn seen(&self) -> u32 {
        self.intercept.seen.load(Ordering::Relaxed)
    }
}

impl Intercept for FaultPlan {
    fn call(&self, mut request: HttpRequest, inner: &SharedHttpConnector) -> HttpConnectorFuture {
        if request.headers().get("x-amz-target") != Some(self.operation) {
            return inner.call(request);
        }
        self.seen.fetch_add(1, Ordering::Relaxed);
        let fault = self.queue.lock().unwrap().pop_front().unwrap_or_else(|| self.after.clone());
        match fault {
            Fault::Pass => inner.call(request),
            Fault::Answer { status, error_type, message } => {
                let body = json!({ "__type": error_type, "message": message });
                HttpConnectorFuture::ready(Ok(json_response(status, &body)))
            }
            Fault::InvalidDelayForEntry(id) => {
                let body = request.body().bytes().expect("an in-memory body");
                let mut json: Value = serde_json::from_slice(body).expect("a JSON request");
                for entry in json["Entries"].as_array_mut().expect("batch entries") {
                    if entry["Id"] == id {
                        entry["DelaySeconds"] = json!(1000);
                    }
                }
                set_json_body(&mut request, &json);
                inner.call(request)
            }
        }
    }
}

/// What an [`Intercepting`] client does with each request: forwards it to `inner`, as it
/// came or altered, or answers it itself.
pub trait Intercept: std::fmt::Debug + Send + Sync + 'static {
    /// Handles one request.
    fn call(&self, request: HttpRequest, inner: &SharedHttpConnector) -> HttpConnectorFuture;
}

/// An HTTP client below the SDK that hands every request to its [`Intercept`], in front
/// of the SDK's own client.
#[derive(Debug)]
pub struct Intercepting<I> {
    inner: SharedHttpClient,
    pub intercept: Arc<I>,
}

impl<I> Clone for Intercepting<I> {
    fn clone(&self) -> Self {
        Intercepting { inner: self.inner.clone(), intercept: Arc::clone(&self.intercept) }
    }
}

impl<I: Intercept> Intercepting<I> {
    /// The client in front of the SDK's default HTTPS client.
    pub fn with(intercept: I) -> Self {
        let inner = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
            .build_https();
        Intercepting { inner, intercept: Arc::new(intercept) }
    }

    pub fn shared(&self) -> SharedHttpClient {
        SharedHttpClient::new(self.clone())
    }
}

impl<I: Intercept> HttpClient for Intercepting<I> {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let inner = self.inner.http_connector(settings, components);
        SharedHttpConnector::new(Connector { inner, intercept: Arc::clone(&self.intercept) })
    }
}

#[derive(Debug)]
struct Connector<I> {
    inner: SharedHttpConnector,
    intercept: Arc<I>,
}

impl<I: Intercept> HttpConnector for Connector<I> {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        self.intercept.call(request, &self.inner)
    }
}

/// An answer with a JSON body, as the AWS JSON protocols write it.
pub fn json_response(status: u16, body: &Value) -> HttpResponse {
    let body = serde_json::to_vec(body).unwrap();
    let mut response = Response::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body));
    response.headers_mut().insert("content-type", "application/x-amz-json-1.0");
    response
}

/// Replaces a request's body with `json`.
pub fn set_json_body(request: &mut HttpRequest, json: &Value) {
    let bytes = serde_json::to_vec(json).unwrap();
    request.headers_mut().insert("content-length", bytes.len().to_string());
    *request.body_mut() = SdkBody::from(bytes);
}
