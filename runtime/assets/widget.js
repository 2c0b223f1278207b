// kefu visitor chat widget: one <script src="https://HOST/widget.js" data-flow="…"> puts a
// launcher and a chat panel (inside a shadow root, so the page's CSS and ours never meet) on any
// page, and speaks the visitor WebSocket protocol of docs/protocol.md with the server the script
// itself was loaded from. Plain ES2020, no dependencies, no build step.
(() => {
  'use strict';
  if (window.kefuWidget) return;
  const script = document.currentScript || document.querySelector('script[src*="widget.js"][data-flow]');
  if (!script || !script.src) return;
  const cfg = script.dataset;
  if (!cfg.flow) {
    console.warn('kefu widget: the script tag needs a data-flow attribute');
    return;
  }

  const SRC = new URL(script.src, location.href);
  const BASE = SRC.origin;
  const WS_URL = (SRC.protocol === 'https:' ? 'wss://' : 'ws://') + SRC.host + '/ws/visitor';
  const FLOW = cfg.flow;
  const LOCALE = cfg.locale || (/^zh/i.test(navigator.language || '') ? 'zh-CN' : 'en');
  const KEY = 'kefu:' + BASE + ':' + FLOW;
  // Who the visitor is, when the page knows (data-visitor-email, data-visitor-phone, …): agents
  // see their customer record next to the conversation.
  const VISITOR = {};
  for (const [name, value] of Object.entries(cfg)) {
    const m = /^visitor([A-Z][a-z]*)$/.exec(name);
    if (m && value) VISITOR[m[1].toLowerCase()] = value;
  }
  const MAX_TEXT = 2000;

  const STRINGS = {
    zh: {
      title: '在线客服', open: '打开在线客服', close: '关闭', label: '输入消息', placeholder: '输入消息…',
      send: '发送', connecting: '连接中…', reconnecting: '重新连接中…', offline: '网络已断开',
      online: '在线', unavailable: '客服暂不可用', waiting: '正在等待人工客服…', withAgent: '人工客服为您服务',
      endedShort: '对话已结束', ended: '对话已结束，可以开始新的对话。', restart: '开始新对话',
      sending: '发送中…', agent: '客服', unread: '条未读消息', typing: '对方正在输入…',
      input: { number: '请输入数字', email: '请输入邮箱地址', phone: '请输入手机号码', date: '请输入日期，例如 2025-01-31' },
      err: {
        message_too_long: '消息过长（最多 2000 字），未发送。', rate_limited: '发送太频繁，稍后自动重发。',
        not_expected: '这个选项已失效，请选择最新的选项或直接输入。', ended: '对话已结束，消息未发送。',
        unknown_flow: '客服暂不可用，请稍后再试。', internal: '服务器出错，正在重试…',
        frame_too_large: '消息过长，未发送。', bad_frame: '消息无法发送。', generic: '出错了，请稍后再试。',
      },
    },
    en: {
      title: 'Chat with us', open: 'Open chat', close: 'Close', label: 'Message', placeholder: 'Type a message…',
      send: 'Send', connecting: 'Connecting…', reconnecting: 'Reconnecting…', offline: 'Offline',
      online: 'Online', unavailable: 'Chat is unavailable', waiting: 'Waiting for an agent…', withAgent: 'Chatting with an agent',
      endedShort: 'Conversation ended', ended: 'This conversation has ended — start a new one.', restart: 'New conversation',
      sending: 'Sending…', agent: 'Agent', unread: 'unread messages', typing: 'Typing…',
      input: { number: 'Type a number', email: 'Type your email address', phone: 'Type your phone number', date: 'Type a date, e.g. 2025-01-31' },
      err: {
        message_too_long: 'That message is too long (2,000 characters at most) and was not sent.',
        rate_limited: 'Sending too fast — retrying shortly.',
        not_expected: 'That option is no longer available; pick one of the latest options or type your answer.',
        ended: 'This conversation has ended; the message was not sent.',
        unknown_flow: 'Chat is unavailable right now. Please try again later.',
        internal: 'The server had a problem; retrying…', frame_too_large: 'That message is too long and was not sent.',
        bad_frame: 'That message could not be sent.', generic: 'Something went wrong. Please try again later.',
      },
    },
  };
  const T = STRINGS[/^zh/i.test(LOCALE) ? 'zh' : 'en'];

  // ---- small helpers -------------------------------------------------------------------------

  /** Builds an element; children are nodes or strings (strings become text nodes, never HTML). */
  const h = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const k in attrs || {}) {
      const v = attrs[k];
      if (v == null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : v);
    }
    e.append(...kids.filter((k) => k != null && k !== ''));
    return e;
  };

  /** An http(s) URL resolved against the widget's server, or null for anything else. */
  const safeUrl = (u) => {
    if (typeof u !== 'string' || !u) return null;
    try {
      const url = new URL(u, BASE + '/');
      return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
    } catch {
      return null;
    }
  };
  // Links to another site open in a new tab; links within the page's own site navigate, and the
  // conversation resumes on the next page.
  const linkAttrs = (href) =>
    new URL(href).origin === location.origin ? { href } : { href, target: '_blank', rel: 'noopener noreferrer' };

  // Absolute http(s) URLs, and site paths such as "/demo/checkout?items=a,b" that follow a space,
  // a bracket or a colon (the bundled flows say such paths in their messages).
  const LINK = /(^|[\s(（:：])(\/(?!\/)[^\s<>"'()（），。、]+)|https?:\/\/[^\s<>"'()（），。、]+/g;
  const linkify = (text) => {
    const frag = document.createDocumentFragment();
    text = String(text ?? '');
    let last = 0;
    for (const m of text.matchAll(LINK)) {
      const start = m.index + (m[1] || '').length;
      const raw = (m[2] || m[0]).replace(/[.,;:!?'"]+$/, '');
      const href = safeUrl(raw);
      if (!href) continue;
      frag.append(text.slice(last, start), h('a', linkAttrs(href), raw));
      last = start + raw.length;
    }
    frag.append(text.slice(last));
    return frag;
  };

  const money = (p) =>
    '¥' + new Intl.NumberFormat('en-US', { minimumFractionDigits: Number.isInteger(p) ? 0 : 2, maximumFractionDigits: 2 }).format(p);

  const newId = () => {
    const b = crypto.getRandomValues(new Uint8Array(12));
    return 'v-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  };

  const store = {
    load() {
      try {
        const v = JSON.parse(localStorage.getItem(KEY));
        return v && typeof v.conversation === 'string' && typeof v.token === 'string' ? v : null;
      } catch {
        return null;
      }
    },
    save(v) {
      try {
        localStorage.setItem(KEY, JSON.stringify(v));
      } catch {
        // Storage can be full or forbidden (private mode, sandboxed frames): the chat still works,
        // it just will not survive a reload.
      }
    },
    clear() {
      try {
        localStorage.removeItem(KEY);
      } catch {
        // As above.
      }
    },
  };

  // ---- state ----------------------------------------------------------------------------------

  const S = {
    connection: 'idle', // idle | connecting | open | reconnecting | offline | failed
    conversation: null,
    token: null,
    owner: null,
    status: null,
    lastSeq: 0, // the highest seq seen on message and ack frames
    readSeq: 0, // the highest seq the visitor has seen with the panel open (for the badge)
    open: false,
  };
  const saved = store.load();
  if (saved) {
    S.conversation = saved.conversation;
    S.token = saved.token;
    S.readSeq = saved.read || 0;
  }
  const seen = new Set(); // seqs shown (or acked), so a message is never shown twice
  const pending = new Map(); // client_id → { frame, row } of visitor messages not yet acked
  let unread = 0;
  let ws = null;
  let welcomed = false;
  let wantStart = false;
  let stopped = false;
  let attempt = 0;
  let retryTimer = 0;
  let pingTimer = 0;
  let receiptTimer = 0;
  let typingTimer = 0;
  let lastRx = 0;
  let ackSent = 0;
  let readSent = 0;
  let visitorTyping = false;
  let visitorTypingTimer = 0;

  const persist = () => {
    if (S.conversation) store.save({ conversation: S.conversation, token: S.token, last_seq: S.lastSeq, read: S.readSeq });
  };

  // ---- DOM ------------------------------------------------------------------------------------

  const host = document.createElement('kefu-widget');
  // Inline !important beats the page's rules for the host element itself; inside, the shadow
  // root keeps both sides' CSS apart. Custom properties still inherit, so a page may set
  // `kefu-widget { --kefu-accent: #0a7 }`.
  host.style.cssText = 'all:initial!important;display:block!important';
  const root = host.attachShadow({ mode: 'open' });
  root.append(
    h(
      'style',
      null,
      `:host{all:initial}*{box-sizing:border-box}
.k{font:14px/1.5 system-ui,-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei",sans-serif;color:#1f2933;--a:var(--kefu-accent,#2563eb)}
button{font:inherit;cursor:pointer}
.launcher{position:fixed;bottom:20px;right:20px;z-index:2147483000;width:58px;height:58px;border-radius:50%;border:0;background:var(--a);color:#fff;box-shadow:0 6px 20px rgba(15,23,42,.25);display:grid;place-items:center;transition:transform .15s}
.launcher:hover{transform:scale(1.06)}
.left .launcher{right:auto;left:20px}
.badge{position:absolute;top:-3px;right:-3px;min-width:20px;height:20px;padding:0 6px;border-radius:10px;background:#e11d48;color:#fff;font-size:12px;line-height:20px;font-weight:600}
.panel{position:fixed;bottom:92px;right:20px;z-index:2147483001;width:380px;height:min(620px,calc(100vh - 112px));display:flex;flex-direction:column;background:#fff;border-radius:16px;box-shadow:0 16px 48px rgba(15,23,42,.28);overflow:hidden;animation:in .18s ease-out}
.left .panel{right:auto;left:20px}
.panel[hidden]{display:none}
@keyframes in{from{opacity:0;transform:translateY(12px)}}
header{display:flex;align-items:center;gap:10px;padding:12px 12px 12px 16px;background:var(--a);color:#fff}
.title{font-weight:600;font-size:15px;line-height:1.2}
.status{display:block;font-size:12px;opacity:.85;line-height:1.3}
.x{margin-left:auto;background:none;border:0;color:inherit;width:34px;height:34px;border-radius:8px;font-size:22px;line-height:1}
.x:hover{background:rgba(255,255,255,.15)}
.log{flex:1;overflow-y:auto;padding:16px 12px;background:#f4f6fa;display:flex;flex-direction:column;gap:8px;overscroll-behavior:contain}
.msg{display:flex;flex-direction:column;align-items:flex-start;max-width:100%}
.visitor{align-items:flex-end}
.who{font-size:11px;color:#7b8794;margin:0 4px 2px}
.bubble{max-width:85%;margin:0;padding:8px 12px;border-radius:16px;background:#fff;box-shadow:0 1px 2px rgba(15,23,42,.08);white-space:pre-wrap;overflow-wrap:anywhere}
.bot .bubble,.agent .bubble{border-bottom-left-radius:4px}
.visitor .bubble{background:var(--a);color:#fff;border-bottom-right-radius:4px}
.visitor .bubble a{color:#fff}
a{color:var(--a)}
.meta{font-size:11px;color:#7b8794;margin:2px 4px 0}
.failed .bubble{opacity:.6}.failed .meta{color:#c81e1e}
.notice,.err{align-self:center;text-align:center;font-size:12px;color:#7b8794;max-width:90%;padding:2px 8px}
.err{color:#c81e1e}
.choices{display:flex;flex-wrap:wrap;gap:6px;margin-top:6px;max-width:95%}
.choices button{border:1px solid var(--a);background:#fff;color:var(--a);border-radius:999px;padding:6px 14px;text-align:left}
.choices button:hover:not(:disabled){background:var(--a);color:#fff}
.choices button:disabled{cursor:default;opacity:.45}
.choices button.picked{background:var(--a);color:#fff;opacity:.8}
.cards{display:flex;flex-direction:column;gap:8px;width:88%}
.carousel{flex-direction:row;width:100%;overflow-x:auto;scroll-snap-type:x mandatory;padding:2px 2px 6px}
.card{display:flex;gap:10px;align-items:center;padding:8px;background:#fff;border-radius:12px;color:inherit;text-decoration:none;box-shadow:0 1px 3px rgba(15,23,42,.1)}
a.card:hover{box-shadow:0 2px 8px rgba(15,23,42,.18)}
.carousel .card{flex:0 0 68%;flex-direction:column;align-items:stretch;scroll-snap-align:start}
.card img{flex:none;width:64px;height:64px;border-radius:8px;object-fit:cover;background:#e9edf3}
.carousel .card img{width:100%;height:112px}
.card b{display:block;font-size:14px;font-weight:600;line-height:1.3}
.card small{display:block;color:#616e7c;font-size:12px;line-height:1.35}
.price{display:block;color:#e11d48;font-weight:700;margin-top:2px}
.pic{max-width:85%;border-radius:12px;display:block}
.typing{align-self:flex-start;display:flex;gap:4px;padding:12px 14px;background:#fff;border-radius:16px;border-bottom-left-radius:4px}
.typing[hidden]{display:none}
.typing i{width:7px;height:7px;border-radius:50%;background:#9aa5b1;animation:dot 1.1s infinite}
.typing i:nth-child(2){animation-delay:.15s}.typing i:nth-child(3){animation-delay:.3s}
@keyframes dot{0%,60%,100%{opacity:.45;transform:none}30%{opacity:1;transform:translateY(-4px)}}
.ended{padding:10px 14px;border-top:1px solid #e4e7eb;background:#fff;text-align:center;font-size:13px;color:#52606d}
.ended[hidden]{display:none}
.ended button,.send{border:0;border-radius:10px;background:var(--a);color:#fff;font-weight:600;padding:8px 16px}
.ended button{margin-top:6px}
form{display:flex;gap:8px;padding:10px;border-top:1px solid #e4e7eb;background:#fff}
input{flex:1;min-width:0;border:1px solid #cbd2d9;border-radius:10px;padding:9px 12px;font:inherit;color:inherit;background:#fff}
input:focus{border-color:var(--a);outline:none;box-shadow:0 0 0 3px rgba(37,99,235,.2)}
input:disabled,.send:disabled{opacity:.5}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
:focus-visible{outline:2px solid #f59e0b;outline-offset:2px}
@media (max-width:480px){.panel{inset:0;width:auto;height:auto;border-radius:0;animation:none}.on .launcher{display:none}input{font-size:16px}}
@media (prefers-reduced-motion:reduce){*{animation:none!important;transition:none!important}}`,
    ),
  );

  const title = cfg.title || T.title;
  const badge = h('span', { class: 'badge', hidden: true });
  const launcher = h(
    'button',
    { class: 'launcher', type: 'button', 'data-kefu': 'launcher', 'aria-label': T.open, 'aria-expanded': 'false', 'aria-controls': 'kefu-panel', onclick: () => (S.open ? close() : open()) },
    svg('M4 5.5A2.5 2.5 0 0 1 6.5 3h11A2.5 2.5 0 0 1 20 5.5v8a2.5 2.5 0 0 1-2.5 2.5H10l-4.2 3.6c-.5.4-1.3.1-1.3-.6V16A2.5 2.5 0 0 1 4 13.5z'),
    badge,
  );
  const statusEl = h('span', { class: 'status', 'data-kefu': 'status' });
  const log = h('div', { class: 'log', role: 'log', 'aria-live': 'polite', 'aria-label': title, 'data-kefu': 'log', tabindex: '0' });
  const typingEl = h('div', { class: 'typing', 'data-kefu': 'typing', hidden: true, 'aria-hidden': 'true' }, h('i'), h('i'), h('i'));
  log.append(typingEl);
  const restartBtn = h('button', { type: 'button', 'data-kefu': 'restart', onclick: () => restart() }, T.restart);
  const endedEl = h('div', { class: 'ended', 'data-kefu': 'ended', hidden: true }, h('div', null, T.ended), restartBtn);
  const input = h('input', { id: 'kefu-input', 'data-kefu': 'input', autocomplete: 'off', maxlength: String(MAX_TEXT), placeholder: T.placeholder, enterkeyhint: 'send' });
  const sendBtn = h('button', { class: 'send', type: 'submit', 'data-kefu': 'send' }, T.send);
  const form = h('form', { 'data-kefu': 'composer' }, h('label', { class: 'sr', for: 'kefu-input' }, T.label), input, sendBtn);
  const panel = h(
    'div',
    { class: 'panel', id: 'kefu-panel', role: 'dialog', 'aria-label': title, 'data-kefu': 'panel', hidden: true },
    h('header', null, h('div', null, h('div', { class: 'title' }, title), statusEl), h('button', { class: 'x', type: 'button', 'aria-label': T.close, 'data-kefu': 'close', onclick: () => close() }, '×')),
    log,
    endedEl,
    form,
  );
  const wrap = h('div', { class: 'k' + (/left/.test(cfg.position || '') ? ' left' : ''), lang: LOCALE }, launcher, panel);
  root.append(wrap);

  function svg(d) {
    const ns = 'http://www.w3.org/2000/svg';
    const s = document.createElementNS(ns, 'svg');
    s.setAttribute('viewBox', '0 0 24 24');
    s.setAttribute('width', '28');
    s.setAttribute('height', '28');
    s.setAttribute('aria-hidden', 'true');
    const p = document.createElementNS(ns, 'path');
    p.setAttribute('d', d);
    p.setAttribute('fill', 'currentColor');
    s.append(p);
    return s;
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    if (text.length > MAX_TEXT) return line(T.err.message_too_long, 'err');
    input.value = '';
    const row = visitorRow(text);
    enqueue({ type: 'message', text }, row);
  });
  input.addEventListener('input', () => typingSignal(!!input.value));
  panel.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') {
      ev.stopPropagation();
      close();
    }
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) markRead();
  });
  window.addEventListener('online', () => {
    if (!ws && !stopped && (S.conversation || wantStart)) {
      attempt = 0;
      connect();
    }
  });
  window.addEventListener('offline', () => {
    if (!welcomed) setConn('offline');
  });

  // ---- rendering ------------------------------------------------------------------------------

  const nearBottom = () => log.scrollHeight - log.scrollTop - log.clientHeight < 120;
  const scrollDown = () => {
    log.scrollTop = log.scrollHeight;
  };

  /** Adds a row to the log: server messages go before visitor messages that are still sending. */
  function place(row, beforePending) {
    const stick = nearBottom();
    let ref = typingEl;
    if (beforePending) for (const p of pending.values()) if (p.row.isConnected && p.row.compareDocumentPosition(ref) & Node.DOCUMENT_POSITION_FOLLOWING) ref = p.row;
    log.insertBefore(row, ref);
    if (stick || !beforePending) scrollDown();
  }

  const line = (text, cls) => place(h('div', { class: cls, 'data-kefu': cls === 'err' ? 'error' : 'notice' }, text));

  function visitorRow(text) {
    const row = h('div', { class: 'msg visitor', 'data-kefu': 'message', 'data-sender': 'visitor', 'data-state': 'sending' }, h('p', { class: 'bubble' }, linkify(text)), h('span', { class: 'meta' }, T.sending));
    place(row);
    return row;
  }

  function cardList(cards, carousel) {
    const list = h('div', { class: 'cards' + (carousel ? ' carousel' : ''), 'data-kefu': carousel ? 'carousel' : 'products' });
    for (const c of Array.isArray(cards) ? cards : []) {
      if (!c || typeof c !== 'object') continue;
      const href = safeUrl(c.url);
      const img = safeUrl(c.image);
      const pic = img && h('img', { src: img, alt: '', loading: 'lazy', onerror: (e) => (e.target.style.visibility = 'hidden'), onload: () => nearBottom() && scrollDown() });
      const text = h(
        'span',
        null,
        h('b', null, String(c.title ?? '')),
        c.subtitle ? h('small', null, String(c.subtitle)) : null,
        typeof c.price === 'number' ? h('span', { class: 'price' }, money(c.price)) : null,
      );
      const attrs = { class: 'card', 'data-kefu': 'card', 'data-id': c.id };
      list.append(href ? h('a', { ...attrs, ...linkAttrs(href) }, pic, text) : h('div', attrs, pic, text));
    }
    return list;
  }

  /** Renders one stored message; unknown body types are skipped so old widgets keep working. */
  function render(f) {
    const b = f.body && typeof f.body === 'object' ? f.body : {};
    const sender = ['visitor', 'bot', 'agent', 'system'].includes(f.sender) ? f.sender : 'bot';
    const row = h('div', { class: 'msg ' + sender, 'data-kefu': 'message', 'data-sender': sender, 'data-seq': f.seq, 'data-type': b.type });
    if (typeof f.at === 'number') row.title = new Date(f.at).toLocaleString(LOCALE);
    if (sender === 'agent' && b.type !== 'notice') row.append(h('span', { class: 'who' }, T.agent));
    switch (b.type) {
      case 'text':
        row.append(h('p', { class: 'bubble' }, linkify(b.text)));
        break;
      case 'choice':
        row.append(h('p', { class: 'bubble' }, String(b.label ?? b.option ?? '')));
        break;
      case 'image': {
        const url = safeUrl(b.url);
        if (!url) return;
        row.append(h('img', { class: 'pic', src: url, alt: String(b.alt ?? ''), onload: () => nearBottom() && scrollDown() }));
        break;
      }
      case 'products':
      case 'carousel':
        row.append(cardList(b.cards, b.type === 'carousel'));
        break;
      case 'ask': {
        disableChoices();
        const expect = b.expect || {};
        row.dataset.expect = expect.type;
        row.append(h('p', { class: 'bubble' }, linkify(b.prompt)));
        if (expect.type === 'choice' && Array.isArray(expect.options)) {
          const group = h('div', { class: 'choices', role: 'group', 'aria-label': String(b.prompt ?? ''), 'data-kefu': 'choices' });
          for (const o of expect.options) {
            if (!o || typeof o.id !== 'string') continue;
            const label = String(o.label ?? o.id);
            group.append(h('button', { type: 'button', 'data-kefu': 'choice', 'data-option': o.id, onclick: (ev) => choose(group, ev.currentTarget, o.id, label) }, label));
          }
          if (S.status === 'ended') setDisabled(group);
          row.append(group);
        }
        inputMode(expect.type === 'input' ? expect.input_type : null);
        break;
      }
      case 'notice':
        row.className = 'notice';
        row.dataset.code = b.code;
        row.append(String(b.text ?? ''));
        break;
      default:
        return;
    }
    if (sender === 'visitor') disableChoices();
    place(row, true);
  }

  function setDisabled(group) {
    for (const b of group.querySelectorAll('button')) b.disabled = true;
  }
  // An ask's buttons are valid until the next ask, or until the visitor answers some other way.
  const disableChoices = () => log.querySelectorAll('.choices').forEach(setDisabled);

  function choose(group, button, option, label) {
    if (button.disabled) return;
    setDisabled(group);
    button.classList.add('picked');
    enqueue({ type: 'choice', option }, visitorRow(label));
  }

  const INPUT_MODES = { number: 'decimal', email: 'email', phone: 'tel', date: 'numeric' };
  function inputMode(type) {
    input.setAttribute('inputmode', INPUT_MODES[type] || 'text');
    input.placeholder = T.input[type] || T.placeholder;
  }

  function showTyping(on, ms) {
    clearTimeout(typingTimer);
    typingEl.hidden = !on;
    if (on) {
      log.append(typingEl);
      if (nearBottom()) scrollDown();
      // A safety net: a lost frame must not leave the dots running for ever.
      typingTimer = setTimeout(() => (typingEl.hidden = true), ms);
    }
  }

  function showEnded(ended) {
    endedEl.hidden = !ended;
    input.disabled = ended;
    sendBtn.disabled = ended;
    if (ended) {
      disableChoices();
      showTyping(false);
    }
  }

  function setConn(c) {
    S.connection = c;
    updateStatus();
  }
  function updateStatus() {
    const c = S.connection;
    statusEl.textContent =
      c === 'open'
        ? S.status === 'ended'
          ? T.endedShort
          : S.status === 'waiting' || S.owner === 'queue'
            ? T.waiting
            : S.owner === 'agent'
              ? T.withAgent
              : T.online
        : T[{ idle: 'online', failed: 'unavailable' }[c] || c];
  }

  function updateBadge() {
    badge.hidden = unread === 0;
    badge.textContent = unread > 99 ? '99+' : String(unread);
    launcher.setAttribute('aria-label', unread ? `${T.open} (${unread} ${T.unread})` : T.open);
  }

  // ---- protocol -------------------------------------------------------------------------------

  const sendRaw = (frame) => {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(frame));
  };

  function connect() {
    clearTimeout(retryTimer);
    if (ws || stopped || !(S.conversation || wantStart)) return;
    setConn(attempt ? 'reconnecting' : 'connecting');
    let sock;
    try {
      sock = new WebSocket(WS_URL);
    } catch {
      return retry();
    }
    ws = sock;
    sock.onopen = () => {
      if (ws !== sock) return;
      lastRx = Date.now();
      if (S.conversation) sendRaw({ type: 'resume', conversation: S.conversation, token: S.token, last_seq: S.lastSeq });
      else sendRaw({ type: 'start', flow: FLOW, locale: LOCALE, tz_offset_minutes: -new Date().getTimezoneOffset(), visitor: VISITOR });
    };
    sock.onmessage = (ev) => {
      if (ws !== sock) return;
      lastRx = Date.now();
      let f;
      try {
        f = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (f && typeof f === 'object') onFrame(f);
    };
    sock.onclose = () => {
      if (ws !== sock) return;
      drop();
      retry();
    };
  }

  function drop() {
    ws = null;
    welcomed = false;
    visitorTyping = false;
    clearInterval(pingTimer);
  }

  /** Reconnects with exponential backoff (0.5 s doubling to 10 s) and jitter. */
  function retry() {
    if (stopped) return;
    const delay = Math.min(10000, 500 * 2 ** attempt) * (0.5 + Math.random() / 2);
    attempt++;
    setConn(navigator.onLine === false ? 'offline' : 'reconnecting');
    retryTimer = setTimeout(connect, delay);
  }

  /** Closes the socket on purpose and connects again at once (a new conversation, a bad token). */
  function reconnectNow() {
    const old = ws;
    drop();
    if (old) old.close(1000);
    attempt = 0;
    connect();
  }

  function onFrame(f) {
    switch (f.type) {
      case 'welcome':
        return onWelcome(f);
      case 'message':
        return onMessage(f);
      case 'ack':
        if (typeof f.seq === 'number') {
          seen.add(f.seq);
          bump(f.seq);
        }
        return settle(f.client_id, f.seq);
      case 'typing':
        // Typing frames carry no seq: one may arrive after the conversation ended.
        if (f.sender !== 'visitor') showTyping(!!f.on && S.status !== 'ended', 30000);
        return;
      case 'state':
        S.owner = f.owner ?? S.owner;
        S.status = f.status ?? S.status;
        updateStatus();
        showEnded(S.status === 'ended');
        if (S.owner !== 'bot') showTyping(false);
        return;
      case 'error':
        return onError(f);
      default:
        return; // pong, and types added later
    }
  }

  function onWelcome(f) {
    welcomed = true;
    wantStart = false;
    attempt = 0;
    S.conversation = f.conversation;
    S.token = f.token;
    S.owner = f.owner;
    S.status = f.status;
    persist();
    setConn('open');
    showEnded(S.status === 'ended');
    clearInterval(pingTimer);
    // Browsers answer the server's pings by themselves but cannot see them; our own ping finds a
    // connection that died silently (a laptop waking up) within a minute.
    pingTimer = setInterval(() => {
      if (Date.now() - lastRx > 45000) reconnectNow();
      else sendRaw({ type: 'ping' });
    }, 25000);
    // Messages that were never acked go again with the same client_id; the server stores each once.
    for (const p of pending.values()) sendRaw(p.frame);
    receipts();
  }

  function onMessage(f) {
    const seq = f.seq;
    if (typeof seq !== 'number' || seen.has(seq)) return;
    seen.add(seq);
    bump(seq);
    if (f.sender === 'visitor' && pending.has(f.client_id)) return settle(f.client_id, seq);
    if (f.sender === 'bot' || f.sender === 'agent') showTyping(false);
    render(f);
    if (f.sender !== 'visitor' && seq > S.readSeq && !(S.open && !document.hidden)) {
      unread++;
      updateBadge();
    }
    markRead();
  }

  function bump(seq) {
    if (seq > S.lastSeq) {
      S.lastSeq = seq;
      persist();
      clearTimeout(receiptTimer);
      receiptTimer = setTimeout(receipts, 400);
    }
  }

  /** Tells the server what arrived (`ack`) and, with the panel open and visible, what was read. */
  function receipts() {
    if (!welcomed) return;
    if (S.lastSeq > ackSent) sendRaw({ type: 'ack', seq: (ackSent = S.lastSeq) });
    if (S.open && !document.hidden && S.lastSeq > readSent) sendRaw({ type: 'read', seq: (readSent = S.lastSeq) });
  }

  function markRead() {
    if (!S.open || document.hidden) return;
    unread = 0;
    updateBadge();
    if (S.lastSeq > S.readSeq) {
      S.readSeq = S.lastSeq;
      persist();
    }
    clearTimeout(receiptTimer);
    receiptTimer = setTimeout(receipts, 400);
  }

  function settle(id, seq) {
    const p = pending.get(id);
    if (!p) return;
    pending.delete(id);
    p.row.dataset.state = 'sent';
    if (typeof seq === 'number') p.row.dataset.seq = seq;
    p.row.querySelector('.meta')?.remove();
  }

  function fail(id, text) {
    const p = pending.get(id);
    if (!p) return false;
    pending.delete(id);
    p.row.dataset.state = 'failed';
    p.row.classList.add('failed');
    const meta = p.row.querySelector('.meta');
    if (meta) meta.textContent = text;
    return true;
  }

  function enqueue(frame, row) {
    const id = newId();
    frame.client_id = id;
    pending.set(id, { frame, row });
    disableChoices();
    inputMode(null);
    typingSignal(false);
    if (S.owner === 'bot' && S.status === 'active') showTyping(true, 10000);
    if (welcomed) sendRaw(frame);
    else if (!ws) {
      if (!S.conversation) wantStart = true;
      attempt = 0;
      connect();
    }
  }

  /** `typing` frames only matter to a person, so they are sent only when one may be there. */
  function typingSignal(on) {
    clearTimeout(visitorTypingTimer);
    if (on) visitorTypingTimer = setTimeout(() => typingSignal(false), 3000);
    if (on === visitorTyping || !welcomed || (S.owner === 'bot' && on)) return;
    visitorTyping = on;
    sendRaw({ type: 'typing', on });
  }

  function onError(f) {
    const id = f.client_id;
    const text = T.err[f.code] || T.err.generic;
    switch (f.code) {
      case 'rate_limited': {
        const p = pending.get(id);
        if (p) setTimeout(() => welcomed && pending.get(id) === p && sendRaw(p.frame), Math.max(100, +f.retry_after_ms || 1000));
        return;
      }
      case 'unknown_conversation':
      case 'bad_token':
        // The server no longer knows this conversation (or it was another server's): begin anew.
        forget();
        wantStart = true;
        return reconnectNow();
      case 'unknown_flow':
        stopped = true;
        drop();
        setConn('failed');
        for (const key of [...pending.keys()]) fail(key, text);
        return line(text, 'err');
      case 'ended':
        S.status = 'ended';
        updateStatus();
        showEnded(true);
        if (!fail(id, text)) line(text, 'err');
        return;
      case 'internal':
        // Not acked: the message stays pending and goes again after the resume.
        return line(text, 'err');
      case 'not_started':
        return reconnectNow();
      default:
        showTyping(false);
        if (!fail(id, text)) line(text, 'err');
    }
  }

  /** Drops the stored conversation and clears the transcript (choices of the old one go too). */
  function forget() {
    store.clear();
    S.conversation = S.token = S.owner = S.status = null;
    S.lastSeq = S.readSeq = ackSent = readSent = 0;
    seen.clear();
    unread = 0;
    updateBadge();
    for (const [id, p] of pending) if (p.frame.type === 'choice') pending.delete(id);
    for (const n of [...log.children]) if (n !== typingEl) n.remove();
    for (const p of pending.values()) log.insertBefore(p.row, typingEl);
    showTyping(false);
    showEnded(false);
    inputMode(null);
  }

  function restart() {
    pending.clear();
    forget();
    stopped = false;
    wantStart = true;
    reconnectNow();
    input.focus();
  }

  // ---- API ------------------------------------------------------------------------------------

  function open() {
    if (S.open) return;
    S.open = true;
    panel.hidden = false;
    wrap.classList.add('on');
    launcher.setAttribute('aria-expanded', 'true');
    if (!ws && !stopped) {
      if (!S.conversation) wantStart = true;
      attempt = 0;
      connect();
    }
    scrollDown();
    markRead();
    setTimeout(() => (input.disabled ? restartBtn : input).focus(), 0);
  }

  function close() {
    if (!S.open) return;
    const hadFocus = root.activeElement && panel.contains(root.activeElement);
    S.open = false;
    panel.hidden = true;
    wrap.classList.remove('on');
    launcher.setAttribute('aria-expanded', 'false');
    if (hadFocus) launcher.focus();
  }

  window.kefuWidget = {
    open,
    close,
    /** A snapshot for tests and host pages. */
    get state() {
      return { ...S, pending: pending.size };
    },
  };

  (document.body || document.documentElement).append(host);
  updateStatus();
  // A returning visitor's conversation is resumed at once (from seq 0: the page is new, so the
  // whole transcript is rebuilt), so the badge can show what arrived meanwhile.
  if (S.conversation) connect();
  if (cfg.open === 'true') open();
})();
