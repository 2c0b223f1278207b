//! Proptest strategies for flows and conversations: random valid flows, random visitors and
//! connectors, and a player that runs them against any [`Engine`].
//!
//! Behind the `arbitrary` feature. The property tests of this crate use it, and so do the
//! differential tests that run the interpreter and compiled flows side by side: both engines
//! get the same [`Script`] and must produce the same [`Played`] steps.
//!
//! The pieces:
//! - [`valid_flow`]: flows that have no validation errors by construction (warnings allowed),
//!   with [`sub_flow`] to call; [`library_for`] puts both in a library.
//! - [`corpus`]: a fixed, seeded set of such flows for differential tests, and [`coverage`]:
//!   which node kinds, operators, functions and syntax a set of flows uses.
//! - [`script`], [`start`], [`actions`]: a conversation as abstract [`Action`]s (press the
//!   third button, type a valid answer, answer the pending lookup with an error, …), each with
//!   the time that passes before it.
//! - [`resolve`]: turns an action into a concrete [`Input`] for the session as it is *now*, so
//!   random sequences stay meaningful whatever the flow asks; the [`World`] remembers what
//!   the engine last asked for and answers lookups from [`Fixtures`].
//! - [`Player`] and [`play`]: feed a script to an engine step by step.
//!
//! Everything is deterministic given the generated values: no clock, no randomness of its own.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use crate::engine::{
    Effect, Engine, Expect, HandBack, Input, LookupOutcome, LookupRequest, LookupResult, Millis,
    Session, StartInput, Step, Waiting,
};
use crate::expr::{BinaryOp, ExprKind, Function, Segment, UnaryOp};
use crate::fixtures::Fixtures;
use crate::library::Library;
use crate::model::{
    AbSplit, Assignment, Branch, Call, CardSpec, Choice, ChoiceOption, Condition, DynamicOptions,
    Edge, End, Events, Flow, Handoff, Inactivity, InputNode, InputType, Interface, Jump,
    KeywordEvent, Layout, Lookup, Message, Node, NodeKind, Part, Position, Priority,
    SCHEMA_VERSION, Scope, SetNode, Settings, Start, Text, Validation, Variable, Variant, Wait,
};
use crate::scenario::{DEFAULT_START, Played};
use crate::value::{Type, Value};

// ---- Valid flows -------------------------------------------------------------------------

/// Random flows with no `Severity::Error` diagnostic, by construction, when validated with
/// [`sub_flow`] in the library ([`library_for`]).
///
/// What they contain:
/// - node `n0` is the start; then 2 to 20 further nodes `n1`, `n2`, … of every kind (messages
///   with every part type, static and dynamic choices, inputs of every type with validation,
///   conditions, sets, lookups, handoffs, waits, calls of [`sub_flow`], A/B splits, jumps,
///   ends); the last node is always an `end`;
/// - variables `num0`, `num1` (number), `str0`, `str1` (string), `flag0`, `flag1` (bool),
///   `tags0`, `tags1` (`list<string>`) and `rows0` (`list<map>`, for lookup rows and product
///   cards), one or two of each, mostly with defaults, some `user`-scoped;
/// - texts with `{{ … }}` holes over those variables and `sys`, some with `zh-CN` and `en`
///   variants; typed expressions in conditions, assignments, lookup parameters, call inputs,
///   dynamic choice lists and product-card sources, using every operator and function, list
///   literals, field access and indexing (see [`coverage`]);
/// - `call` nodes that give [`sub_flow`] all its inputs and copy some of its outputs into
///   variables of the same type;
/// - sometimes targets for the global events (agent, cancel, restart, error, inactivity).
///
/// The shape: every required port is connected, to a *later* node or back to a node that waits
/// for the outside world (choice, input, lookup, handoff, wait). A turn therefore enters each
/// node at most once before it waits or ends. [`sub_flow`] always waits before it returns, so
/// a turn runs at most the rest of one call and the start of another besides: these flows
/// never exhaust the step budget, and any budget error while running one is an engine bug.
/// Some nodes may be unreachable and some variables may be read before they are set; those
/// are warnings.
///
/// Expressions are well typed, but a run can still fail for real reasons (dividing by a
/// variable that is zero, an agent setting a variable to `null`, a dynamic choice over an
/// empty list, a lookup row whose `price` is no number): that is an `Effect::Error` the
/// engine handles, not a bug.
pub fn valid_flow() -> impl Strategy<Value = Flow> {
    valid_flow_sized(2..=20)
}

/// [`valid_flow`] with the number of nodes after the start in `further` (at least 1, the end).
pub fn valid_flow_sized(further: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Flow> {
    let lo = (*further.start()).max(1);
    let hi = (*further.end()).max(lo);
    (
        vars(),
        prop::collection::vec(node_spec(), (lo - 1)..hi),
        end_spec(),
        events_spec(),
        flow_meta(),
    )
        .prop_map(|(vars, body, end, events, meta)| build(&vars, body, end, &events, &meta))
}

/// The kinds of generated variables; each has a name prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VarTy {
    Num,
    Str,
    Flag,
    Tags,
    Rows,
}

impl VarTy {
    const ALL: [VarTy; 5] = [
        VarTy::Num,
        VarTy::Str,
        VarTy::Flag,
        VarTy::Tags,
        VarTy::Rows,
    ];

    fn prefix(self) -> &'static str {
        match self {
            VarTy::Num => "num",
            VarTy::Str => "str",
            VarTy::Flag => "flag",
            VarTy::Tags => "tags",
            VarTy::Rows => "rows",
        }
    }

    fn ty(self) -> Type {
        match self {
            VarTy::Num => Type::Number,
            VarTy::Str => Type::String,
            VarTy::Flag => Type::Bool,
            VarTy::Tags => Type::List(Box::new(Type::String)),
            VarTy::Rows => Type::List(Box::new(Type::Map)),
        }
    }
}

#[derive(Debug, Clone)]
struct VarSpec {
    default: Option<Value>,
    user: bool,
    described: bool,
}

/// The declared variables: how many of each kind (1 or 2; one `rows`) and their settings.
#[derive(Debug, Clone)]
struct Vars {
    num: Vec<VarSpec>,
    str: Vec<VarSpec>,
    flag: Vec<VarSpec>,
    tags: Vec<VarSpec>,
    rows: Vec<VarSpec>,
}

impl Vars {
    fn of(&self, ty: VarTy) -> &[VarSpec] {
        match ty {
            VarTy::Num => &self.num,
            VarTy::Str => &self.str,
            VarTy::Flag => &self.flag,
            VarTy::Tags => &self.tags,
            VarTy::Rows => &self.rows,
        }
    }

    fn name(&self, ty: VarTy, slot: usize) -> String {
        format!("{}{}", ty.prefix(), slot % self.of(ty).len().max(1))
    }
}

fn var_spec(default: BoxedStrategy<Value>) -> impl Strategy<Value = VarSpec> {
    (
        prop::option::weighted(0.85, default),
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(default, user, described)| VarSpec {
            default,
            user,
            described,
        })
}

fn vars() -> impl Strategy<Value = Vars> {
    let num = prop_oneof![
        (-100i32..1000).prop_map(|n| Value::Number(f64::from(n))),
        Just(Value::Number(2.5))
    ]
    .boxed();
    let str = among(STRING_WORDS)
        .prop_map(|s| Value::String(s.to_owned()))
        .boxed();
    let flag = any::<bool>().prop_map(Value::Bool).boxed();
    let tags = prop::collection::vec(among(STRING_WORDS), 0..3)
        .prop_map(|v| Value::List(v.into_iter().map(|s| Value::String(s.to_owned())).collect()))
        .boxed();
    let rows = Just(Value::List(Vec::new())).boxed();
    (
        prop::collection::vec(var_spec(num), 1..=2),
        prop::collection::vec(var_spec(str), 1..=2),
        prop::collection::vec(var_spec(flag), 1..=2),
        prop::collection::vec(var_spec(tags), 1..=2),
        prop::collection::vec(var_spec(rows), 1..=1),
    )
        .prop_map(|(num, str, flag, tags, rows)| Vars {
            num,
            str,
            flag,
            tags,
            rows,
        })
}

/// Words for string literals and defaults: no quotes, backslashes or braces.
const STRING_WORDS: &[&str] = &[
    "", "a", "vip", "shipped", "你好", "KF100001", " spaced ", "a,b,c", "🙂", "agent", "Shanghai",
    "phones",
];

/// A typed expression over the generated variables, rendered to source when the flow is
/// built (variable slots are taken modulo how many variables of the kind exist).
#[derive(Debug, Clone)]
enum E {
    Var(VarTy, usize),
    /// Literal source text, or a fixed piece of syntax like `sys.hour`.
    Lit(String),
    Call(&'static str, Vec<E>),
    Bin(&'static str, Box<E>, Box<E>),
    Un(&'static str, Box<E>),
    List(Vec<E>),
    /// `target.name`; the target is a variable or a call, so it needs no parentheses.
    Field(Box<E>, &'static str),
    /// `target[index]`; the target is a variable or a call.
    Index(Box<E>, Box<E>),
}

impl E {
    fn render(&self, vars: &Vars, out: &mut String) {
        match self {
            E::Var(ty, slot) => out.push_str(&vars.name(*ty, *slot)),
            E::Lit(text) => out.push_str(text),
            E::Call(name, args) => {
                out.push_str(name);
                out.push('(');
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    arg.render(vars, out);
                }
                out.push(')');
            }
            E::Bin(op, a, b) => {
                out.push('(');
                a.render(vars, out);
                let _ = write!(out, " {op} ");
                b.render(vars, out);
                out.push(')');
            }
            E::Un(op, a) => {
                out.push_str(op);
                out.push('(');
                a.render(vars, out);
                out.push(')');
            }
            E::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.render(vars, out);
                }
                out.push(']');
            }
            E::Field(target, name) => {
                target.render(vars, out);
                out.push('.');
                out.push_str(name);
            }
            E::Index(target, index) => {
                target.render(vars, out);
                out.push('[');
                index.render(vars, out);
                out.push(']');
            }
        }
    }

    fn source(&self, vars: &Vars) -> String {
        let mut out = String::new();
        self.render(vars, &mut out);
        out
    }
}

/// One of `items`, shrinking towards the first.
fn among<T: Clone + std::fmt::Debug + 'static>(items: &'static [T]) -> prop::sample::Select<T> {
    prop::sample::select(items)
}

fn call(name: &'static str, args: Vec<E>) -> E {
    E::Call(name, args)
}

fn bin(op: &'static str, a: E, b: E) -> E {
    E::Bin(op, Box::new(a), Box::new(b))
}

fn lit(text: impl Into<String>) -> E {
    E::Lit(text.into())
}

fn field(target: E, name: &'static str) -> E {
    E::Field(Box::new(target), name)
}

