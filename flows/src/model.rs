//! The flow file format: the serde model of one flow document (schema version 2).
//!
//! Logic (variables, nodes, edges, events) is kept apart from layout (positions, groups,
//! comments), so that moving a box changes neither the logic nor the flow's content hash.
//! `docs/flow-format.md` is the prose specification of everything in this file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::value::{Type, Value};

/// The schema version this crate writes. Older versions are migrated on load (see `load`).
pub const SCHEMA_VERSION: u32 = 2;

/// A node id, unique within its flow. Kept as a plain string in files.
pub type NodeId = String;

/// One flow document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    pub schema_version: u32,
    /// Stable identifier, used by `call` nodes and by the server's URLs (`guided-shopping`).
    pub id: String,
    /// The published version this document is; conversations are pinned to it.
    #[serde(default = "one")]
    pub version: u32,
    pub name: Text,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Text>,
    /// The locale used when a text has no variant for the session's locale.
    #[serde(default = "default_locale")]
    pub default_locale: String,
    #[serde(default)]
    pub variables: Vec<Variable>,
    /// For flows that are called as sub-flows: which variables are passed in and returned.
    #[serde(default, skip_serializing_if = "Interface::is_empty")]
    pub interface: Interface,
    #[serde(default)]
    pub events: Events,
    #[serde(default)]
    pub settings: Settings,
    pub nodes: Vec<Node>,
    #[serde(default)]
    pub edges: Vec<Edge>,
    #[serde(default)]
    pub layout: Layout,
}

fn one() -> u32 {
    1
}

fn default_locale() -> String {
    "zh-CN".to_owned()
}

impl Flow {
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    pub fn variable(&self, name: &str) -> Option<&Variable> {
        self.variables.iter().find(|v| v.name == name)
    }

    /// The edge leaving `node` through `port`, if any.
    pub fn edge(&self, node: &str, port: &str) -> Option<&Edge> {
        self.edges.iter().find(|e| e.from == node && e.port == port)
    }
}

/// A user-visible text, either one string for every locale or one per locale:
/// `"Hello"` or `{"zh-CN": "你好", "en": "Hello"}`. Every variant may contain `{{expr}}` holes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Text {
    Plain(String),
    Localized(BTreeMap<String, String>),
}

impl Text {
    /// Picks the variant for `locale`: an exact match, then the same language (`zh` for
    /// `zh-TW`), then `fallback`, then the first variant in locale order.
    pub fn pick<'a>(&'a self, locale: &str, fallback: &str) -> &'a str {
        match self {
            Text::Plain(s) => s,
            Text::Localized(map) => pick_locale(map, locale, fallback).map_or("", String::as_str),
        }
    }

    /// Every variant with its locale (`None` for a plain text).
    pub fn variants(&self) -> Vec<(Option<&str>, &str)> {
        match self {
            Text::Plain(s) => vec![(None, s.as_str())],
            Text::Localized(map) => map
                .iter()
                .map(|(k, v)| (Some(k.as_str()), v.as_str()))
                .collect(),
        }
    }
}

/// The locale-fallback rule shared by texts and by the engine's own built-in messages.
pub fn pick_locale<'a, T>(
    map: &'a BTreeMap<String, T>,
    locale: &str,
    fallback: &str,
) -> Option<&'a T> {
    let i = pick_locale_index(map.keys().map(String::as_str), locale, fallback)?;
    map.values().nth(i)
}

/// The position, among `keys` (in sorted order), of the variant [`pick_locale`] chooses: the
/// exact locale, else the first of the same language, else `fallback`, else the first.
pub fn pick_locale_index<'k>(
    keys: impl Iterator<Item = &'k str> + Clone,
    locale: &str,
    fallback: &str,
) -> Option<usize> {
    fn language(tag: &str) -> &str {
        tag.split(['-', '_']).next().unwrap_or(tag)
    }
    let mut keys = keys.enumerate();
    keys.clone()
        .find(|(_, k)| *k == locale)
        .or_else(|| {
            keys.clone()
                .find(|(_, k)| language(k).eq_ignore_ascii_case(language(locale)))
        })
        .or_else(|| keys.clone().find(|(_, k)| *k == fallback))
        .or_else(|| keys.next())
        .map(|(i, _)| i)
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Text::Plain(s.to_owned())
    }
}

/// A declared variable. Expressions may only use declared variables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: Type,
    #[serde(default)]
    pub scope: Scope,
    /// The initial value; without one the variable starts as its type's zero value
    /// (`""`, `0`, `false`, `[]`, `{}`) and counts as "not set yet" for validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Where a variable's value lives: for this conversation only, or remembered for the user
