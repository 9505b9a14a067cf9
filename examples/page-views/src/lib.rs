//! page-views: views per page per minute from a stream of clicks, counted in Lambda's
//! tumbling windows and written to DynamoDB when each window ends. The binary
//! (`src/main.rs`) says how the numbers stay exact; this library holds the pieces, so that
//! the workspace's tests can run them.

#![warn(missing_docs)]

pub mod table;

use std::collections::BTreeMap;

use kinesis_processor::{kinesis_processor, RecordError, RecordMeta, Window};
use serde::{Deserialize, Serialize};

pub use table::Table;

/// A click as the web tier writes it to the stream (the clickstream example's shape); only
/// the URL matters here.
#[derive(Debug, Deserialize)]
pub struct Click {
    /// The page's URL path, with any query and fragment: `/pricing?ref=ad`.
    pub url: String,
}

/// A window's state: each page's views so far, in this shard's part of the window.
///
/// Lambda carries it from invocation to invocation as `{"version": 1, "value": ...}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PageViews {
    /// The sequence number of the first click counted: it names this part of the window
    /// in the table, so that a window Lambda ended early and continued in a fresh state is
    /// added to, not mistaken for a retry.
    pub first_sequence_number: Option<String>,
    /// Views by page path.
    pub by_page: BTreeMap<String, u64>,
}

/// The page a URL shows: its path, without query or fragment; `None` when empty.
pub fn page_of(url: &str) -> Option<&str> {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    Some(url[..end].trim()).filter(|page| !page.is_empty())
}

/// Counts one click in its window. A click without a page is rejected (dead-lettered),
/// and leaves no trace in the window.
///
/// It does not use the [`Totals`]: it names them as its shared state so that the
/// processor holds them for the window end, [`publish`].
#[kinesis_processor(window, metrics_namespace = "PageViews")]
pub async fn count(
    click: Click,
    views: &mut PageViews,
    meta: &RecordMeta,
    _totals: &Totals,
) -> Result<(), RecordError> {
    let page = page_of(&click.url)
        .ok_or_else(|| RecordError::reject(format!("a click without a page: {:?}", click.url)))?;
    if views.first_sequence_number.is_none() {
        views.first_sequence_number = Some(meta.sequence_number().to_owned());
    }
    *views.by_page.entry(page.to_owned()).or_default() += 1;
    Ok(())
}

/// Where window totals go: a DynamoDB table, or the log when running locally.
#[derive(Debug)]
pub enum Totals {
    /// The table that `PAGE_VIEWS_TABLE` names.
    Table(Table),
    /// The log: no table configured.
    Log,
}

impl Totals {
    /// The table `PAGE_VIEWS_TABLE` names, else the log.
    pub async fn from_env() -> Result<Totals, kinesis_processor::Error> {
        Ok(match Table::from_env("PAGE_VIEWS_TABLE").await? {
            Some(table) => Totals::Table(table),
            None => Totals::Log,
        })
    }
}

/// The window-end function: writes each page's views in the finished window.
///
/// It can run more than once for one window (a retried final invocation), so the write is
/// idempotent: see [`Table::add`]. A page whose stored count differs is logged and kept;
/// any other failure fails the window end, and Lambda retries the final invocation.
pub async fn publish(
    views: PageViews,
    window: &Window,
    totals: &Totals,
) -> Result<(), RecordError> {
    if views.by_page.is_empty() {
        return Ok(());
    }
    let first = views.first_sequence_number.as_deref().unwrap_or("unknown");
    let part = table::WindowPart::new(window, first).map_err(RecordError::retry)?;
    match totals {
        Totals::Table(table) => {
            let published = table.publish(views.by_page, &part).await?;
            tracing::info!(
                window_start = %part.start,
                added = published.added,
                already_there = published.already_there,
                conflicts = published.conflicts,
                "window published"
            );
        }
        Totals::Log => {
            for (page, count) in &views.by_page {
                tracing::info!(window_start = %part.start, page, views = count, "page views");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_the_path_without_query_or_fragment() {
        assert_eq!(page_of("/pricing"), Some("/pricing"));
        assert_eq!(page_of("/pricing?ref=ad"), Some("/pricing"));
        assert_eq!(page_of("/docs/getting-started#install"), Some("/docs/getting-started"));
        assert_eq!(page_of("?ref=ad"), None);
        assert_eq!(page_of(""), None);
    }

    #[test]
    fn the_state_reads_as_lambda_carries_it() {
        let views: PageViews = serde_json::from_str(
            r#"{"first_sequence_number": "7", "by_page": {"/pricing": 2, "/signup": 1}}"#,
        )
        .unwrap();
        assert_eq!(views.by_page["/pricing"], 2);
        assert_eq!(serde_json::from_str::<PageViews>("{}").unwrap(), PageViews::default());
    }
}