fn index(target: E, at: E) -> E {
    E::Index(Box::new(target), Box::new(at))
}

/// A list index: mostly in range of short lists, sometimes negative, fractional or computed
/// (out of range reads as `null`).
fn index_expr(depth: u32) -> BoxedStrategy<E> {
    prop_oneof![
        4 => among(&["0", "1", "2", "5"]).prop_map(lit),
        1 => among(&["-1", "0.5"]).prop_map(lit),
        1 => num_expr(depth.saturating_sub(1)),
    ]
    .boxed()
}

/// A field of a lookup row (type `any`): `rows0[0].name`, `last(rows0)['price']`, …
fn row_field() -> impl Strategy<Value = E> {
    let row = prop_oneof![
        3 => (var(VarTy::Rows), index_expr(0)).prop_map(|(rows, at)| index(rows, at)),
        1 => (among(&["first", "last"]), var(VarTy::Rows))
            .prop_map(|(f, rows)| call(f, vec![rows])),
    ];
    (
        row,
        among(&["id", "name", "price", "status", "missing"]),
        any::<bool>(),
    )
        .prop_map(|(row, name, dotted)| {
            if dotted {
                field(row, name)
            } else {
                index(row, lit(format!("'{name}'")))
            }
        })
}

fn var(ty: VarTy) -> impl Strategy<Value = E> {
    any::<usize>().prop_map(move |slot| E::Var(ty, slot))
}

fn str_lit() -> impl Strategy<Value = E> {
    among(STRING_WORDS).prop_map(|s| lit(format!("'{s}'")))
}

/// How deep generated expressions nest.
const EXPR_DEPTH: u32 = 2;

fn num_expr(depth: u32) -> BoxedStrategy<E> {
    let leaf = prop_oneof![
        3 => var(VarTy::Num),
        2 => (-50i32..500).prop_map(|n| lit(n.to_string())),
        1 => among(&["0.5", "2.5", "1000000", "100000000000000000000", "sys.hour", "sys.weekday"]).prop_map(lit),
    ];
    if depth == 0 {
        return leaf.boxed();
    }
    let n = || num_expr(depth - 1);
    let nonzero = among(&["2", "3", "7", "0.5", "-4"]).prop_map(lit);
    prop_oneof![
        4 => leaf,
        1 => str_expr(depth - 1).prop_map(|s| call("len", vec![s])),
        1 => tags_expr(depth - 1).prop_map(|t| call("len", vec![t])),
        1 => var(VarTy::Rows).prop_map(|r| call("len", vec![r])),
        2 => (among(&["+", "-", "*"]), n(), n()).prop_map(|(op, a, b)| bin(op, a, b)),
        1 => (among(&["/", "%"]), n(), nonzero).prop_map(|(op, a, b)| bin(op, a, b)),
        1 => n().prop_map(|a| E::Un("-", Box::new(a))),
        1 => (among(&["round", "floor", "ceil", "abs"]), n()).prop_map(|(f, a)| call(f, vec![a])),
        1 => (n(), 0u8..4).prop_map(|(a, d)| call("round", vec![a, lit(d.to_string())])),
        1 => (among(&["min", "max"]), n(), n()).prop_map(|(f, a, b)| call(f, vec![a, b])),
        1 => prop::collection::vec(n(), 0..3).prop_map(|items| call("sum", vec![E::List(items)])),
        1 => among(&["'12'", "' 3.5 '", "'-1e2'"]).prop_map(|s| call("number", vec![lit(s)])),
        1 => (among(&["first", "last"]), prop::collection::vec(n(), 1..3))
            .prop_map(|(f, items)| call(f, vec![E::List(items)])),
        1 => (var(VarTy::Tags), index_expr(depth))
            .prop_map(|(t, at)| call("len", vec![call("default", vec![index(t, at), lit("''")])])),
        1 => row_field().prop_map(|f| call("len", vec![call("string", vec![f])])),
        1 => (var(VarTy::Rows), index_expr(0)).prop_map(|(rows, at)| {
            call("number", vec![call("default", vec![field(index(rows, at), "price"), lit("0")])])
        }),
    ]
    .boxed()
}

fn str_expr(depth: u32) -> BoxedStrategy<E> {
    let leaf = prop_oneof![
        3 => var(VarTy::Str),
        2 => str_lit(),
        1 => among(&["sys.locale", "sys.channel", "sys.date", "sys.session_id"]).prop_map(lit),
    ];
    if depth == 0 {
        return leaf.boxed();
    }
    let s = || str_expr(depth - 1);
    prop_oneof![
        4 => leaf,
        1 => (among(&["upper", "lower", "trim"]), s()).prop_map(|(f, a)| call(f, vec![a])),
        1 => (s(), s()).prop_map(|(a, b)| bin("+", a, b)),
        1 => (tags_expr(depth - 1), among(&["', '", "'/'", "''"]))
            .prop_map(|(t, sep)| call("join", vec![t, lit(sep)])),
        1 => num_expr(depth - 1).prop_map(|n| call("string", vec![n])),
        1 => (s(), str_lit()).prop_map(|(a, b)| call("default", vec![a, b])),
        1 => (among(&["first", "last"]), tags_expr(depth - 1), str_lit())
            .prop_map(|(f, t, b)| call("default", vec![call(f, vec![t]), b])),
        1 => (var(VarTy::Tags), index_expr(depth), str_lit())
            .prop_map(|(t, at, b)| call("default", vec![index(t, at), b])),
        1 => row_field().prop_map(|f| call("string", vec![f])),
        1 => var(VarTy::Rows)
            .prop_map(|r| call("join", vec![call("pluck", vec![r, lit("'name'")]), lit("', '")])),
    ]
    .boxed()
}

fn bool_expr(depth: u32) -> BoxedStrategy<E> {
    let leaf =
        prop_oneof![3 => var(VarTy::Flag), 1 => any::<bool>().prop_map(|b| lit(b.to_string()))];
    if depth == 0 {
        return leaf.boxed();
    }
    let b = || bool_expr(depth - 1);
    let n = || num_expr(depth - 1);
    let s = || str_expr(depth - 1);
    prop_oneof![
        3 => leaf,
        1 => (among(&["!", "not "]), b()).prop_map(|(op, a)| E::Un(op, Box::new(a))),
        1 => (among(&["&&", "||", "and", "or"]), b(), b()).prop_map(|(op, x, y)| bin(op, x, y)),
        2 => (among(&["<", "<=", ">", ">=", "==", "!="]), n(), n())
            .prop_map(|(op, x, y)| bin(op, x, y)),
        1 => (among(&["==", "!=", "<"]), s(), s()).prop_map(|(op, x, y)| bin(op, x, y)),
        1 => (among(&["contains", "starts_with", "ends_with"]), s(), s())
            .prop_map(|(f, x, y)| call(f, vec![x, y])),
        1 => (tags_expr(depth - 1), s()).prop_map(|(t, x)| call("contains", vec![t, x])),
        1 => s().prop_map(|x| call("is_empty", vec![x])),
        1 => tags_expr(depth - 1).prop_map(|t| call("is_empty", vec![t])),
        1 => var(VarTy::Rows).prop_map(|r| call("is_empty", vec![r])),
        1 => (among(&["==", "!="]), s()).prop_map(|(op, x)| bin(op, x, lit("null"))),
        1 => (among(&["==", "!="]), row_field(), str_lit()).prop_map(|(op, f, x)| bin(op, f, x)),
        1 => (among(&["==", "!="]), tags_expr(depth - 1), tags_expr(depth - 1))
            .prop_map(|(op, x, y)| bin(op, x, y)),
    ]
    .boxed()
}

fn tags_expr(depth: u32) -> BoxedStrategy<E> {
    let leaf = prop_oneof![
        3 => var(VarTy::Tags),
        1 => prop::collection::vec(str_lit(), 1..3).prop_map(E::List),
    ];
    if depth == 0 {
        return leaf.boxed();
    }
    let t = || tags_expr(depth - 1);
    prop_oneof![
        3 => leaf,
        1 => (t(), t()).prop_map(|(a, b)| bin("+", a, b)),
        1 => (str_expr(depth - 1), among(&["','", "' '", "''"]))
            .prop_map(|(s, sep)| call("split", vec![s, lit(sep)])),
        1 => prop::collection::vec(str_expr(depth - 1), 1..3).prop_map(E::List),
    ]
    .boxed()
}

fn rows_expr() -> BoxedStrategy<E> {
    prop_oneof![
        2 => var(VarTy::Rows),
        1 => (var(VarTy::Rows), str_lit())
            .prop_map(|(r, s)| call("where", vec![r, lit("'status'"), s])),
    ]
    .boxed()
}

/// An expression of any type (template holes, lookup parameters).
fn any_expr() -> BoxedStrategy<E> {
    prop_oneof![
        3 => num_expr(EXPR_DEPTH),
        4 => str_expr(EXPR_DEPTH),
        1 => bool_expr(EXPR_DEPTH),
        1 => tags_expr(EXPR_DEPTH),
    ]
    .boxed()
}

/// A piece of a text: literal words (chosen so that no `{{` appears by accident) or a hole.
#[derive(Debug, Clone)]
enum Piece {
    Word(&'static str),
    Hole(E, bool),
    /// A hole reading `item`, only in the labels of dynamic choices.
    Item(&'static str),
}

const ZH_WORDS: &[&str] = &[
    "您好",
    "，",
    "欢迎光临",
    "请选择",
    "您的订单",
    "。",
    "！",
    " ",
    "¥",
    "100%",
    "🙂",
    "\n",
];
const EN_WORDS: &[&str] = &[
    "Hello",
    ", ",
    "welcome",
    " ",
    "please pick",
    "your order",
    "!",
    "a { b } c",
    "x }} y",
    r"\{{ not a hole }}",
    "\t",
];

fn pieces(words: &'static [&'static str]) -> impl Strategy<Value = Vec<Piece>> {
    let piece = prop_oneof![
        3 => among(words).prop_map(Piece::Word),
        1 => (any_expr(), any::<bool>()).prop_map(|(e, spaced)| Piece::Hole(e, spaced)),
    ];
    prop::collection::vec(piece, 1..5)
}

/// The label of a dynamic choice's buttons: words, holes over `item` (a string, or a lookup
/// row when `rows`) and ordinary holes.
fn item_pieces(rows: bool) -> impl Strategy<Value = Vec<Piece>> {
    let item: &'static [&'static str] = if rows {
        &[
            "item.name",
            "item['id']",
            "string(item.price)",
            "default(item.status, '-')",
            "item",
        ]
    } else {
        &[
            "item",
            "upper(item)",
            "len(item)",
            "item + '!'",
            "default(item, '?')",
        ]
    };
    let piece = prop_oneof![
        2 => among(EN_WORDS).prop_map(Piece::Word),
        3 => among(item).prop_map(Piece::Item),
        1 => (any_expr(), any::<bool>()).prop_map(|(e, spaced)| Piece::Hole(e, spaced)),
    ];
    prop::collection::vec(piece, 1..4)
}