/// across conversations (the runtime stores `user` variables and passes them in at start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    #[default]
    Conversation,
    User,
}

/// The contract of a flow used as a sub-flow: names of declared variables.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interface {
    #[serde(default)]
    pub inputs: Vec<String>,
    #[serde(default)]
    pub outputs: Vec<String>,
}

impl Interface {
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty() && self.outputs.is_empty()
    }
}

/// Global events: what visitors can say anywhere, and what happens on silence or failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "EventsFile")]
pub struct Events {
    pub agent: KeywordEvent,
    pub restart: KeywordEvent,
    pub cancel: KeywordEvent,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inactivity: Option<Inactivity>,
    pub error: ErrorEvent,
}

/// `events` as written in a file: a keyword event may leave out `keywords` (to turn it off,
/// say, or only to set a target) and then keeps its built-in ones.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsFile {
    #[serde(default)]
    agent: Option<KeywordEventFile>,
    #[serde(default)]
    restart: Option<KeywordEventFile>,
    #[serde(default)]
    cancel: Option<KeywordEventFile>,
    #[serde(default)]
    inactivity: Option<Inactivity>,
    #[serde(default)]
    error: ErrorEvent,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeywordEventFile {
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    keywords: Option<Vec<String>>,
    #[serde(default)]
    target: Option<NodeId>,
}

impl KeywordEventFile {
    fn or(written: Option<KeywordEventFile>, builtin: KeywordEvent) -> KeywordEvent {
        match written {
            None => builtin,
            Some(w) => KeywordEvent {
                enabled: w.enabled,
                keywords: w.keywords.unwrap_or(builtin.keywords),
                target: w.target,
            },
        }
    }
}

impl From<EventsFile> for Events {
    fn from(file: EventsFile) -> Self {
        Events {
            agent: KeywordEventFile::or(file.agent, KeywordEvent::agent()),
            restart: KeywordEventFile::or(file.restart, KeywordEvent::restart()),
            cancel: KeywordEventFile::or(file.cancel, KeywordEvent::cancel()),
            inactivity: file.inactivity,
            error: file.error,
        }
    }
}

impl Default for Events {
    fn default() -> Self {
        Events {
            agent: KeywordEvent::agent(),
            restart: KeywordEvent::restart(),
            cancel: KeywordEvent::cancel(),
            inactivity: None,
            error: ErrorEvent::default(),
        }
    }
}

/// A global keyword: when the visitor's whole message equals one of `keywords` (ignoring case
/// and surrounding whitespace) the event fires instead of the local transition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeywordEvent {
    pub enabled: bool,
    pub keywords: Vec<String>,
    /// Where to go instead of the built-in behaviour.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<NodeId>,
}

fn yes() -> bool {
    true
}

/// `a.to_lowercase() == b.to_lowercase()`, without allocating in the common case (every
/// visitor message is compared with every keyword).
fn same_lowercase(a: &str, b: &str) -> bool {
    // `to_lowercase` turns a word-final `Σ` into `ς`, which the char-by-char mapping does not.
    if a.contains('Σ') || b.contains('Σ') {
        return a.to_lowercase() == b.to_lowercase();
    }
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

impl KeywordEvent {
    fn with(keywords: &[&str]) -> Self {
        KeywordEvent {
            enabled: true,
            keywords: keywords.iter().map(|k| (*k).to_owned()).collect(),
            target: None,
        }
    }
    pub fn agent() -> Self {
        Self::with(&["人工", "转人工", "人工客服", "agent", "human"])
    }
    pub fn restart() -> Self {
        Self::with(&["重新开始", "restart"])
    }
    pub fn cancel() -> Self {
        Self::with(&["取消", "cancel"])
    }

    /// Whether `text` triggers this event.
    pub fn matches(&self, text: &str) -> bool {
        let text = text.trim();
        self.enabled && self.keywords.iter().any(|k| same_lowercase(k.trim(), text))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inactivity {
    /// Seconds of visitor silence, while the bot waits for the visitor, before the event fires.
    pub seconds: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<NodeId>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorEvent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<NodeId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Most nodes one turn may enter before the engine stops it as a runaway loop.
    #[serde(default = "default_step_budget")]
    pub step_budget: u32,
    /// The queue used by the global "agent" keyword when it has no target node.
    #[serde(default = "default_queue")]
    pub default_queue: String,
    /// The flow's own clock, in minutes east of UTC (480 for China Standard Time). When set,
    /// `sys.hour`, `sys.minute`, `sys.weekday` and `sys.date` use it, so that opening hours are
    /// the business's; when absent they use the visitor's offset from the start input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utc_offset_minutes: Option<i32>,
}

fn default_step_budget() -> u32 {
    100
}

fn default_queue() -> String {
    "general".to_owned()
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            step_budget: default_step_budget(),
            default_queue: default_queue(),
            utc_offset_minutes: None,
        }
    }
}

/// One node of the graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub id: NodeId,
    /// A human name shown in the designer and in diagnostics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(flatten)]
    pub kind: NodeKind,
}

