//! Fault injection below the real SDK client: an HTTP client that answers some requests
//! itself (a throttle, a 500) or alters them before they reach moto, and forwards the rest.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;

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
struct Plan {
    operation: &'static str,
    queue: VecDeque<Fault>,
    after: Fault,
    seen: u32,
}

/// A fault-injecting HTTP client.
#[derive(Clone, Debug)]
pub struct Faulty {
    inner: SharedHttpClient,
    plan: Arc<Mutex<Plan>>,
}

impl Faulty {
    /// Faults for requests to `operation` (e.g. `"AmazonSQS.SendMessageBatch"`): the
    /// `first` ones in order, then `after` for every later one.
    pub fn new(operation: &'static str, first: Vec<Fault>, after: Fault) -> Faulty {
        let inner = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
            .build_https();
        let plan = Plan { operation, queue: first.into(), after, seen: 0 };
        Faulty { inner, plan: Arc::new(Mutex::new(plan)) }
    }

    /// How many requests to the operation were made.
    pub fn seen(&self) -> u32 {
        self.plan.lock().unwrap().seen
    }

    pub fn shared(&self) -> SharedHttpClient {
        SharedHttpClient::new(self.clone())
    }
}

impl HttpClient for Faulty {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let inner = self.inner.http_connector(settings, components);
        SharedHttpConnector::new(FaultyConnector { inner, plan: self.plan.clone() })
    }
}

#[derive(Debug)]
struct FaultyConnector {
    inner: SharedHttpConnector,
    plan: Arc<Mutex<Plan>>,
}

impl HttpConnector for FaultyConnector {
    fn call(&self, mut request: HttpRequest) -> HttpConnectorFuture {
        let fault = {
            let mut plan = self.plan.lock().unwrap();
            if request.headers().get("x-amz-target") != Some(plan.operation) {
                Fault::Pass
            } else {
                plan.seen += 1;
                let after = plan.after.clone();
                plan.queue.pop_front().unwrap_or(after)
            }
        };
        match fault {
            Fault::Pass => self.inner.call(request),
            Fault::Answer { status, error_type, message } => {
                let body = format!(r#"{{"__type":"{error_type}","message":"{message}"}}"#);
                let mut response =
                    Response::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body));
                response.headers_mut().insert("content-type", "application/x-amz-json-1.0");
                HttpConnectorFuture::ready(Ok(response))
            }
            Fault::InvalidDelayForEntry(id) => {
                let body = request.body().bytes().expect("an in-memory body");
                let mut json: serde_json::Value =
                    serde_json::from_slice(body).expect("a JSON request");
                for entry in json["Entries"].as_array_mut().expect("batch entries") {
                    if entry["Id"] == id {
                        entry["DelaySeconds"] = serde_json::json!(1000);
                    }
                }
                let altered = serde_json::to_vec(&json).unwrap();
                request.headers_mut().insert("content-length", altered.len().to_string());
                *request.body_mut() = SdkBody::from(altered);
                self.inner.call(request)
            }
        }
    }
}
