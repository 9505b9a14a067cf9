//! The attribute's options: `format`, `retries`, `crate`, ...
//!
//! Every option is parsed, each error is recorded with the span of its cause, and parsing
//! goes on, so that one compile shows every mistake.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ExprPath, Lit, Path};

/// The options the attribute accepts, in the order error messages list them.
const VALID: &[&str] = &[
    "window",
    "chunk",
    "format",
    "concurrency",
    "retries",
    "max_record_age",
    "on_retries_exhausted",
    "deadline_margin",
    "metrics_namespace",
    "idempotency_key",
    "crate",
];

/// How a record's bytes become the payload.
pub enum Format {
    Json,
    Text,
    Bytes,
    /// A user type implementing the runtime's `Decode<T>`.
    Custom(Path),
}

/// The most records a chunk may hold (the runtime's `chunk::MAX_CHUNK`).
const MAX_CHUNK: usize = 10_000;

/// The parsed options; `None` means the runtime's default.
pub struct Options {
    /// `window`: the function folds records into a window state; where the flag is.
    pub window: Option<Span>,
    /// `chunk = N`: the function takes chunks of up to N records; where the option is.
    pub chunk: Option<(usize, Span)>,
    /// Whether `chunk` was given, even with a value refused: the signature is a chunk
    /// function's either way.
    pub chunked: bool,
    pub format: Option<Format>,
    pub retries: Option<u32>,
    pub concurrency: Option<usize>,
    /// Where `concurrency` is, to point at it when it does not apply.
    pub concurrency_span: Option<Span>,
    pub deadline_margin: Option<Duration>,
    pub max_record_age: Option<Duration>,
    pub on_retries_exhausted: Option<OnRetriesExhausted>,
    pub metrics_namespace: Option<String>,
    /// The function that keys a record for idempotency: `fn(&T, &RecordMeta) -> K`.
    pub idempotency_key: Option<Path>,
    pub krate: Option<Path>,
}

/// The choices of `on_retries_exhausted`.
#[derive(Clone, Copy)]
pub enum OnRetriesExhausted {
    Report,
    DeadLetter,
}

impl Options {
    /// Parses the attribute's arguments, collecting every error.
    pub fn parse(args: TokenStream, errors: &mut Vec<syn::Error>) -> Options {
        let mut options = Options {
            window: None,
            chunk: None,
            chunked: false,
            format: None,
            retries: None,
            concurrency: None,
            concurrency_span: None,
            deadline_margin: None,
            max_record_age: None,
            on_retries_exhausted: None,
            metrics_namespace: None,
            idempotency_key: None,
            krate: None,
        };
        let mut seen: Vec<String> = Vec::new();
        let parser = syn::meta::parser(|meta| {
            let name = option_name(&meta);
            if meta.input.peek(syn::token::Paren) {
                let arguments: proc_macro2::Group = meta.input.parse()?;
                errors.push(syn::Error::new(
                    arguments.span(),
                    format!("`{name}` takes no arguments in parentheses: {}", example(&name)),
                ));
                return Ok(());
            }
            let value = parse_value(&meta)?;
            if seen.contains(&name) {
                errors.push(syn::Error::new_spanned(
                    &meta.path,
                    format!("duplicate option `{name}`"),
                ));
                return Ok(());
            }
            seen.push(name.clone());
            if let Err(error) = options.set(&name, &meta.path, value) {
                errors.push(error);
            }
            Ok(())
        });
        if let Err(error) = syn::parse::Parser::parse2(parser, args) {
            errors.push(error);
        }
        if let (Some(_), Some(span)) = (options.window, options.concurrency_span) {
            errors.push(syn::Error::new(
                span,
                "`concurrency` does not apply to a window processor: it folds one shard's \
                 records into its window state in order, one at a time",
            ));
        }
        options.check_chunk(errors);
        options
    }

    /// What a chunk function cannot be: a window function, or keyed for idempotency.
    fn check_chunk(&self, errors: &mut Vec<syn::Error>) {
        let Some((_, span)) = self.chunk else {
            return;
        };
        if self.window.is_some() {
            errors.push(syn::Error::new(
                span,
                "`chunk` and `window` do not go together: a window function folds one record \
                 at a time into its window state",
            ));
        }
        if let Some(key) = &self.idempotency_key {
            errors.push(syn::Error::new_spanned(
                key,
                "`idempotency_key` does not apply to a chunk function: its records are not \
                 claimed one at a time; make the bulk write idempotent itself",
            ));
        }
    }