impl Node {
    /// The label if there is one, else the id: how diagnostics name a node.
    pub fn display_name(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.id)
    }
}

/// The closed set of node kinds. Adding a variant must fail to compile until the interpreter,
/// the validator, the code generator and the designer all handle it: match exhaustively.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NodeKind {
    Start(Start),
    Message(Message),
    Choice(Choice),
    Input(InputNode),
    Condition(Condition),
    Set(SetNode),
    Lookup(Lookup),
    Handoff(Handoff),
    Wait(Wait),
    Call(Call),
    AbSplit(AbSplit),
    Jump(Jump),
    End(End),
}

impl NodeKind {
    pub fn name(&self) -> &'static str {
        match self {
            NodeKind::Start(_) => "start",
            NodeKind::Message(_) => "message",
            NodeKind::Choice(_) => "choice",
            NodeKind::Input(_) => "input",
            NodeKind::Condition(_) => "condition",
            NodeKind::Set(_) => "set",
            NodeKind::Lookup(_) => "lookup",
            NodeKind::Handoff(_) => "handoff",
            NodeKind::Wait(_) => "wait",
            NodeKind::Call(_) => "call",
            NodeKind::AbSplit(_) => "ab_split",
            NodeKind::Jump(_) => "jump",
            NodeKind::End(_) => "end",
        }
    }

    /// The output ports of this node, in display order, with whether each must be connected.
    pub fn ports(&self) -> Vec<Port> {
        let req = |name: &str| Port {
            name: name.to_owned(),
            required: true,
        };
        let opt = |name: &str| Port {
            name: name.to_owned(),
            required: false,
        };
        match self {
            NodeKind::Start(_) | NodeKind::Message(_) | NodeKind::Set(_) | NodeKind::Call(_) => {
                vec![req(port::NEXT)]
            }
            NodeKind::Choice(c) => match &c.dynamic {
                Some(_) => vec![req(port::SELECTED)],
                None => c.options.iter().map(|o| req(&o.id)).collect(),
            },
            NodeKind::Input(_) => vec![req(port::NEXT), req(port::INVALID)],
            NodeKind::Condition(c) => {
                let mut ports: Vec<Port> = c.branches.iter().map(|b| req(&b.id)).collect();
                ports.push(req(port::DEFAULT));
                ports
            }
            NodeKind::Lookup(_) => vec![req(port::OK), req(port::EMPTY), req(port::ERROR)],
            // Without a `return` edge, handing back ends the conversation (outcome `handed_back`).
            NodeKind::Handoff(_) => vec![opt(port::RETURN)],
            // Without a `reply` edge, a reply during the wait is stored and the wait goes on.
            NodeKind::Wait(_) => vec![req(port::TIMEOUT), opt(port::REPLY)],
            NodeKind::AbSplit(a) => a.variants.iter().map(|v| req(&v.id)).collect(),
            NodeKind::Jump(_) | NodeKind::End(_) => Vec::new(),
        }
    }

    /// Whether entering this node ends the turn and waits for something from outside
    /// (the visitor, a connector, an agent or a timer). Cycles must pass through one.
    pub fn is_wait_point(&self) -> bool {
        matches!(
            self,
            NodeKind::Choice(_)
                | NodeKind::Input(_)
                | NodeKind::Lookup(_)
                | NodeKind::Handoff(_)
                | NodeKind::Wait(_)
        )
    }
}

