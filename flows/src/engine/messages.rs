//! The engine's own words to the visitor (when a flow does not provide its own), in zh-CN and en.

use crate::model::InputType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    PickAnOption,
    InvalidAnswer(InputType),
    ConnectingAgent,
    AgentRequested,
    Cancelled,
    Inactive,
    SomethingWentWrong,
}

impl Builtin {
    /// The message in `locale` (Chinese for `zh*`, English otherwise).
    pub fn text(self, locale: &str) -> &'static str {
        let zh = locale
            .get(..2)
            .is_some_and(|l| l.eq_ignore_ascii_case("zh"));
        let (zh_text, en_text) = match self {
            Builtin::PickAnOption => (
                "请从下面的选项中选择一个。",
                "Please pick one of the options below.",
            ),
            Builtin::InvalidAnswer(InputType::Text) => ("请输入内容。", "Please type an answer."),
            Builtin::InvalidAnswer(InputType::Number) => {
                ("请输入一个有效的数字。", "Please enter a valid number.")
            }
            Builtin::InvalidAnswer(InputType::Email) => (
                "请输入有效的邮箱地址。",
                "Please enter a valid email address.",
            ),
            Builtin::InvalidAnswer(InputType::Phone) => (
                "请输入有效的电话号码。",
                "Please enter a valid phone number.",
            ),
            Builtin::InvalidAnswer(InputType::Date) => (
                "请输入有效的日期，例如 2026-05-01。",
                "Please enter a valid date, for example 2026-05-01.",
            ),
            Builtin::ConnectingAgent => (
                "正在为您转接人工客服，请稍候……",
                "Connecting you to an agent, please wait…",
            ),
            Builtin::AgentRequested => ("访客要求人工服务", "The visitor asked for an agent"),
            Builtin::Cancelled => (
                "好的，已为您结束本次会话。",
                "All right, this conversation is closed.",
            ),
            Builtin::Inactive => (
                "由于长时间没有收到您的消息，本次会话已结束。",
                "This conversation was closed because we did not hear from you for a while.",
            ),
            Builtin::SomethingWentWrong => (
                "抱歉，出了点问题。请稍后再试，或输入“人工”联系客服。",
                "Sorry, something went wrong. Please try again later, or type \"agent\" to reach a person.",
            ),
        };
        if zh { zh_text } else { en_text }
    }
}