    fn set(&mut self, name: &str, key: &Path, value: Option<Expr>) -> syn::Result<()> {
        if name == "window" {
            return match value {
                None => {
                    self.window = Some(key.span());
                    Ok(())
                }
                Some(value) => Err(syn::Error::new_spanned(
                    value,
                    "`window` takes no value: `#[kinesis_processor(window)]`",
                )),
            };
        }
        self.chunked |= name == "chunk";
        let Some(value) = value else {
            return Err(syn::Error::new_spanned(
                key,
                format!("`{name}` needs a value: {}", example(name)),
            ));
        };
        match name {
            "chunk" => self.chunk = Some((chunk_size(&value)?, key.span())),
            "format" => self.format = Some(format(&value)?),
            "retries" => self.retries = Some(integer(name, &value)?),
            "concurrency" => {
                self.concurrency = Some(at_least_one(name, &value)?);
                self.concurrency_span = Some(key.span());
            }
            "deadline_margin" => self.deadline_margin = Some(duration(name, &value)?),
            "max_record_age" => self.max_record_age = Some(duration(name, &value)?),
            "on_retries_exhausted" => {
                self.on_retries_exhausted = Some(on_retries_exhausted(&value)?)
            }
            "metrics_namespace" => self.metrics_namespace = Some(namespace(&value)?),
            "idempotency_key" => self.idempotency_key = Some(function_path(name, &value)?),
            "crate" => self.krate = Some(crate_path(&value)?),
            _ => {
                return Err(syn::Error::new_spanned(
                    key,
                    format!("unknown option `{name}`; valid options are {}", list(VALID)),
                ))
            }
        }
        Ok(())
    }
}

fn option_name(meta: &ParseNestedMeta<'_>) -> String {
    meta.path.to_token_stream().to_string().replace(' ', "")
}

/// The value after `=`, if there is one.
fn parse_value(meta: &ParseNestedMeta<'_>) -> syn::Result<Option<Expr>> {
    if meta.input.peek(syn::Token![=]) {
        Ok(Some(meta.value()?.parse()?))
    } else {
        Ok(None)
    }
}

fn example(name: &str) -> &'static str {
    match name {
        "window" => "`#[kinesis_processor(window)]`",
        "chunk" => "`chunk = 25` (records per call, 1 to 10000)",
        "format" => {
            "`format = json`, `format = text`, `format = bytes` or `format = path::To::Format`"
        }
        "retries" => "`retries = 3`",
        "concurrency" => "`concurrency = 16`",
        "deadline_margin" => "`deadline_margin = \"2s\"` (a humantime duration)",
        "max_record_age" => "`max_record_age = \"15m\"` (a humantime duration)",
        "on_retries_exhausted" => {
            "`on_retries_exhausted = report` or `on_retries_exhausted = dead_letter`"
        }
        "metrics_namespace" => "`metrics_namespace = \"Clicks\"`",
        "idempotency_key" => "`idempotency_key = order_id` (a `fn(&T, &RecordMeta) -> K`)",
        "crate" => "`crate = \"my_renamed_kinesis_processor\"`",
        _ => "see the documentation of `kinesis_processor`",
    }
}

