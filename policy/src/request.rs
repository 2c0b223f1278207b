//! What a decision is asked about: who (`Subject`), what (`Request::action`), on which
//! `Resource`, in which `Context` (the time, the channel, the address, …).
//!
//! Each part keeps the value its condition root sees (`agent`, `resource`, `context`) ready
//! made, so a decision builds nothing: the runtime makes a subject once per signed-in agent and
//! a context once per request.

use std::collections::BTreeMap;

use flows::Value;
use flows::engine::Millis;
use flows::engine::support::civil;

/// Sets a field of a value made as a map (every value this module makes is one).
fn set(value: &mut Value, name: impl Into<String>, field: Value) {
    if let Value::Map(map) = value {
        map.insert(name.into(), field);
    }
}

fn strings(items: &[String]) -> Value {
    Value::List(items.iter().cloned().map(Value::String).collect())
}

/// Who asks: an agent (or any signed-in person) with their teams, roles and attributes.
///
/// In conditions it is `agent`: `agent.id`, `agent.teams`, `agent.roles`, and every attribute
/// (`agent.service_history`, `agent.region`, …).
#[derive(Debug, Clone, PartialEq)]
pub struct Subject {
    id: String,
    teams: Vec<String>,
    roles: Vec<String>,
    value: Value,
}

impl Subject {
    /// The names a subject's own fields have in conditions; attributes cannot take them.
    pub const RESERVED: [&'static str; 3] = ["id", "teams", "roles"];

    pub fn new(id: impl Into<String>) -> Subject {
        let mut subject = Subject {
            id: id.into(),
            teams: Vec::new(),
            roles: Vec::new(),
            value: Value::Map(BTreeMap::new()),
        };
        set(&mut subject.value, "id", Value::String(subject.id.clone()));
        set(&mut subject.value, "teams", Value::List(Vec::new()));
        set(&mut subject.value, "roles", Value::List(Vec::new()));
        subject
    }

    /// Adds a team (department) the subject belongs to.
    #[must_use]
    pub fn team(mut self, team: impl Into<String>) -> Subject {
        self.teams.push(team.into());
        let teams = strings(&self.teams);
        set(&mut self.value, "teams", teams);
        self
    }

    /// Adds a role the subject has.
    #[must_use]
    pub fn role(mut self, role: impl Into<String>) -> Subject {
        self.roles.push(role.into());
        let roles = strings(&self.roles);
        set(&mut self.value, "roles", roles);
        self
    }

    /// Sets an attribute conditions can read as `agent.<name>`. The names in
    /// [`Subject::RESERVED`] belong to the subject's own fields: setting them does nothing.
    #[must_use]
    pub fn attr(mut self, name: impl Into<String>, value: Value) -> Subject {
        let name = name.into();
        if !Self::RESERVED.contains(&name.as_str()) {
            set(&mut self.value, name, value);
        }
        self
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn teams(&self) -> &[String] {
        &self.teams
    }

    pub fn roles(&self) -> &[String] {
        &self.roles
    }

    /// What conditions see as `agent`.
    pub fn value(&self) -> &Value {
        &self.value
    }
}

/// What is accessed: an entity (`customers`) and an id, with attributes conditions can read.
///
/// In conditions it is `resource`: `resource.entity`, `resource.id` and every attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    entity: String,
    id: String,
    value: Value,
}

impl Resource {
    pub const RESERVED: [&'static str; 2] = ["entity", "id"];

    pub fn new(entity: impl Into<String>, id: impl Into<String>) -> Resource {
        let mut resource = Resource {
            entity: entity.into(),
            id: id.into(),
            value: Value::Map(BTreeMap::new()),
        };
        set(
            &mut resource.value,
            "entity",
            Value::String(resource.entity.clone()),
        );
        set(
            &mut resource.value,
            "id",
            Value::String(resource.id.clone()),
        );
        resource
    }

    /// Sets an attribute conditions can read as `resource.<name>` (not `entity` or `id`).
    #[must_use]
    pub fn attr(mut self, name: impl Into<String>, value: Value) -> Resource {
        let name = name.into();
        if !Self::RESERVED.contains(&name.as_str()) {
            set(&mut self.value, name, value);
        }
        self
    }

    pub fn entity(&self) -> &str {
        &self.entity
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// What conditions see as `resource`.
    pub fn value(&self) -> &Value {
        &self.value
    }
}

/// The circumstances of a request. Time is an input, like everywhere in kefu's pure core.
///
/// In conditions it is `context`:
///
/// | field | value |
/// | --- | --- |
/// | `context.now` | milliseconds since 1970-01-01 UTC |
/// | `context.date` | the local date, `"2026-03-01"` |
/// | `context.time` | the local time of day, `"09:30"` (compare as strings) |
/// | `context.hour`, `context.minute` | numbers |
/// | `context.weekday` | 1 (Monday) … 7 (Sunday) |
/// | `context.channel` | `"web"`, `"wechat"`, `"console"`, … or `null` |
/// | `context.ip` | the caller's address as text, or `null` |
///
/// and every attribute set with [`Context::attr`].
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    now: Millis,
    value: Value,
}

impl Context {
    pub const RESERVED: [&'static str; 9] = [
        "now",
        "date",
        "time",
        "hour",
        "minute",
        "weekday",
        "tz_offset_minutes",
        "channel",
        "ip",
    ];

