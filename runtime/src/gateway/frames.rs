//! The frames of the visitor protocol (`docs/protocol.md`): what clients send, parsed with a
//! precise reason when they are wrong, and the server's frames.

use serde::Deserialize;
use serde_json::json;

/// A frame from a client.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Start {
        flow: String,
        #[serde(default)]
        locale: Option<String>,
        #[serde(default = "default_tz_offset")]
        tz_offset_minutes: i32,
        #[serde(default)]
        channel: Option<String>,
        /// Who the visitor is, as the host page knows them (`email`, `phone`, `id`, `name`):
        /// the console looks their customer record up with it.
        #[serde(default)]
        visitor: std::collections::BTreeMap<String, String>,
    },
    Resume {
        conversation: String,
        token: String,
        #[serde(default)]
        last_seq: i64,
    },
    Message {
        client_id: String,
        text: String,
    },
    Choice {
        client_id: String,
        option: String,
    },
    Typing {
        on: bool,
    },
    Read {
        seq: i64,
    },
    Ack {
        seq: i64,
    },
    Ping {},
}

/// China Standard Time, where most visitors are: the offset when the client gives none.
fn default_tz_offset() -> i32 {
    480
}

/// The longest client id.
pub const MAX_CLIENT_ID: usize = 64;

/// Why a start frame's `visitor` identity is refused: at most 8 keys of 1–32 lowercase letters,
/// digits or `_`, each value at most 200 characters.
pub fn check_visitor(visitor: &std::collections::BTreeMap<String, String>) -> Result<(), String> {
    if visitor.len() > 8 {
        return Err(format!("`visitor` has {} keys; at most 8", visitor.len()));
    }
    for (key, value) in visitor {
        let key_ok = (1..=32).contains(&key.len())
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !key_ok {
            return Err(format!(
                "`visitor` key `{key}` must be 1–32 lowercase letters, digits or `_`"
            ));
        }
        if value.chars().count() > 200 {
            return Err(format!("`visitor.{key}` is longer than 200 characters"));
        }
    }
    Ok(())
}

impl ClientFrame {
    /// Parses a text frame. The error is a sentence for the `bad_frame` error's message, with
    /// serde's position in the frame.
    pub fn parse(text: &str) -> Result<ClientFrame, String> {
        // Unknown fields are ignored (serde's default), as the protocol says.
        serde_json::from_str(text).map_err(|error| {
            match serde_json::from_str::<serde_json::Value>(text) {
                Ok(value) if !value.is_object() => {
                    "the frame must be a JSON object like {\"type\":\"message\",…}".to_owned()
                }
                _ => describe(&error),
            }
        })
    }
}

fn describe(error: &serde_json::Error) -> String {
    let message = error.to_string();
    if message.contains("missing field `type`") {
        return "the frame has no `type` (expected an object like {\"type\":\"message\",…})"
            .to_owned();
    }
    format!("the frame is not a valid client frame: {message}")
}

/// Whether `id` is a valid client id: 1–64 characters of letters, digits, `-`, `_` and `.`
/// (the server's own ids contain `:`, so a client cannot take one of them).
pub fn valid_client_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_CLIENT_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// An `error` frame.
pub fn error_frame(code: &str, message: &str, client_id: Option<&str>, fatal: bool) -> String {
    let mut frame = json!({ "type": "error", "code": code, "message": message, "fatal": fatal });
    if let Some(client_id) = client_id {
        frame["client_id"] = json!(client_id);
    }
    frame.to_string()
}

/// The `rate_limited` error frame.
pub fn rate_limited_frame(client_id: Option<&str>, retry_after_ms: u64) -> String {
    let mut frame = json!({
        "type": "error", "code": "rate_limited", "fatal": false,
        "message": "too many messages; slow down",
        "retry_after_ms": retry_after_ms,
    });
    if let Some(client_id) = client_id {
        frame["client_id"] = json!(client_id);
    }
    frame.to_string()
}

pub fn ack_frame(client_id: &str, seq: i64) -> String {
    json!({ "type": "ack", "client_id": client_id, "seq": seq }).to_string()
}

#[cfg(test)]
mod tests {
    use super::{ClientFrame, valid_client_id};

    #[test]
    fn frames_parse_with_defaults_and_extra_fields() {
        assert_eq!(
            ClientFrame::parse(r#"{"type":"start","flow":"faq-hours"}"#),
            Ok(ClientFrame::Start {
                flow: "faq-hours".to_owned(),
                locale: None,
                tz_offset_minutes: 480,
                channel: None,
                visitor: std::collections::BTreeMap::new(),
            })
        );
        assert_eq!(
            ClientFrame::parse(r#"{"type":"message","client_id":"a","text":"hi","x":1}"#),
            Ok(ClientFrame::Message {
                client_id: "a".to_owned(),
                text: "hi".to_owned()
            })
        );
        assert_eq!(
            ClientFrame::parse(r#"{"type":"ping"}"#),
            Ok(ClientFrame::Ping {})
        );
    }

    #[test]
    fn bad_frames_say_what_is_wrong() {
        let cases = [
            ("not json", "expected ident at line 1 column 2"),
            ("[1]", "the frame must be a JSON object"),
            (r#"{"text":"hi"}"#, "the frame has no `type`"),
            (r#"{"type":"shout"}"#, "unknown variant `shout`"),
            (
                r#"{"type":"message","text":"hi"}"#,
                "missing field `client_id`",
            ),
            (
                r#"{"type":"read","seq":"x","extra":true}"#,
                "invalid type: string \"x\", expected i64",
            ),
        ];
        for (frame, expected) in cases {
            let error = ClientFrame::parse(frame).err().unwrap_or_default();
            assert!(error.contains(expected), "{frame}: {error}");
        }
    }

    #[test]
    fn client_ids_are_short_and_plain() {
        assert!(valid_client_id("v-1.abc_D"));
        assert!(!valid_client_id(""));
        assert!(
            !valid_client_id("b:1:0"),
            "the server's own ids are reserved"
        );
        assert!(!valid_client_id(&"x".repeat(65)));
        assert!(!valid_client_id("空"));
    }
}