fn list(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

fn format(value: &Expr) -> syn::Result<Format> {
    let Expr::Path(ExprPath { path, qself: None, .. }) = value else {
        return Err(syn::Error::new_spanned(
            value,
            format!("`format` expects a name: {}", example("format")),
        ));
    };
    if let Some(ident) = path.get_ident() {
        let name = ident.to_string();
        match name.as_str() {
            "json" => return Ok(Format::Json),
            "text" => return Ok(Format::Text),
            "bytes" => return Ok(Format::Bytes),
            // Types are CamelCase: a lowercase name is a misspelt built-in format.
            _ if name.starts_with(|c: char| c.is_ascii_lowercase()) => {
                return Err(syn::Error::new_spanned(
                    ident,
                    format!(
                        "unknown format `{name}`; expected `json`, `text`, `bytes` or the path \
                         to a type implementing `kinesis_processor::decode::Decode`"
                    ),
                ))
            }
            _ => {}
        }
    }
    Ok(Format::Custom(path.clone()))
}

fn integer<T: std::str::FromStr>(name: &str, value: &Expr) -> syn::Result<T>
where
    T::Err: std::fmt::Display,
{
    match value {
        Expr::Lit(ExprLit { lit: Lit::Int(int), .. }) => int.base10_parse(),
        _ => Err(syn::Error::new_spanned(
            value,
            format!("`{name}` expects a whole number: {}", example(name)),
        )),
    }
}

fn at_least_one(name: &str, value: &Expr) -> syn::Result<usize> {
    let n: usize = integer(name, value)?;
    if n == 0 {
        return Err(syn::Error::new_spanned(value, format!("`{name}` must be at least 1")));
    }
    Ok(n)
}

/// A chunk size: 1 to [`MAX_CHUNK`] records.
fn chunk_size(value: &Expr) -> syn::Result<usize> {
    let n: usize = integer("chunk", value)?;
    if n == 0 || n > MAX_CHUNK {
        return Err(syn::Error::new_spanned(
            value,
            format!(
                "`chunk` must be 1 to {MAX_CHUNK} records, not {n}: the records of one call \
                 of the function, e.g. 25 for DynamoDB's BatchWriteItem"
            ),
        ));
    }
    Ok(n)
}

/// A humantime duration in a string literal, checked now rather than at run time.
fn duration(name: &str, value: &Expr) -> syn::Result<Duration> {
    let Expr::Lit(ExprLit { lit: Lit::Str(text), .. }) = value else {
        return Err(syn::Error::new_spanned(
            value,
            format!("`{name}` expects a string: {}", example(name)),
        ));
    };
    let parsed = humantime::parse_duration(&text.value()).map_err(|e| {
        syn::Error::new_spanned(
            text,
            format!("`{name}`: {e}; write e.g. \"90s\", \"15m\" or \"1h 30m\""),
        )
    })?;
    if parsed.is_zero() {
        return Err(syn::Error::new_spanned(text, format!("`{name}` must be longer than zero")));
    }
    Ok(parsed)
}

fn on_retries_exhausted(value: &Expr) -> syn::Result<OnRetriesExhausted> {
    let choice = match value {
        Expr::Path(ExprPath { path, qself: None, .. }) => path.get_ident().map(ToString::to_string),
        _ => None,
    };
    match choice.as_deref() {
        Some("report") => Ok(OnRetriesExhausted::Report),
        Some("dead_letter") => Ok(OnRetriesExhausted::DeadLetter),
        _ => Err(syn::Error::new_spanned(
            value,
            format!("`on_retries_exhausted` expects {}", example("on_retries_exhausted")),
        )),
    }
}

/// A CloudWatch namespace: 1 to 255 characters, not starting with `AWS/`.
fn namespace(value: &Expr) -> syn::Result<String> {
    let Expr::Lit(ExprLit { lit: Lit::Str(text), .. }) = value else {
        return Err(syn::Error::new_spanned(
            value,
            format!("`metrics_namespace` expects a string: {}", example("metrics_namespace")),
        ));
    };
    let name = text.value();
    if name.is_empty() || name.len() > 255 || name.starts_with("AWS/") {
        return Err(syn::Error::new_spanned(
            text,
            "a CloudWatch namespace has 1 to 255 characters and does not start with `AWS/`",
        ));
    }
    Ok(name)
}

/// The path of a function: `order_id`, `keys::order_id`.
fn function_path(name: &str, value: &Expr) -> syn::Result<Path> {
    match value {
        Expr::Path(ExprPath { path, qself: None, .. }) => Ok(path.clone()),
        _ => Err(syn::Error::new_spanned(
            value,
            format!("`{name}` expects the path of a function: {}", example(name)),
        )),
    }
}

fn crate_path(value: &Expr) -> syn::Result<Path> {
    match value {
        Expr::Lit(ExprLit { lit: Lit::Str(text), .. }) => text.parse(),
        _ => Err(syn::Error::new_spanned(
            value,
            format!("`crate` expects a string: {}", example("crate")),
        )),
    }
}

impl Format {
    /// The format type, with `krate` the path of the runtime crate.
    pub fn tokens(&self, krate: &TokenStream) -> TokenStream {
        match self {
            Format::Json => quote!(#krate::decode::Json),
            Format::Text => quote!(#krate::decode::Text),
            Format::Bytes => quote!(#krate::decode::Bytes),
            Format::Custom(path) => path.to_token_stream(),
        }
    }
}
