//! The console's texts in Simplified Chinese and English.

/// A language of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    /// The language for a BCP 47 tag such as `navigator.language` or a stored choice.
    pub fn from_tag(tag: &str) -> Lang {
        if tag.to_ascii_lowercase().starts_with("zh") {
            Lang::Zh
        } else {
            Lang::En
        }
    }

    pub fn tag(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    pub fn other(self) -> Lang {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }

    /// The name of the language, in itself (for the switch).
    pub fn name(self) -> &'static str {
        match self {
            Lang::Zh => "中文",
            Lang::En => "English",
        }
    }
}

/// Every fixed text of the console (a closed set, so a missing translation cannot compile).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum T {
    Title,
    Login,
    Password,
    SignIn,
    SignOut,
    Queue,
    Mine,
    All,
    Empty,
    NoSelection,
    Claim,
    Transfer,
    Resolve,
    HandBack,
    Send,
    ReplyPlaceholder,
    Canned,
    Context,
    Reason,
    Summary,
    BotPath,
    Variables,
    Customer,
    NoCustomer,
    Notes,
    AddNote,
    NotePlaceholder,
    VisitorTyping,
    Connected,
    Reconnecting,
    ToAgent,
    ToTeam,
    TransferNote,
    Cancel,
    Confirm,
    NodeOptional,
    ContinueWhereLeft,
    Shortcuts,
    Taken,
    Ended,
    Sending,
    NewAssigned,
    Visitor,
    Bot,
    Agent,
    Picked,
    Loading,
    Unread,
    ExpectsInput,
    WrongLogin,
    Conversations,
    Connectors,
    Refresh,
    Reload,
    Name,
    Health,
    Healthy,
    Unhealthy,
    Breaker,
    Calls,
    Errors,
    LatencyP50,
    LatencyP99,
    CacheHits,
    SourceReads,
    LastError,
    NoConnectors,
    TestEntity,
    Connector,
    Entity,
    Operation,
    Params,
    NoParams,
    Required,
    Run,
    NoRows,
    ReloadRefused,
    Access,
    Policies,
    Save,
    PoliciesRefused,
    PolicyFileRefused,
    PoliciesConflict,
    LoadAgain,
    Unsaved,
    CheckAccess,
    Action,
    Resource,
    ChannelOptional,
    IpOptional,
    Check,
    Allowed,
    Denied,
    DecidedBy,
    DeniedByDefault,
    Explanation,
    Grants,
    Subject,
    ActionsComma,
    Expires,
    OneHour,
    OneDay,
    SevenDays,
    Until,
    GrantReason,
    GrantAction,
    Revoke,
    Active,
    Expired,
    GrantedBy,
    NoGrants,
    AuditTrail,
    Actor,
    ResourcePrefix,
    From,
    To,
    Search,
    Export,
    Older,
    Time,
    Decision,
    ResultSize,
    NoRecords,
    Newest,
}