#[derive(Debug, Clone)]
struct TextSpec {
    zh: Vec<Piece>,
    en: Option<Vec<Piece>>,
}

fn text_spec() -> impl Strategy<Value = TextSpec> {
    (
        pieces(ZH_WORDS),
        prop::option::weighted(0.4, pieces(EN_WORDS)),
    )
        .prop_map(|(zh, en)| TextSpec { zh, en })
}

fn render_pieces(pieces: &[Piece], vars: &Vars) -> String {
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Word(w) => out.push_str(w),
            Piece::Item(source) => {
                let _ = write!(out, "{{{{ {source} }}}}");
            }
            Piece::Hole(e, spaced) => {
                let source = e.source(vars);
                if *spaced {
                    let _ = write!(out, "{{{{ {source} }}}}");
                } else {
                    let _ = write!(out, "{{{{{source}}}}}");
                }
            }
        }
    }
    out
}

impl TextSpec {
    fn build(&self, vars: &Vars) -> Text {
        let zh = render_pieces(&self.zh, vars);
        match &self.en {
            None => Text::Plain(zh),
            Some(en) => Text::Localized(
                [
                    ("zh-CN".to_owned(), zh),
                    ("en".to_owned(), render_pieces(en, vars)),
                ]
                .into(),
            ),
        }
    }
}

/// Where a port leads, resolved when the flow is built.
#[derive(Debug, Clone)]
enum Target {
    /// The node right after this one.
    Next,
    /// Any later node.
    Forward(Index),
    /// An earlier (or this) node that waits; the next node if there is none.
    Back(Index),
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        5 => Just(Target::Next),
        3 => any::<Index>().prop_map(Target::Forward),
        1 => any::<Index>().prop_map(Target::Back),
    ]
}

#[derive(Debug, Clone)]
enum PartSpec {
    Text(TextSpec),
    Image(Option<TextSpec>),
    /// Product cards from a `list<map>` expression, with a limit.
    Products(E, Option<u32>),
    Carousel(Vec<(TextSpec, Option<TextSpec>, bool)>),
}

#[derive(Debug, Clone)]
struct ValidationSpec {
    pattern: Option<&'static str>,
    bounds: Option<(i32, i32)>,
    lengths: Option<(u32, u32)>,
}

#[derive(Debug, Clone)]
enum KindSpec {
    Message(Vec<PartSpec>),
    Choice {
        prompt: TextSpec,
        options: Vec<TextSpec>,
        /// Buttons from a list instead of `options`.
        dynamic: Option<DynamicSpec>,
        save: Option<usize>,
        retry: Option<TextSpec>,
    },
    Input {
        prompt: TextSpec,
        input_type: InputType,
        validation: ValidationSpec,
        retries: u32,
        retry: Option<TextSpec>,
        save: usize,
    },
    Condition(Vec<E>),
    Set(Vec<(VarTy, usize, E)>),
    Lookup {
        entity: &'static str,
        operation: &'static str,
        params: Vec<E>,
        save: bool,
    },
    Handoff {
        queue: Option<&'static str>,
        team: Option<&'static str>,
        priority: Priority,
        reason: TextSpec,
        summary: Option<TextSpec>,
        message: Option<TextSpec>,
        back: bool,
    },
    Wait {
        seconds: u64,
        save: Option<usize>,
        reply: bool,
    },
    /// A call of [`sub_flow`]: its four inputs (a number, a string, a bool and a list of
    /// strings, in that order) and, for each of its outputs, maybe a variable slot to copy it to.
    Call {
        inputs: [E; 4],
        outputs: [Option<usize>; 4],
    },
    AbSplit(Vec<u32>),
    Jump,
    End(Option<&'static str>),
}

/// The options of a choice built from a list: of strings (picked into a string variable) or
/// of lookup rows (no generated variable can hold the picked map, so it is not saved).
#[derive(Debug, Clone)]
struct DynamicSpec {
    rows: bool,
    list: E,
    label: Vec<Piece>,
    limit: Option<u32>,
}

#[derive(Debug, Clone)]
struct NodeSpec {
    labelled: bool,
    kind: KindSpec,
    /// One per port, in port order (at most four ports are generated).
    targets: Vec<Target>,
}

fn part_spec() -> impl Strategy<Value = PartSpec> {
    prop_oneof![
        6 => text_spec().prop_map(PartSpec::Text),
        1 => prop::option::of(text_spec()).prop_map(PartSpec::Image),
        1 => (rows_expr(), prop::option::of(1u32..4))
            .prop_map(|(from, limit)| PartSpec::Products(from, limit)),
        1 => prop::collection::vec(card_spec(), 1..3).prop_map(PartSpec::Carousel),
    ]
}

/// A carousel card: title, subtitle, and whether it has an image and a link.
fn card_spec() -> impl Strategy<Value = (TextSpec, Option<TextSpec>, bool)> {
    (text_spec(), prop::option::of(text_spec()), any::<bool>())
}

fn validation_spec() -> impl Strategy<Value = ValidationSpec> {
    (
        prop::option::weighted(
            0.25,
            among(&[
                "[A-Za-z0-9]+",
                "KF[0-9]{6}",
                ".*",
                "(yes|no|是|否)",
                ".*@example\\.com",
            ]),
        ),
        prop::option::weighted(0.3, (-100i32..100, -100i32..1000)),
        prop::option::weighted(0.2, (0u32..3, 0u32..40)),
    )
        .prop_map(|(pattern, bounds, lengths)| ValidationSpec {
            pattern,
            bounds,
            lengths,
        })
}

fn input_type() -> impl Strategy<Value = InputType> {
    among(&[
        InputType::Text,
        InputType::Number,
        InputType::Email,
        InputType::Phone,
        InputType::Date,
    ])
}

fn typed_assignment() -> impl Strategy<Value = (VarTy, usize, E)> {
    prop_oneof![
        (any::<usize>(), num_expr(EXPR_DEPTH)).prop_map(|(slot, e)| (VarTy::Num, slot, e)),
        (any::<usize>(), str_expr(EXPR_DEPTH)).prop_map(|(slot, e)| (VarTy::Str, slot, e)),
        (any::<usize>(), bool_expr(EXPR_DEPTH)).prop_map(|(slot, e)| (VarTy::Flag, slot, e)),
        (any::<usize>(), tags_expr(EXPR_DEPTH)).prop_map(|(slot, e)| (VarTy::Tags, slot, e)),
        rows_expr().prop_map(|e| (VarTy::Rows, 0, e)),
    ]
}

fn priority() -> impl Strategy<Value = Priority> {
    among(&[
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Urgent,
    ])
}

fn dynamic_spec() -> impl Strategy<Value = DynamicSpec> {
    let limit = || prop::option::weighted(0.5, 1u32..6);
    let strings = prop_oneof![
        2 => tags_expr(EXPR_DEPTH),
        // Mostly lists with at least one element, so that there are buttons to offer.
        3 => (tags_expr(EXPR_DEPTH - 1), str_lit())
            .prop_map(|(t, s)| bin("+", t, E::List(vec![s]))),
    ];
    prop_oneof![
        3 => (strings, item_pieces(false), limit()).prop_map(|(list, label, limit)| DynamicSpec {
            rows: false,
            list,
            label,
            limit,
        }),
        1 => (rows_expr(), item_pieces(true), limit()).prop_map(|(list, label, limit)| DynamicSpec {
            rows: true,
            list,
            label,
            limit,
        }),
    ]
}

fn choice_spec() -> impl Strategy<Value = KindSpec> {
    (
        text_spec(),
        prop::collection::vec(text_spec(), 1..=4),
        prop::option::weighted(0.25, dynamic_spec()),
        prop::option::of(any::<usize>()),
        prop::option::weighted(0.3, text_spec()),
    )
        .prop_map(|(prompt, options, dynamic, save, retry)| KindSpec::Choice {
            prompt,
            options,
            dynamic,
            save,
            retry,
        })
}

fn call_spec() -> impl Strategy<Value = KindSpec> {
    let output = || prop::option::weighted(0.6, any::<usize>());
    (
        num_expr(EXPR_DEPTH),
        str_expr(EXPR_DEPTH),
        bool_expr(EXPR_DEPTH),
        tags_expr(EXPR_DEPTH),
        [output(), output(), output(), output()],
    )
        .prop_map(|(qty, who, rush, tags, outputs)| KindSpec::Call {
            inputs: [qty, who, rush, tags],
            outputs,
        })
}

fn input_spec() -> impl Strategy<Value = KindSpec> {
    (
        text_spec(),
        input_type(),
        validation_spec(),
        0u32..4,
        prop::option::weighted(0.3, text_spec()),
        any::<usize>(),
    )
        .prop_map(
            |(prompt, input_type, validation, retries, retry, save)| KindSpec::Input {
                prompt,
                input_type,
                validation,
                retries,
                retry,
                save,
            },
        )
}

fn lookup_spec() -> impl Strategy<Value = KindSpec> {
    (
        among(&["orders", "products", "faq", "stores"]),
        among(&["find", "get"]),
        prop::collection::vec(any_expr(), 0..3),
        any::<bool>(),
    )
        .prop_map(|(entity, operation, params, save)| KindSpec::Lookup {
            entity,
            operation,
            params,
            save,
        })
}

fn handoff_spec() -> impl Strategy<Value = KindSpec> {
    (
        prop::option::of(among(&["general", "vip", "returns"])),
        prop::option::of(among(&["sales", "after-sales"])),
        priority(),
        text_spec(),
        prop::option::of(text_spec()),
        prop::option::of(text_spec()),
        any::<bool>(),
    )
        .prop_map(|(queue, team, priority, reason, summary, message, back)| {
            KindSpec::Handoff {
                // A handoff names a queue or a team (or both).
                queue: if queue.is_none() && team.is_none() {
                    Some("general")
                } else {
                    queue
                },
                team,
                priority,
                reason,
                summary,
                message,
                back,
            }
        })
}

fn kind_spec() -> impl Strategy<Value = KindSpec> {
    prop_oneof![
        4 => prop::collection::vec(part_spec(), 1..3).prop_map(KindSpec::Message),
        3 => choice_spec(),
        3 => input_spec(),
        2 => prop::collection::vec(bool_expr(EXPR_DEPTH), 1..=3).prop_map(KindSpec::Condition),
        2 => prop::collection::vec(typed_assignment(), 1..4).prop_map(KindSpec::Set),
        2 => lookup_spec(),
        1 => handoff_spec(),
        1 => (1u64..7200, prop::option::of(any::<usize>()), any::<bool>())
            .prop_map(|(seconds, save, reply)| KindSpec::Wait { seconds, save, reply }),
        1 => prop::collection::vec(0u32..100, 1..=3).prop_map(|mut weights| {
            // At least one variant must have a weight.
            if weights.iter().all(|w| *w == 0) {
                weights[0] = 1;
            }
            KindSpec::AbSplit(weights)
        }),
        1 => call_spec(),
        1 => Just(KindSpec::Jump),
        1 => prop::option::of(among(&["resolved", "abandoned", "handed_off"]))
            .prop_map(KindSpec::End),
    ]
}

fn node_spec() -> impl Strategy<Value = NodeSpec> {
    (
        prop::bool::weighted(0.3),
        kind_spec(),
        prop::collection::vec(target(), 4),
    )
        .prop_map(|(labelled, kind, targets)| NodeSpec {
            labelled,
            kind,
            targets,
        })
}

fn end_spec() -> impl Strategy<Value = NodeSpec> {
    prop::option::of(among(&["completed", "resolved"])).prop_map(|outcome| NodeSpec {
        labelled: false,
        kind: KindSpec::End(outcome),
        targets: Vec::new(),
    })
}

/// Event settings; targets are node positions, taken modulo the number of nodes.
#[derive(Debug, Clone)]
struct EventsSpec {
    agent_enabled: bool,
    extra_agent_keyword: bool,
    agent: Option<Index>,
    restart: Option<Index>,
    cancel: Option<Index>,
    error: Option<Index>,
    inactivity: Option<(u64, Option<Index>)>,
}

fn events_spec() -> impl Strategy<Value = EventsSpec> {
    let target = || prop::option::weighted(0.15, any::<Index>());
    (
        prop::bool::weighted(0.9),
        prop::bool::weighted(0.2),
        target(),
        target(),
        target(),
        target(),
        prop::option::weighted(0.3, (1u64..3600, target())),
    )
        .prop_map(
            |(agent_enabled, extra_agent_keyword, agent, restart, cancel, error, inactivity)| {
                EventsSpec {
                    agent_enabled,
                    extra_agent_keyword,
                    agent,
                    restart,
                    cancel,
                    error,
                    inactivity,
                }
            },
        )
}

#[derive(Debug, Clone)]
struct Meta {
    version: u32,
    described: bool,
    english_default: bool,
    queue: &'static str,
}

fn flow_meta() -> impl Strategy<Value = Meta> {
    (
        1u32..4,
        prop::bool::weighted(0.3),
        prop::bool::weighted(0.2),
        among(&["general", "vip"]),
    )
        .prop_map(|(version, described, english_default, queue)| Meta {
            version,
            described,
            english_default,
            queue,
        })
}

/// Builds the flow from its specification: names nodes `n0`…, resolves variable slots and port
/// targets, and connects every port the node needs.
fn build(
    vars: &Vars,
    body: Vec<NodeSpec>,
    end: NodeSpec,
    events: &EventsSpec,
    meta: &Meta,
) -> Flow {
    let mut specs = body;
    specs.push(end);
    // Position 0 is the start; specs[k] is node k + 1.
    let count = specs.len() + 1;
    let id = |i: usize| format!("n{i}");
    let waits: Vec<bool> = std::iter::once(false)
        .chain(specs.iter().map(|s| s.kind.waits()))
        .collect();

    let resolve = |from: usize, target: &Target| -> usize {
        let forward = count - 1 - from;
        match target {
            Target::Next => from + 1,
            Target::Forward(ix) => from + 1 + ix.index(forward),
            Target::Back(ix) => {
                let candidates: Vec<usize> = (1..=from).filter(|&j| waits[j]).collect();
                if candidates.is_empty() {
                    from + 1
                } else {
                    candidates[ix.index(candidates.len())]
                }
            }
        }
    };

    let mut nodes = vec![Node {
        id: id(0),
        label: Some("开始".into()),
        kind: NodeKind::Start(Start {}),
    }];
    let mut edges = vec![Edge {
        from: id(0),
        port: "next".into(),
        to: id(1),
    }];
    for (k, spec) in specs.iter().enumerate() {
        let i = k + 1;
        let kind = spec
            .kind
            .build(vars, &id(resolve_jump(i, count, spec, &resolve)));
        // Required ports always, optional ports when the spec asks for them.
        let wanted: Vec<String> = kind
            .ports()
            .into_iter()
            .filter(|p| p.required || spec.kind.wants_optional(&p.name))
            .map(|p| p.name)
            .collect();
        for (p, port) in wanted.into_iter().enumerate() {
            let target = spec.targets.get(p).unwrap_or(&Target::Next);
            edges.push(Edge {
                from: id(i),
                port,
                to: id(resolve(i, target)),
            });
        }
        let label = spec.labelled.then(|| format!("{} {i}", kind.name()));
        nodes.push(Node {
            id: id(i),
            label,
            kind,
        });
    }

    let mut variables = Vec::new();
    for ty in VarTy::ALL {
        for (slot, spec) in vars.of(ty).iter().enumerate() {
            variables.push(Variable {
                name: vars.name(ty, slot),
                ty: ty.ty(),
                scope: if spec.user {
                    Scope::User
                } else {
                    Scope::Conversation
                },
                default: spec.default.clone(),
                description: spec.described.then(|| format!("generated {}", ty.ty())),
            });
        }
    }

    let node_at = |ix: &Index| id(ix.index(count));
    let mut agent = KeywordEvent::agent();
    agent.enabled = events.agent_enabled;
    if events.extra_agent_keyword {
        agent.keywords.push("客服".into());
    }
    agent.target = events.agent.as_ref().map(node_at);
    let mut restart = KeywordEvent::restart();
    restart.target = events.restart.as_ref().map(node_at);
    let mut cancel = KeywordEvent::cancel();
    cancel.target = events.cancel.as_ref().map(node_at);
    let events = Events {
        agent,
        restart,
        cancel,
        inactivity: events
            .inactivity
            .as_ref()
            .map(|(seconds, target)| Inactivity {
                seconds: *seconds,
                target: target.as_ref().map(node_at),
            }),
        error: crate::model::ErrorEvent {
            target: events.error.as_ref().map(node_at),
        },
    };

    let layout = Layout {
        nodes: (0..count)
            .map(|i| {
                #[allow(clippy::cast_precision_loss, reason = "at most a few dozen nodes")]
                let x = (i * 220) as f64;
                (id(i), Position { x, y: 0.0 })
            })
            .collect(),
        ..Layout::default()
    };

    Flow {
        schema_version: SCHEMA_VERSION,
        id: "generated".into(),
        version: meta.version,
        name: Text::Localized(
            [
                ("zh-CN".to_owned(), "生成的流程".to_owned()),
                ("en".to_owned(), "Generated flow".to_owned()),
            ]
            .into(),
        ),
        description: meta
            .described
            .then(|| Text::Plain("A generated flow".into())),
        default_locale: if meta.english_default {
            "en".into()
        } else {
            "zh-CN".into()
        },
        variables,
        interface: Interface::default(),
        events,
        settings: Settings {
            default_queue: meta.queue.into(),
            ..Settings::default()
        },
        nodes,
        edges,
        layout,
    }
}

/// The node a jump at position `i` goes to (its first target); unused for other kinds.
fn resolve_jump(
    i: usize,
    count: usize,
    spec: &NodeSpec,
    resolve: &dyn Fn(usize, &Target) -> usize,
) -> usize {
    match (&spec.kind, spec.targets.first()) {
        (KindSpec::Jump, Some(target)) => resolve(i, target),
        _ => (i + 1).min(count - 1),
    }
}

impl KindSpec {
    fn waits(&self) -> bool {
        matches!(
            self,
            KindSpec::Choice { .. }
                | KindSpec::Input { .. }
                | KindSpec::Lookup { .. }
                | KindSpec::Handoff { .. }
                | KindSpec::Wait { .. }
        )
    }

