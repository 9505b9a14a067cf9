//! Generates the constructor: the user's function, unchanged, inside
//! `fn NAME() -> Processor<..>`, plus one call into the runtime's hidden module.

use proc_macro2::{Group, Ident, Span, TokenStream, TokenTree};
use quote::{quote, ToTokens};
use syn::{Attribute, FnArg, Type, Visibility};

use crate::item::Function;
use crate::options::{Format, OnRetriesExhausted, Options};
use crate::signature::{self, Param, Signature};

/// The attribute's whole expansion.
///
/// On any error it still defines `fn NAME() -> Processor<..>`, holding the function as
/// written, so that call sites add no second wave of errors and IDEs keep working.
pub fn kinesis_processor(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut function: Function = match syn::parse2(item.clone()) {
        Ok(function) => function,
        Err(_) => {
            let error = syn::Error::new(
                Span::call_site(),
                "`#[kinesis_processor]` goes on a function: \
                 `async fn NAME(payload: T) -> Result<(), E>`",
            );
            return with_errors(item, vec![error]);
        }
    };
    patch_meta_lifetimes(&mut function);
    let mut errors = Vec::new();
    let options = Options::parse(args, &mut errors);
    // A chunk function's signature is checked as one, even beside `window`.
    let chunked = options.chunked;
    let windowed = options.window.is_some() && !chunked;
    let signature = signature::check(&function, windowed, chunked, &mut errors);
    let krate = match &options.krate {
        Some(path) => path.to_token_stream(),
        None => quote!(::kinesis_processor),
    };
    match signature {
        // A method stays a method: a constructor cannot hold it.
        _ if function.sig.receiver().is_some() => with_errors(function.to_token_stream(), errors),
        Some(signature) if errors.is_empty() => {
            constructor(&function, &Processor::of(&function, &signature, &options, &krate))
        }
        _ => {
            let processor = Processor::unusable(&function, windowed, &krate);
            with_errors(constructor(&function, &processor), errors)
        }
    }
}

