//! The `#[kinesis_processor]` attribute. Use it through the `kinesis-processor` crate,
//! which re-exports it and documents it.
//!
//! The macro is thin: it parses the options (`options`), checks the signature
//! (`signature`) and emits the user's function unchanged inside a constructor that calls
//! into the runtime's hidden module (`expand`). Every error is collected and spanned at
//! its cause; on error the user's function is still emitted so that IDEs keep working.
#![forbid(unsafe_code)]

mod expand;
mod item;
mod options;
mod signature;

use proc_macro::TokenStream;

/// Turns `async fn NAME(payload: T [, meta: &RecordMeta] [, invocation: &Invocation]
/// [, state: &S]) -> Result<(), E>` into `fn NAME() -> kinesis_processor::Processor<..>`.
/// See the `kinesis_processor` crate.
#[proc_macro_attribute]
pub fn kinesis_processor(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::kinesis_processor(attr.into(), item.into()).into()
}