    fn wants_optional(&self, port: &str) -> bool {
        match self {
            KindSpec::Handoff { back, .. } => *back && port == crate::model::port::RETURN,
            KindSpec::Wait { reply, .. } => *reply && port == crate::model::port::REPLY,
            _ => false,
        }
    }

    fn build(&self, vars: &Vars, jump_target: &str) -> NodeKind {
        let text = |t: &TextSpec| t.build(vars);
        let opt = |t: &Option<TextSpec>| t.as_ref().map(|t| t.build(vars));
        match self {
            KindSpec::Message(parts) => NodeKind::Message(Message {
                parts: parts
                    .iter()
                    .enumerate()
                    .map(|(p, part)| match part {
                        PartSpec::Text(t) => Part::Text { text: text(t) },
                        PartSpec::Image(alt) => Part::Image {
                            url: format!("https://shop.example/img/{p}.png"),
                            alt: opt(alt),
                        },
                        PartSpec::Products(from, limit) => Part::Products {
                            from: from.source(vars),
                            limit: *limit,
                        },
                        PartSpec::Carousel(cards) => Part::Carousel {
                            cards: cards
                                .iter()
                                .enumerate()
                                .map(|(c, (title, subtitle, linked))| CardSpec {
                                    title: text(title),
                                    subtitle: opt(subtitle),
                                    image: linked
                                        .then(|| format!("https://shop.example/img/card{c}.png")),
                                    url: linked.then(|| format!("https://shop.example/p/{c}")),
                                })
                                .collect(),
                        },
                    })
                    .collect(),
            }),
            KindSpec::Choice {
                prompt,
                options: _,
                dynamic: Some(dynamic),
                save,
                retry,
            } => NodeKind::Choice(Choice {
                prompt: text(prompt),
                options: Vec::new(),
                dynamic: Some(DynamicOptions {
                    list: dynamic.list.source(vars),
                    label: Text::Plain(render_pieces(&dynamic.label, vars)),
                    limit: dynamic.limit,
                }),
                save_as: save
                    .filter(|_| !dynamic.rows)
                    .map(|slot| vars.name(VarTy::Str, slot)),
                retry_prompt: opt(retry),
            }),
            KindSpec::Choice {
                prompt,
                options,
                dynamic: None,
                save,
                retry,
            } => NodeKind::Choice(Choice {
                prompt: text(prompt),
                options: options
                    .iter()
                    .enumerate()
                    .map(|(o, label)| ChoiceOption {
                        id: format!("o{o}"),
                        label: text(label),
                    })
                    .collect(),
                dynamic: None,
                save_as: save.map(|slot| vars.name(VarTy::Str, slot)),
                retry_prompt: opt(retry),
            }),
            KindSpec::Input {
                prompt,
                input_type,
                validation,
                retries,
                retry,
                save,
            } => {
                let mut v = Validation::default();
                match input_type {
                    InputType::Number => {
                        if let Some((a, b)) = validation.bounds {
                            v.min = Some(f64::from(a.min(b)));
                            v.max = Some(f64::from(a.max(b)));
                        }
                    }
                    InputType::Text | InputType::Email => {
                        v.pattern = validation
                            .pattern
                            .filter(|p| *input_type == InputType::Text || p.contains('@'))
                            .map(Into::into);
                        if let Some((a, b)) = validation.lengths {
                            v.min_length = Some(a.min(b));
                            v.max_length = Some(a.max(b));
                        }
                    }
                    InputType::Phone | InputType::Date => {}
                }
                let slot_ty = if *input_type == InputType::Number {
                    VarTy::Num
                } else {
                    VarTy::Str
                };
                NodeKind::Input(InputNode {
                    prompt: text(prompt),
                    input_type: *input_type,
                    save_as: vars.name(slot_ty, *save),
                    validation: v,
                    retries: *retries,
                    retry_prompt: opt(retry),
                })
            }
            KindSpec::Condition(branches) => NodeKind::Condition(Condition {
                branches: branches
                    .iter()
                    .enumerate()
                    .map(|(b, when)| Branch {
                        id: format!("b{b}"),
                        label: (b == 0).then(|| Text::Plain("first".into())),
                        when: when.source(vars),
                    })
                    .collect(),
            }),
            KindSpec::Set(assignments) => NodeKind::Set(SetNode {
                assignments: assignments
                    .iter()
                    .map(|(ty, slot, value)| Assignment {
                        var: vars.name(*ty, *slot),
                        value: value.source(vars),
                    })
                    .collect(),
            }),
            KindSpec::Lookup {
                entity,
                operation,
                params,
                save,
            } => NodeKind::Lookup(Lookup {
                connector: "demo".into(),
                entity: (*entity).into(),
                operation: (*operation).into(),
                params: params
                    .iter()
                    .enumerate()
                    .map(|(p, e)| (format!("p{p}"), e.source(vars)))
                    .collect(),
                save_as: save.then(|| vars.name(VarTy::Rows, 0)),
            }),
            KindSpec::Handoff {
                queue,
                team,
                priority,
                reason,
                summary,
                message,
                ..
            } => NodeKind::Handoff(Handoff {
                queue: queue.map(Into::into),
                team: team.map(Into::into),
                priority: *priority,
                reason: text(reason),
                summary: opt(summary),
                message: opt(message),
            }),
            KindSpec::Wait { seconds, save, .. } => NodeKind::Wait(Wait {
                seconds: *seconds,
                save_as: save.map(|slot| vars.name(VarTy::Str, slot)),
            }),
            KindSpec::Call { inputs, outputs } => NodeKind::Call(Call {
                flow: SUB_FLOW.into(),
                inputs: SUB_INPUTS
                    .iter()
                    .zip(inputs)
                    .map(|((name, _), e)| ((*name).to_owned(), e.source(vars)))
                    .collect(),
                outputs: SUB_OUTPUTS
                    .iter()
                    .zip(outputs)
                    .filter_map(|((name, ty), slot)| {
                        slot.map(|slot| (vars.name(*ty, slot), (*name).to_owned()))
                    })
                    .collect(),
            }),
            KindSpec::AbSplit(weights) => NodeKind::AbSplit(AbSplit {
                variants: weights
                    .iter()
                    .enumerate()
                    .map(|(v, weight)| Variant {
                        id: ["a", "b", "c"][v % 3].into(),
                        weight: *weight,
                    })
                    .collect(),
            }),
            KindSpec::Jump => NodeKind::Jump(Jump {
                target: jump_target.to_owned(),
            }),
            KindSpec::End(outcome) => NodeKind::End(End {
                outcome: outcome.map(Into::into),
            }),
        }
    }
}

// ---- The sub-flow generated flows call -------------------------------------------------

/// The id of [`sub_flow`], which generated `call` nodes call.
pub const SUB_FLOW: &str = "arb-sub";

/// The inputs of [`sub_flow`] and the kinds of generated variables that fit them, in the order
/// of `KindSpec::Call::inputs`.
const SUB_INPUTS: [(&str, VarTy); 4] = [
    ("qty", VarTy::Num),
    ("who", VarTy::Str),
    ("rush", VarTy::Flag),
    ("tags", VarTy::Tags),
];

/// The outputs of [`sub_flow`] and the kinds of generated variables they can be copied to.
const SUB_OUTPUTS: [(&str, VarTy); 4] = [
    ("total", VarTy::Num),
    ("answer", VarTy::Str),
    ("done", VarTy::Flag),
    ("picked", VarTy::Tags),
];

/// The fixed sub-flow `arb-sub` that generated `call` nodes call: inputs `qty` (number), `who`
/// (string), `rush` (bool) and `tags` (`list<string>`); outputs `total`, `answer`, `done` and
/// `picked` of the same types.
///
/// It greets, then always waits at the choice `s_pick` before anything else, so a call never
/// returns in the turn it starts and generated flows keep far from the step budget. From there
/// it asks for a number (`s_more`, whose `invalid` port goes back to the choice), offers the
/// input tags as buttons (`s_tag`, a dynamic choice), or checks `rush && qty > 10` and waits
/// (`s_wait`), then sets its outputs and returns. It has no validation errors, with or without
/// other flows in the library.
pub fn sub_flow() -> Flow {
    let both = |zh: &str, en: &str| {
        Text::Localized(
            [
                ("zh-CN".to_owned(), zh.to_owned()),
                ("en".to_owned(), en.to_owned()),
            ]
            .into(),
        )
    };
    let variable = |name: &str, ty: Type, default: Option<Value>| Variable {
        name: name.into(),
        ty,
        scope: Scope::Conversation,
        default,
        description: None,
    };
    let strings = || Type::List(Box::new(Type::String));
    let node = |id: &str, kind: NodeKind| Node {
        id: id.into(),
        label: None,
        kind,
    };
    let edge = |from: &str, port: &str, to: &str| Edge {
        from: from.into(),
        port: port.into(),
        to: to.into(),
    };
    let option = |id: &str, zh: &str, en: &str| ChoiceOption {
        id: id.into(),
        label: both(zh, en),
    };
    let nodes = vec![
        node("s_start", NodeKind::Start(Start {})),
        node(
            "s_hello",
            NodeKind::Message(Message {
                parts: vec![Part::Text {
                    text: both(
                        "{{who}}，您要 {{qty}} 件：{{ join(tags, '、') }}",
                        "{{who}}, you want {{qty}}: {{ join(tags, ', ') }}",
                    ),
                }],
            }),
        ),
        node(
            "s_pick",
            NodeKind::Choice(Choice {
                prompt: both("怎么处理？", "What now?"),
                options: vec![
                    option("keep", "保留", "Keep"),
                    option("more", "改数量", "Change the amount"),
                    option("tag", "选标签", "Pick a tag"),
                    option("skip", "跳过", "Skip"),
                ],
                dynamic: None,
                save_as: Some("answer".into()),
                retry_prompt: None,
            }),
        ),
        node(
            "s_check",
            NodeKind::Condition(Condition {
                branches: vec![Branch {
                    id: "rush".into(),
                    label: None,
                    when: "rush && qty > 10".into(),
                }],
            }),
        ),
        node(
            "s_more",
            NodeKind::Input(InputNode {
                prompt: both("要多少件？", "How many?"),
                input_type: InputType::Number,
                save_as: "total".into(),
                validation: Validation {
                    min: Some(0.0),
                    max: Some(999.0),
                    ..Validation::default()
                },
                retries: 1,
                retry_prompt: Some(both(
                    "请输入 0 到 999 之间的数字。",
                    "A number from 0 to 999, please.",
                )),
            }),
        ),
        node(
            "s_tag",
            NodeKind::Choice(Choice {
                prompt: both("选一个：", "Pick one:"),
                options: Vec::new(),
                dynamic: Some(DynamicOptions {
                    list: "tags + ['其他']".into(),
                    label: Text::Plain("{{ upper(item) }}".into()),
                    limit: Some(5),
                }),
                save_as: Some("answer".into()),
                retry_prompt: None,
            }),
        ),
        node(
            "s_wait",
            NodeKind::Wait(Wait {
                seconds: 30,
                save_as: Some("answer".into()),
            }),
        ),
        node(
            "s_set",
            NodeKind::Set(SetNode {
                assignments: [
                    ("total", "max(total, qty)"),
                    ("picked", "tags + [answer]"),
                    ("done", "total > 0 && !is_empty(answer)"),
                ]
                .into_iter()
                .map(|(var, value)| Assignment {
                    var: var.into(),
                    value: value.into(),
                })
                .collect(),
            }),
        ),
        node(
            "s_done",
            NodeKind::End(End {
                outcome: Some("returned".into()),
            }),
        ),
    ];
    let edges = vec![
        edge("s_start", "next", "s_hello"),
        edge("s_hello", "next", "s_pick"),
        edge("s_pick", "keep", "s_check"),
        edge("s_pick", "more", "s_more"),
        edge("s_pick", "tag", "s_tag"),
        edge("s_pick", "skip", "s_done"),
        edge("s_check", "rush", "s_wait"),
        edge("s_check", "default", "s_set"),
        edge("s_more", "next", "s_set"),
        edge("s_more", "invalid", "s_pick"),
        edge("s_tag", "selected", "s_set"),
        edge("s_wait", "timeout", "s_set"),
        edge("s_wait", "reply", "s_set"),
        edge("s_set", "next", "s_done"),
    ];
    let layout = Layout {
        nodes: nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                #[allow(clippy::cast_precision_loss, reason = "nine nodes")]
                let x = (i * 220) as f64;
                (n.id.clone(), Position { x, y: 0.0 })
            })
            .collect(),
        ..Layout::default()
    };
    Flow {
        schema_version: SCHEMA_VERSION,
        id: SUB_FLOW.into(),
        version: 1,
        name: both("生成流程的子流程", "Sub-flow of generated flows"),
        description: None,
        default_locale: "zh-CN".into(),
        variables: vec![
            variable("qty", Type::Number, None),
            variable("who", Type::String, None),
            variable("rush", Type::Bool, None),
            variable("tags", strings(), None),
            variable("total", Type::Number, Some(Value::Number(0.0))),
            variable("answer", Type::String, Some(Value::String(String::new()))),
            variable("done", Type::Bool, Some(Value::Bool(false))),
            variable("picked", strings(), Some(Value::List(Vec::new()))),
        ],
        interface: Interface {
            inputs: SUB_INPUTS
                .iter()
                .map(|(name, _)| (*name).to_owned())
                .collect(),
            outputs: SUB_OUTPUTS
                .iter()
                .map(|(name, _)| (*name).to_owned())
                .collect(),
        },
        events: Events::default(),
        settings: Settings::default(),
        nodes,
        edges,
        layout,
    }
}