impl T {
    pub fn get(self, lang: Lang) -> &'static str {
        let (zh, en) = match self {
            T::Title => ("客服工作台", "Agent console"),
            T::Login => ("账号", "Login"),
            T::Password => ("密码", "Password"),
            T::SignIn => ("登录", "Sign in"),
            T::SignOut => ("退出", "Sign out"),
            T::Queue => ("排队", "Queue"),
            T::Mine => ("我的", "Mine"),
            T::All => ("全部", "All"),
            T::Empty => ("没有会话", "No conversations"),
            T::NoSelection => ("请从左侧选择一个会话", "Pick a conversation on the left"),
            T::Claim => ("接入", "Claim"),
            T::Transfer => ("转接", "Transfer"),
            T::Resolve => ("结束", "Resolve"),
            T::HandBack => ("交还机器人", "Hand back to bot"),
            T::Send => ("发送", "Send"),
            T::ReplyPlaceholder => (
                "输入回复，Enter 发送，Shift+Enter 换行",
                "Type a reply: Enter sends, Shift+Enter for a new line",
            ),
            T::Canned => ("快捷回复…", "Canned replies…"),
            T::Context => ("上下文", "Context"),
            T::Reason => ("转人工原因", "Handoff reason"),
            T::Summary => ("摘要", "Summary"),
            T::BotPath => ("机器人路径", "Bot path"),
            T::Variables => ("已收集的信息", "Collected variables"),
            T::Customer => ("客户资料", "Customer"),
            T::NoCustomer => ("未找到该客户", "No customer record found"),
            T::Notes => ("内部备注", "Internal notes"),
            T::AddNote => ("添加备注", "Add note"),
            T::NotePlaceholder => ("仅客服可见", "Only agents see this"),
            T::VisitorTyping => ("访客正在输入…", "The visitor is typing…"),
            T::Connected => ("已连接", "Connected"),
            T::Reconnecting => ("正在重连…", "Reconnecting…"),
            T::ToAgent => ("转给客服", "To an agent"),
            T::ToTeam => ("转给团队", "To a team"),
            T::TransferNote => ("转接说明", "Note for the next agent"),
            T::Cancel => ("取消", "Cancel"),
            T::Confirm => ("确定", "Confirm"),
            T::NodeOptional => ("从哪个节点继续（可选）", "Continue at node (optional)"),
            T::ContinueWhereLeft => ("从转人工处继续", "Where the bot left off"),
            T::Shortcuts => ("键盘快捷键", "Keyboard shortcuts"),
            T::Taken => (
                "该会话已被其他客服接入",
                "Someone else has taken this conversation",
            ),
            T::Ended => ("会话已结束", "The conversation has ended"),
            T::Sending => ("发送中", "sending"),
            T::NewAssigned => ("新会话分配给你", "A conversation was assigned to you"),
            T::Visitor => ("访客", "Visitor"),
            T::Bot => ("机器人", "Bot"),
            T::Agent => ("客服", "Agent"),
            T::Picked => ("选择了", "picked"),
            T::Loading => ("加载中…", "Loading…"),
            T::Unread => ("未读", "unread"),
            T::ExpectsInput => ("等待输入", "expects input"),
            T::WrongLogin => ("账号或密码错误", "Wrong login or password"),
            T::Conversations => ("会话", "Conversations"),
            T::Connectors => ("连接器", "Connectors"),
            T::Refresh => ("刷新", "Refresh"),
            T::Reload => ("重新加载配置", "Reload file"),
            T::Name => ("名称", "Name"),
            T::Health => ("健康", "Health"),
            T::Healthy => ("正常", "Healthy"),
            T::Unhealthy => ("不可用", "Down"),
            T::Breaker => ("熔断器", "Breaker"),
            T::Calls => ("调用", "Calls"),
            T::Errors => ("错误", "Errors"),
            T::LatencyP50 => ("p50 (毫秒)", "p50 (ms)"),
            T::LatencyP99 => ("p99 (毫秒)", "p99 (ms)"),
            T::CacheHits => ("缓存命中", "Cache hits"),
            T::SourceReads => ("回源", "source reads"),
            T::LastError => ("最近错误", "Last error"),
            T::NoConnectors => ("没有配置连接器", "No connectors are configured"),
            T::TestEntity => ("测试实体", "Test this entity"),
            T::Connector => ("连接器", "Connector"),
            T::Entity => ("实体", "Entity"),
            T::Operation => ("操作", "Operation"),
            T::Params => ("参数", "Parameters"),
            T::NoParams => ("该操作没有参数", "This operation takes no parameters"),
            T::Required => ("必填", "required"),
            T::Run => ("运行", "Run"),
            T::NoRows => ("没有返回任何行", "No rows came back"),
            T::ReloadRefused => (
                "配置文件有问题，仍使用原有连接器：",
                "The file was refused; the connectors in force are unchanged:",
            ),
            T::Access => ("权限", "Access"),
            T::Policies => ("访问策略", "Policies"),
            T::Save => ("保存", "Save"),
            T::PoliciesRefused => (
                "策略有问题，未保存，仍使用原有策略：",
                "Not saved: the text has problems; the policies in force are unchanged:",
            ),
            T::PolicyFileRefused => (
                "策略文件有问题，仍使用原有策略：",
                "The file was refused; the policies in force are unchanged:",
            ),
            T::PoliciesConflict => (
                "其他管理员刚刚保存过策略，请重新读取后再修改：",
                "Someone else saved the policies meanwhile; load them again before saving:",
            ),
            T::LoadAgain => ("重新读取", "Load again"),
            T::Unsaved => ("有未保存的修改", "Unsaved changes"),
            T::CheckAccess => (
                "检查权限：谁能对什么做什么，为什么",
                "Can X do Y on Z, and why",
            ),
            T::Action => ("动作", "Action"),
            T::Resource => ("资源", "Resource"),
            T::ChannelOptional => ("渠道（可选）", "Channel (optional)"),
            T::IpOptional => ("IP 地址（可选）", "IP address (optional)"),
            T::Check => ("检查", "Check"),
            T::Allowed => ("允许", "Allowed"),
            T::Denied => ("拒绝", "Denied"),
            T::DecidedBy => ("决定依据", "Decided by"),
            T::DeniedByDefault => (
                "默认拒绝：没有生效的允许规则",
                "Denied by default: no allow applied",
            ),
            T::Explanation => ("解释", "Explanation"),
            T::Grants => ("临时授权", "Temporary grants"),
            T::Subject => ("对象", "Subject"),
            T::ActionsComma => ("动作（逗号分隔）", "Actions (comma-separated)"),
            T::Expires => ("有效期至", "Expires"),
            T::OneHour => ("1 小时", "1 hour"),
            T::OneDay => ("1 天", "1 day"),
            T::SevenDays => ("7 天", "7 days"),
            T::Until => ("指定时间…", "Until…"),
            T::GrantReason => ("原因", "Reason"),
            T::GrantAction => ("授权", "Grant"),
            T::Revoke => ("撤销", "Revoke"),
            T::Active => ("生效中", "Active"),
            T::Expired => ("已过期", "Expired"),
            T::GrantedBy => ("授权人", "Granted by"),
            T::NoGrants => ("没有临时授权", "No grants"),
            T::AuditTrail => ("审计日志", "Audit trail"),
            T::Actor => ("人员", "Person"),
            T::ResourcePrefix => ("资源前缀", "Resource prefix"),
            T::From => ("开始时间", "From"),
            T::To => ("结束时间", "To"),
            T::Search => ("搜索", "Search"),
            T::Export => ("导出 (JSON Lines)", "Export (JSON lines)"),
            T::Older => ("更早的记录", "Older"),
            T::Time => ("时间", "Time"),
            T::Decision => ("决定", "Decision"),
            T::ResultSize => ("结果数", "Result size"),
            T::NoRecords => ("没有符合条件的记录", "No records match"),
            T::Newest => ("最新", "Newest"),
        };
        match lang {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }
}

