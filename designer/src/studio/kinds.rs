//! The palette's catalogue: every node kind with its names in both languages, a colour, and
//! the node a fresh drop creates.

use std::collections::BTreeMap;

use flows::model::{
    AbSplit, Branch, Call, Choice, ChoiceOption, Condition, End, Handoff, InputNode, InputType,
    Jump, Lookup, Message, Node, NodeKind, Part, Priority, SetNode, Start, Text, Validation,
    Variant, Wait,
};

use crate::console::i18n::Lang;

/// A kind as the palette lists it (`NodeKind::name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    pub name: &'static str,
    pub en: &'static str,
    pub zh: &'static str,
    /// One line saying what the kind does, for the palette's tooltip and screen readers.
    pub hint_en: &'static str,
    pub hint_zh: &'static str,
    pub color: &'static str,
}

impl Kind {
    pub fn label(self, lang: Lang) -> &'static str {
        match lang {
            Lang::Zh => self.zh,
            Lang::En => self.en,
        }
    }

    pub fn hint(self, lang: Lang) -> &'static str {
        match lang {
            Lang::Zh => self.hint_zh,
            Lang::En => self.hint_en,
        }
    }
}

/// Every kind, in palette order. A test checks that it matches `NodeKind` exactly.
pub const KINDS: [Kind; 13] = [
    Kind {
        name: "start",
        en: "Start",
        zh: "开始",
        hint_en: "Where the conversation begins",
        hint_zh: "对话从这里开始",
        color: "#16a34a",
    },
    Kind {
        name: "message",
        en: "Message",
        zh: "消息",
        hint_en: "Say something: text, a picture, product cards",
        hint_zh: "发送文字、图片或商品卡片",
        color: "#2563eb",
    },
    Kind {
        name: "choice",
        en: "Buttons",
        zh: "按钮选项",
        hint_en: "Ask a question with buttons",
        hint_zh: "用按钮提问",
        color: "#7c3aed",
    },
    Kind {
        name: "input",
        en: "Question",
        zh: "输入问题",
        hint_en: "Ask for text, a number, an e-mail, a phone number or a date",
        hint_zh: "询问文字、数字、邮箱、电话或日期",
        color: "#9333ea",
    },
    Kind {
        name: "condition",
        en: "Condition",
        zh: "条件",
        hint_en: "Branch on an expression",
        hint_zh: "按表达式分支",
        color: "#ea580c",
    },
    Kind {
        name: "set",
        en: "Set variables",
        zh: "设置变量",
        hint_en: "Store values in variables",
        hint_zh: "给变量赋值",
        color: "#0891b2",
    },
    Kind {
        name: "lookup",
        en: "Lookup",
        zh: "查询数据",
        hint_en: "Ask a connected system (products, orders, customers)",
        hint_zh: "查询外部系统（商品、订单、客户）",
        color: "#0d9488",
    },
    Kind {
        name: "handoff",
        en: "Hand off",
        zh: "转人工",
        hint_en: "Hand the conversation to an agent",
        hint_zh: "把对话转给人工客服",
        color: "#dc2626",
    },
    Kind {
        name: "wait",
        en: "Wait",
        zh: "等待",
        hint_en: "Wait for a while or for a reply",
        hint_zh: "等待一段时间或等待回复",
        color: "#64748b",
    },
    Kind {
        name: "call",
        en: "Sub-flow",
        zh: "子流程",
        hint_en: "Run another flow and come back",
        hint_zh: "调用另一个流程后返回",
        color: "#4f46e5",
    },
    Kind {
        name: "ab_split",
        en: "A/B split",
        zh: "A/B 分流",
        hint_en: "Send visitors down weighted paths",
        hint_zh: "按权重分流访客",
        color: "#c026d3",
    },
    Kind {
        name: "jump",
        en: "Jump",
        zh: "跳转",
        hint_en: "Continue at another step",
        hint_zh: "跳到另一个步骤",
        color: "#475569",
    },
    Kind {
        name: "end",
        en: "End",
        zh: "结束",
        hint_en: "End the conversation",
        hint_zh: "结束对话",
        color: "#334155",
    },
];

/// The catalogue entry of a kind name (`NodeKind::name`).
pub fn kind(name: &str) -> Kind {
    KINDS
        .iter()
        .copied()
        .find(|k| k.name == name)
        .unwrap_or(KINDS[0])
}