/// A library to validate and run a generated `flow` with: the flow and [`sub_flow`].
pub fn library_for(flow: &Flow) -> Library {
    let mut library = Library::new();
    library.insert(sub_flow());
    library.insert(flow.clone());
    library
}

// ---- A seeded corpus and what it covers ---------------------------------------------------

/// `count` flows from [`valid_flow`], named `gen-0000`, `gen-0001`, …: the same for the same
/// `seed` on every 64-bit machine (proptest's ChaCha generator, seeded with `seed` in
/// little-endian order; slots are drawn as `usize`). A shorter corpus from the same seed is a
/// prefix of a longer one. Changing the strategies, or proptest, changes the corpus.
///
/// The differential tests of compiled flows use this corpus, so it must cover what every
/// engine has to implement; see [`coverage`].
pub fn corpus(seed: u64, count: usize) -> Vec<Flow> {
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let strategy = valid_flow();
    let mut flows = Vec::with_capacity(count);
    for i in 0..count {
        // `valid_flow` has no filters, so drawing a value cannot be rejected.
        let Ok(tree) = strategy.new_tree(&mut runner) else {
            break;
        };
        let mut flow = tree.current();
        flow.id = format!("gen-{i:04}");
        flows.push(flow);
    }
    flows
}

/// Every node kind, by its name in flow files. [`NodeKind::name`] and the exhaustive match in
/// `expressions_of` make a new kind fail to compile until it is handled there; add it here too.
pub const NODE_KINDS: [&str; 13] = [
    "start",
    "message",
    "choice",
    "input",
    "condition",
    "set",
    "lookup",
    "handoff",
    "wait",
    "call",
    "ab_split",
    "jump",
    "end",
];

