//! The designer's style sheet (one string, no build step).

pub const CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:14px/1.4 system-ui,-apple-system,"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;color:#0f172a;background:#f8fafc}
button,.button{font:inherit;padding:4px 10px;border:1px solid #cbd5e1;border-radius:6px;background:#fff;color:#0f172a;cursor:pointer;display:inline-flex;align-items:center;gap:4px;text-decoration:none}
button:hover,.button:hover{background:#f1f5f9}
button:disabled{opacity:.5;cursor:default}
button.primary,.button.primary{background:#2563eb;border-color:#2563eb;color:#fff}
button.primary:hover{background:#1d4ed8}
button.danger{color:#b91c1c;border-color:#fecaca}
button.link{border:none;background:none;padding:2px 4px;color:#2563eb}
button.link.danger{color:#b91c1c}
button.active{background:#dbeafe;border-color:#93c5fd}
input,select,textarea{font:inherit;padding:4px 6px;border:1px solid #cbd5e1;border-radius:6px;background:#fff;width:100%}
input:focus,select:focus,textarea:focus,button:focus-visible{outline:2px solid #3b82f6;outline-offset:1px}
.hidden{display:none}
.grow{flex:1}
.loading{padding:2em;color:#64748b}
.signed-out{max-width:420px;margin:15vh auto;padding:2em;background:#fff;border-radius:12px;box-shadow:0 4px 24px rgba(15,23,42,.08);display:flex;flex-direction:column;gap:12px;align-items:flex-start}
.topbar{display:flex;align-items:center;gap:8px;padding:6px 12px;background:#fff;border-bottom:1px solid #e2e8f0;flex-wrap:wrap}
.topbar a{color:#2563eb;text-decoration:none}
.flow-title{font-size:15px}
.version{color:#64748b;font-size:12px;padding:1px 6px;border:1px solid #e2e8f0;border-radius:10px}
.save-state{color:#16a34a;font-size:12px}
.save-state.dirty{color:#b45309}
.flash{background:#ecfdf5;color:#065f46;padding:3px 8px;border-radius:6px;max-width:40vw}
.flash.error{background:#fef2f2;color:#991b1b}
.toggle{display:inline-flex;align-items:center;gap:4px;font-size:13px}
.toggle input{width:auto}
.menu{position:relative}
.menu summary{list-style:none;cursor:pointer;padding:4px 10px;border:1px solid #cbd5e1;border-radius:6px;background:#fff}
.menu-items{position:absolute;right:0;top:110%;z-index:20;background:#fff;border:1px solid #e2e8f0;border-radius:8px;box-shadow:0 8px 24px rgba(15,23,42,.12);padding:6px;display:flex;flex-direction:column;gap:4px;min-width:180px}
.flow-list main{max-width:960px;margin:0 auto;padding:24px}
table.flows{width:100%;border-collapse:collapse;background:#fff;border-radius:8px;overflow:hidden}
table.flows th,table.flows td{text-align:left;padding:8px 12px;border-bottom:1px solid #e2e8f0}
table.flows a{color:#2563eb;text-decoration:none;font-weight:600}
.new-flow{margin-top:24px;display:flex;gap:12px;align-items:flex-end;flex-wrap:wrap;background:#fff;padding:16px;border-radius:8px}
.new-flow h2{width:100%;margin:0;font-size:16px}
.new-flow label{display:flex;flex-direction:column;gap:2px}
.editor{display:flex;flex-direction:column;height:100vh}
.workspace{flex:1;display:flex;min-height:0}
.palette{width:150px;background:#fff;border-right:1px solid #e2e8f0;padding:8px;display:flex;flex-direction:column;gap:4px;overflow-y:auto}
.palette h2{font-size:13px;margin:4px 0;color:#475569}
.palette-item{justify-content:flex-start;touch-action:none;user-select:none}
.palette-item .swatch,h3 .swatch{width:10px;height:10px;border-radius:3px;background:var(--kind);display:inline-block}
.palette-tip{font-size:12px;color:#64748b}
.ghost{position:fixed;z-index:50;pointer-events:none;padding:6px 12px;background:#fff;border:2px solid var(--kind);border-radius:8px;box-shadow:0 6px 18px rgba(15,23,42,.2)}
.canvas{flex:1;position:relative;overflow:hidden;background:#f8fafc;touch-action:none;outline:none;user-select:none}
.canvas.grid{background-image:radial-gradient(#cbd5e1 1px,transparent 1px)}
.canvas:focus-visible{box-shadow:inset 0 0 0 2px #93c5fd}
.world{position:absolute;left:0;top:0;transform-origin:0 0;will-change:transform}
.arrows{position:absolute;left:0;top:0;overflow:visible;pointer-events:none}
.arrow-line{fill:none;stroke:#64748b;stroke-width:2}
.arrow-line.wire{stroke:#2563eb;stroke-dasharray:6 4}
.arrow-hit{fill:none;stroke:transparent;stroke-width:12;pointer-events:stroke;cursor:pointer}
.arrow:hover .arrow-line{stroke:#2563eb}
.arrow-stats{font-size:12px;fill:#7c3aed;font-weight:600}
.node{position:absolute;left:0;top:0;background:#fff;border:1px solid #cbd5e1;border-top:4px solid var(--kind);border-radius:8px;box-shadow:0 1px 3px rgba(15,23,42,.08);cursor:grab;contain:layout style}
.node.selected{border-color:#2563eb;box-shadow:0 0 0 2px #93c5fd;will-change:transform}
.node.target-ok{box-shadow:0 0 0 3px #86efac}
.node.target-bad{opacity:.55}
.node-head{display:flex;align-items:center;gap:6px;padding:4px 8px;height:26px}
.node-kind{font-size:11px;color:#fff;background:var(--kind);padding:0 6px;border-radius:4px;white-space:nowrap}
.node-title{font-weight:600;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;flex:1}
.node-summary{padding:0 8px;font-size:12px;color:#475569;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;height:22px}
.badge{font-size:11px;border-radius:8px;padding:0 6px;color:#fff}
.badge.error{background:#dc2626}
.badge.warning{background:#d97706}
.port-in{position:absolute;left:-6px;top:12px;width:12px;height:12px;border-radius:50%;background:#fff;border:2px solid #94a3b8}
.port-row{position:absolute;right:0;left:0;height:22px;display:flex;align-items:center;justify-content:flex-end;padding-right:12px;font-size:12px;color:#334155}
.port{position:absolute;right:-7px;width:14px;height:14px;border-radius:50%;background:#fff;border:2px solid var(--kind);cursor:crosshair;touch-action:none}
.port.connected{background:var(--kind)}
.node-stats{position:absolute;top:-26px;left:0;font-size:12px;background:#f5f3ff;color:#6d28d9;border-radius:6px;padding:1px 6px;white-space:nowrap}
.comment{position:absolute;left:0;top:0;width:200px;background:#fef9c3;border:1px solid #fde047;border-radius:6px;padding:6px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
.comment.selected{outline:2px solid #2563eb}
.comment textarea{background:transparent;border:none;resize:vertical;min-height:50px}
.group{position:absolute;border:2px dashed #a5b4fc;border-radius:12px;background:rgba(224,231,255,.25);pointer-events:none}
.group-label{position:absolute;top:4px;left:10px;font-size:12px;color:#4f46e5;font-weight:600}
.band{position:absolute;border:1px solid #3b82f6;background:rgba(59,130,246,.1);pointer-events:none;will-change:transform}
.minimap{position:absolute;right:12px;bottom:12px;background:rgba(255,255,255,.92);border:1px solid #e2e8f0;border-radius:6px;cursor:pointer}
.minimap-view{fill:rgba(37,99,235,.08);stroke:#2563eb;stroke-width:1}
.empty-hint{position:absolute;top:40%;width:100%;text-align:center;color:#94a3b8;font-size:16px;pointer-events:none}
.side{width:360px;background:#fff;border-left:1px solid #e2e8f0;display:flex;flex-direction:column;min-height:0}
.tabs{display:flex;border-bottom:1px solid #e2e8f0;flex-wrap:wrap}
.tabs button{border:none;border-radius:0;border-bottom:2px solid transparent;background:none;padding:8px 6px;font-size:13px}
.tabs button.active{border-bottom-color:#2563eb;color:#1d4ed8}
.count{font-size:11px;background:#e2e8f0;border-radius:8px;padding:0 6px}
.count.error{background:#dc2626;color:#fff}
.side-body{flex:1;overflow-y:auto;padding:12px}
.field{display:flex;flex-direction:column;gap:2px;margin-bottom:10px}
.field>span{font-size:12px;color:#475569}
.lang-row{display:flex;gap:6px;align-items:flex-start;margin-bottom:4px}
.lang-tag{font-size:11px;color:#64748b;width:52px;padding-top:6px}
.field-problem{margin:2px 0;font-size:12px}
.field-problem.error{color:#b91c1c}
.field-problem.warning{color:#b45309}
.completions{list-style:none;display:flex;gap:4px;flex-wrap:wrap;margin:0 0 4px 58px;padding:0}
.chip{font-size:11px;padding:0 6px;border-radius:10px;background:#eef2ff;border-color:#c7d2fe}
fieldset.repeat{border:1px solid #e2e8f0;border-radius:8px;padding:8px;margin:0 0 8px}
.pair{display:flex;gap:8px}
.pair>*{flex:1}
.node-form h3{display:flex;align-items:center;gap:6px;margin:0 0 10px;font-size:15px}
.hint{color:#64748b;font-size:12px}
.adders{display:flex;gap:4px;flex-wrap:wrap;margin-bottom:10px}
.problems{list-style:none;padding:0;margin:0;display:flex;flex-direction:column;gap:4px}
.problem{width:100%;text-align:left;justify-content:flex-start;align-items:flex-start;flex-wrap:wrap}
.problem.error .severity{color:#dc2626}
.problem.warning .severity{color:#d97706}
.problem .where{font-size:11px;color:#64748b;width:100%}
.all-good{color:#15803d}
.outline ul{list-style:none;padding:0;margin:8px 0;display:flex;flex-direction:column;gap:2px}
.outline-row{width:100%;text-align:left;justify-content:flex-start;flex-wrap:wrap;border-color:transparent}
.outline-row.selected{background:#dbeafe}
.outline-row .kind{font-size:11px;color:#475569}
.outline-row .exits{width:100%;font-size:11px;color:#64748b}
.preview-actions{display:flex;gap:6px;flex-wrap:wrap;margin-bottom:8px}
.preview-log{background:#f1f5f9;border-radius:8px;padding:8px;min-height:160px;max-height:40vh;overflow-y:auto;display:flex;flex-direction:column;gap:6px}
.bubble{margin:0;padding:6px 10px;border-radius:12px;max-width:85%;white-space:pre-wrap}
.bubble.bot{background:#fff;align-self:flex-start}
.bubble.visitor{background:#2563eb;color:#fff;align-self:flex-end}
.note{margin:0;font-size:12px;color:#64748b;text-align:center}
.note.error{color:#b91c1c}
.cards{display:flex;gap:6px;overflow-x:auto}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:6px;font-size:12px;white-space:nowrap}
.preview-buttons{display:flex;gap:6px;flex-wrap:wrap;margin:8px 0}
.preview-buttons .choice{border-color:#2563eb;color:#2563eb}
.preview-input{display:flex;gap:6px}
.vars{font-size:12px;width:100%}
.vars td{border-bottom:1px solid #f1f5f9;padding:2px 4px;word-break:break-all}
.trace{font-size:11px;max-height:200px;overflow:auto;background:#f8fafc;padding:6px}
.versions ul{list-style:none;padding:0}
.versions li{border-bottom:1px solid #e2e8f0;padding:6px 0}
.diff{background:#f8fafc;border-radius:8px;padding:8px;margin-top:8px}
.backdrop{position:fixed;inset:0;background:rgba(15,23,42,.35);display:flex;align-items:flex-start;justify-content:center;padding-top:10vh;z-index:100}
.dialog{background:#fff;border-radius:12px;padding:20px;width:min(720px,92vw);max-height:80vh;overflow:auto;box-shadow:0 20px 60px rgba(15,23,42,.3)}
.dialog h2{margin-top:0;font-size:18px}
.dialog .buttons{display:flex;gap:8px;justify-content:flex-end;margin-top:12px}
.dialog .error{color:#b91c1c}
.code{background:#0f172a;color:#e2e8f0;padding:12px;border-radius:8px;font-size:12px;max-height:55vh;overflow:auto}
.palette-dialog ul{list-style:none;padding:0;margin:8px 0;max-height:50vh;overflow:auto}
.palette-dialog li button{width:100%;justify-content:space-between;border-color:transparent}
kbd{font-size:11px;background:#f1f5f9;border:1px solid #cbd5e1;border-radius:4px;padding:0 4px;color:#475569}
.help td{padding:3px 8px}
.conflict{position:fixed;left:50%;transform:translateX(-50%);bottom:16px;z-index:90;background:#fff7ed;border:1px solid #fdba74;border-radius:10px;padding:12px 16px;max-width:720px;box-shadow:0 8px 24px rgba(0,0,0,.15);display:flex;gap:8px;flex-wrap:wrap;align-items:center}
.conflict p{margin:0;width:100%}
.lang{font-size:12px}
"#;