/// Well-known port names.
pub mod port {
    pub const NEXT: &str = "next";
    pub const SELECTED: &str = "selected";
    pub const INVALID: &str = "invalid";
    pub const DEFAULT: &str = "default";
    pub const OK: &str = "ok";
    pub const EMPTY: &str = "empty";
    pub const ERROR: &str = "error";
    pub const RETURN: &str = "return";
    pub const TIMEOUT: &str = "timeout";
    pub const REPLY: &str = "reply";
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub name: String,
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Start {}

/// Sends one or more parts to the visitor, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Part {
    /// Text with `{{expr}}` holes.
    Text { text: Text },
    Image {
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        alt: Option<Text>,
    },
    /// Product cards built from a list of maps (usually a lookup result). Each map's fields
    /// `id`, `name`, `price`, `image`, `url` and `description` fill the card.
    Products {
        /// An expression of type `list<map>` (or `list<any>`).
        from: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// Static cards, swiped horizontally.
    Carousel { cards: Vec<CardSpec> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardSpec {
    pub title: Text,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtitle: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Offers buttons. Static options each have their own port (named by the option id); options
/// built from a list leave through `selected` with the picked element stored in `save_as`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    pub prompt: Text,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<ChoiceOption>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic: Option<DynamicOptions>,
    /// Static options: stores the picked option's id; dynamic: the picked element.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save_as: Option<String>,
    /// Said (with the options again) when the visitor types something that is no option.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_prompt: Option<Text>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChoiceOption {
    pub id: String,
    pub label: Text,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynamicOptions {
    /// An expression giving a list; one button per element (at most `limit`, default 10).
    pub list: String,
    /// A template for each button's label, with the element bound to `item`.
    pub label: Text,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// Asks for a typed answer and validates it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputNode {
    pub prompt: Text,
    pub input_type: InputType,
    pub save_as: String,
    #[serde(default)]
    pub validation: Validation,
    /// How many times an invalid answer is asked for again before leaving through `invalid`.
    #[serde(default = "default_retries")]
    pub retries: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_prompt: Option<Text>,
}

fn default_retries() -> u32 {
    2
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputType {
    Text,
    Number,
    Email,
    Phone,
    Date,
}

impl InputType {
    /// The variable type the validated answer is stored as.
    pub fn value_type(self) -> Type {
        match self {
            InputType::Number => Type::Number,
            InputType::Text | InputType::Email | InputType::Phone | InputType::Date => Type::String,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            InputType::Text => "text",
            InputType::Number => "number",
            InputType::Email => "email",
            InputType::Phone => "phone",
            InputType::Date => "date",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validation {
    /// A regular expression the whole answer must match (text, email, phone, date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Bounds for numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Bounds on the answer's length in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
}

/// Takes the first branch whose condition is true, else `default`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub branches: Vec<Branch>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Branch {
    /// The branch's port name.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<Text>,
    /// A `bool` expression.
    pub when: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetNode {
    pub assignments: Vec<Assignment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    pub var: String,
    /// An expression whose type must fit the variable's.
    pub value: String,
}

/// Asks a connector for data. Rows come back as a `list<map>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lookup {
    pub connector: String,
    pub entity: String,
    #[serde(default = "default_operation")]
    pub operation: String,
    /// Parameter name → expression.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// A `list<…>` variable receives all rows; a `map` variable receives the first row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save_as: Option<String>,
}

fn default_operation() -> String {
    "find".to_owned()
}

/// Hands the conversation to people. The bot stays silent until an agent hands it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Handoff {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(default)]
    pub priority: Priority,
    pub reason: Text,
    /// A template summarising the conversation for the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Text>,
    /// Said to the visitor when the handoff happens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Text>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
    Urgent,
}

/// Pauses: leaves through `timeout` after `seconds`, or through `reply` if the visitor says
/// something first (stored in `save_as`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wait {
    pub seconds: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save_as: Option<String>,
}

/// Runs another flow and comes back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Call {
    /// The called flow's id.
    pub flow: String,
    /// The called flow's input variable → an expression in this flow.
    #[serde(default)]
    pub inputs: BTreeMap<String, String>,
    /// A variable of this flow → the called flow's output variable.
    #[serde(default)]
    pub outputs: BTreeMap<String, String>,
}

/// Sends each session down one variant, by weight, deterministically by session id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbSplit {
    pub variants: Vec<Variant>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub id: String,
    pub weight: u32,
}

/// Continues at another node without drawing an edge across the canvas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jump {
    pub target: NodeId,
}

/// Ends the conversation (or, in a sub-flow, returns to the caller).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct End {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

/// A connection from one node's output port to another node.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Edge {
    pub from: NodeId,
    pub port: String,
    pub to: NodeId,
}

/// Presentation only: ignored by validation, the engine and the content hash.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    #[serde(default)]
    pub nodes: BTreeMap<NodeId, Position>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Group>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comments: Vec<Comment>,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Position {
    pub x: f64,
    pub y: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub id: String,
    pub label: String,
    pub nodes: Vec<NodeId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Comment {
    pub id: String,
    pub text: String,
    pub position: Position,
}