/// Every binary operator. The match makes a new operator fail to compile here.
fn binary_ops() -> [BinaryOp; 13] {
    let listed = |op: BinaryOp| match op {
        BinaryOp::Or
        | BinaryOp::And
        | BinaryOp::Eq
        | BinaryOp::Ne
        | BinaryOp::Lt
        | BinaryOp::Le
        | BinaryOp::Gt
        | BinaryOp::Ge
        | BinaryOp::Add
        | BinaryOp::Sub
        | BinaryOp::Mul
        | BinaryOp::Div
        | BinaryOp::Rem => op,
    };
    [
        BinaryOp::Or,
        BinaryOp::And,
        BinaryOp::Eq,
        BinaryOp::Ne,
        BinaryOp::Lt,
        BinaryOp::Le,
        BinaryOp::Gt,
        BinaryOp::Ge,
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Rem,
    ]
    .map(listed)
}

/// Every unary operator. The match makes a new operator fail to compile here.
fn unary_ops() -> [UnaryOp; 2] {
    let listed = |op: UnaryOp| match op {
        UnaryOp::Not | UnaryOp::Neg => op,
    };
    [UnaryOp::Not, UnaryOp::Neg].map(listed)
}

/// Syntax besides operators and calls that every engine must implement.
pub const SYNTAX: [&str; 4] = ["list literal", "field access", "index", "dynamic choice"];

/// What a set of flows uses: for each node kind, operator, function and piece of [`SYNTAX`],
/// how many of the flows use it at least once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// How many flows were looked at.
    pub flows: usize,
    /// By node kind name (`ab_split`).
    pub kinds: BTreeMap<&'static str, usize>,
    pub binary: BTreeMap<BinaryOp, usize>,
    pub unary: BTreeMap<UnaryOp, usize>,
    pub functions: BTreeMap<Function, usize>,
    /// By the names in [`SYNTAX`].
    pub syntax: BTreeMap<&'static str, usize>,
}

impl Coverage {
    /// Everything no flow uses, as `kind call`, `binary %`, `unary -`, `function last` or
    /// `syntax index`; empty when the flows cover it all.
    pub fn missing(&self) -> Vec<String> {
        let mut missing = Vec::new();
        for kind in NODE_KINDS {
            if !self.kinds.contains_key(kind) {
                missing.push(format!("kind {kind}"));
            }
        }
        for op in binary_ops() {
            if !self.binary.contains_key(&op) {
                missing.push(format!("binary {}", op.symbol()));
            }
        }
        for op in unary_ops() {
            if !self.unary.contains_key(&op) {
                missing.push(format!("unary {}", op.symbol()));
            }
        }
        for function in Function::ALL {
            if !self.functions.contains_key(&function) {
                missing.push(format!("function {}", function.name()));
            }
        }
        for syntax in SYNTAX {
            if !self.syntax.contains_key(syntax) {
                missing.push(format!("syntax {syntax}"));
            }
        }
        missing
    }
}

impl std::fmt::Display for Coverage {
    /// One line per group, each entry with its count of flows.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn line<K>(
            f: &mut std::fmt::Formatter<'_>,
            what: &str,
            counts: &BTreeMap<K, usize>,
            name: impl Fn(&K) -> &str,
        ) -> std::fmt::Result {
            let entries: Vec<String> = counts
                .iter()
                .map(|(key, count)| format!("{} {count}", name(key)))
                .collect();
            writeln!(f, "{what}: {}", entries.join(", "))
        }
        writeln!(f, "{} flows", self.flows)?;
        line(f, "kinds", &self.kinds, |k| k)?;
        line(f, "binary", &self.binary, |op| op.symbol())?;
        line(f, "unary", &self.unary, |op| op.symbol())?;
        line(f, "functions", &self.functions, |function| function.name())?;
        line(f, "syntax", &self.syntax, |s| s)
    }
}

/// What `flows` use: node kinds, and the operators, functions and syntax of every expression
/// and template hole they contain (conditions, assignments, lookup parameters, call inputs,
/// dynamic choice lists and labels, product-card sources, and every text).
pub fn coverage<'a>(flows: impl IntoIterator<Item = &'a Flow>) -> Coverage {
    let mut coverage = Coverage::default();
    for flow in flows {
        coverage.flows += 1;
        let mut kinds = BTreeSet::new();
        let mut binary = BTreeSet::new();
        let mut unary = BTreeSet::new();
        let mut functions = BTreeSet::new();
        let mut syntax = BTreeSet::new();
        for node in &flow.nodes {
            kinds.insert(node.kind.name());
            if let NodeKind::Choice(Choice {
                dynamic: Some(_), ..
            }) = &node.kind
            {
                syntax.insert("dynamic choice");
            }
            let (exprs, texts) = expressions_of(&node.kind);
            let mut roots = Vec::new();
            for source in exprs {
                if let Ok(e) = crate::expr::parse(source) {
                    roots.push(e.root().clone());
                }
            }
            for text in texts {
                for (_, variant) in text.variants() {
                    if let Ok(template) = crate::expr::parse_template(variant) {
                        for segment in template.segments() {
                            if let Segment::Hole(e) = segment {
                                roots.push(e.root().clone());
                            }
                        }
                    }
                }
            }
            for root in &roots {
                root.walk(&mut |n| match &n.kind {
                    ExprKind::Literal(_) | ExprKind::Var(_) => {}
                    ExprKind::List(_) => {
                        syntax.insert("list literal");
                    }
                    ExprKind::Field { .. } => {
                        syntax.insert("field access");
                    }
                    ExprKind::Index { .. } => {
                        syntax.insert("index");
                    }
                    ExprKind::Unary { op, .. } => {
                        unary.insert(*op);
                    }
                    ExprKind::Binary { op, .. } => {
                        binary.insert(*op);
                    }
                    ExprKind::Call { function, .. } => {
                        functions.insert(*function);
                    }
                });
            }
        }
        count(&mut coverage.kinds, kinds);
        count(&mut coverage.binary, binary);
        count(&mut coverage.unary, unary);
        count(&mut coverage.functions, functions);
        count(&mut coverage.syntax, syntax);
    }
    coverage
}

/// Adds one to the count of every key in `seen`.
fn count<K: Ord>(into: &mut BTreeMap<K, usize>, seen: BTreeSet<K>) {
    for key in seen {
        *into.entry(key).or_default() += 1;
    }
}

/// The expressions and the texts (templates) of a node.
fn expressions_of(kind: &NodeKind) -> (Vec<&str>, Vec<&Text>) {
    let mut exprs: Vec<&str> = Vec::new();
    let mut texts: Vec<&Text> = Vec::new();
    match kind {
        NodeKind::Start(_)
        | NodeKind::Wait(_)
        | NodeKind::AbSplit(_)
        | NodeKind::Jump(_)
        | NodeKind::End(_) => {}
        NodeKind::Message(message) => {
            for part in &message.parts {
                match part {
                    Part::Text { text } => texts.push(text),
                    Part::Image { alt, .. } => texts.extend(alt),
                    Part::Products { from, .. } => exprs.push(from),
                    Part::Carousel { cards } => {
                        for card in cards {
                            texts.push(&card.title);
                            texts.extend(&card.subtitle);
                        }
                    }
                }
            }
        }
        NodeKind::Choice(choice) => {
            texts.push(&choice.prompt);
            texts.extend(&choice.retry_prompt);
            texts.extend(choice.options.iter().map(|o| &o.label));
            if let Some(dynamic) = &choice.dynamic {
                exprs.push(&dynamic.list);
                texts.push(&dynamic.label);
            }
        }
        NodeKind::Input(input) => {
            texts.push(&input.prompt);
            texts.extend(&input.retry_prompt);
        }
        NodeKind::Condition(condition) => {
            exprs.extend(condition.branches.iter().map(|b| b.when.as_str()));
        }
        NodeKind::Set(set) => exprs.extend(set.assignments.iter().map(|a| a.value.as_str())),
        NodeKind::Lookup(lookup) => exprs.extend(lookup.params.values().map(String::as_str)),
        NodeKind::Handoff(handoff) => {
            texts.push(&handoff.reason);
            texts.extend(&handoff.summary);
            texts.extend(&handoff.message);
        }
        NodeKind::Call(call) => exprs.extend(call.inputs.values().map(String::as_str)),
    }
    (exprs, texts)
}

// ---- Conversations -----------------------------------------------------------------------

/// One abstract thing a visitor, a connector, an agent or the runtime does. [`resolve`] turns
/// it into an [`Input`] for the session as it is at that moment.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Whatever the session waits for, done plausibly: press button `n` (modulo), type a valid
    /// answer, answer the lookup (from the fixtures, with a row, or with nothing, by `n`),
    /// hand back, fire the armed timer, or start over after the end. Keeps conversations going.
    Proceed(usize),
    /// Presses button `n` (modulo the buttons on offer); a stale id when none are on offer.
    Pick(usize),
    /// Types something.
    Type(Typed),
    /// The connector answers the pending lookup (or a lookup that is not pending).
    Answer(Answer),
    /// The runtime fires armed timer `n` (modulo the armed timers), or `inactivity` when no
    /// timer is armed (which the engine must refuse).
    FireTimer(usize),
    /// An agent hands the conversation back.
    HandBack(HandBackSpec),
    /// Starts over.
    Restart,
    /// Cancels the conversation.
    Cancel,
    /// An input that does not fit the session's state.
    Stale(Stale),
}