fn with_errors(item: TokenStream, errors: Vec<syn::Error>) -> TokenStream {
    let errors = errors.into_iter().map(|error| error.to_compile_error());
    quote!(#item #(#errors)*)
}

fn patch_meta_lifetimes(function: &mut Function) {
    for (position, input) in function.sig.inputs.iter_mut().enumerate() {
        if let FnArg::Typed(typed) = input {
            signature::add_meta_lifetime(&mut typed.ty);
            if position == 0 {
                signature::add_chunk_lifetime(&mut typed.ty);
            }
        }
    }
}

/// What the constructor returns, and the body that builds it.
struct Processor {
    /// `Processor<impl RecordHandler<State = S>[, NeedsState]>`, or a window processor's type.
    ty: TokenStream,
    /// The statements that build it, after the user's function.
    body: TokenStream,
}

impl Processor {
    /// The processor of a checked function.
    fn of(
        function: &Function,
        signature: &Signature,
        options: &Options,
        krate: &TokenStream,
    ) -> Self {
        let payload = &signature.payload;
        let payload_span = syn::spanned::Spanned::span(payload);
        let state = signature.state.as_ref();
        let state_ty = state.map_or_else(|| quote!(()), ToTokens::to_token_stream);
        let format = match &options.format {
            Some(format) => format.tokens(krate),
            None => Format::Json.tokens(krate),
        };
        let name_text = function.sig.ident.to_string();
        // Bound failures (a payload the format cannot decode) point at the payload type, in
        // the call and in the return type alike, so that rustc reports them once; every
        // token carries the span, or rustc falls back to the attribute's.
        let window = signature.window.as_ref();
        let chunk = options.chunk.map(|(size, _)| size);
        let build = match (window, state) {
            _ if chunk.is_some() => match state {
                Some(state) => quote!(
                    #krate::__private::chunk_processor_needing_state::<#format, #payload, #state, _>
                ),
                None => quote!(#krate::__private::chunk_processor::<#format, #payload, _>),
            },
            (Some(window), Some(state)) => quote!(
                #krate::__private::window_processor_needing_state::<#format, #payload, #window, #state, _>
            ),
            (Some(window), None) => {
                quote!(#krate::__private::window_processor::<#format, #payload, #window, _>)
            }
            (None, Some(state)) => {
                quote!(#krate::__private::processor_needing_state::<#format, #payload, #state, _>)
            }
            (None, None) => quote!(#krate::__private::processor::<#format, #payload, _>),
        };
        let size = chunk.map(|size| quote!(#size,));
        let build =
            respan(quote!(#build(#name_text, #size __kinesis_processor_call)), payload_span);
        let (into_result, error) = match chunk {
            Some(_) => (quote!(into_chunk_result), quote!(ChunkError)),
            None => (quote!(into_record_result), quote!(RecordError)),
        };
        let into_result =
            respan(quote!(#krate::__private::#into_result(__result)), signature.return_span);
        let call = user_call(&function.sig.ident, signature);
        let settings = settings(options, krate);
        // What the call takes before the invocation: a chunk, or a payload (with a window
        // function's window state) and its metadata.
        let leading = match (chunk, window) {
            (Some(_), _) => quote!(__payload: #krate::Chunk<'a, #payload>,),
            (None, window) => {
                let window = window.map(|window| quote!(__window: &'a mut #window,));
                quote!(__payload: #payload, #window __meta: &'a #krate::RecordMeta<'a>,)
            }
        };
        let body = quote! {
            #[allow(clippy::needless_lifetimes)]
            async fn __kinesis_processor_call<'a>(
                #leading
                __invocation: &'a #krate::Invocation,
                __state: &'a #state_ty,
            ) -> ::core::result::Result<(), #krate::#error> {
                let __result = #call;
                #into_result
            }

            #build #settings
        };
        if chunk.is_some() {
            let payload = payload.to_token_stream();
            let ty = return_type(krate, Some(&payload), &state_ty, state.is_some(), false);
            return Processor { ty: respan(ty, payload_span), body };
        }
        // A window state's bound failures point at its type.
        let ty = match window {
            Some(window) => {
                let payload = payload.to_token_stream();
                let kind = WindowKind { payload: &payload, window, format: &format };
                let ty = window_return_type(krate, &kind, &state_ty, state.is_some());
                respan(ty, syn::spanned::Spanned::span(window))
            }
            None => {
                let payload = payload.to_token_stream();
                let ty = return_type(krate, Some(&payload), &state_ty, state.is_some(), true);
                respan(ty, payload_span)
            }
        };
        Processor { ty, body }
    }

    /// A stand-in for a function whose signature has errors: the same constructor, with
    /// the state type as far as it can be read, so that `NAME().state(..)` still checks.
    fn unusable(function: &Function, windowed: bool, krate: &TokenStream) -> Self {
        let state: Option<Type> = signature::state_of(function, windowed);
        let state_ty = state.as_ref().map_or_else(|| quote!(()), ToTokens::to_token_stream);
        let name_text = function.sig.ident.to_string();
        if let Some(window) = windowed.then(|| signature::window_of(function)).flatten() {
            let body = quote!(
                #krate::__private::unusable_window::<#window, #state_ty, _>(#name_text, #krate::NeedsState)
            );
            let body = match &state {
                Some(_) => body,
                None => {
                    quote!(#krate::__private::unusable_window::<#window, (), _>(#name_text, ()))
                }
            };
            let payload = quote!(#krate::__private::IgnoredAny);
            let format = quote!(#krate::decode::Json);
            let kind = WindowKind { payload: &payload, window: &window, format: &format };
            let ty = window_return_type(krate, &kind, &state_ty, state.is_some());
            return Processor { ty, body };
        }
        let body = match &state {
            Some(state) => quote!(#krate::__private::unusable_needing_state::<#state>(#name_text)),
            None => quote!(#krate::__private::unusable(#name_text)),
        };
        let ty = return_type(krate, None, &state_ty, state.is_some(), true);
        Processor { ty, body }
    }
}

/// `Processor<impl RecordHandler<[Payload = T, ]State = S> [+ ClaimedHandler]>`, or
/// `.., NeedsState>` when the function takes a state. The payload is named when known, for
/// builder calls that take it (`idempotency_key`); a per-record function's records can be
/// claimed (`claimed`), a chunk function's cannot.
fn return_type(
    krate: &TokenStream,
    payload: Option<&TokenStream>,
    state: &TokenStream,
    needs_state: bool,
    claimed: bool,
) -> TokenStream {
    let marker = needs_state.then(|| quote!(, #krate::NeedsState));
    let payload = payload.map(|payload| quote!(Payload = #payload,));
    let claimed = claimed.then(|| quote!(+ #krate::ClaimedHandler));
    quote!(#krate::Processor<impl #krate::RecordHandler<#payload State = #state> #claimed #marker>)
}

/// The types that make a window processor's handler.
struct WindowKind<'a> {
    payload: &'a TokenStream,
    window: &'a Type,
    format: &'a TokenStream,
}

/// A window processor's type: its handler is named, so that `.on_window_end(..)` can give
/// it its window end.
fn window_return_type(
    krate: &TokenStream,
    kind: &WindowKind<'_>,
    state: &TokenStream,
    needs_state: bool,
) -> TokenStream {
    let WindowKind { payload, window, format } = kind;
    let slot = if needs_state { quote!(#krate::NeedsState) } else { quote!(()) };
    let private = quote!(#krate::__private);
    quote!(#private::WindowProcessor<
        impl #private::WindowFnBound<#payload, #window, #state>,
        #payload, #window, #state, #format, #slot
    >)
}

/// `fn NAME() -> Processor<..>`, holding the user's function as written.
fn constructor(function: &Function, processor: &Processor) -> TokenStream {
    let name = &function.sig.ident;
    let vis = &function.vis;
    let (outer_attrs, inner_attrs) = split_attributes(&function.attrs);
    let inner = Function { attrs: inner_attrs, vis: Visibility::Inherited, ..function.clone() };
    let Processor { ty, body } = processor;
    // A window processor's type names its state, format and function: clippy would call
    // it complex, in the user's crate.
    quote! {
        #(#outer_attrs)*
        #[allow(clippy::type_complexity)]
        #vis fn #name() -> #ty {
            #[allow(dead_code)]
            #inner

            #body
        }
    }
}

/// `tokens` with every token (inside groups too) given `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            if let TokenTree::Group(group) = &tree {
                let mut inner = Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                tree = TokenTree::Group(inner);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}

/// The call of the user's function with its parameters in its own order.
fn user_call(name: &Ident, signature: &Signature) -> TokenStream {
    let args = signature.params.iter().map(|param| match param {
        Param::Payload => quote!(__payload),
        Param::Meta => quote!(__meta),
        Param::Invocation => quote!(__invocation),
        Param::State => quote!(__state),
        Param::Window => quote!(__window),
    });
    if signature.is_async {
        quote!(#name(#(#args),*).await)
    } else {
        quote!(#name(#(#args),*))
    }
}

/// The builder calls that apply the attribute's options.
fn settings(options: &Options, krate: &TokenStream) -> TokenStream {
    let mut calls = TokenStream::new();
    if let Some(retries) = options.retries {
        calls.extend(quote!(.retries(#retries)));
    }
    if let Some(concurrency) = options.concurrency {
        calls.extend(quote!(.concurrency(#concurrency)));
    }
    if let Some(margin) = options.deadline_margin {
        let millis = margin.as_millis() as u64;
        calls.extend(quote!(.deadline_margin(#krate::__private::millis(#millis))));
    }
    if let Some(age) = options.max_record_age {
        let millis = age.as_millis() as u64;
        calls.extend(quote!(.max_record_age(#krate::__private::millis(#millis))));
    }
    if let Some(namespace) = &options.metrics_namespace {
        calls.extend(quote!(.metrics_namespace(#namespace)));
    }
    if let Some(key) = &options.idempotency_key {
        calls.extend(quote!(.idempotency_key(#key)));
    }
    if let Some(choice) = options.on_retries_exhausted {
        let variant = match choice {
            OnRetriesExhausted::Report => quote!(Report),
            OnRetriesExhausted::DeadLetter => quote!(DeadLetter),
        };
        calls.extend(quote!(.on_retries_exhausted(#krate::OnRetriesExhausted::#variant)));
    }
    calls
}

/// Docs (and `cfg`) go on the constructor; every other attribute stays on the function.
fn split_attributes(attrs: &[Attribute]) -> (Vec<Attribute>, Vec<Attribute>) {
    let mut outer = Vec::new();
    let mut inner = Vec::new();
    for attr in attrs {
        if attr.path().is_ident("doc") {
            outer.push(attr.clone());
        } else if attr.path().is_ident("cfg") {
            outer.push(attr.clone());
            inner.push(attr.clone());
        } else {
            inner.push(attr.clone());
        }
    }
    (outer, inner)
}
