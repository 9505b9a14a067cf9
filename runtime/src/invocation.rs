//! [`Invocation`]: the Lambda invocation that delivered a batch, as its records see it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// The Lambda invocation a record came in: its request id, deadline, function and trace.
///
/// A processing function gets it by taking `invocation: &Invocation` as a parameter, in
/// any position after the payload, like `&RecordMeta` and the state:
///
/// ```
/// use kinesis_processor::{kinesis_processor, Invocation, RecordError};
///
/// #[kinesis_processor(format = text)]
/// async fn audit(line: String, invocation: &Invocation) -> Result<(), RecordError> {
///     if invocation.remaining().as_secs() < 2 {
///         return Err(RecordError::retry("too little time left for the slow path"));
///     }
///     tracing::info!(request_id = invocation.request_id(), %line, "audited");
///     Ok(())
/// }
/// # let _ = audit();
/// ```
///
/// Outside Lambda ([`Processor::process`](crate::Processor::process), the local runner)
/// the request id is `local-N`, and the function ARN and trace id are absent.
#[derive(Clone, Debug)]
pub struct Invocation {
    request_id: String,
    deadline: Instant,
    deadline_at: SystemTime,
    function_arn: Option<String>,
    xray_trace_id: Option<String>,
}

impl Invocation {
    /// An invocation with `request_id` that ends at `deadline`.
    pub(crate) fn new(request_id: impl Into<String>, deadline: Instant) -> Self {
        // The wall clock at `deadline`, read against the monotonic clock: past or future.
        let (now, wall) = (Instant::now(), SystemTime::now());
        let deadline_at = match deadline.checked_duration_since(now) {
            Some(left) => wall + left,
            None => wall - now.duration_since(deadline),
        };
        Invocation {
            request_id: request_id.into(),
            deadline,
            deadline_at,
            function_arn: None,
            xray_trace_id: None,
        }
    }

    /// An invocation that did not come from Lambda, with `remaining` time.
    pub(crate) fn local(remaining: Duration) -> Self {
        static INVOCATIONS: AtomicU64 = AtomicU64::new(0);
        let n = INVOCATIONS.fetch_add(1, Ordering::Relaxed) + 1;
        Self::new(format!("local-{n}"), Instant::now() + remaining)
    }

    /// The same invocation, of the function `arn` (empty means unknown).
    pub(crate) fn with_function_arn(mut self, arn: String) -> Self {
        self.function_arn = (!arn.is_empty()).then_some(arn);
        self
    }

    /// The same invocation, traced by X-Ray under `trace_id`.
    pub(crate) fn with_xray_trace_id(mut self, trace_id: Option<String>) -> Self {
        self.xray_trace_id = trace_id.filter(|id| !id.is_empty());
        self
    }

    /// Lambda's id of this invocation (`Lambda-Runtime-Aws-Request-Id`), as in its logs.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// When Lambda ends the invocation, as a wall-clock time.
    pub fn deadline(&self) -> SystemTime {
        self.deadline_at
    }

    /// The time left before Lambda ends the invocation (zero once it has passed). The
    /// runtime itself stops starting records a deadline margin before that.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The ARN the function was invoked by (it names a version or alias when one was
    /// invoked), when Lambda sent it.
    pub fn function_arn(&self) -> Option<&str> {
        self.function_arn.as_deref()
    }

    /// The X-Ray trace id of the invocation (`Lambda-Runtime-Trace-Id`), when tracing is on.
    pub fn xray_trace_id(&self) -> Option<&str> {
        self.xray_trace_id.as_deref()
    }

    /// The deadline as the engine's clock reads it.
    pub(crate) fn deadline_instant(&self) -> Instant {
        self.deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_remaining_time_counts_down_to_the_deadline() {
        let invocation = Invocation::local(Duration::from_secs(60));
        assert!(invocation.request_id().starts_with("local-"));
        let left = invocation.remaining();
        assert!(left > Duration::from_secs(59) && left <= Duration::from_secs(60), "{left:?}");
        let wall = invocation.deadline().duration_since(SystemTime::now()).unwrap();
        assert!(wall > Duration::from_secs(59) && wall <= Duration::from_secs(60), "{wall:?}");
        assert_eq!(Invocation::local(Duration::ZERO).remaining(), Duration::ZERO);
        let past = Invocation::new("late", Instant::now() - Duration::from_secs(30));
        let ago = SystemTime::now().duration_since(past.deadline()).unwrap();
        assert!(ago >= Duration::from_secs(30) && ago < Duration::from_secs(31), "{ago:?}");
        assert_eq!(past.remaining(), Duration::ZERO);
    }

    #[test]
    fn an_empty_arn_or_trace_id_is_absent() {
        let invocation = Invocation::local(Duration::from_secs(1))
            .with_function_arn(String::new())
            .with_xray_trace_id(Some(String::new()));
        assert_eq!((invocation.function_arn(), invocation.xray_trace_id()), (None, None));
        let traced = Invocation::local(Duration::from_secs(1))
            .with_function_arn("arn:aws:lambda:eu-west-1:1:function:f".into())
            .with_xray_trace_id(Some("Root=1-5759e988-bd862e3fe1be46a994272793".into()));
        assert_eq!(traced.function_arn(), Some("arn:aws:lambda:eu-west-1:1:function:f"));
        assert_eq!(traced.xray_trace_id(), Some("Root=1-5759e988-bd862e3fe1be46a994272793"));
    }
}
