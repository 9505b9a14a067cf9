//! Generates the constructor: the user's function, unchanged, inside
//! `fn NAME() -> Processor<..>`, plus one call into the runtime's hidden module.

use proc_macro2::{Group, Ident, Span, TokenStream, TokenTree};
use quote::{quote, ToTokens};
use syn::{Attribute, FnArg, ItemFn, Visibility};

use crate::options::{Format, OnRetriesExhausted, Options};
use crate::signature::{self, Param, Signature};

/// The attribute's whole expansion.
pub fn kinesis_processor(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut function: ItemFn = match syn::parse2(item.clone()) {
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
    let signature = signature::check(&function, &mut errors);
    match signature {
        Some(signature) if errors.is_empty() => constructor(&function, &signature, &options),
        // The function is emitted as written, so that the IDE still knows it.
        _ => with_errors(function.into_token_stream(), errors),
    }
}

fn with_errors(item: TokenStream, errors: Vec<syn::Error>) -> TokenStream {
    let errors = errors.into_iter().map(|error| error.to_compile_error());
    quote!(#item #(#errors)*)
}

fn patch_meta_lifetimes(function: &mut ItemFn) {
    for input in function.sig.inputs.iter_mut() {
        if let FnArg::Typed(typed) = input {
            signature::add_meta_lifetime(&mut typed.ty);
        }
    }
}

/// `fn NAME() -> Processor<impl Handler<State = S>>`, holding the user's function.
fn constructor(function: &ItemFn, signature: &Signature, options: &Options) -> TokenStream {
    let krate = match &options.krate {
        Some(path) => path.to_token_stream(),
        None => quote!(::kinesis_processor),
    };
    let name = &function.sig.ident;
    let name_text = name.to_string();
    let vis = &function.vis;
    let (outer_attrs, inner_attrs) = split_attributes(&function.attrs);
    let inner = ItemFn { attrs: inner_attrs, vis: Visibility::Inherited, ..function.clone() };

    let payload = &signature.payload;
    let state = signature.state.as_ref().map_or_else(|| quote!(()), ToTokens::to_token_stream);
    let state_init = match signature.state {
        Some(_) => quote!(::core::option::Option::None),
        None => quote!(::core::option::Option::Some(())),
    };
    let format = match &options.format {
        Some(format) => format.tokens(&krate),
        None => Format::Json.tokens(&krate),
    };
    // Bound failures (a payload the format cannot decode) point at the payload type;
    // return-type failures point at the return type. Every
    // token of those calls carries the span, or rustc falls back to the attribute's.
    let processor = respan(
        quote!(#krate::__private::processor::<#format, #payload, #state, _>(
            #name_text, __kinesis_processor_call, #state_init
        )),
        syn::spanned::Spanned::span(payload),
    );
    let into_result =
        respan(quote!(#krate::__private::into_record_result(__result)), signature.return_span);
    let call = user_call(name, signature);
    let settings = settings(options, &krate);

    quote! {
        #(#outer_attrs)*
        #vis fn #name() -> #krate::Processor<impl #krate::Handler<State = #state>> {
            #inner

            #[allow(clippy::needless_lifetimes)]
            async fn __kinesis_processor_call<'a>(
                __payload: #payload,
                __meta: &'a #krate::RecordMeta<'a>,
                __state: &'a #state,
            ) -> ::core::result::Result<(), #krate::RecordError> {
                let __result = #call;
                #into_result
            }

            #processor #settings
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
        Param::State => quote!(__state),
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
