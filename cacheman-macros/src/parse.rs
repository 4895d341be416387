//! The arguments of `#[cached(...)]`, parsed into a plain struct. Every problem is collected,
//! so one compile reports them all.

use proc_macro2::TokenStream;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, Lit, LitBool, LitInt, LitStr, Path, Token, Type, bracketed};

/// The accepted arguments, for the hint of every error.
pub(crate) const ACCEPTED: &str = "name = \"...\", manager = \"...\", depends_on = \"name\" | path | \
    [..], persistent = bool, store = \"redis\", capacity = N, ttl_secs = N, refresh = bool, result, \
    result_fallback, option, key = <expr>, key_type = <type>, version = N, with_cached_flag";

/// One `depends_on` entry.
pub(crate) enum Dependency {
    /// A cache name, checked when the manager is first used.
    Name(LitStr),
    /// A path to another `#[cached]` function, resolved by rustc.
    Function(Path),
}

/// `#[cached(...)]`, as written. `None` means "not given".
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) name: Option<LitStr>,
    pub(crate) manager: Option<LitStr>,
    pub(crate) depends_on: Vec<Dependency>,
    pub(crate) persistent: Option<LitBool>,
    /// `store = "redis"` (or `"files"`, the default), checked in `check.rs`.
    pub(crate) store: Option<LitStr>,
    pub(crate) capacity: Option<LitInt>,
    pub(crate) ttl_secs: Option<LitInt>,
    pub(crate) refresh: Option<LitBool>,
    pub(crate) result: Option<Ident>,
    pub(crate) result_fallback: Option<Ident>,
    pub(crate) option: Option<Ident>,
    pub(crate) key: Option<Expr>,
    pub(crate) key_type: Option<Type>,
    pub(crate) version: Option<LitInt>,
    pub(crate) with_cached_flag: Option<Ident>,
    /// The tokens of `key`, `result`, `option` and `version`, which change what is cached and
    /// so go into the function fingerprint.
    pub(crate) fingerprint_tokens: String,
}

/// Parses the attribute's arguments: what could be parsed, and every problem as one combined
/// error (so the checks of the function can still add theirs).
pub(crate) fn parse_args(tokens: TokenStream) -> (Args, Option<syn::Error>) {
    let mut args = Args::default();
    let mut errors: Option<syn::Error> = None;
    let parser = |input: ParseStream| {
        while !input.is_empty() {
            if let Err(err) = parse_one(input, &mut args) {
                push(&mut errors, err);
                skip_to_comma(input);
            }
            if input.is_empty() {
                break;
            }
            if let Err(err) = input.parse::<Token![,]>() {
                push(&mut errors, err);
                skip_to_comma(input);
                let _ = input.parse::<Option<Token![,]>>();
            }
        }
        Ok(())
    };
    if let Err(err) = parser.parse2(tokens) {
        push(&mut errors, err);
    }
    (args, errors)
}

fn push(errors: &mut Option<syn::Error>, err: syn::Error) {
    match errors {
        Some(all) => all.combine(err),
        None => *errors = Some(err),
    }
}

/// Skips the rest of a malformed argument, so the next one is still checked.
fn skip_to_comma(input: ParseStream) {
    while !input.is_empty() && !input.peek(Token![,]) {
        let _ = input.parse::<proc_macro2::TokenTree>();
    }
}

