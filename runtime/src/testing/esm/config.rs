//! The mapping's configuration: its real parameters, with AWS's defaults.

use std::time::Duration;

use crate::testing::MemoryDeadLetter;

/// What the mapping does with a reported `itemIdentifier` that is not in the batch. AWS
/// does not document it; a whole-batch failure is the safe reading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnknownItemIdentifier {
    /// Retry the whole batch (the default).
    #[default]
    WholeBatchFailure,
    /// Ignore the identifier.
    Ignore,
}

/// Lambda's Kinesis event source mapping, with its real parameters.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use kinesis_processor::{kinesis_processor, RecordError};
/// use kinesis_processor::testing::{EventSourceMapping, SimulatedStream};
///
/// #[kinesis_processor(format = text)]
/// async fn count(_line: String) -> Result<(), RecordError> { Ok(()) }
///
/// let mut stream = SimulatedStream::new("lines", 2);
/// for n in 0..250 {
///     stream.put(&format!("key-{}", n % 7), format!("line {n}").as_bytes());
/// }
/// let report = EventSourceMapping::new().batch_size(100).run(&stream, &count()).await;
/// assert_eq!(report.duplicates(), 0);
/// assert!(report.discarded().is_empty());
/// assert!(report.invocations() >= 3);
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct EventSourceMapping {
    pub(super) batch_size: usize,
    pub(super) maximum_batching_window: Duration,
    pub(super) maximum_retry_attempts: i64,
    pub(super) maximum_record_age: Option<Duration>,
    pub(super) bisect_batch_on_function_error: bool,
    pub(super) report_batch_item_failures: bool,
    pub(super) parallelization_factor: usize,
    pub(super) function_timeout: Duration,
    pub(super) unknown_item_identifier: UnknownItemIdentifier,
    pub(super) max_invocations: usize,
    pub(super) dead_letters: Option<MemoryDeadLetter>,
    pub(super) tumbling_window: Option<Duration>,
}

impl Default for EventSourceMapping {
    fn default() -> Self {
        Self::new()
    }
}

impl EventSourceMapping {
    /// A mapping with `ReportBatchItemFailures` on and AWS's defaults otherwise: batches
    /// of 100, no batching window, infinite retries and record age, no bisection, one batch
    /// per shard at a time, and a 3-second function timeout (Lambda's default).
    pub fn new() -> Self {
        EventSourceMapping {
            batch_size: 100,
            maximum_batching_window: Duration::ZERO,
            maximum_retry_attempts: -1,
            maximum_record_age: None,
            bisect_batch_on_function_error: false,
            report_batch_item_failures: true,
            parallelization_factor: 1,
            function_timeout: Duration::from_secs(3),
            unknown_item_identifier: UnknownItemIdentifier::default(),
            max_invocations: 1_000_000,
            dead_letters: None,
            tumbling_window: None,
        }
    }

    /// `BatchSize`: records per invocation, 1 to 10,000.
    ///
    /// # Panics
    ///
    /// Outside 1 to 10,000, as the API refuses it.
    pub fn batch_size(mut self, records: usize) -> Self {
        assert!((1..=10_000).contains(&records), "BatchSize is 1 to 10,000");
        self.batch_size = records;
        self
    }

    /// `MaximumBatchingWindowInSeconds`: how long to wait for a full batch, 0 to 300 s. The
    /// simulated stream is filled before the mapping runs, so a batch never waits: this is
    /// checked and kept for the record.
    ///
    /// # Panics
    ///
    /// Above 300 seconds.
    pub fn maximum_batching_window(mut self, window: Duration) -> Self {
        assert!(window <= Duration::from_secs(300), "MaximumBatchingWindowInSeconds is 0 to 300");
        self.maximum_batching_window = window;
        self
    }

    /// `MaximumRetryAttempts`: -1 (infinite, the default) to 10,000.
    ///
    /// # Panics
    ///
    /// Outside -1 to 10,000.
    pub fn maximum_retry_attempts(mut self, attempts: i64) -> Self {
        assert!((-1..=10_000).contains(&attempts), "MaximumRetryAttempts is -1 to 10,000");
        self.maximum_retry_attempts = attempts;
        self
    }

    /// `MaximumRecordAgeInSeconds`: records older than this are discarded; `None` is -1,
    /// infinite (the default). Otherwise 60 s to 604,800 s.
    ///
    /// # Panics
    ///
    /// Outside 60 to 604,800 seconds.
    pub fn maximum_record_age(mut self, age: Option<Duration>) -> Self {
        if let Some(age) = age {
            assert!(
                (Duration::from_secs(60)..=Duration::from_secs(604_800)).contains(&age),
                "MaximumRecordAgeInSeconds is -1 or 60 to 604,800"
            );
        }
        self.maximum_record_age = age;
        self
    }

    /// `BisectBatchOnFunctionError`.
    pub fn bisect_batch_on_function_error(mut self, bisect: bool) -> Self {
        self.bisect_batch_on_function_error = bisect;
        self
    }

    /// `FunctionResponseTypes: [ReportBatchItemFailures]` (on by default here).
    pub fn report_batch_item_failures(mut self, report: bool) -> Self {
        self.report_batch_item_failures = report;
        self
    }

    /// `ParallelizationFactor`: concurrent batches per shard, 1 to 10; records of one
    /// partition key stay in one of them, in order. That key is the Kinesis record's: the
    /// user records of a KPL aggregate go with its first one's key, so per-key order
    /// across lanes needs plain records (see [`MappingReport::order_violations`](super::MappingReport::order_violations)).
    ///
    /// # Panics
    ///
    /// Outside 1 to 10.
    pub fn parallelization_factor(mut self, factor: usize) -> Self {
        assert!((1..=10).contains(&factor), "ParallelizationFactor is 1 to 10");
        self.parallelization_factor = factor;
        self
    }

    /// The function's timeout, given to each invocation as its time left.
    pub fn function_timeout(mut self, timeout: Duration) -> Self {
        self.function_timeout = timeout;
        self
    }

    /// What to do with a reported identifier that is not in the batch (counted either way:
    /// [`MappingReport::unknown_item_identifiers`](super::MappingReport::unknown_item_identifiers)).
    pub fn unknown_item_identifier(mut self, rule: UnknownItemIdentifier) -> Self {
        self.unknown_item_identifier = rule;
        self
    }

    /// Stops after this many invocations (default a million), so that a function that
    /// never succeeds under infinite retries ends the run; the report says it stalled.
    pub fn max_invocations(mut self, invocations: usize) -> Self {
        self.max_invocations = invocations;
        self
    }

    /// The processor's in-memory dead-letter sink, whose letters the report then lists.
    pub fn dead_letters(mut self, sink: MemoryDeadLetter) -> Self {
        self.dead_letters = Some(sink);
        self
    }

    /// `TumblingWindowInSeconds`: windows of this length by record arrival time, each
    /// carrying the function's `state` from invocation to invocation and closed by a final
    /// invocation (see the module's documentation); zero (the default) is no window.
    ///
    /// # Panics
    ///
    /// Above 900 seconds, or not a whole number of seconds.
    pub fn tumbling_window(mut self, window: Duration) -> Self {
        assert!(
            window <= Duration::from_secs(900) && window.subsec_nanos() == 0,
            "TumblingWindowInSeconds is a whole number of seconds, 0 to 900"
        );
        self.tumbling_window = (!window.is_zero()).then_some(window);
        self
    }
}