/// What the visitor types.
#[derive(Debug, Clone, PartialEq)]
pub enum Typed {
    /// The label of button `n` on offer (modulo), as shown.
    OptionLabel(usize),
    /// The 1-based number of button `n` on offer (modulo).
    OptionNumber(usize),
    /// A well-formed answer (`n`-th of a list) for the input type last asked for.
    Valid(usize),
    /// A malformed answer for the input type last asked for.
    Invalid(usize),
    /// A global keyword, in various spellings (人工, agent, 取消, cancel, 重新开始, restart, …).
    Keyword(usize),
    /// One of [`SAMPLES`]: numbers, emails, dates, phone numbers and junk.
    Sample(usize),
    /// Any text.
    Free(String),
}

/// How the connector answers a lookup.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// What the [`World`]'s fixtures say for the pending request.
    Fixture,
    Rows(Vec<BTreeMap<String, Value>>),
    Empty,
    Error(String),
}

/// How an agent hands the conversation back.
#[derive(Debug, Clone, PartialEq)]
pub struct HandBackSpec {
    pub at: Option<At>,
    pub set: Option<(usize, Assign)>,
}

/// Where the agent wants the bot to continue.
#[derive(Debug, Clone, PartialEq)]
pub enum At {
    /// The `n`-th node of the session's path (modulo), stripped of any `flow/` prefix.
    Visited(usize),
    /// A node no flow has.
    Unknown,
}

/// A variable the agent sets: the `n`-th of the current frame (modulo), to …
#[derive(Debug, Clone, PartialEq)]
pub enum Assign {
    /// … a value of the same kind as its current value, made from this one.
    Fitting(Value),
    /// … this value, whatever its kind.
    Raw(Value),
    /// … `null`.
    Null,
    /// A variable the flow does not have.
    Unknown(Value),
}

/// Inputs that come at the wrong moment.
#[derive(Debug, Clone, PartialEq)]
pub enum Stale {
    /// `start` again.
    Start,
    /// A button id that is not on offer.
    Choice(String),
    /// An answer to a lookup request that is not pending (the pending number plus `n`, `n > 0`).
    Lookup(u64),
    /// A timer that is not armed.
    Timer(String),
}

/// An action and the time that passes before it.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    pub after: Millis,
    pub action: Action,
}

/// A whole conversation: when it starts, how, and what happens after.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    pub now: Millis,
    pub start: StartInput,
    pub turns: Vec<Turn>,
}

/// Spellings of the default global keywords, and a non-keyword that looks like one.
pub const KEYWORDS: &[&str] = &[
    "人工",
    "转人工",
    "人工客服",
    "agent",
    " AGENT ",
    "human",
    "取消",
    "cancel",
    "Cancel",
    "重新开始",
    "restart",
    " RESTART ",
    "客服",
    "agents",
];

/// Texts of every shape a visitor might send: numbers, emails, dates, phones, and junk.
pub const SAMPLES: &[&str] = &[
    "42",
    "-3.5",
    "1,299",
    "１２３",
    "0",
    "1e308",
    "1e-300",
    "123456789.123456789",
    "0.1",
    "NaN",
    "inf",
    "a@b.cn",
    "ada.lovelace@example.com",
    "not@an@email",
    "2026-05-01",
    "2024/2/29",
    "2023-02-29",
    "13800138000",
    "+86 138-0013-8000",
    "12345",
    "",
    "   ",
    "\u{0}",
    "🙂🙂🙂",
    "{{num0}}",
    "<script>alert(1)</script>",
    "'; DROP TABLE orders; --",
    "o0",
    "1",
    "2",
    "是",
    "yes",
    "KF100001",
    "kf100001",
];

fn valid_answers(input_type: InputType) -> &'static [&'static str] {
    match input_type {
        InputType::Text => &["KF100001", "hello", "你好", "yes", "是"],
        InputType::Number => &[
            "42",
            "3.5",
            "1,299",
            "１２",
            "0",
            "-7",
            "1e6",
            "0.30000000000000004",
            "99999999999",
            "123456789.123456789",
            "1e308",
        ],
        InputType::Email => &["a@b.cn", "ada.lovelace@example.com", "客服@example.com"],
        InputType::Phone => &[
            "138-0013 8000",
            "+86 138 0013 8000",
            "(010) 6552 9988",
            "13800138000",
        ],
        InputType::Date => &["2026-05-01", "2024/2/29", "1999.12.31", "2026-12-31"],
    }
}

fn invalid_answers(input_type: InputType) -> &'static [&'static str] {
    match input_type {
        InputType::Text => &["", "   ", "\n"],
        InputType::Number => &["twelve", "1..2", "", "NaN", "inf", "1e999", "--1"],
        InputType::Email => &["a@b", "a b@c.cn", "@x.cn", "x@.cn", "a@@b.cn"],
        InputType::Phone => &["12345", "phone", "138001380001380013", "+"],
        InputType::Date => &["2023-02-29", "2026-13-01", "yesterday", "2026-1", "0-01-01"],
    }
}

/// How a conversation starts: session id (which decides A/B buckets), locale, channel, time
/// zone, and remembered `user` variables (some fitting the generated flows' variables).
pub fn start() -> impl Strategy<Value = StartInput> {
    (
        prop_oneof![Just("session-1".to_owned()), "[a-z0-9-]{1,16}"],
        among(&["zh-CN", "en", "en-US", "zh-TW", "fr", ""]),
        among(&["web", "wechat", "terminal"]),
        -720i32..=840,
        prop::collection::btree_map(
            among(&["num0", "str0", "flag0", "tags0", "vip", "name"]),
            value(),
            0..3,
        ),
    )
        .prop_map(
            |(session_id, locale, channel, tz_offset_minutes, user)| StartInput {
                session_id,
                locale: locale.into(),
                channel: channel.into(),
                tz_offset_minutes,
                user: user.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            },
        )
}

/// Numbers as JSON carries them: finite, mostly small and short, some huge, tiny or with
/// all 17 significant digits.
pub fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => (-1000i32..100_000).prop_map(f64::from),
        // A whole number of up to 15 digits over a power of ten is read back exactly.
        // Prices and amounts with a few decimals.
        2 => (-999_999_999_999_999i64..=999_999_999_999_999, 0i32..=8).prop_map(|(n, d)| {
            #[allow(clippy::cast_precision_loss, reason = "below 2^53, so exact")]
            let n = n as f64;
            n / 10f64.powi(d)
        }),
        1 => among(&[
            0.1,
            2.5,
            -0.0,
            1e-7,
            1e21,
            1e308,
            -1e308,
            9_007_199_254_740_993.0,
            9.003_722_017_980_587e287,
            f64::MAX,
            f64::MIN_POSITIVE,
        ]),
        1 => prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO,
    ]
}

/// Random values as connectors and agents send them (JSON, so numbers are finite).
pub fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        3 => number().prop_map(Value::Number),
        3 => prop_oneof![among(STRING_WORDS).prop_map(str::to_owned), "\\PC{0,8}"]
            .prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::List),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4).prop_map(Value::Map),
        ]
    })
}

/// A lookup row like a shop's connector returns: `id`, `name`, `price`, `status`, and some
/// random fields.
pub fn row() -> impl Strategy<Value = BTreeMap<String, Value>> {
    (
        prop::option::weighted(0.9, "[A-Z]{2}[0-9]{4}"),
        prop::option::weighted(0.8, among(STRING_WORDS)),
        prop::option::weighted(
            0.6,
            prop_oneof![(0u32..100_000).prop_map(|c| f64::from(c) / 100.0), number()],
        ),
        prop::option::weighted(
            0.5,
            among(&["shipped", "pending", "delivered", "cancelled"]),
        ),
        prop::collection::btree_map("[a-z]{1,6}", value(), 0..2),
    )
        .prop_map(|(id, name, price, status, mut extra)| {
            if let Some(id) = id {
                extra.insert("id".into(), Value::String(id));
            }
            if let Some(name) = name {
                extra.insert("name".into(), Value::String(name.into()));
            }
            if let Some(price) = price {
                extra.insert("price".into(), Value::Number(price));
            }
            if let Some(status) = status {
                extra.insert("status".into(), Value::String(status.into()));
            }
            extra
        })
}

fn typed() -> impl Strategy<Value = Typed> {
    prop_oneof![
        3 => any::<usize>().prop_map(Typed::OptionLabel),
        1 => any::<usize>().prop_map(Typed::OptionNumber),
        4 => any::<usize>().prop_map(Typed::Valid),
        2 => any::<usize>().prop_map(Typed::Invalid),
        2 => any::<usize>().prop_map(Typed::Keyword),
        2 => any::<usize>().prop_map(Typed::Sample),
        1 => prop_oneof![3 => "\\PC{0,16}", 1 => ".{0,8}"].prop_map(Typed::Free),
    ]
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        3 => Just(Answer::Fixture),
        3 => prop::collection::vec(row(), 1..4).prop_map(Answer::Rows),
        1 => Just(Answer::Empty),
        1 => among(&["timeout", "connection refused", ""]).prop_map(|e| Answer::Error(e.into())),
    ]
}

fn hand_back() -> impl Strategy<Value = HandBackSpec> {
    let at = prop_oneof![4 => any::<usize>().prop_map(At::Visited), 1 => Just(At::Unknown)];
    let assign = prop_oneof![
        4 => value().prop_map(Assign::Fitting),
        1 => value().prop_map(Assign::Raw),
        1 => Just(Assign::Null),
        1 => value().prop_map(Assign::Unknown),
    ];
    (
        prop::option::weighted(0.3, at),
        prop::option::weighted(0.3, (any::<usize>(), assign)),
    )
        .prop_map(|(at, set)| HandBackSpec { at, set })
}

fn stale() -> impl Strategy<Value = Stale> {
    prop_oneof![
        Just(Stale::Start),
        among(&["nope", "o9", "", "99"]).prop_map(|s| Stale::Choice(s.into())),
        (1u64..3).prop_map(Stale::Lookup),
        among(&["wait:nowhere", "inactivity", ""]).prop_map(|s| Stale::Timer(s.into())),
    ]
}

/// One random action.
pub fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        10 => any::<usize>().prop_map(Action::Proceed),
        3 => any::<usize>().prop_map(Action::Pick),
        6 => typed().prop_map(Action::Type),
        3 => answer().prop_map(Action::Answer),
        2 => any::<usize>().prop_map(Action::FireTimer),
        2 => hand_back().prop_map(Action::HandBack),
        1 => Just(Action::Restart),
        1 => Just(Action::Cancel),
        1 => stale().prop_map(Action::Stale),
    ]
}