/// "try again in N s" after too many failed sign-ins.
pub fn retry_in(lang: Lang, seconds: u64) -> String {
    match lang {
        Lang::Zh => format!("尝试次数过多，请 {seconds} 秒后再试"),
        Lang::En => format!("Too many attempts: try again in {seconds} s"),
    }
}

/// A waiting time, short: "45 s", "3 min", "2 h".
pub fn waited(lang: Lang, millis: f64) -> String {
    let seconds = (millis / 1000.0).max(0.0) as u64;
    match (lang, seconds) {
        (Lang::Zh, 0..60) => format!("{seconds} 秒"),
        (Lang::Zh, 60..3600) => format!("{} 分钟", seconds / 60),
        (Lang::Zh, _) => format!("{} 小时", seconds / 3600),
        (Lang::En, 0..60) => format!("{seconds} s"),
        (Lang::En, 60..3600) => format!("{} min", seconds / 60),
        (Lang::En, _) => format!("{} h", seconds / 3600),
    }
}

/// The shortcut list of the help overlay: (keys, what they do).
pub fn shortcuts(lang: Lang) -> [(&'static str, &'static str); 10] {
    let zh = lang == Lang::Zh;
    let pick = |zh_text, en_text| if zh { zh_text } else { en_text };
    [
        ("?", pick("显示/隐藏本帮助", "Show or hide this help")),
        (
            "j / k",
            pick("下一个/上一个会话", "Next / previous conversation"),
        ),
        (
            "1 / 2 / 3",
            pick("排队 / 我的 / 全部", "Queue / Mine / All"),
        ),
        ("c", pick("接入当前会话", "Claim the conversation")),
        ("r", pick("回复", "Reply")),
        ("n", pick("写内部备注", "Write an internal note")),
        ("t", pick("转接", "Transfer")),
        ("e", pick("结束会话", "Resolve")),
        ("b", pick("交还机器人", "Hand back to the bot")),
        (
            "Esc",
            pick(
                "关闭对话框 / 离开输入框",
                "Close a dialog / leave the text box",
            ),
        ),
    ]
}

/// Who has a conversation and its status, e.g. "agent · active".
pub fn state(lang: Lang, owner: &str, status: &str) -> String {
    let owner = match (lang, owner) {
        (Lang::Zh, "bot") => "机器人",
        (Lang::Zh, "queue") => "排队中",
        (Lang::Zh, "agent") => "人工",
        (_, other) => other,
    };
    let status = match (lang, status) {
        (Lang::Zh, "active") => "进行中",
        (Lang::Zh, "waiting") => "等待中",
        (Lang::Zh, "ended") => "已结束",
        (_, other) => other,
    };
    format!("{owner} · {status}")
}

/// The label of a priority.
pub fn priority(lang: Lang, priority: &str) -> &str {
    match (lang, priority) {
        (Lang::Zh, "urgent") => "紧急",
        (Lang::Zh, "high") => "高",
        (Lang::Zh, "normal") => "普通",
        (Lang::Zh, "low") => "低",
        (_, other) => other,
    }
}

/// A breaker state (`closed`, `open`, `half-open`) for people.
pub fn breaker(lang: Lang, state: &str) -> &str {
    match (lang, state) {
        (Lang::Zh, "closed") => "闭合",
        (Lang::Zh, "open") => "断开",
        (Lang::Zh, "half-open") => "半开",
        (_, other) => other,
    }
}

