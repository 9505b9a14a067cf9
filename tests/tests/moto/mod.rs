//! AWS clients against a moto server on 127.0.0.1, and a fault injector below them.
//!
//! The test command starts moto and sets `KINESIS_PROCESSOR_MOTO_ENDPOINT`; tests that need
//! their own server (to stop it mid-batch) start one with `moto_server`. Credentials are
//! dummies: nothing leaves the machine.

#![allow(dead_code)]

pub mod faults;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sqs::config::{Credentials, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

use crate::support::{find_tool, free_port};

/// A moto server's endpoint.
#[derive(Clone, Debug)]
pub struct Moto {
    pub endpoint: String,
}

static NAMES: AtomicU32 = AtomicU32::new(0);

/// A name no other test of this run uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), NAMES.fetch_add(1, Ordering::SeqCst))
}

impl Moto {
    /// The shared server the test command started, if any.
    pub fn from_env() -> Option<Moto> {
        std::env::var("KINESIS_PROCESSOR_MOTO_ENDPOINT").ok().map(|endpoint| Moto { endpoint })
    }

    /// SDK configuration for this server: dummy credentials, fast SDK retries (three
    /// attempts, as the SDK's standard mode, with short pauses), short timeouts.
    pub async fn config(&self, http: Option<SharedHttpClient>) -> SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "testing", "testing", None, None, "dummy",
            )))
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(Duration::from_millis(20)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(2))
                    .operation_attempt_timeout(Duration::from_secs(10))
                    .build(),
            );
        if let Some(http) = http {
            loader = loader.http_client(http);
        }
        loader.load().await
    }

    pub async fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.config(None).await)
    }

    pub async fn sns(&self) -> aws_sdk_sns::Client {
        aws_sdk_sns::Client::new(&self.config(None).await)
    }

    pub async fn s3(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.config(None).await)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    pub async fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.config(None).await)
    }

    /// A table keyed as page-views' template keys its own: `page`, then `window_start`.
    pub async fn create_page_views_table(&self, name: &str) -> String {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        };
        let table = unique(name);
        let key = |name: &str, kind| {
            KeySchemaElement::builder().attribute_name(name).key_type(kind).build().unwrap()
        };
        let attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap()
        };
        self.dynamodb()
            .await
            .create_table()
            .table_name(&table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("page", KeyType::Hash))
            .key_schema(key("window_start", KeyType::Range))
            .attribute_definitions(attribute("page"))
            .attribute_definitions(attribute("window_start"))
            .send()
            .await
            .expect("table");
        table
    }

    /// A table keyed as `DynamoDbIdempotency` documents it: `id` (S), with `expiration` as
    /// its TTL attribute, as clickstream's template creates it.
    pub async fn create_idempotency_table(&self, name: &str) -> String {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
            TimeToLiveSpecification,
        };
        let table = unique(name);
        let dynamodb = self.dynamodb().await;
        dynamodb
            .create_table()
            .table_name(&table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("id")
                    .key_type(KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("id")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("table");
        let ttl = TimeToLiveSpecification::builder()
            .attribute_name("expiration")
            .enabled(true)
            .build()
            .unwrap();
        dynamodb
            .update_time_to_live()
            .table_name(&table)
            .time_to_live_specification(ttl)
            .send()
            .await
            .expect("time to live");
        table
    }

    pub async fn create_queue(&self, name: &str) -> String {
        let output =
            self.sqs().await.create_queue().queue_name(unique(name)).send().await.expect("queue");
        output.queue_url().expect("a queue URL").to_owned()
    }

    pub async fn create_bucket(&self, name: &str) -> String {
        let bucket = unique(name).to_lowercase();
        self.s3().await.create_bucket().bucket(&bucket).send().await.expect("bucket");
        bucket
    }

    /// Every message on the queue, waiting until `expected` have arrived (or a few
    /// seconds have passed); each is deleted once read.
    pub async fn drain(
        &self,
        queue_url: &str,
        expected: usize,
    ) -> Vec<aws_sdk_sqs::types::Message> {
        let sqs = self.sqs().await;
        let mut messages = Vec::new();
        for _ in 0..50 {
            let output = sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .message_attribute_names("All")
                .send()
                .await
                .expect("receive");
            for message in output.messages() {
                sqs.delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(message.receipt_handle().unwrap())
                    .send()
                    .await
                    .expect("delete");
                messages.push(message.clone());
            }
            if output.messages().is_empty() {
                if messages.len() >= expected {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        messages
    }
}

/// A moto server of a test's own, stopped when dropped (or by [`OwnServer::stop`]).
pub struct OwnServer {
    child: Option<Child>,
    pub moto: Moto,
}

impl OwnServer {
    /// Starts `moto_server` on a free port; `None` when it is not installed.
    pub fn start() -> Option<OwnServer> {
        let moto_server = find_tool("moto_server")?;
        let port = free_port();
        let child = Command::new(moto_server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "moto_server did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(OwnServer {
            child: Some(child),
            moto: Moto { endpoint: format!("http://127.0.0.1:{port}") },
        })
    }

    /// Stops the server now.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.stop();
    }
}