/// The time before an action: mostly seconds, sometimes minutes, rarely days.
pub fn pause() -> impl Strategy<Value = Millis> {
    prop_oneof![
        5 => 0i64..5_000,
        3 => 5_000i64..600_000,
        1 => 600_000i64..(3 * 86_400_000),
    ]
}

/// Up to 40 actions, each after a random pause.
pub fn actions() -> impl Strategy<Value = Vec<Turn>> {
    actions_up_to(40)
}

/// Up to `most` actions, each after a random pause.
pub fn actions_up_to(most: usize) -> impl Strategy<Value = Vec<Turn>> {
    prop::collection::vec(
        (pause(), action()).prop_map(|(after, action)| Turn { after, action }),
        0..=most,
    )
}

/// A conversation: a start time within a year of [`DEFAULT_START`], a start, and up to 40
/// actions.
pub fn script() -> impl Strategy<Value = Script> {
    (0i64..(365 * 86_400_000), start(), actions()).prop_map(|(offset, start, turns)| Script {
        now: DEFAULT_START + offset,
        start,
        turns,
    })
}

/// What the outside world knows besides the session: canned connector answers, and what the
/// engine asked for last (the input type of the last question, the last lookup request).
#[derive(Debug, Clone, Default)]
pub struct World {
    pub fixtures: Fixtures,
    asked: Option<Expect>,
    lookup: Option<LookupRequest>,
}

impl World {
    pub fn new(fixtures: Fixtures) -> World {
        World {
            fixtures,
            asked: None,
            lookup: None,
        }
    }

    /// Remembers the questions and lookup requests among a step's effects.
    pub fn observe(&mut self, step: &Step) {
        for effect in &step.effects {
            match effect {
                Effect::Ask { expect, .. } => self.asked = Some(expect.clone()),
                Effect::Lookup(request) => self.lookup = Some(request.clone()),
                _ => {}
            }
        }
    }
}

fn pick<'a>(list: &'a [&'a str], n: usize) -> &'a str {
    list.get(n % list.len().max(1)).copied().unwrap_or_default()
}

/// Turns `action` into the input a real visitor, connector, agent or runtime would send to a
/// session in the state `session` is in. Actions that make no sense now become inputs the
/// engine must refuse (a button press with no buttons on offer, a stale lookup answer).
pub fn resolve(action: &Action, session: &Session, world: &World) -> Input {
    let offered = match &session.waiting {
        Waiting::Choice { options, .. } => options.as_slice(),
        _ => &[],
    };
    match action {
        Action::Proceed(n) => proceed(*n, session, world),
        Action::Pick(n) => match offered.get(n % offered.len().max(1)) {
            Some(option) => Input::Choice(option.id.clone()),
            None => Input::Choice("o0".into()),
        },
        Action::Type(typed) => Input::Text(match typed {
            Typed::OptionLabel(n) => offered
                .get(n % offered.len().max(1))
                .map_or_else(|| "o0".into(), |o| o.label.clone()),
            Typed::OptionNumber(n) => (n % offered.len().max(1) + 1).to_string(),
            Typed::Valid(n) => match &world.asked {
                Some(Expect::Input { input_type }) => {
                    pick(valid_answers(*input_type), *n).to_owned()
                }
                _ => offered
                    .get(n % offered.len().max(1))
                    .map_or_else(|| "hello".into(), |o| o.label.clone()),
            },
            Typed::Invalid(n) => match &world.asked {
                Some(Expect::Input { input_type }) => {
                    pick(invalid_answers(*input_type), *n).to_owned()
                }
                _ => "no such option".into(),
            },
            Typed::Keyword(n) => pick(KEYWORDS, *n).to_owned(),
            Typed::Sample(n) => pick(SAMPLES, *n).to_owned(),
            Typed::Free(text) => text.clone(),
        }),
        Action::Answer(answer) => {
            let request = match &session.waiting {
                Waiting::Lookup { request, .. } => *request,
                // Nothing is pending: answer the last request, which is stale by now.
                _ => session.next_request.saturating_sub(1),
            };
            let outcome = match answer {
                Answer::Fixture => match &world.lookup {
                    Some(pending) if pending.request == request => world.fixtures.answer(pending),
                    _ => LookupOutcome::Rows(Vec::new()),
                },
                Answer::Rows(rows) => LookupOutcome::Rows(rows.clone()),
                Answer::Empty => LookupOutcome::Rows(Vec::new()),
                Answer::Error(e) => LookupOutcome::Error(e.clone()),
            };
            Input::LookupResult(LookupResult { request, outcome })
        }
        Action::FireTimer(n) => {
            let armed: Vec<&String> = session.timers.keys().collect();
            match armed.get(n % armed.len().max(1)) {
                Some(id) => Input::Timer((*id).clone()),
                None => Input::Timer(crate::engine::INACTIVITY_TIMER.into()),
            }
        }
        Action::HandBack(spec) => Input::HandBack(hand_back_input(spec, session)),
        Action::Restart => Input::Restart,
        Action::Cancel => Input::Cancel,
        Action::Stale(stale) => match stale {
            Stale::Start => Input::Start(StartInput {
                session_id: session.session_id.clone(),
                ..StartInput::default()
            }),
            Stale::Choice(id) => Input::Choice(id.clone()),
            Stale::Lookup(ahead) => {
                let pending = match &session.waiting {
                    Waiting::Lookup { request, .. } => *request,
                    _ => session.next_request,
                };
                Input::LookupResult(LookupResult {
                    request: pending.saturating_add(*ahead),
                    outcome: LookupOutcome::Rows(Vec::new()),
                })
            }
            Stale::Timer(id) => Input::Timer(id.clone()),
        },
    }
}

fn proceed(n: usize, session: &Session, world: &World) -> Input {
    match &session.waiting {
        Waiting::NotStarted => Input::Start(StartInput::default()),
        Waiting::Choice { options, .. } => Input::Choice(
            options
                .get(n % options.len().max(1))
                .map(|o| o.id.clone())
                .unwrap_or_default(),
        ),
        Waiting::Input { .. } => match &world.asked {
            Some(Expect::Input { input_type }) => {
                Input::Text(pick(valid_answers(*input_type), n).to_owned())
            }
            _ => Input::Text("hello".into()),
        },
        Waiting::Lookup { request, .. } => {
            let outcome = match (n % 3, &world.lookup) {
                (0, Some(pending)) if pending.request == *request => world.fixtures.answer(pending),
                (1, _) => LookupOutcome::Rows(Vec::new()),
                _ => LookupOutcome::Rows(vec![
                    [
                        ("id".to_owned(), Value::String(format!("KF{n:06}"))),
                        ("name".to_owned(), Value::String("phones".into())),
                        ("price".to_owned(), Value::Number(12.5)),
                        ("status".to_owned(), Value::String("shipped".into())),
                    ]
                    .into(),
                ]),
            };
            Input::LookupResult(LookupResult {
                request: *request,
                outcome,
            })
        }
        Waiting::Agent { .. } => Input::HandBack(HandBack::default()),
        Waiting::Timer { timer, .. } => Input::Timer(timer.clone()),
        Waiting::Ended { .. } => Input::Restart,
    }
}

fn hand_back_input(spec: &HandBackSpec, session: &Session) -> HandBack {
    let node = spec.at.as_ref().map(|at| match at {
        At::Visited(n) => session
            .path
            .get(n % session.path.len().max(1))
            .map(|entry| entry.rsplit('/').next().unwrap_or(entry).to_owned())
            .unwrap_or_else(|| "n0".into()),
        At::Unknown => "no-such-node".into(),
    });
    let mut vars = BTreeMap::new();
    if let Some((n, assign)) = &spec.set {
        let current: Vec<(&String, &Value)> = session
            .frames
            .last()
            .map(|f| f.vars.iter().collect())
            .unwrap_or_default();
        let chosen = current.get(n % current.len().max(1)).copied();
        match (assign, chosen) {
            (Assign::Unknown(value), _) => {
                vars.insert("no_such_variable".to_owned(), value.clone());
            }
            (_, None) => {}
            (Assign::Fitting(seed), Some((name, now))) => {
                vars.insert(name.clone(), fitting(now, seed));
            }
            (Assign::Raw(value), Some((name, _))) => {
                vars.insert(name.clone(), value.clone());
            }
            (Assign::Null, Some((name, _))) => {
                vars.insert(name.clone(), Value::Null);
            }
        }
    }
    HandBack { node, vars }
}

/// A value of the same kind as `like`, made from `seed` where the kinds agree.
fn fitting(like: &Value, seed: &Value) -> Value {
    match (like, seed) {
        (Value::Null, _) => Value::Null,
        (Value::Bool(_), Value::Bool(_))
        | (Value::Number(_), Value::Number(_))
        | (Value::String(_), Value::String(_))
        | (Value::Map(_), Value::Map(_)) => seed.clone(),
        (Value::Bool(b), _) => Value::Bool(!b),
        (Value::Number(n), _) => Value::Number(n + 1.0),
        (Value::String(s), _) => Value::String(format!("{s}!")),
        // An element of the list, repeated, fits whatever the element type is.
        (Value::List(items), _) => {
            Value::List(items.iter().chain(items.first()).cloned().collect())
        }
        (Value::Map(_), _) => Value::Map(BTreeMap::new()),
    }
}

/// Runs a conversation on an engine, one input at a time, recording every step.
pub struct Player<'e> {
    pub engine: &'e dyn Engine,
    pub session: Session,
    pub now: Millis,
    pub world: World,
}

impl<'e> Player<'e> {
    /// A player with a fresh session, at `now`.
    pub fn new(engine: &'e dyn Engine, world: World, now: Millis) -> Player<'e> {
        Player {
            engine,
            session: engine.new_session(),
            now,
            world,
        }
    }

    /// Feeds one input at the current time.
    pub fn input(&mut self, input: Input) -> Played {
        let step = self.engine.step(&mut self.session, &input, self.now);
        self.world.observe(&step);
        Played {
            input,
            now: self.now,
            step,
            session: self.session.clone(),
        }
    }

    /// Lets `turn.after` pass, then resolves and feeds the turn's action. A timer fires no
    /// earlier than it is due, as the runtime would fire it.
    pub fn turn(&mut self, turn: &Turn) -> Played {
        self.now = self.now.saturating_add(turn.after);
        let input = resolve(&turn.action, &self.session, &self.world);
        if let Input::Timer(id) = &input
            && let Some(&at) = self.session.timers.get(id)
        {
            self.now = self.now.max(at);
        }
        self.input(input)
    }
}

/// Plays `script` on `engine`: the start, then every turn. Returns every step, the start first.
pub fn play(engine: &dyn Engine, script: &Script, world: World) -> Vec<Played> {
    let mut player = Player::new(engine, world, script.now);
    let mut played = Vec::with_capacity(script.turns.len() + 1);
    played.push(player.input(Input::Start(script.start.clone())));
    for turn in &script.turns {
        played.push(player.turn(turn));
    }
    played
}
