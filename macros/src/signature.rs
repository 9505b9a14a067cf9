//! Checks the attributed function's signature and finds its parameters: the payload, the
//! optional `&RecordMeta` and `&Invocation`, the optional shared state `&S`, and a window
//! function's window state `&mut W`.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{FnArg, GenericArgument, PathArguments, ReturnType, Type, TypeReference};

use crate::item::Function;

/// What each parameter is, in the function's order.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Param {
    Payload,
    Meta,
    Invocation,
    State,
    /// A window function's `&mut W`.
    Window,
}

/// A checked signature.
pub struct Signature {
    pub params: Vec<Param>,
    pub payload: Type,
    /// The state type `S` of a `&S` parameter.
    pub state: Option<Type>,
    /// The window state type `W` of a window function's `&mut W` parameter.
    pub window: Option<Type>,
    pub is_async: bool,
    /// Where return-type errors point.
    pub return_span: Span,
}

/// Checks `function`; records every problem in `errors` and returns what it could read.
pub fn check(
    function: &Function,
    windowed: bool,
    chunked: bool,
    errors: &mut Vec<syn::Error>,
) -> Option<Signature> {
    let sig = &function.sig;
    check_qualifiers(function, errors);
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            "a `#[kinesis_processor]` function cannot be generic: the runtime decodes each \
             record into the payload type, so it must be concrete",
        ));
    }
    let return_span = match &sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => {
            errors.push(syn::Error::new(
                sig.paren_token.span.close(),
                "a `#[kinesis_processor]` function must return `Result<(), E>` with \
                 `E: Into<RecordError>`, e.g. `-> Result<(), RecordError>`",
            ));
            sig.ident.span()
        }
    };
    let mut params = Vec::new();
    let mut payload = None;
    let mut state = None;
    let mut window = None;
    let mut position = 0;
    for input in sig.inputs.iter() {
        let ty = match input {
            FnArg::Receiver(receiver) => {
                errors.push(syn::Error::new_spanned(
                    receiver,
                    "a `#[kinesis_processor]` function cannot take `self`: write a free \
                     function, and give it what it shares as its state parameter (`state: &S`, \
                     supplied with `.state(..)`)",
                ));
                continue;
            }
            FnArg::Typed(typed) => &*typed.ty,
        };
        if let Some(span) = impl_trait_in(ty) {
            errors.push(syn::Error::new(
                span,
                "`impl Trait` cannot be a parameter type of a `#[kinesis_processor]` \
                 function: name a concrete type",
            ));
            continue;
        }
        let classified = match chunked {
            true => classify_in_chunk_function(position, ty),
            false => classify(position, ty, windowed),
        };
        position += 1;
        match classified {
            Ok(Param::Payload) => {
                payload = Some(if chunked { chunk_payload(ty).clone() } else { ty.clone() });
                params.push(Param::Payload);
            }
            Ok(Param::Meta) if params.contains(&Param::Meta) => errors.push(
                syn::Error::new_spanned(ty, "`&RecordMeta` is already a parameter; take it once"),
            ),
            Ok(Param::Invocation) if params.contains(&Param::Invocation) => errors.push(
                syn::Error::new_spanned(ty, "`&Invocation` is already a parameter; take it once"),
            ),
            Ok(Param::State) if state.is_some() => errors.push(syn::Error::new_spanned(
                ty,
                "a `#[kinesis_processor]` function takes at most one state parameter; put \
                 what it needs in one struct and take `&ThatStruct`",
            )),
            Ok(Param::State) => {
                state = Some(referent(ty).clone());
                params.push(Param::State);
            }
            Ok(Param::Window) if window.is_some() => errors.push(syn::Error::new_spanned(
                ty,
                "a window function folds into one window state: take one `&mut W`",
            )),
            Ok(Param::Window) => {
                window = Some(referent(ty).clone());
                params.push(Param::Window);
            }
            Ok(param) => params.push(param),
            Err(error) => {
                errors.push(error);
                // Without a payload the other parameters cannot be read in order.
                if payload.is_none() {
                    break;
                }
            }
        }
    }
    let Some(payload) = payload else {
        if sig.inputs.is_empty() {
            errors.push(syn::Error::new(
                sig.paren_token.span.join(),
                "a `#[kinesis_processor]` function takes the record's payload as its first \
                 parameter: `async fn NAME(payload: T) -> Result<(), E>`",
            ));
        }
        return None;
    };
    if windowed && window.is_none() {
        errors.push(syn::Error::new(
            sig.paren_token.span.join(),
            "a `#[kinesis_processor(window)]` function folds each record into its window \
             state: take `state: &mut W` after the payload",
        ));
        return None;
    }
    let is_async = sig.asyncness.is_some();
    Some(Signature { params, payload, state, window, is_async, return_span })
}