/// After a reload: how many connectors are in force.
pub fn reloaded(lang: Lang, connectors: u64) -> String {
    match (lang, connectors) {
        (Lang::Zh, n) => format!("已重新加载：{n} 个连接器"),
        (Lang::En, 1) => "Reloaded: 1 connector".to_owned(),
        (Lang::En, n) => format!("Reloaded: {n} connectors"),
    }
}

/// A test call's outcome line: "3 rows · 12.5 ms".
pub fn rows_in(lang: Lang, rows: usize, ms: Option<f64>) -> String {
    let rows = match (lang, rows) {
        (Lang::Zh, n) => format!("{n} 行"),
        (Lang::En, 1) => "1 row".to_owned(),
        (Lang::En, n) => format!("{n} rows"),
    };
    match ms {
        Some(ms) => format!("{rows} · {}", millis(lang, ms)),
        None => rows,
    }
}

/// A duration in milliseconds, one decimal.
pub fn millis(lang: Lang, ms: f64) -> String {
    match lang {
        Lang::Zh => format!("{ms:.1} 毫秒"),
        Lang::En => format!("{ms:.1} ms"),
    }
}

/// Where the policies in force come from, e.g. "file /etc/kefu/policies.kefu".
pub fn policy_source(lang: Lang, source: &str, name: &str) -> String {
    let source = match (lang, source) {
        (Lang::Zh, "bundled") => "内置策略",
        (Lang::Zh, "file") => "文件",
        (Lang::Zh, "database") => "数据库",
        (Lang::En, "bundled") => "bundled",
        (Lang::En, "file") => "file",
        (Lang::En, "database") => "database",
        (_, other) => other,
    };
    let label = match lang {
        Lang::Zh => "来源：",
        Lang::En => "Source: ",
    };
    if name.is_empty() {
        format!("{label}{source}")
    } else {
        format!("{label}{source} · {name}")
    }
}

/// "revision 3, by admin" (the time is added by the caller).
pub fn revision(lang: Lang, revision: u64, by: Option<&str>) -> String {
    match (lang, by) {
        (Lang::Zh, Some(by)) => format!("版本 {revision} · {by} 修改"),
        (Lang::Zh, None) => format!("版本 {revision}"),
        (Lang::En, Some(by)) => format!("revision {revision} by {by}"),
        (Lang::En, None) => format!("revision {revision}"),
    }
}

/// How many policies and sandboxes are in force.
pub fn in_force(lang: Lang, policies: u64, sandboxes: u64) -> String {
    match lang {
        Lang::Zh => format!("生效：{policies} 条策略，{sandboxes} 个沙箱"),
        Lang::En => format!(
            "In force: {policies} {}, {sandboxes} {}",
            if policies == 1 { "policy" } else { "policies" },
            if sandboxes == 1 {
                "sandbox"
            } else {
                "sandboxes"
            },
        ),
    }
}

/// After saving: the new revision.
pub fn policies_saved(lang: Lang, revision: u64) -> String {
    match lang {
        Lang::Zh => format!("已保存：版本 {revision}"),
        Lang::En => format!("Saved: revision {revision}"),
    }
}

/// A matched policy's or grant's outcome (`applies`, `condition_false`, …) for people.
pub fn outcome(lang: Lang, outcome: &str) -> &str {
    match (lang, outcome) {
        (Lang::Zh, "applies") => "生效",
        (Lang::Zh, "condition_false") => "条件不成立",
        (Lang::Zh, "condition_error") => "条件出错",
        (Lang::Zh, "expired") => "已过期",
        (Lang::En, "applies") => "applies",
        (Lang::En, "condition_false") => "condition false",
        (Lang::En, "condition_error") => "condition failed",
        (Lang::En, "expired") => "expired",
        (_, other) => other,
    }
}

/// An audit record's decision (`allow`, `deny`) for people.
pub fn decision(lang: Lang, decision: &str) -> &str {
    match (lang, decision) {
        (Lang::Zh, "allow") => "允许",
        (Lang::Zh, "deny") => "拒绝",
        (_, other) => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_from_navigator() {
        assert_eq!(Lang::from_tag("zh-TW"), Lang::Zh);
        assert_eq!(Lang::from_tag("ZH"), Lang::Zh);
        assert_eq!(Lang::from_tag("en-GB"), Lang::En);
        assert_eq!(Lang::from_tag("de"), Lang::En);
    }

    #[test]
    fn waiting_times() {
        assert_eq!(waited(Lang::En, 45_000.0), "45 s");
        assert_eq!(waited(Lang::En, 185_000.0), "3 min");
        assert_eq!(waited(Lang::Zh, 7_300_000.0), "2 小时");
        assert_eq!(waited(Lang::En, -5.0), "0 s");
    }
}