    /// A context at `now`, with local time in UTC.
    pub fn at(now: Millis) -> Context {
        Context::at_local(now, 0)
    }

    /// A context at `now`, with local time `tz_offset_minutes` east of UTC (480 for China).
    pub fn at_local(now: Millis, tz_offset_minutes: i32) -> Context {
        let c = civil(now, tz_offset_minutes);
        let mut map = BTreeMap::new();
        // Milliseconds since 1970 stay exact in an f64 until the year 287396.
        #[allow(clippy::cast_precision_loss)]
        let now_number = now as f64;
        map.insert("now".to_owned(), Value::Number(now_number));
        map.insert(
            "date".to_owned(),
            Value::String(format!("{:04}-{:02}-{:02}", c.year, c.month, c.day)),
        );
        map.insert(
            "time".to_owned(),
            Value::String(format!("{:02}:{:02}", c.hour, c.minute)),
        );
        map.insert("hour".to_owned(), Value::Number(f64::from(c.hour)));
        map.insert("minute".to_owned(), Value::Number(f64::from(c.minute)));
        map.insert("weekday".to_owned(), Value::Number(f64::from(c.weekday)));
        map.insert(
            "tz_offset_minutes".to_owned(),
            Value::Number(f64::from(tz_offset_minutes)),
        );
        map.insert("channel".to_owned(), Value::Null);
        map.insert("ip".to_owned(), Value::Null);
        Context {
            now,
            value: Value::Map(map),
        }
    }

    /// The channel the request came through (`web`, `wechat`, `console`, `api`, …).
    #[must_use]
    pub fn channel(mut self, channel: impl Into<String>) -> Context {
        set(&mut self.value, "channel", Value::String(channel.into()));
        self
    }

    /// The caller's IP address, as text (`"10.1.2.3"`, `"2001:db8::1"`).
    #[must_use]
    pub fn ip(mut self, ip: impl Into<String>) -> Context {
        set(&mut self.value, "ip", Value::String(ip.into()));
        self
    }

    /// Sets any other attribute conditions can read as `context.<name>` (not a name in
    /// [`Context::RESERVED`]).
    #[must_use]
    pub fn attr(mut self, name: impl Into<String>, value: Value) -> Context {
        let name = name.into();
        if !Self::RESERVED.contains(&name.as_str()) {
            set(&mut self.value, name, value);
        }
        self
    }

    pub fn now(&self) -> Millis {
        self.now
    }

    /// What conditions see as `context`.
    pub fn value(&self) -> &Value {
        &self.value
    }
}

/// One question: may `subject` do `action` on `resource`, in `context`?
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub subject: &'a Subject,
    pub action: &'a str,
    pub resource: &'a Resource,
    pub context: &'a Context,
}

impl<'a> Request<'a> {
    pub fn new(
        subject: &'a Subject,
        action: &'a str,
        resource: &'a Resource,
        context: &'a Context,
    ) -> Request<'a> {
        Request {
            subject,
            action,
            resource,
            context,
        }
    }
}
