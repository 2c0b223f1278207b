//! What a message says (`body` in the protocol, `messages.body` in the database), and the
//! `message` frame that carries a stored message to clients.

use flows::engine::{Card, Expect, Output};
use serde::{Deserialize, Serialize};

use crate::store::StoredMessage;

/// The body of a message; its `type` is also stored as the message's `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Body {
    Text {
        text: String,
    },
    /// A button the visitor pressed: the option id and the label they saw.
    Choice {
        option: String,
        label: String,
    },
    Image {
        url: String,
        alt: String,
    },
    Products {
        cards: Vec<Card>,
    },
    Carousel {
        cards: Vec<Card>,
    },
    /// A question of the bot, with buttons or the kind of answer it wants.
    Ask {
        prompt: String,
        expect: Expect,
    },
    /// A line from the system (queued, ended, …) rather than from a person or the bot.
    Notice {
        code: String,
        text: String,
    },
}

impl Body {
    /// The `type` of the body, stored as the message's `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Body::Text { .. } => "text",
            Body::Choice { .. } => "choice",
            Body::Image { .. } => "image",
            Body::Products { .. } => "products",
            Body::Carousel { .. } => "carousel",
            Body::Ask { .. } => "ask",
            Body::Notice { .. } => "notice",
        }
    }

    pub fn to_json(&self) -> String {
        // A body is strings, numbers and lists of them: serialising it cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

impl From<Output> for Body {
    fn from(output: Output) -> Body {
        match output {
            Output::Text { text } => Body::Text { text },
            Output::Image { url, alt } => Body::Image { url, alt },
            Output::Products { cards } => Body::Products { cards },
            Output::Carousel { cards } => Body::Carousel { cards },
        }
    }
}

/// The `message` frame of a stored message. The body is spliced in as stored (it was written
/// by [`Body::to_json`]), so sending a message never parses it again.
pub fn message_frame(message: &StoredMessage) -> String {
    let mut frame = String::with_capacity(message.body_json.len() + 96);
    frame.push_str(r#"{"type":"message","seq":"#);
    frame.push_str(&message.seq.to_string());
    frame.push_str(r#","sender":""#);
    frame.push_str(message.sender.as_str());
    frame.push_str(r#"","at":"#);
    frame.push_str(&message.at.to_string());
    if let Some(client_id) = &message.client_id {
        frame.push_str(r#","client_id":"#);
        frame.push_str(&serde_json::Value::from(client_id.as_str()).to_string());
    }
    frame.push_str(r#","body":"#);
    frame.push_str(&message.body_json);
    frame.push('}');
    frame
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::{Body, message_frame};
    use crate::store::{Sender, StoredMessage};

    #[test]
    fn a_message_frame_is_json_with_the_body_inside() {
        let body = Body::Text {
            text: "你好 \"quoted\"".to_owned(),
        };
        let message = StoredMessage {
            conversation: "c".to_owned(),
            seq: 7,
            sender: Sender::Visitor,
            kind: body.kind().to_owned(),
            body_json: body.to_json(),
            client_id: Some("a\"b".to_owned()),
            at: 1_767_580_000_000,
        };
        let frame: serde_json::Value = serde_json::from_str(&message_frame(&message)).unwrap();
        assert_eq!(
            frame,
            serde_json::json!({
                "type": "message", "seq": 7, "sender": "visitor", "at": 1_767_580_000_000_i64,
                "client_id": "a\"b", "body": {"type": "text", "text": "你好 \"quoted\""}
            })
        );
    }
}