fn check_qualifiers(function: &Function, errors: &mut Vec<syn::Error>) {
    let sig = &function.sig;
    if let Some(token) = &sig.constness {
        errors.push(syn::Error::new_spanned(
            token,
            "a `#[kinesis_processor]` function cannot be `const`",
        ));
    }
    if let Some(token) = &sig.unsafety {
        errors.push(syn::Error::new_spanned(
            token,
            "a `#[kinesis_processor]` function cannot be `unsafe`",
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(syn::Error::new_spanned(
            abi,
            "a `#[kinesis_processor]` function cannot have an ABI",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            variadic,
            "a `#[kinesis_processor]` function cannot be variadic",
        ));
    }
}

/// What the parameter at `position` with type `ty` is.
fn classify(position: usize, ty: &Type, windowed: bool) -> syn::Result<Param> {
    let reference = as_reference(ty);
    if position == 0 {
        if chunk_of(ty).is_some() {
            return Err(syn::Error::new_spanned(
                ty,
                "a function that takes a `Chunk<T>` needs the chunk size: \
                 `#[kinesis_processor(chunk = 25)]`",
            ));
        }
        return match reference {
            Some(r) if is_record_meta(&r.elem) || is_invocation(&r.elem) => {
                Err(syn::Error::new_spanned(
                    ty,
                    "the first parameter is the record's payload (`payload: T`); put \
                     `&RecordMeta` and `&Invocation` after it",
                ))
            }
            Some(_) => Err(syn::Error::new_spanned(
                ty,
                "the payload is decoded for each record and passed by value: write `T`, not `&T`",
            )),
            None => Ok(Param::Payload),
        };
    }
    match reference {
        Some(r) if is_record_meta(&r.elem) => Ok(Param::Meta),
        Some(r) if is_invocation(&r.elem) => Ok(Param::Invocation),
        Some(r) if r.mutability.is_some() && windowed => Ok(Param::Window),
        Some(r) if r.mutability.is_some() => Err(syn::Error::new_spanned(
            ty,
            "the state is shared by every record: take `&S`, not `&mut S`, and use a Mutex or \
             atomics inside it for what changes; to fold records into a window state, write \
             `#[kinesis_processor(window)]`",
        )),
        Some(_) => Ok(Param::State),
        None => Err(syn::Error::new_spanned(
            ty,
            "after the payload a `#[kinesis_processor]` function takes only `meta: &RecordMeta`, \
             `invocation: &Invocation` and a shared state `state: &S`",
        )),
    }
}

/// What the parameter at `position` of a chunk function is: the `Chunk<T>` first, then
/// `&Invocation` and a shared state `&S`.
fn classify_in_chunk_function(position: usize, ty: &Type) -> syn::Result<Param> {
    if position == 0 {
        return match chunk_of(ty) {
            Some(_) => Ok(Param::Payload),
            None => Err(syn::Error::new_spanned(
                ty,
                "a `#[kinesis_processor(chunk = N)]` function takes its records as a \
                 `Chunk<T>` first: `async fn NAME(records: Chunk<T>) -> Result<(), ChunkError>`",
            )),
        };
    }
    match as_reference(ty) {
        Some(r) if is_record_meta(&r.elem) => Err(syn::Error::new_spanned(
            ty,
            "a chunk function reads each record's metadata from its chunk \
             (`record.meta()`), not from a `&RecordMeta` parameter",
        )),
        Some(r) if is_invocation(&r.elem) => Ok(Param::Invocation),
        Some(r) if r.mutability.is_some() => Err(syn::Error::new_spanned(
            ty,
            "the state is shared by every chunk: take `&S`, not `&mut S`, and use a Mutex or \
             atomics inside it for what changes",
        )),
        Some(_) => Ok(Param::State),
        None => Err(syn::Error::new_spanned(
            ty,
            "after the chunk a chunk function takes only `invocation: &Invocation` and a \
             shared state `state: &S`",
        )),
    }
}

/// The generic arguments of `Chunk<..>`, if `ty` names one (by its last path segment).
fn chunk_of(ty: &Type) -> Option<&syn::AngleBracketedGenericArguments> {
    let Type::Path(path) = ty else {
        return None;
    };
    let last = path.path.segments.last().filter(|last| last.ident == "Chunk")?;
    match &last.arguments {
        PathArguments::AngleBracketed(arguments) => Some(arguments),
        _ => None,
    }
}

/// The `T` of `Chunk<T>` (or `Chunk<'a, T>`); the chunk itself when it names no type.
fn chunk_payload(ty: &Type) -> &Type {
    chunk_of(ty)
        .and_then(|arguments| {
            arguments.args.iter().find_map(|argument| match argument {
                GenericArgument::Type(payload) => Some(payload),
                _ => None,
            })
        })
        .unwrap_or(ty)
}

/// Gives `Chunk<T>` an explicit `'_` where the user elided it, as for `RecordMeta`.
pub fn add_chunk_lifetime(ty: &mut Type) {
    let Type::Path(path) = ty else {
        return;
    };
    let Some(last) = path.path.segments.last_mut().filter(|last| last.ident == "Chunk") else {
        return;
    };
    if let PathArguments::AngleBracketed(arguments) = &mut last.arguments {
        if !arguments.args.iter().any(|a| matches!(a, GenericArgument::Lifetime(_))) {
            let span = last.ident.span();
            arguments.args.insert(0, syn::parse_quote_spanned!(span=> '_));
        }
    }
}

fn as_reference(ty: &Type) -> Option<&TypeReference> {
    match ty {
        Type::Reference(reference) => Some(reference),
        Type::Paren(inner) => as_reference(&inner.elem),
        Type::Group(inner) => as_reference(&inner.elem),
        _ => None,
    }
}

/// The `S` of `&S`.
fn referent(ty: &Type) -> &Type {
    as_reference(ty).map_or(ty, |reference| &reference.elem)
}

/// Whether `ty` names `RecordMeta` (by its last path segment, so paths and imports work).
pub fn is_record_meta(ty: &Type) -> bool {
    last_segment_is(ty, "RecordMeta")
}

/// Whether `ty` names `Invocation` (by its last path segment).
fn is_invocation(ty: &Type) -> bool {
    last_segment_is(ty, "Invocation")
}

fn last_segment_is(ty: &Type, name: &str) -> bool {
    match ty {
        Type::Path(path) => {
            path.qself.is_none() && path.path.segments.last().is_some_and(|s| s.ident == name)
        }
        Type::Group(inner) => last_segment_is(&inner.elem, name),
        Type::Paren(inner) => last_segment_is(&inner.elem, name),
        _ => false,
    }
}

/// The state type of a signature that did not pass the checks, read as far as it can be:
/// the first `&S` after the payload (or `&mut S`, unless `windowed`) that is not the
/// metadata or the invocation (and names a type: no `impl Trait`).
pub fn state_of(function: &Function, windowed: bool) -> Option<Type> {
    function.sig.inputs.iter().skip(1).find_map(|input| {
        let FnArg::Typed(typed) = input else {
            return None;
        };
        let reference = as_reference(&typed.ty)?;
        if windowed && reference.mutability.is_some() {
            return None;
        }
        let named = !is_record_meta(&reference.elem) && !is_invocation(&reference.elem);
        (named && impl_trait_in(&typed.ty).is_none()).then(|| (*reference.elem).clone())
    })
}

/// The window state type of a window function whose signature did not pass the checks:
/// its first `&mut W` after the payload, if it names a type.
pub fn window_of(function: &Function) -> Option<Type> {
    function.sig.inputs.iter().skip(1).find_map(|input| {
        let FnArg::Typed(typed) = input else {
            return None;
        };
        let reference = as_reference(&typed.ty)?;
        let mutable = reference.mutability.is_some() && impl_trait_in(&typed.ty).is_none();
        mutable.then(|| (*reference.elem).clone())
    })
}

/// Gives `RecordMeta` an explicit `'_` where the user elided it: an `async fn` may not
/// elide a lifetime in a path (E0726), and the documented form is `meta: &RecordMeta`.
pub fn add_meta_lifetime(ty: &mut Type) {
    let Type::Reference(reference) = ty else {
        return;
    };
    let Type::Path(path) = &mut *reference.elem else {
        return;
    };
    if let Some(last) = path.path.segments.last_mut() {
        if last.ident == "RecordMeta" && matches!(last.arguments, PathArguments::None) {
            let span = last.ident.span();
            last.arguments = PathArguments::AngleBracketed(syn::parse_quote_spanned!(span=> <'_>));
        }
    }
}

/// The span of the first `impl Trait` inside `ty`, if any.
fn impl_trait_in(ty: &Type) -> Option<Span> {
    struct Finder(Option<Span>);
    impl<'ast> Visit<'ast> for Finder {
        fn visit_type_impl_trait(&mut self, node: &'ast syn::TypeImplTrait) {
            self.0.get_or_insert(node.span());
        }
        fn visit_generic_argument(&mut self, node: &'ast GenericArgument) {
            syn::visit::visit_generic_argument(self, node);
        }
    }
    let mut finder = Finder(None);
    finder.visit_type(ty);
    finder.0
}
