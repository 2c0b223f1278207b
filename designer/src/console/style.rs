//! The console's stylesheet (plain CSS, no framework).

pub const CSS: &str = r#"
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, "PingFang SC", "Microsoft YaHei", sans-serif; color: #1f2328; background: #f6f7f9; }
button { font: inherit; padding: 4px 10px; border: 1px solid #c9ced6; border-radius: 6px; background: #fff; cursor: pointer; }
button:disabled { opacity: .5; cursor: default; }
button.primary { background: #1a73e8; border-color: #1a73e8; color: #fff; }
button.danger { color: #b42318; }
textarea, input, select { font: inherit; padding: 6px; border: 1px solid #c9ced6; border-radius: 6px; }
.loading { padding: 2em; color: #667; }
.login-page { display: flex; min-height: 100vh; align-items: center; justify-content: center; }
.login { display: flex; flex-direction: column; gap: 12px; width: 320px; padding: 24px; background: #fff; border-radius: 10px; box-shadow: 0 2px 12px #0001; }
.login h1 { font-size: 18px; margin: 0 0 8px; }
.login label { display: flex; flex-direction: column; gap: 4px; }
.error { color: #b42318; margin: 0; }
.console { display: flex; flex-direction: column; height: 100vh; }
header { display: flex; align-items: center; gap: 10px; padding: 8px 14px; background: #fff; border-bottom: 1px solid #e3e6ea; }
header .spacer { flex: 1; }
.status { font-size: 12px; color: #b42318; }
.status.online { color: #1a7f37; }
.flash { padding: 8px 14px; background: #fff4e5; border-bottom: 1px solid #f5c27a; cursor: pointer; }
main { flex: 1; display: flex; min-height: 0; }
.list { width: 300px; border-right: 1px solid #e3e6ea; background: #fff; overflow-y: auto; }
.tabs { display: flex; gap: 4px; padding: 8px; border-bottom: 1px solid #e3e6ea; }
.tabs button.active { background: #e8f0fe; border-color: #1a73e8; }
.list ul { list-style: none; margin: 0; padding: 0; }
.list li { padding: 8px 12px; border-bottom: 1px solid #f0f1f3; cursor: pointer; }
.list li.selected { background: #e8f0fe; }
.row-top, .row-bottom { display: flex; gap: 6px; align-items: center; }
.row-bottom { font-size: 12px; color: #667; }
.reason { flex: 1; overflow: hidden; white-space: nowrap; text-overflow: ellipsis; }
.waiting { margin-left: auto; }
.badge { font-size: 11px; padding: 0 6px; border-radius: 8px; background: #eef0f3; }
.priority-urgent { background: #b42318; color: #fff; }
.priority-high { background: #f79009; color: #fff; }
.priority-low { color: #889; }
.unread { background: #1a73e8; color: #fff; border-radius: 9px; padding: 0 6px; font-size: 11px; }
.empty { padding: 16px; color: #889; }
.conversation { flex: 1; display: flex; min-width: 0; }
.chat { flex: 1; display: flex; flex-direction: column; min-width: 0; }
.actions { display: flex; gap: 6px; align-items: center; padding: 8px 12px; background: #fff; border-bottom: 1px solid #e3e6ea; }
.actions .title { flex: 1; font-weight: 600; }
.transcript { flex: 1; overflow-y: auto; padding: 12px; display: flex; flex-direction: column; gap: 8px; }
.bubble { max-width: 70%; padding: 6px 10px; border-radius: 10px; background: #fff; border: 1px solid #e3e6ea; align-self: flex-start; }
.bubble.from-bot { background: #f1f5ff; }
.bubble.from-agent { align-self: flex-end; background: #dcf5e3; }
.bubble.pending { opacity: .6; }
.bubble .meta { font-size: 11px; color: #889; }
.bubble p { margin: 2px 0; white-space: pre-wrap; }
.bubble .image { max-width: 200px; max-height: 140px; }
.notice { align-self: center; font-size: 12px; color: #667; background: #eef0f3; padding: 2px 10px; border-radius: 10px; }
.chips { display: flex; flex-wrap: wrap; gap: 4px; margin-top: 4px; }
.chip { font-size: 12px; padding: 1px 8px; border: 1px solid #1a73e8; border-radius: 10px; color: #1a73e8; }
.cards { list-style: none; margin: 0; padding: 0; display: flex; flex-direction: column; gap: 2px; }
.card { display: flex; gap: 8px; font-size: 13px; }
.card .price { margin-left: auto; color: #b42318; }
.typing { margin: 0; padding: 0 12px; font-size: 12px; color: #667; }
.reply { padding: 8px 12px; background: #fff; border-top: 1px solid #e3e6ea; display: flex; flex-direction: column; gap: 6px; }
.reply textarea { width: 100%; resize: vertical; }
.reply-tools { display: flex; gap: 6px; justify-content: flex-end; }
.side { width: 300px; border-left: 1px solid #e3e6ea; background: #fff; overflow-y: auto; padding: 0 12px 12px; }
.side h3 { font-size: 14px; margin: 12px 0 6px; }
.side h4 { font-size: 12px; margin: 10px 0 4px; color: #667; }
.side dl { margin: 0; } .side dt { font-size: 12px; color: #667; } .side dd { margin: 0 0 6px; }
.path { margin: 0; padding-left: 20px; font-size: 12px; font-family: ui-monospace, monospace; }
.variables { border-collapse: collapse; width: 100%; font-size: 12px; }
.variables th, .variables td { border: 1px solid #eef0f3; padding: 2px 6px; text-align: left; vertical-align: top; }
.variables td { overflow-wrap: anywhere; }
.notes ul { list-style: none; padding: 0; margin: 0; }
.notes li { background: #fffbe6; padding: 4px 8px; border-radius: 6px; margin-bottom: 4px; }
.notes li p { margin: 0; white-space: pre-wrap; }
.notes textarea { width: 100%; }
.overlay { position: fixed; inset: 0; background: #0005; display: flex; align-items: center; justify-content: center; }
.dialog { background: #fff; border-radius: 10px; padding: 16px 20px; min-width: 320px; display: flex; flex-direction: column; gap: 10px; }
.dialog h2 { font-size: 16px; margin: 0; }
.dialog .buttons { display: flex; gap: 6px; justify-content: flex-end; }
.pages { display: flex; gap: 4px; margin-left: 8px; }
.pages button.active { background: #e8f0fe; border-color: #1a73e8; }
main.hidden { display: none; }
.admin { flex: 1; overflow-y: auto; padding: 16px 20px; display: flex; flex-direction: column; gap: 16px; }
.panel { background: #fff; border: 1px solid #e3e6ea; border-radius: 10px; padding: 12px 16px; }
.panel-head { display: flex; align-items: center; gap: 8px; margin-bottom: 10px; }
.panel-head h2 { font-size: 16px; margin: 0; flex: 1; }
.muted { color: #667; font-size: 12px; }
.grid { border-collapse: collapse; width: 100%; font-size: 13px; }
.grid th { text-align: left; font-size: 12px; font-weight: 600; color: #667; padding: 6px 8px; border-bottom: 1px solid #e3e6ea; white-space: nowrap; }
.grid td { padding: 6px 8px; border-bottom: 1px solid #f0f1f3; vertical-align: top; }
.grid .num { text-align: right; font-variant-numeric: tabular-nums; }
.grid td.bad { color: #b42318; font-weight: 600; }
.grid code { font-size: 12px; }
.grid .last-error { color: #667; max-width: 320px; overflow-wrap: anywhere; }
.health { display: inline-flex; align-items: center; gap: 6px; white-space: nowrap; }
.dot { width: 8px; height: 8px; border-radius: 50%; background: #b42318; }
.dot.ok { background: #1a7f37; }
.breaker-closed { background: #e6f4ea; color: #1a7f37; }
.breaker-open { background: #b42318; color: #fff; }
.breaker-half-open { background: #f79009; color: #fff; }
.problems { margin-bottom: 10px; padding: 8px 12px; background: #fef3f2; border: 1px solid #fda29b; border-radius: 8px; color: #b42318; }
.problems p { margin: 4px 0 0; }
.problems ul { margin: 4px 0 0; padding-left: 20px; }
.test-form { display: flex; flex-direction: column; gap: 12px; }
.test-form .fields { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-end; margin: 0; padding: 0; border: 0; }
.test-form legend { font-size: 12px; font-weight: 600; color: #667; padding: 0; margin-bottom: 4px; }
.test-form label { display: flex; flex-direction: column; gap: 4px; font-size: 12px; color: #667; }
.test-form select { min-width: 160px; background: #fff; }
.test-form .muted { margin: 0; }
.required { color: #b42318; text-decoration: none; }
.result { margin-top: 12px; border-top: 1px solid #eef0f3; padding-top: 8px; }
.result p { margin: 0 0 6px; }
.result .scroll { overflow-x: auto; }
.rows th, .rows td { padding: 4px 6px; white-space: nowrap; }
.policy-info { margin: 0 0 8px; }
.policy-editor { width: 100%; min-height: 320px; resize: vertical; font: 13px/20px ui-monospace, "Noto Sans Mono CJK SC", monospace; tab-size: 4; white-space: pre; }
.badge.unsaved { background: #fff4e5; color: #b54708; }
.ok { color: #1a7f37; margin: 0 0 8px; }
button.link { border: 0; background: none; padding: 0; color: inherit; text-decoration: underline; }
.verdict { display: inline-block; font-size: 18px; font-weight: 700; padding: 2px 14px; border-radius: 8px; margin: 0 0 6px; }
.verdict.allowed { background: #e6f4ea; color: #1a7f37; }
.verdict.denied { background: #fef3f2; color: #b42318; }
.result h3 { font-size: 13px; margin: 8px 0 4px; color: #667; }
.explanation { margin: 0 0 8px; padding: 8px 10px; background: #f6f7f9; border-radius: 6px; font: 12px/1.5 ui-monospace, monospace; white-space: pre-wrap; }
.effect-allow { background: #e6f4ea; color: #1a7f37; }
.effect-deny { background: #fef3f2; color: #b42318; }
.badge-ok { background: #e6f4ea; color: #1a7f37; }
.grid tr.expired td { color: #98a2b3; }
.grid tr.expired td code { text-decoration: line-through; }
.grant-form { margin-top: 12px; }
.test-form input { min-width: 140px; }
a.button { font-size: 14px; padding: 4px 10px; border: 1px solid #c9ced6; border-radius: 6px; background: #fff; color: inherit; text-decoration: none; }
.nowrap { white-space: nowrap; }
kbd { font-family: ui-monospace, monospace; background: #eef0f3; padding: 0 6px; border-radius: 4px; }
"#;