fn both(zh: &str, en: &str) -> Text {
    Text::Localized(BTreeMap::from([
        ("en".to_owned(), en.to_owned()),
        ("zh-CN".to_owned(), zh.to_owned()),
    ]))
}

/// The node a drop of kind `name` creates, with id `id`: filled in enough to be understood,
/// and (apart from its exits) valid where that is possible without knowing the flow.
pub fn new_node(name: &str, id: String) -> Option<Node> {
    let kind = match name {
        "start" => NodeKind::Start(Start {}),
        "message" => NodeKind::Message(Message {
            parts: vec![Part::Text {
                text: both("你好！", "Hello!"),
            }],
        }),
        "choice" => NodeKind::Choice(Choice {
            prompt: both("请选择：", "Please choose:"),
            options: vec![
                ChoiceOption {
                    id: "yes".to_owned(),
                    label: both("是", "Yes"),
                },
                ChoiceOption {
                    id: "no".to_owned(),
                    label: both("否", "No"),
                },
            ],
            dynamic: None,
            save_as: None,
            retry_prompt: None,
        }),
        "input" => NodeKind::Input(InputNode {
            prompt: both("请输入：", "Please type your answer:"),
            input_type: InputType::Text,
            save_as: "answer".to_owned(),
            validation: Validation::default(),
            retries: 2,
            retry_prompt: None,
        }),
        "condition" => NodeKind::Condition(Condition {
            branches: vec![Branch {
                id: "yes".to_owned(),
                label: None,
                when: "true".to_owned(),
            }],
        }),
        "set" => NodeKind::Set(SetNode {
            assignments: Vec::new(),
        }),
        "lookup" => NodeKind::Lookup(Lookup {
            connector: "shop".to_owned(),
            entity: "products".to_owned(),
            operation: "search".to_owned(),
            params: BTreeMap::new(),
            save_as: None,
        }),
        "handoff" => NodeKind::Handoff(Handoff {
            queue: None,
            team: None,
            priority: Priority::Normal,
            reason: both("访客需要人工帮助", "The visitor needs a person"),
            summary: None,
            message: None,
        }),
        "wait" => NodeKind::Wait(Wait {
            seconds: 60,
            save_as: None,
        }),
        "call" => NodeKind::Call(Call {
            flow: String::new(),
            inputs: BTreeMap::new(),
            outputs: BTreeMap::new(),
        }),
        "ab_split" => NodeKind::AbSplit(AbSplit {
            variants: vec![
                Variant {
                    id: "a".to_owned(),
                    weight: 50,
                },
                Variant {
                    id: "b".to_owned(),
                    weight: 50,
                },
            ],
        }),
        "jump" => NodeKind::Jump(Jump {
            target: String::new(),
        }),
        "end" => NodeKind::End(End { outcome: None }),
        _ => return None,
    };
    Some(Node {
        id,
        label: None,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_in_the_palette_makes_a_node_of_that_kind() {
        for kind in KINDS {
            let node = new_node(kind.name, "n".to_owned()).expect(kind.name);
            assert_eq!(node.kind.name(), kind.name);
        }
        assert!(new_node("teleport", "n".to_owned()).is_none());
    }

    #[test]
    fn the_palette_lists_every_node_kind_once() {
        // `NodeKind::name` of every variant, listed by a match that stops compiling when a
        // kind is added: the palette must then learn it too.
        let names = |k: &NodeKind| match k {
            NodeKind::Start(_)
            | NodeKind::Message(_)
            | NodeKind::Choice(_)
            | NodeKind::Input(_)
            | NodeKind::Condition(_)
            | NodeKind::Set(_)
            | NodeKind::Lookup(_)
            | NodeKind::Handoff(_)
            | NodeKind::Wait(_)
            | NodeKind::Call(_)
            | NodeKind::AbSplit(_)
            | NodeKind::Jump(_)
            | NodeKind::End(_) => k.name(),
        };
        let mut seen: Vec<&str> = KINDS
            .iter()
            .filter_map(|k| new_node(k.name, "n".to_owned()))
            .map(|n| names(&n.kind))
            .collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), KINDS.len());
    }
}
