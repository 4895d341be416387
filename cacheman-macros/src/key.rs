//! The key of a `#[cached]` call: its owned type and the expression that builds it (on a
//! miss), and the borrowed view a hit looks it up by, so that a hit builds no owned key.

use proc_macro2::TokenStream;
use quote::{ToTokens, format_ident, quote};
use syn::spanned::Spanned;
use syn::{Expr, FnArg, Ident, ItemFn, Pat, Type};

use crate::check::{Arg, Errors, find_ident, find_self};
use crate::parse::Args;

/// How a call finds its entry without building the owned key: `expr` is a reference to the
/// argument (one argument) or to a tuple of references to the arguments, which hashes as the
/// key does; `eq` compares it with a stored key `__cacheman_k`.
pub(crate) struct View {
    pub(crate) expr: TokenStream,
    pub(crate) eq: TokenStream,
}

/// One argument's part of the key: its owned type and how it is made, and the type a call
/// borrows it as (`str` for a `&str` argument, the type itself for an owned one).
struct Part {
    owned_type: Type,
    owned_expr: TokenStream,
    borrowed_type: Type,
    view_expr: TokenStream,
}

fn part(name: &Ident, ty: &Type) -> Part {
    match ty {
        Type::Reference(r) => {
            let inner = &r.elem;
            let owned_type = match &**inner {
                Type::Path(p) if p.path.is_ident("str") => {
                    syn::parse_quote!(::std::string::String)
                }
                Type::Slice(s) => {
                    let elem = &s.elem;
                    syn::parse_quote!(::std::vec::Vec<#elem>)
                }
                _ => syn::parse_quote!(<#inner as ::std::borrow::ToOwned>::Owned),
            };
            Part {
                owned_type,
                owned_expr: quote!(::std::borrow::ToOwned::to_owned(#name)),
                borrowed_type: (**inner).clone(),
                view_expr: quote!(&*#name),
            }
        }
        _ => Part {
            owned_type: ty.clone(),
            owned_expr: quote!(::std::clone::Clone::clone(&#name)),
            borrowed_type: ty.clone(),
            view_expr: quote!(&#name),
        },
    }
}

/// The key of a call: its type, the expression that builds it, and the borrowed view a hit
/// looks it up by (none with `key = ...`).
pub(crate) struct Key {
    pub(crate) ty: Type,
    pub(crate) expr: TokenStream,
    pub(crate) view: Option<View>,
}

/// A key of several parts is their tuple; a key of one part is that part.
fn combine(parts: Vec<Part>, with_view: bool) -> Key {
    if parts.len() == 1 {
        let Part {
            owned_type,
            owned_expr,
            borrowed_type,
            view_expr,
        } = parts.into_iter().next().expect("one part");
        let view = with_view.then(|| View {
            eq: quote! {
                ::core::cmp::PartialEq::eq(
                    <#owned_type as ::core::borrow::Borrow<#borrowed_type>>::borrow(__cacheman_k),
                    #view_expr,
                )
            },
            expr: view_expr,
        });
        return Key {
            ty: owned_type,
            expr: owned_expr,
            view,
        };
    }
    let types: Vec<&Type> = parts.iter().map(|p| &p.owned_type).collect();
    let exprs = parts.iter().map(|p| &p.owned_expr);
    let views: Vec<&TokenStream> = parts.iter().map(|p| &p.view_expr).collect();
    let compares = parts.iter().enumerate().map(|(i, p)| {
        let (owned, borrowed, view) = (&p.owned_type, &p.borrowed_type, &p.view_expr);
        let index = syn::Index::from(i);
        quote! {
            ::core::cmp::PartialEq::eq(
                <#owned as ::core::borrow::Borrow<#borrowed>>::borrow(&__cacheman_k.#index),
                #view,
            )
        }
    });
    let view = with_view.then(|| View {
        expr: quote!(&(#(#views,)*)),
        eq: quote!(true #(&& #compares)*),
    });
    Key {
        ty: syn::parse_quote!((#(#types,)*)),
        expr: quote!((#(#exprs,)*)),
        view,
    }
}

/// How the wrapper binds each argument, and the key's type, expression and borrowed view.
pub(crate) fn bind_args(
    func: &ItemFn,
    args: &Args,
    errors: &mut Errors,
) -> (Vec<Arg>, Option<Key>) {
    let mut bound = Vec::new();
    // (name, type) of every non-receiver argument.
    let mut typed = Vec::new();
    for (i, input) in func.sig.inputs.iter().enumerate() {
        let FnArg::Typed(pat_type) = input else {
            continue;
        };
        let arg = match &*pat_type.pat {
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => Arg {
                binding: p.ident.clone(),
                rebind: None,
            },
            other => Arg {
                binding: format_ident!("__cacheman_arg{}", i),
                rebind: Some(other.clone()),
            },
        };
        typed.push((arg.binding.clone(), (*pat_type.ty).clone()));
        bound.push(arg);
    }

    let find = |ident: &Ident| typed.iter().find(|(n, _)| n == ident);

    let key = match (&args.key, &args.key_type) {
        (None, Some(ty)) => {
            errors.push(
                ty.span(),
                "`key_type` goes with `key = <expr>`: give the expression that makes the key, \
                 or leave both out to key on every argument",
            );
            None
        }
        (None, None) => {
            let parts: Vec<Part> = typed.iter().map(|(n, t)| part(n, t)).collect();
            // No arguments: the key is `()`, nothing to borrow.
            let with_view = !parts.is_empty();
            Some(combine(parts, with_view))
        }
        (Some(expr), Some(ty)) => Some(Key {
            ty: ty.clone(),
            expr: expr.to_token_stream(),
            view: None,
        }),
        (Some(expr), None) => {
            // `key = id` or `key = (a, b)` over plain arguments: the type is known.
            let named = |e: &Expr| match e {
                Expr::Path(p) if p.qself.is_none() => p.path.get_ident().and_then(find),
                _ => None,
            };
            let derived = match expr {
                Expr::Tuple(t) => t
                    .elems
                    .iter()
                    .map(|e| named(e).map(|(n, ty)| part(n, ty)))
                    .collect::<Option<Vec<_>>>()
                    .map(|parts| {
                        // `key = (a,)` is a one-tuple, as written.
                        let (types, exprs): (Vec<_>, Vec<_>) = parts
                            .into_iter()
                            .map(|p| (p.owned_type, p.owned_expr))
                            .unzip();
                        let ty: Type = syn::parse_quote!((#(#types,)*));
                        Key {
                            ty,
                            expr: quote!((#(#exprs,)*)),
                            view: None,
                        }
                    }),
                other => named(other).map(|(n, ty)| {
                    let p = part(n, ty);
                    Key {
                        ty: p.owned_type,
                        expr: p.owned_expr,
                        view: None,
                    }
                }),
            };
            if derived.is_none() {
                errors.push(
                    expr.span(),
                    "the type of this key expression cannot be known from the signature: add \
                     `key_type = <type>` (e.g. `key = format!(\"{a}/{b}\"), key_type = String`); \
                     only an argument or a tuple of arguments needs none",
                );
            }
            derived
        }
    };
    // A key made from the signature cannot own a trait object; one from `key_type` is the
    // user's to choose.
    if args.key_type.is_none()
        && let Some(Key { ty, .. }) = &key
        && let Some(span) = find_ident(ty.to_token_stream(), "dyn")
    {
        errors.push(
            span,
            "a `dyn Trait` argument cannot be part of the key (the key is an owned, hashable \
             copy of the arguments): leave it out with `key = (other, args)`, or give \
             `key = <expr>, key_type = <type>`",
        );
    }
    if let Some(Key { ty, .. }) = &key
        && let Some(span) = find_self(ty.to_token_stream())
    {
        errors.push(
            span,
            "#[cached] cannot name `Self` in the key type (the cache is a `static`): write the \
             type's name instead",
        );
    }
    (bound, key)
}
