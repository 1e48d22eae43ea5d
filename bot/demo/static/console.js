// The cmdcenter demo console: a small Slack look-alike over /console/api (see bot/demo/console.py).
//
// Sections: 1 state and HTTP · 2 DOM helpers · 3 mrkdwn · 4 Block Kit · 5 messages · 6 channels,
// threads and composer · 7 modals · 8 stand-ins and scenario · 9 live updates and start-up.
//
// Safety rule: every piece of text from the workspace goes into the page through text nodes
// (textContent / createTextNode); links get an href only for http(s) and mailto URLs. No innerHTML.
"use strict";

(() => {
  // ---- 1. state and HTTP --------------------------------------------------------------------

  const S = {
    me: "",
    bot: "",
    users: {},
    actors: [],
    channels: [],
    channelNames: {},
    current: "",
    thread: null, // {channel, ts}
    modal: null, // {id, hash}
    tab: "pagerduty",
    seenCounts: {},
    followed: "",
    refreshing: false,
    again: false,
  };
  const API = "/console/api";

  async function get(path) {
    const sep = path.includes("?") ? "&" : "?";
    const response = await fetch(`${API}${path}${sep}user=${encodeURIComponent(S.me)}`);
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return response.json();
  }

  async function post(path, body) {
    const response = await fetch(`${API}${path}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user: S.me, ...body }),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      toast(data.error || `HTTP ${response.status}`);
      throw new Error(data.error || `HTTP ${response.status}`);
    }
    return data;
  }

  // ---- 2. DOM helpers ---------------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function safeUrl(url) {
    return /^(https?:\/\/|mailto:)/i.test(url) ? url : null;
  }

  function link(url, label) {
    const href = safeUrl(url);
    if (!href) return document.createTextNode(label || url);
    return el("a", { href, target: "_blank", rel: "noopener noreferrer" }, label || url);
  }

  let toastTimer = 0;
  function toast(message) {
    const box = $("toast");
    box.textContent = message;
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => (box.hidden = true), 5000);
  }

  function userName(id) {
    const user = S.users[id];
    return user ? user.real_name || user.name : id;
  }

  function initials(id) {
    const name = userName(id || "?");
    return name.split(/\s+/).map((w) => w[0] || "").join("").slice(0, 2).toUpperCase();
  }

  function hue(id) {
    let h = 0;
    for (const ch of String(id)) h = (h * 31 + ch.charCodeAt(0)) % 360;
    return h;
  }

  function clock(seconds) {
    const d = new Date(seconds * 1000);
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  // ---- 3. mrkdwn ----------------------------------------------------------------------------------

  const EMOJI = {
    memo: "📝", pushpin: "📌", eyes: "👀", "+1": "👍", thumbsup: "👍", "-1": "👎", fire: "🔥",
    rotating_light: "🚨", warning: "⚠️", white_check_mark: "✅", heavy_check_mark: "✔️", x: "❌",
    no_entry: "⛔", red_circle: "🔴", large_blue_circle: "🔵", large_green_circle: "🟢",
    large_yellow_circle: "🟡", large_orange_circle: "🟠", rocket: "🚀", rewind: "⏪", hourglass: "⌛",
    hourglass_flowing_sand: "⏳", spiral_note_pad: "🗒️", wastebasket: "🗑️", bell: "🔔", pager: "📟",
    information_source: "ℹ️", question: "❓", lock: "🔒", snowflake: "❄️", tada: "🎉", clipboard: "📋",
    bar_chart: "📊", chart_with_upwards_trend: "📈", mag: "🔍", sos: "🆘", construction: "🚧",
    arrows_counterclockwise: "🔄", stopwatch: "⏱️", bust_in_silhouette: "👤", busts_in_silhouette: "👥",
    link: "🔗", speech_balloon: "💬", loudspeaker: "📢", mega: "📣", green_heart: "💚", boom: "💥",
    octagonal_sign: "🛑", traffic_light: "🚦", vertical_traffic_light: "🚦", heart: "❤️", ok: "🆗",
    calendar: "📆", page_facing_up: "📄", gear: "⚙️", wrench: "🔧", ambulance: "🚑", smile: "😄",
    alarm_clock: "⏰", arrow_down: "⬇️", arrow_up: "⬆️", arrow_forward: "▶️", arrow_right: "➡️",
    grey_question: "❔", ice_cube: "🧊", no_entry_sign: "🚫", stethoscope: "🩺", sunny: "☀️",
    test_tube: "🧪", white_circle: "⚪", zzz: "💤", repeat: "🔁", lock_with_ink_pen: "🔏",
  };
  const QUICK_REACTIONS = ["memo", "pushpin", "eyes", "+1", "white_check_mark", "fire"];

  function emoji(name) {
    return EMOJI[name] || `:${name}:`;
  }

  function decode(text) {
    return text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
  }

  function slackLink(inner) {
    const bar = inner.indexOf("|");
    const target = bar >= 0 ? inner.slice(0, bar) : inner;
    const label = bar >= 0 ? decode(inner.slice(bar + 1)) : "";
    if (target.startsWith("@")) {
      return el("span", { class: "mention", title: target.slice(1) }, `@${label || userName(target.slice(1))}`);
    }
    if (target.startsWith("#")) {
      const id = target.slice(1);
      const name = label || S.channelNames[id] || id;
      return el("a", { class: "channel-ref", href: "#", onclick: (e) => { e.preventDefault(); openChannel(id); } }, `#${name}`);
    }
    if (target.startsWith("!")) {
      const special = target.slice(1).split("^")[0];
      const text = label || (["here", "channel", "everyone"].includes(special) ? `@${special}` : `@${special}`);
      return el("span", { class: "mention" }, text);
    }
    return link(decode(target), label || decode(target));
  }

  const INLINE = new RegExp(
    [
      "<([^<>\\n]+)>", // 1 links and mentions
      "`([^`\\n]+)`", // 2 code
      "(?<![\\w*])\\*(?=\\S)([^*\\n]+?)\\*(?![\\w*])", // 3 bold
      "(?<![\\w_])_(?=\\S)([^_\\n]+?)_(?![\\w_])", // 4 italic
      "(?<![\\w~])~(?=\\S)([^~\\n]+?)~(?![\\w~])", // 5 strike
      ":([a-z0-9_+'-]+):", // 6 emoji
    ].join("|"),
    "g",
  );

  function inline(text) {
    const out = document.createDocumentFragment();
    let last = 0;
    for (const m of text.matchAll(INLINE)) {
      if (m.index > last) out.append(decode(text.slice(last, m.index)));
      if (m[1] !== undefined) out.append(slackLink(m[1]));
      else if (m[2] !== undefined) out.append(el("code", {}, decode(m[2])));
      else if (m[3] !== undefined) out.append(el("b", {}, inline(m[3])));
      else if (m[4] !== undefined) out.append(el("i", {}, inline(m[4])));
      else if (m[5] !== undefined) out.append(el("s", {}, inline(m[5])));
      else if (m[6] !== undefined) out.append(EMOJI[m[6]] ? el("span", { class: "emoji", title: `:${m[6]}:` }, EMOJI[m[6]]) : m[0]);
      last = m.index + m[0].length;
    }
    if (last < text.length) out.append(decode(text.slice(last)));
    return out;
  }

  function mrkdwn(text) {
    const root = el("div", { class: "mrkdwn" });
    const parts = String(text || "").split("```");
    parts.forEach((part, index) => {
      if (index % 2 === 1) {
        root.append(el("pre", {}, decode(part.replace(/^\n/, ""))));
        return;
      }
      const lines = part.split("\n");
      lines.forEach((line, n) => {
        if (/^(&gt;|>)/.test(line)) {
          root.append(el("blockquote", {}, inline(line.replace(/^(&gt;|>)\s?/, ""))));
          return;
        }
        const bullet = /^\s*[-•]\s+/.test(line);
        root.append(bullet ? el("span", { class: "bullet" }, "• ", inline(line.replace(/^\s*[-•]\s+/, ""))) : inline(line));
        if (n < lines.length - 1) root.append(el("br"));
      });
    });
    return root;
  }

  function textObject(obj) {
    if (!obj) return document.createTextNode("");
    if (obj.type === "mrkdwn") return mrkdwn(obj.text);
    return el("span", { class: "plain" }, plain(obj));
  }

  function plain(obj) {
    const text = obj && obj.text ? String(obj.text) : "";
    return text.replace(/:([a-z0-9_+'-]+):/g, (m, name) => EMOJI[name] || m);
  }

  // ---- 4. Block Kit -------------------------------------------------------------------------------

  // ctx: {channel, ts, ephemeral, viewId} says where an action comes from.
  function blocks(list, ctx) {
    const root = el("div", { class: "blocks" });
    for (const block of list || []) root.append(renderBlock(block, ctx));
    return root;
  }

  function renderBlock(block, ctx) {
    switch (block.type) {
      case "section": {
        const section = el("div", { class: "bk-section" });
        const body = el("div", { class: "bk-section-body" });
        if (block.text) body.append(textObject(block.text));
        if (block.fields) body.append(el("div", { class: "bk-fields" }, block.fields.map((f) => el("div", { class: "bk-field" }, textObject(f)))));
        section.append(body);
        if (block.accessory) section.append(el("div", { class: "bk-accessory" }, element(block.accessory, block, ctx)));
        return section;
      }
      case "header":
        return el("div", { class: "bk-header" }, plain(block.text));
      case "divider":
        return el("hr", { class: "bk-divider" });
      case "context":
        return el("div", { class: "bk-context" }, (block.elements || []).map((e) => (e.type === "image" ? link(e.image_url, `🖼 ${e.alt_text || "image"}`) : textObject(e))));
      case "actions":
        return el("div", { class: "bk-actions" }, (block.elements || []).map((e) => element(e, block, ctx)));
      case "image":
        return el("div", { class: "bk-image" }, block.title ? el("div", { class: "muted" }, plain(block.title)) : null, link(block.image_url, `🖼 ${block.alt_text || block.image_url}`));
      case "rich_text":
        return el("div", { class: "bk-rich" }, richText(block.elements || []));
      case "input":
        return el("div", { class: "bk-context" }, `[input: ${plain(block.label)}]`);
      case "file":
        return el("div", { class: "bk-context" }, `📎 file ${block.external_id || ""}`);
      default:
        return el("div", { class: "bk-unknown" }, `[${block.type} block]`);
    }
  }

  function richText(elements) {
    const out = document.createDocumentFragment();
    for (const item of elements) {
      if (item.type === "text") out.append(item.text || "");
      else if (item.type === "user") out.append(el("span", { class: "mention" }, `@${userName(item.user_id)}`));
      else if (item.type === "channel") out.append(`#${S.channelNames[item.channel_id] || item.channel_id}`);
      else if (item.type === "link") out.append(link(item.url, item.text || item.url));
      else if (item.type === "emoji") out.append(emoji(item.name));
      else if (item.elements) out.append(el(item.type === "rich_text_preformatted" ? "pre" : "div", {}, richText(item.elements)));
    }
    return out;
  }

  function element(e, block, ctx) {
    const send = (value) => act(ctx, { action_id: e.action_id, block_id: block.block_id, value: value || "" }, e);
    if (e.type === "button") {
      return el("button", {
        type: "button",
        class: `bk-btn ${e.style || ""}`,
        "data-action-id": e.action_id,
        onclick: () => {
          if (e.url && safeUrl(e.url)) window.open(e.url, "_blank", "noopener");
          confirmThen(e.confirm, () => send(e.value));
        },
      }, plain(e.text));
    }
    if (["static_select", "overflow", "external_select"].includes(e.type)) {
      const select = el("select", { class: "bk-select", "data-action-id": e.action_id, onchange: (ev) => confirmThen(e.confirm, () => send(ev.target.value)) });
      select.append(el("option", { value: "" }, e.type === "overflow" ? "⋯" : plain(e.placeholder) || "Choose…"));
      for (const o of options(e)) select.append(el("option", { value: o.value }, plain(o.text)));
      return select;
    }
    if (e.type === "image") return link(e.image_url, `🖼 ${e.alt_text || "image"}`);
    return el("span", { class: "bk-unknown" }, `[${e.type}]`);
  }

  function options(e) {
    const found = [...(e.options || [])];
    for (const group of e.option_groups || []) found.push(...(group.options || []));
    return found;
  }

  function confirmThen(confirm, action) {
    if (!confirm) return action();
    const close = () => root.remove();
    const root = el("div", { class: "modal-backdrop", role: "dialog", "aria-modal": "true" },
      el("div", { class: "modal confirm" },
        el("header", {}, el("h2", {}, plain(confirm.title) || "Are you sure?")),
        el("div", { class: "modal-body" }, textObject(confirm.text)),
        el("footer", {},
          el("button", { type: "button", class: "bk-btn", onclick: close }, plain(confirm.deny) || "Cancel"),
          el("button", { type: "button", class: `bk-btn ${confirm.style === "danger" ? "danger" : "primary"}`, onclick: () => { close(); action(); } }, plain(confirm.confirm) || "Yes"))));
    document.body.append(root);
  }

  async function act(ctx, action) {
    const body = { ...action };
    if (ctx.viewId) body.view_id = ctx.viewId;
    else Object.assign(body, { channel: ctx.channel, ts: ctx.ts, ephemeral: !!ctx.ephemeral });
    await post("/action", body).catch(() => {});
  }

  // ---- 5. messages --------------------------------------------------------------------------------

  function message(m, { inThread } = {}) {
    const ctx = { channel: m.channel, ts: m.ts, ephemeral: !!m.ephemeral };
    const author = m.user || "";
    const user = S.users[author];
    const isBot = !!m.bot_id || (user && user.is_bot);
    const node = el("div", { class: `msg${m.ephemeral ? " ephemeral" : ""}`, "data-ts": m.ts, "data-user": author });
    const avatar = el("div", { class: "avatar", "aria-hidden": "true" }, initials(author));
    avatar.style.background = `hsl(${hue(author)} 45% 42%)`;
    const body = el("div", { class: "msg-body" },
      el("div", { class: "meta" },
        el("span", { class: "name" }, userName(author)),
        isBot ? el("span", { class: "badge" }, "APP") : null,
        el("span", { class: "time" }, m.seen_at ? clock(m.seen_at) : ""),
        m.edited ? el("span", { class: "muted" }, "(edited)") : null,
        m.pinned ? el("span", { class: "pin", title: "Pinned" }, "📌 pinned") : null),
      m.ephemeral ? el("div", { class: "ephemeral-note" }, "👁 Only visible to you") : null,
      m.blocks && m.blocks.length ? blocks(m.blocks, ctx) : mrkdwn(m.text),
      files(m.files),
      reactions(m, ctx),
      !inThread && m.reply_count ? el("a", { href: "#", class: "thread-link", "data-testid": "thread-link", onclick: (e) => { e.preventDefault(); openThread(m.channel, m.ts); } }, `💬 ${m.reply_count} ${m.reply_count === 1 ? "reply" : "replies"}`) : null);
    node.append(avatar, body);
    if (!m.ephemeral) node.append(hoverActions(m, inThread));
    return node;
  }

  function files(list) {
    if (!list || !list.length) return null;
    return el("div", { class: "files" }, list.map((f) => el("a", { class: "file", href: `${API}/files/${encodeURIComponent(f.id)}`, target: "_blank", rel: "noopener" }, `📄 ${f.title || f.name}`)));
  }

  function reactions(m, ctx) {
    if (m.ephemeral || !m.reactions || !m.reactions.length) return null;
    return el("div", { class: "reactions" }, m.reactions.map((r) => el("button", {
      type: "button",
      class: `reaction${r.users.includes(S.me) ? " mine" : ""}`,
      "data-emoji": r.name,
      title: `${r.users.map(userName).join(", ")} reacted with :${r.name}:`,
      onclick: () => react(ctx, r.name),
    }, `${emoji(r.name)} ${r.count}`)));
  }

  function hoverActions(m, inThread) {
    const ctx = { channel: m.channel, ts: m.ts };
    return el("div", { class: "hover-actions" },
      el("button", { type: "button", title: "Add :memo: (timeline)", "aria-label": "React with memo", "data-react": "memo", onclick: () => react(ctx, "memo") }, "📝"),
      el("button", { type: "button", title: "Add a reaction", "aria-label": "Add reaction", onclick: (e) => openPicker(e.currentTarget, ctx) }, "☺+"),
      inThread ? null : el("button", { type: "button", title: "Reply in thread", "aria-label": "Reply in thread", onclick: () => openThread(m.channel, m.ts) }, "💬"));
  }

  async function react(ctx, name) {
    await post("/react", { channel: ctx.channel, ts: ctx.ts, emoji: name }).catch(() => {});
  }

  function openPicker(anchor, ctx) {
    const picker = $("picker");
    picker.replaceChildren(...QUICK_REACTIONS.map((name) => el("button", { type: "button", title: `:${name}:`, onclick: () => { picker.hidden = true; react(ctx, name); } }, emoji(name))));
    const box = anchor.getBoundingClientRect();
    picker.style.top = `${box.bottom + window.scrollY + 4}px`;
    picker.style.left = `${Math.max(8, box.right - 220)}px`;
    picker.hidden = false;
  }

  const rendered = new WeakMap(); // container -> the JSON it shows, to skip identical re-renders

  function unchanged(container, data) {
    const json = JSON.stringify(data);
    if (rendered.get(container) === json) return true;
    rendered.set(container, json);
    return false;
  }

  function renderList(container, list, options) {
    if (unchanged(container, [list, S.me, options.inThread]) && !options.forceBottom) return;
    const nearBottom = container.scrollHeight - container.scrollTop - container.clientHeight < 80;
    container.replaceChildren(...list.map((m) => message(m, options)));
    if (!list.length) container.append(el("div", { class: "empty" }, "No messages yet."));
    if (nearBottom || options.forceBottom) container.scrollTop = container.scrollHeight;
  }

  // ---- 6. channels, threads, composer -------------------------------------------------------------

  function renderChannels() {
    const list = $("channel-list");
    if (unchanged(list, [S.channels, S.current, S.seenCounts])) return;
    list.replaceChildren(...S.channels.map((c) => {
      const unread = c.id !== S.current && c.messages > (S.seenCounts[c.id] ?? 0);
      return el("li", {},
        el("a", {
          href: "#",
          class: `channel${c.id === S.current ? " active" : ""}${unread ? " unread" : ""}${c.incident ? " incident" : ""}`,
          "data-channel-name": c.name,
          "data-channel-id": c.id,
          title: c.topic ? `${c.name} · ${c.topic}` : c.name,
          onclick: (e) => { e.preventDefault(); openChannel(c.id); },
        }, c.incident ? "🚨 " : "# ", c.name));
    }));
  }

  async function openChannel(id) {
    S.current = id;
    closeThread();
    location.hash = id;
    await refresh({ forceBottom: true });
  }

  async function loadChannel(options) {
    if (!S.current) return;
    const data = await get(`/channel/${encodeURIComponent(S.current)}`);
    $("channel-name").textContent = `${data.channel.name.startsWith("inc-") ? "🚨" : "#"} ${data.channel.name}`;
    $("channel-topic").replaceChildren(data.channel.topic ? mrkdwn(data.channel.topic) : document.createTextNode(data.channel.purpose || ""));
    renderList($("messages"), data.messages, options || {});
    S.seenCounts[S.current] = (S.channels.find((c) => c.id === S.current) || {}).messages;
  }

  function openThread(channel, ts) {
    S.thread = { channel, ts };
    $("thread").hidden = false;
    $("thread-channel").textContent = `in #${S.channelNames[channel] || channel}`;
    loadThread({ forceBottom: true });
  }

  function closeThread() {
    S.thread = null;
    $("thread").hidden = true;
  }

  async function loadThread(options) {
    if (!S.thread) return;
    const data = await get(`/thread/${encodeURIComponent(S.thread.channel)}/${encodeURIComponent(S.thread.ts)}`);
    renderList($("thread-messages"), data.messages, { inThread: true, ...(options || {}) });
  }

  async function sendFrom(input, extra) {
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    try {
      await post("/send", { channel: S.current, text, ...extra });
    } catch (error) {
      input.value = text;
    }
  }

  // ---- 7. modals ----------------------------------------------------------------------------------

  function renderModal(view) {
    const root = $("modal-root");
    if (!view) {
      S.modal = null;
      root.replaceChildren();
      return;
    }
    if (S.modal && S.modal.id === view.id && S.modal.hash === view.hash) return; // keep what was typed
    S.modal = { id: view.id, hash: view.hash };
    const ctx = { viewId: view.id };
    const form = el("form", { class: "modal-body", onsubmit: (e) => { e.preventDefault(); submitModal(view, form); } });
    for (const block of view.blocks || []) form.append(block.type === "input" ? inputBlock(block) : renderBlock(block, ctx));
    const close = () => post("/close", { view_id: view.id }).catch(() => {});
    root.replaceChildren(el("div", { class: "modal-backdrop", role: "dialog", "aria-modal": "true", "data-testid": "modal" },
      el("div", { class: "modal" },
        el("header", {}, el("h2", {}, plain(view.title) || "Modal"), el("button", { type: "button", class: "icon", "aria-label": "Close", onclick: close }, "✕")),
        form,
        el("footer", {},
          el("button", { type: "button", class: "bk-btn", onclick: close }, plain(view.close) || "Cancel"),
          view.submit ? el("button", { type: "button", class: "bk-btn primary", "data-testid": "modal-submit", onclick: () => submitModal(view, form) }, plain(view.submit)) : null))));
  }

  function inputBlock(block) {
    const e = block.element || {};
    const id = `in-${block.block_id}-${e.action_id}`;
    const attrs = { id, "data-block-id": block.block_id, "data-action-id": e.action_id, "data-type": e.type };
    let control;
    if (e.type === "plain_text_input") {
      control = el(e.multiline ? "textarea" : "input", { ...attrs, placeholder: plain(e.placeholder), maxlength: e.max_length });
      control.value = e.initial_value || "";
    } else if (["static_select", "multi_static_select", "users_select", "multi_users_select", "conversations_select"].includes(e.type)) {
      control = el("select", { ...attrs, multiple: e.type.startsWith("multi_") });
      if (!e.type.startsWith("multi_")) control.append(el("option", { value: "" }, plain(e.placeholder) || "Choose…"));
      const opts = e.type.includes("users") ? S.actors.map((u) => ({ value: u, text: { text: userName(u) } }))
        : e.type === "conversations_select" ? S.channels.map((c) => ({ value: c.id, text: { text: `#${c.name}` } }))
        : options(e);
      const initial = (e.initial_option && e.initial_option.value) || e.initial_user || e.initial_conversation;
      for (const o of opts) control.append(el("option", { value: o.value, selected: o.value === initial }, plain(o.text)));
    } else if (e.type === "checkboxes" || e.type === "radio_buttons") {
      control = el("div", { ...attrs, class: "choices" }, options(e).map((o) => el("label", {}, el("input", { type: e.type === "checkboxes" ? "checkbox" : "radio", name: id, value: o.value }), " ", plain(o.text))));
    } else if (e.type === "datepicker") {
      control = el("input", { ...attrs, type: "date", value: e.initial_date });
    } else {
      control = el("input", { ...attrs, placeholder: plain(e.placeholder) });
    }
    return el("div", { class: "field", "data-block": block.block_id },
      el("label", { for: id }, plain(block.label), block.optional ? el("span", { class: "muted" }, " (optional)") : null),
      control,
      block.hint ? el("div", { class: "hint" }, plain(block.hint)) : null,
      el("div", { class: "field-error", role: "alert" }));
  }

  function collect(form) {
    const values = {};
    for (const control of form.querySelectorAll("[data-action-id][data-block-id]")) {
      let value;
      if (control.tagName === "DIV") value = [...control.querySelectorAll("input:checked")].map((i) => i.value);
      else if (control.multiple) value = [...control.selectedOptions].map((o) => o.value);
      else value = control.value;
      (values[control.dataset.blockId] ||= {})[control.dataset.actionId] = value;
    }
    return values;
  }

  async function submitModal(view, form) {
    const result = await post("/submit", { view_id: view.id, values: collect(form) }).catch(() => null);
    if (!result) return;
    for (const field of form.querySelectorAll(".field")) field.querySelector(".field-error").textContent = "";
    const errors = result.errors || {};
    for (const [blockId, text] of Object.entries(errors)) {
      const field = form.querySelector(`.field[data-block="${CSS.escape(blockId)}"]`);
      if (field) field.querySelector(".field-error").textContent = text;
      else toast(text);
    }
    if (!Object.keys(errors).length) renderModal(null);
  }

  // ---- 8. stand-ins and scenario ------------------------------------------------------------------

  const TABS = [
    ["pagerduty", "PagerDuty", (d) => (d.pagerduty ? d.pagerduty.events.length : 0)],
    ["statuspage", "Statuspage", (d) => (d.statuspage ? d.statuspage.incidents.length : 0)],
    ["argocd", "Argo CD", (d) => (d.argocd ? d.argocd.calls.length : 0)],
    ["probes", "Probes", () => 0],
    ["slack", "Slack API", (d) => d.slack.calls.length],
  ];

  function renderStandins(data) {
    if (unchanged($("standin-body"), [data, S.tab])) return;
    $("standin-tabs").replaceChildren(...TABS.map(([key, label, count]) => el("button", {
      type: "button", role: "tab", class: `tab${S.tab === key ? " active" : ""}`, "aria-selected": S.tab === key ? "true" : "false",
      onclick: () => { S.tab = key; renderStandins(data); },
    }, label, count(data) ? el("span", { class: "count" }, String(count(data))) : null)));
    const body = $("standin-body");
    const missing = Object.entries(data.missing || {}).map(([name, why]) => el("div", { class: "warn" }, `${name}: ${why}`));
    body.replaceChildren(...missing, ...standinTab(S.tab, data));
  }

  const card = (title, ...lines) => el("div", { class: "card" }, el("div", { class: "card-title" }, title), ...lines.map((l) => el("div", { class: "card-line" }, l)));
  const none = (text) => [el("div", { class: "empty" }, text)];

  function standinTab(tab, d) {
    if (tab === "pagerduty") {
      if (!d.pagerduty) return none("No PagerDuty stand-in.");
      const events = d.pagerduty.events.slice().reverse().map((e) => card(`${e.action} · ${e.severity || ""}`, e.summary || "", `dedup_key ${e.dedup_key || "–"}`, e.component ? `component ${e.component}` : ""));
      return [el("div", { class: "muted" }, `Events API v2 · ${d.pagerduty.oncall_lookups} on-call lookups`), ...(events.length ? events : none("No pages yet.")), ...d.pagerduty.violations.map((v) => el("div", { class: "warn" }, v))];
    }
    if (tab === "statuspage") {
      if (!d.statuspage) return none("No Statuspage stand-in.");
      const comps = Object.entries(d.statuspage.components).map(([name, status]) => el("div", { class: `comp ${status}` }, `${name}: ${status.replace(/_/g, " ")}`));
      const incidents = d.statuspage.incidents.map((i) => card(`${i.name} · ${i.status}`, ...i.updates.map((u) => `${u.status}: ${u.body || ""}`)));
      return [el("div", { class: "comps" }, comps), ...(incidents.length ? incidents : none("No public incidents."))];
    }
    if (tab === "argocd") {
      if (!d.argocd) return none("No Argo CD stand-in.");
      const apps = Object.entries(d.argocd.apps).map(([name, a]) => el("div", { class: "app" }, `${name}: ${a.version} · ${a.sync || ""} · ${a.health || ""}${a.operation ? ` · ${a.operation}` : ""}`));
      const calls = d.argocd.calls.slice().reverse().map((c) => card(`${c.method} ${c.path}`, JSON.stringify(c.body)));
      return [el("div", { class: "muted" }, `${d.argocd.reads} reads`), ...(calls.length ? calls : none("No rollbacks or syncs yet.")), el("h3", {}, "Applications"), ...apps];
    }
    if (tab === "probes") {
      return Object.entries(d.probes).map(([service, p]) => card(service,
        el("span", { class: p.health < 400 ? "ok" : "bad" }, `health ${p.health}`),
        `error rate ${Number(p["error rate"]).toFixed(2)} %`, `p95 latency ${Math.round(p["p95 latency"])} ms`));
    }
    const calls = d.slack.calls.slice().reverse().map((c) => el("div", { class: `call${c.ok ? "" : " bad"}` }, `${c.method}${c.channel ? ` ${S.channelNames[c.channel] ? `#${S.channelNames[c.channel]}` : c.channel}` : ""}${c.ok ? "" : ` → ${c.error}`}`));
    return [...d.slack.violations.map((v) => el("div", { class: "warn" }, v)), ...(calls.length ? calls : none("No Web API calls yet."))];
  }

  const MARKS = { pending: "○", running: "◐", passed: "✔", failed: "✘", skipped: "⤼" };

  function renderScenario(data) {
    if (!data || !data.steps || !data.steps.length || unchanged($("scenario-steps"), data)) return;
    $("scenario-panel").hidden = false;
    follow(data.steps.find((s) => s.status === "running"));
    $("scenario-title").textContent = data.title || data.name;
    $("scenario-steps").replaceChildren(...data.steps.map((s) => el("li", { class: `step ${s.status}`, title: s.detail || s.status }, `${MARKS[s.status] || ""} ${s.title}`, s.detail ? el("div", { class: "step-detail" }, s.detail) : null)));
  }

  // While a scenario plays, show what the acting person sees, where they act.
  function follow(step) {
    if (!step || !$("scenario-follow").checked || S.followed === `${step.id}:${step.channel}`) return;
    S.followed = `${step.id}:${step.channel}`;
    if (step.user && step.user !== S.me && S.actors.includes(step.user)) setUser(step.user);
    if (step.channel && step.channel !== S.current) openChannel(step.channel);
  }

  function setUser(id) {
    S.me = id;
    S.modal = null;
    $("user-switcher").value = id;
    $("user-title").textContent = (S.users[id] || {}).title || "";
    refresh();
  }

  // ---- 9. live updates and start-up ---------------------------------------------------------------

  async function refresh(options) {
    if (S.refreshing) {
      S.again = true;
      return;
    }
    S.refreshing = true;
    try {
      S.channels = await get("/channels");
      for (const c of S.channels) S.channelNames[c.id] = c.name;
      if (!S.current && S.channels.length) S.current = S.channels[0].id;
      renderChannels();
      const [standins, modal, scenario] = await Promise.all([get("/standins"), get("/modal"), get("/scenario"), loadChannel(options), loadThread()]);
      renderStandins(standins);
      renderModal(modal.view);
      renderScenario(scenario);
      renderChannels();
    } catch (error) {
      console.error(error);
    } finally {
      S.refreshing = false;
      if (S.again) {
        S.again = false;
        refresh();
      }
    }
  }

  function listen() {
    const source = new EventSource(`${API}/events`);
    source.addEventListener("change", () => refresh());
    let down = 0; // each stream ends after a while and reconnects at once: only a lasting error counts
    source.onopen = () => { clearTimeout(down); $("connection").classList.remove("down"); };
    source.onerror = () => { clearTimeout(down); down = setTimeout(() => $("connection").classList.add("down"), 3000); };
  }

  async function start() {
    const boot = await (await fetch(`${API}/bootstrap`)).json();
    S.bot = boot.bot;
    S.actors = boot.actors;
    for (const u of boot.users) S.users[u.id] = u;
    S.me = new URLSearchParams(location.search).get("as") || boot.default_user;
    $("team-name").textContent = boot.team;
    const switcher = $("user-switcher");
    switcher.replaceChildren(...S.actors.map((id) => el("option", { value: id, selected: id === S.me }, `${userName(id)} — ${S.users[id].role.replace(/_/g, " ")}`)));
    $("user-title").textContent = (S.users[S.me] || {}).title || "";
    switcher.addEventListener("change", () => setUser(switcher.value));
    $("composer").addEventListener("submit", (e) => { e.preventDefault(); sendFrom($("composer-input")); });
    $("thread-composer").addEventListener("submit", (e) => { e.preventDefault(); if (S.thread) sendFrom($("thread-input"), { channel: S.thread.channel, thread_ts: S.thread.ts }); });
    $("thread-close").addEventListener("click", closeThread);
    document.addEventListener("click", (e) => { if (!e.target.closest("#picker") && !e.target.closest(".hover-actions")) $("picker").hidden = true; });
    S.channels = await get("/channels");
    for (const c of S.channels) S.seenCounts[c.id] = c.messages;
    const wanted = location.hash.slice(1);
    const byName = S.channels.find((c) => c.name === boot.default_channel);
    S.current = S.channels.some((c) => c.id === wanted) ? wanted : (byName || S.channels[0] || {}).id || "";
    await refresh({ forceBottom: true });
    listen();
    $("composer-input").focus();
  }

  start();
})();
