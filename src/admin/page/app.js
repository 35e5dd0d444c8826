// smsgate dashboard: a thin view over /api/… (see src/admin/api.rs), polled every 3 s.
// No framework, no external assets; every value from the server goes in as text, never HTML.
"use strict";

const POLL_MS = 3000;
const SVG = "http://www.w3.org/2000/svg";
let csrf = null;
let search = "";
let pollTimer = null;
const revealed = new Set();

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function pill(text, kind) {
  return el("span", { class: "pill " + (kind || text || "") }, text);
}

function age(ms) {
  if (ms === null || ms === undefined) return "–";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return duration(s);
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.round(seconds);
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min" + (s < 600 && s % 60 ? " " + (s % 60) + " s" : "");
  if (s < 172800) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  return Math.floor(s / 86400) + " days";
}

function clock(ms) {
  const date = new Date(ms);
  const today = new Date().toDateString() === date.toDateString();
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  return today ? time : date.toLocaleDateString([], { day: "numeric", month: "short" }) + " " + time;
}

async function api(path, options) {
  const response = await fetch(path, Object.assign({ credentials: "same-origin", cache: "no-store" }, options));
  if (response.status === 401) {
    window.location.href = "/login";
    throw new Error("logged out");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error((body.error && body.error.message) || ("HTTP " + response.status));
  return body;
}

function post(path, body) {
  return api(path, {
    method: "POST",
    headers: { "content-type": "application/json", "x-csrf-token": csrf || "" },
    body: body === undefined ? "" : JSON.stringify(body),
  });
}

function contactCell(row) {
  const full = row.contact;
  const masked = row.contact_masked;
  if (!full) return el("span", { class: "muted" }, masked || "unknown");
  const key = (row.m_id || "") + full;
  const span = el("span", { class: "contact", title: "click to show the whole number" }, revealed.has(key) ? full : masked);
  span.addEventListener("click", () => {
    if (revealed.has(key)) revealed.delete(key); else revealed.add(key);
    span.textContent = revealed.has(key) ? full : masked;
  });
  return span;
}

// ---- modems

// "3 of 10 in the last minute · …": what the SIM sent in each window against its cap (a pool
// SIM's per_minute / per_hour / per_day, recipients_per_day), just the count where it has none.
function sentAgainstCaps(sent, caps) {
  const against = (count, cap) => (cap === null || cap === undefined) ? String(count ?? 0) : `${count ?? 0} of ${cap}`;
  const parts = [
    `${against(sent.last_minute, caps.per_minute)} in the last minute`,
    `${against(sent.last_hour, caps.per_hour)} in the hour`,
    `${against(sent.last_day, caps.per_day)} in 24 h`,
  ];
  if (caps.recipients_per_day !== null && caps.recipients_per_day !== undefined) {
    parts.push(`${against(caps.recipients_last_day, caps.recipients_per_day)} recipients in 24 h`);
  }
  return parts.join(" · ");
}

function bars(dbm) {
  const level = dbm === null || dbm === undefined ? 0 : dbm >= -73 ? 5 : dbm >= -83 ? 4 : dbm >= -93 ? 3 : dbm >= -103 ? 2 : 1;
  const node = el("span", { class: "bars " + (level <= 2 ? "poor" : level === 3 ? "fair" : ""), "aria-hidden": "true" });
  for (let i = 1; i <= 5; i++) {
    const bar = el("i", { class: i <= level ? "on" : "" });
    bar.style.height = (4 + i * 3) + "px";
    node.append(bar);
  }
  return node;
}

function sparkline(history) {
  const width = 300, height = 56, pad = 4, axis = height - 12;
  const now = Date.now(), hour = 3600 * 1000;
  const samples = (history && history.samples) || [];
  // Less than an hour of history (the daemon started recently): the line spans what there is.
  const from = samples.length ? Math.max(now - hour, Math.min(samples[0].at_ms, now - 60 * 1000)) : now - hour;
  const known = samples.filter((s) => s.dbm !== null).map((s) => s.dbm);
  const lo = Math.max(-113, Math.min(...known, -80) - 6), hi = Math.min(-51, Math.max(...known, -80) + 6);
  const x = (t) => ((t - from) / (now - from)) * width;
  const y = (dbm) => pad + (1 - (Math.min(hi, Math.max(lo, dbm)) - lo) / (hi - lo)) * (axis - 2 * pad);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none" });
  chart.append(svg("line", { class: "axis", x1: 0, x2: width, y1: axis, y2: axis }));
  let segment = [];
  const segments = [];
  for (const sample of samples) {
    if (sample.dbm === null) { if (segment.length) segments.push(segment); segment = []; continue; }
    segment.push([x(sample.at_ms), y(sample.dbm)]);
  }
  if (segment.length) segments.push(segment);
  for (const points of segments) {
    if (points.length === 1) points.unshift([Math.max(0, points[0][0] - 3), points[0][1]]);
    const line = points.map((p) => p[0].toFixed(1) + "," + p[1].toFixed(1)).join(" ");
    const first = points[0][0].toFixed(1), last = points[points.length - 1][0].toFixed(1);
    chart.append(svg("polygon", { class: "area", points: `${first},${axis} ${line} ${last},${axis}` }));
    chart.append(svg("polyline", { class: "line", points: line }));
  }
  const since = now - from >= hour - 1000 ? "1 h ago"
    : "since " + new Date(from).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  chart.append(svg("text", { x: 0, y: height - 1 }, since));
  chart.append(svg("text", { x: width, y: height - 1, "text-anchor": "end" }, "now"));
  if (known.length) {
    chart.append(svg("text", { x: width, y: 9, "text-anchor": "end" },
      `${Math.min(...known)} to ${Math.max(...known)} dBm`));
  } else {
    chart.append(svg("text", { x: width / 2, y: axis / 2 + 4, "text-anchor": "middle" }, samples.length ? "no signal" : "collecting…"));
  }
  return el("div", { class: "sparkline", title: "signal over the last hour" }, chart);
}

function renderModems(data) {
  const box = document.getElementById("modems");
  box.replaceChildren(...data.modems.map((modem) => {
    const state = modem.healthy ? modem.state : "unhealthy";
    const balance = modem.balance_text
      ? modem.balance_text + (modem.balance_read_ms ? " (read " + age(modem.balance_read_ms) + " ago)" : "")
      : "not read yet";
    const sent = modem.sent || {};
    return el("article", { class: "card modem", "data-modem": modem.name },
      el("div", { class: "modem-head" },
        el("span", { class: "m-name" }, modem.name),
        pill(state, state),
        el("span", { class: "muted small m-model" }, modem.model || "")),
      el("div", { class: "signal-row" },
        bars(modem.signal_dbm),
        el("div", {},
          el("div", { class: "m-signal" }, modem.signal_dbm === null ? "no signal" : modem.signal_dbm + " dBm"),
          el("div", { class: "muted small" }, modem.signal || "")),
        sparkline(modem.signal_history)),
      el("dl", { class: "kv" },
        el("dt", {}, "Operator"), el("dd", { class: "m-operator" }, modem.operator || "–"),
        el("dt", {}, "Network"), el("dd", { class: "m-registration" }, modem.registration || "–"),
        el("dt", {}, "SIM"), el("dd", {}, modem.sim || "–"),
        el("dt", {}, "Balance"), el("dd", { class: "m-balance" + (modem.balance_low ? " bad-text" : "") }, balance),
        modem.balance_error ? el("dt", {}, "Balance check") : null,
        modem.balance_error ? el("dd", { class: "muted small m-balance-error" }, modem.balance_error) : null,
        el("dt", {}, "Calls"), el("dd", { class: "m-calls" },
          String(modem.calls ?? 0) + (modem.calls_withheld ? ` (${modem.calls_withheld} withheld)` : "")),
        el("dt", {}, "Sent"), el("dd", { class: "m-sent" }, sentAgainstCaps(sent, modem.caps || {})),
        modem.last_error ? el("dt", {}, "Last error") : null,
        modem.last_error ? el("dd", { class: "bad-text" }, modem.last_error) : null));
  }));
  const alerts = data.modems.filter((m) => !m.healthy || !m.registered).map((m) => `modem ${m.name}: ${m.last_error || m.registration || m.state}`);
  return alerts.concat(data.modems.filter((m) => m.balance_low).map((m) => `modem ${m.name}: the SIM's balance is low (${m.balance}): top it up`));
}

// ---- queues

function show(id, text) {
  const node = document.getElementById(id);
  node.hidden = !text;
  node.textContent = text || "";
}

function renderQueues(data) {
  const outbox = data.outbox, webhook = data.webhook;
  document.getElementById("q-waiting").textContent = outbox.waiting;
  document.getElementById("q-oldest").textContent = outbox.oldest_waiting_ms ? age(outbox.oldest_waiting_ms) : "–";
  document.getElementById("q-drain").textContent =
    outbox.drain_estimate_s === null ? "not known yet" : outbox.drain_estimate_s === 0 ? "empty" : "≈ " + duration(outbox.drain_estimate_s);
  const order = ["queued", "sending", "unknown", "sent", "delivered", "failed"];
  const states = Object.entries(outbox.by_state).sort((a, b) => order.indexOf(a[0]) - order.indexOf(b[0]));
  document.getElementById("q-states").replaceChildren(...(states.length ? states.map(([state, n]) => pill(`${state} ${n}`, state)) : [el("span", { class: "muted small" }, "nothing sent yet")]));
  show("q-send-error", outbox.last_send_error && outbox.waiting ? "Last send error: " + outbox.last_send_error : "");
  document.getElementById("w-pending").textContent = webhook.pending;
  document.getElementById("w-oldest").textContent = webhook.oldest_pending_ms ? age(webhook.oldest_pending_ms) : "–";
  document.getElementById("dead-count").textContent = webhook.dead;
  show("w-paused", webhook.paused ? "Delivery paused: " + webhook.paused : "");
  show("w-error", webhook.last_error && !webhook.paused && (webhook.pending || webhook.dead) ? "Last webhook error: " + webhook.last_error : "");
  const dead = document.getElementById("dead");
  dead.hidden = webhook.dead === 0;
  document.getElementById("retry-dead").textContent = webhook.dead > 1 ? `Send all ${webhook.dead} again` : "Send again";
  document.getElementById("dead-list").replaceChildren(...webhook.dead_events.map((event) =>
    el("li", { "data-event": event.id },
      el("b", {}, event.kind + (event.status ? " " + event.status : "")), " for ", contactCell(event),
      el("span", { class: "muted small" }, " · " + clock(event.created_ms)),
      event.error ? el("span", { class: "why" }, event.error) : null)));
  const problems = [];
  if (webhook.paused) problems.push("webhook delivery paused");
  if (webhook.dead) problems.push(`${webhook.dead} dead webhook event(s)`);
  return problems;
}

// ---- chart

function niceMax(value) {
  if (value <= 4) return 4;
  const step = Math.pow(10, Math.floor(Math.log10(value)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * step >= value) return m * step;
  return 10 * step;
}

function renderChart(data) {
  const hours = data.hours;
  const width = 1200, height = 190, left = 34, bottom = 22, top = 8;
  const max = niceMax(Math.max(1, ...hours.map((h) => Math.max(h.sent, h.received, h.failed))));
  const plotH = height - bottom - top, slot = (width - left) / hours.length, bar = Math.max(2, (slot - 6) / 3);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none" });
  for (let i = 0; i <= 4; i++) {
    const value = (max / 4) * i, y = top + plotH - (value / max) * plotH;
    chart.append(svg("line", { class: "grid-line", x1: left, x2: width, y1: y, y2: y }));
    chart.append(svg("text", { x: left - 6, y: y + 3, "text-anchor": "end" }, Number.isInteger(value) ? value : value.toFixed(1)));
  }
  hours.forEach((hour, i) => {
    const x0 = left + i * slot + 3;
    [["sent", hour.sent], ["received", hour.received], ["failed", hour.failed]].forEach(([kind, n], k) => {
      const h = (n / max) * plotH;
      const rect = svg("rect", { class: kind, x: x0 + k * bar, y: top + plotH - h, width: Math.max(1, bar - 1), height: h, rx: 1 });
      rect.append(svg("title", {}, `${new Date(hour.start_ms).getHours()}:00 — ${n} ${kind}`));
      chart.append(rect);
    });
    if (i % 3 === 0 || i === hours.length - 1) {
      const label = String(new Date(hour.start_ms).getHours()).padStart(2, "0") + ":00";
      chart.append(svg("text", { x: x0 + slot / 2 - 3, y: height - 6, "text-anchor": "middle" }, label));
    }
  });
  document.getElementById("chart").replaceChildren(chart);
}

// ---- messages

function renderMessages(data) {
  const empty = (what) => el("tr", { class: "empty" }, el("td", { colspan: 5 }, search ? `no ${what} for “${search}”` : `no ${what} yet`));
  const out = data.outbound.map((row) => el("tr", { "data-mid": row.m_id },
    el("td", { title: new Date(row.at_ms).toString() }, clock(row.at_ms)),
    el("td", {}, contactCell(row), row.source === "cli" ? el("span", { class: "muted small" }, " test") : null),
    el("td", {}, row.parts),
    el("td", { class: "state" }, pill(row.state, row.state)),
    el("td", { class: "reason" }, row.reason || "")));
  const inn = data.inbound.map((row) => el("tr", { "data-mid": row.m_id || "" },
    el("td", { title: new Date(row.at_ms).toString() }, clock(row.at_ms)),
    el("td", {}, contactCell(row)),
    el("td", {}, row.parts_received === row.parts ? row.parts : `${row.parts_received}/${row.parts}`),
    el("td", { class: "state" }, pill(row.state === "complete" ? "received" : row.state, row.state)),
    el("td", { class: "note" }, row.reason || (row.forwarded ? "" : "kept locally (not sent to respond.io)"))));
  document.getElementById("outbound").replaceChildren(...(out.length ? out : [empty("sent messages")]));
  document.getElementById("inbound").replaceChildren(...(inn.length ? inn : [empty("received messages")]));
}

// ---- the loop

async function poll() {
  clearTimeout(pollTimer);
  try {
    const query = search ? "?q=" + encodeURIComponent(search) : "";
    const [modems, queues, messages, chart] = await Promise.all([
      api("/api/modems"), api("/api/queues"), api("/api/messages" + query), api("/api/chart"),
    ]);
    const problems = [...renderModems(modems), ...renderQueues(queues)];
    renderChart(chart);
    renderMessages(messages);
    const overall = document.getElementById("overall");
    overall.textContent = problems.length ? "needs attention" : "all good";
    overall.className = "pill " + (problems.length ? "degraded" : "ok");
    show("problem", problems.length ? problems.join(" · ") : "");
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (error) {
    show("problem", "Cannot reach smsgate: " + error.message);
    document.getElementById("overall").className = "pill bad";
    document.getElementById("overall").textContent = "unreachable";
  }
  pollTimer = setTimeout(poll, POLL_MS);
}

async function start() {
  const session = await api("/api/session");
  csrf = session.csrf;
  const logout = document.getElementById("logout");
  logout.hidden = session.auth !== "password";
  logout.addEventListener("click", async () => {
    await fetch("/logout", { method: "POST", credentials: "same-origin", headers: { "x-csrf-token": csrf } });
    window.location.href = "/login";
  });
  let debounce = null;
  document.getElementById("search").addEventListener("input", (event) => {
    clearTimeout(debounce);
    debounce = setTimeout(() => { search = event.target.value.trim(); poll(); }, 300);
  });
  document.getElementById("retry-dead").addEventListener("click", async (event) => {
    const button = event.target;
    button.disabled = true;
    try {
      const answer = await post("/api/webhook/retry-dead");
      button.textContent = `${answer.requeued} queued again`;
    } catch (error) {
      show("problem", "Send again failed: " + error.message);
    } finally {
      button.disabled = false;
      poll();
    }
  });
  document.getElementById("send-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const result = document.getElementById("send-result");
    const button = document.getElementById("send-button");
    button.disabled = true;
    try {
      const answer = await post("/api/send", {
        to: document.getElementById("send-to").value.trim(),
        text: document.getElementById("send-text").value,
      });
      result.className = "small ok-text";
      result.textContent = `Queued (${answer.parts} part${answer.parts === 1 ? "" : "s"}).`;
    } catch (error) {
      result.className = "small bad-text";
      result.textContent = error.message;
    } finally {
      button.disabled = false;
      poll();
    }
  });
  poll();
}

start().catch((error) => show("problem", "Cannot start the dashboard: " + error.message));