fn parse_one(input: ParseStream, args: &mut Args) -> syn::Result<()> {
    let key = input.call(Ident::parse_any)?;
    let duplicate = |given: bool| -> syn::Result<()> {
        if given {
            Err(syn::Error::new(
                key.span(),
                format!("duplicate argument `{key}`; give each argument once"),
            ))
        } else {
            Ok(())
        }
    };
    match key.to_string().as_str() {
        // #[cached(name = "fib")]
        "name" => {
            let value = string_value(input, &key)?;
            duplicate(args.name.is_some())?;
            args.name = Some(value);
        }
        // #[cached(manager = "reports")]
        "manager" => {
            let value = string_value(input, &key)?;
            duplicate(args.manager.is_some())?;
            args.manager = Some(value);
        }
        // #[cached(depends_on = "root")], #[cached(depends_on = [raw, "edge"])]
        "depends_on" => {
            input.parse::<Token![=]>()?;
            let deps = if input.peek(syn::token::Bracket) {
                let content;
                bracketed!(content in input);
                Punctuated::<Dependency, Token![,]>::parse_terminated_with(
                    &content,
                    parse_dependency,
                )?
                .into_iter()
                .collect()
            } else {
                vec![parse_dependency(input)?]
            };
            duplicate(!args.depends_on.is_empty())?;
            args.depends_on = deps;
        }
        // #[cached(persistent = false)]
        "persistent" => {
            input.parse::<Token![=]>()?;
            let value = match input.parse::<Lit>()? {
                Lit::Bool(b) => b,
                other => return Err(expected(&other, "a boolean: `persistent = false`")),
            };
            duplicate(args.persistent.is_some())?;
            args.persistent = Some(value);
        }
        // #[cached(store = "redis")]
        "store" => {
            if !input.peek2(Lit) {
                input.parse::<Token![=]>()?;
                return Err(input.error("expected a string: `store = \"redis\"`"));
            }
            let value = string_value(input, &key)?;
            duplicate(args.store.is_some())?;
            args.store = Some(value);
        }
        // #[cached(capacity = 1000)]
        "capacity" => {
            let value = int_value(input, &key, "capacity = 1000")?;
            duplicate(args.capacity.is_some())?;
            args.capacity = Some(value);
        }
        // #[cached(ttl_secs = 3600)]
        "ttl_secs" => {
            let value = int_value(input, &key, "ttl_secs = 3600")?;
            duplicate(args.ttl_secs.is_some())?;
            args.ttl_secs = Some(value);
        }
        // #[cached(ttl_secs = 60, refresh = true)]
        "refresh" => {
            input.parse::<Token![=]>()?;
            let value = match input.parse::<Lit>()? {
                Lit::Bool(b) => b,
                other => return Err(expected(&other, "a boolean: `refresh = true`")),
            };
            duplicate(args.refresh.is_some())?;
            args.refresh = Some(value);
        }
        // #[cached(version = 2)]
        "version" => {
            let value = int_value(input, &key, "version = 2")?;
            duplicate(args.version.is_some())?;
            args.fingerprint_tokens += &format!("version={value};");
            args.version = Some(value);
        }
        // #[cached(result)]
        "result" => {
            flag(input, &key)?;
            duplicate(args.result.is_some())?;
            args.fingerprint_tokens += "result;";
            args.result = Some(key);
        }
        // #[cached(result, ttl_secs = 60, result_fallback)]
        "result_fallback" => {
            flag(input, &key)?;
            duplicate(args.result_fallback.is_some())?;
            args.result_fallback = Some(key);
        }
        // #[cached(option)]
        "option" => {
            flag(input, &key)?;
            duplicate(args.option.is_some())?;
            args.fingerprint_tokens += "option;";
            args.option = Some(key);
        }
        // #[cached(with_cached_flag)]
        "with_cached_flag" => {
            flag(input, &key)?;
            duplicate(args.with_cached_flag.is_some())?;
            args.with_cached_flag = Some(key);
        }
        // #[cached(key = (id, label.len()))]
        "key" => {
            input.parse::<Token![=]>()?;
            let expr: Expr = input.parse()?;
            duplicate(args.key.is_some())?;
            args.fingerprint_tokens += &format!("key={};", quote::quote!(#expr));
            args.key = Some(expr);
        }
        // #[cached(key = format!("{a}/{b}"), key_type = String)]
        "key_type" => {
            input.parse::<Token![=]>()?;
            let ty: Type = input.parse()?;
            duplicate(args.key_type.is_some())?;
            args.key_type = Some(ty);
        }
        other => {
            let hint = match did_you_mean(other) {
                Some(close) => format!("did you mean `{close}`? "),
                None => String::new(),
            };
            return Err(syn::Error::new(
                key.span(),
                format!("unknown argument `{other}`; {hint}accepted: {ACCEPTED}"),
            ));
        }
    }
    Ok(())
}

fn parse_dependency(input: ParseStream) -> syn::Result<Dependency> {
    if input.peek(LitStr) {
        Ok(Dependency::Name(input.parse()?))
    } else if input.peek(Ident::peek_any) || input.peek(Token![::]) || input.peek(Token![crate]) {
        Ok(Dependency::Function(input.call(Path::parse_mod_style)?))
    } else {
        Err(input.error(
            "expected a cache name (`depends_on = \"root\"`) or a path to a #[cached] function \
             (`depends_on = raw`), or a list of them in `[...]`",
        ))
    }
}

fn string_value(input: ParseStream, key: &Ident) -> syn::Result<LitStr> {
    input.parse::<Token![=]>()?;
    match input.parse::<Lit>()? {
        Lit::Str(s) => Ok(s),
        other => Err(expected(
            &other,
            &format!("a string literal: `{key} = \"...\"`"),
        )),
    }
}

fn int_value(input: ParseStream, _key: &Ident, example: &str) -> syn::Result<LitInt> {
    input.parse::<Token![=]>()?;
    match input.parse::<Lit>()? {
        // Checked here so that a negative or out-of-range literal is spanned at itself.
        Lit::Int(i) if i.base10_parse::<u64>().is_ok() => Ok(i),
        other => Err(expected(
            &other,
            &format!("an unsigned integer literal: `{example}`"),
        )),
    }
}

/// A flag takes no value: `result`, not `result = true`.
fn flag(input: ParseStream, key: &Ident) -> syn::Result<()> {
    if input.peek(Token![=]) {
        return Err(syn::Error::new(
            input.span(),
            format!("`{key}` takes no value: write `#[cached({key})]`"),
        ));
    }
    Ok(())
}

fn expected(found: &Lit, what: &str) -> syn::Error {
    syn::Error::new(found.span(), format!("expected {what}"))
}

/// The accepted argument closest to a misspelt one.
fn did_you_mean(word: &str) -> Option<&'static str> {
    const KEYS: [&str; 15] = [
        "name",
        "manager",
        "depends_on",
        "persistent",
        "store",
        "capacity",
        "ttl_secs",
        "refresh",
        "result",
        "result_fallback",
        "option",
        "key",
        "key_type",
        "version",
        "with_cached_flag",
    ];
    KEYS.iter()
        .map(|k| (strsim(word, k), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(1))
        .min()
        .map(|(_, k)| k)
}

/// Levenshtein distance over characters.
fn strsim(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}
