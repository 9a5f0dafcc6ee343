// The bank page: reads the balances and top-accounts read models over the HTTP API,
// follows the event stream (SSE) to refresh them live, and sends deposits and
// withdrawals. Plain browser JavaScript, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
let lastPosition = 0;   // newest event seen on the stream
let refreshTimer = null;

async function getJson(path) {
  const res = await fetch(path, { cache: "no-store" });
  const body = await res.json();
  if (!res.ok) throw new Error(body.message || res.statusText);
  return body;
}

// Reads both read models as of at least the newest event seen (read-your-writes).
async function refresh() {
  refreshTimer = null;
  const at = "at_least=" + lastPosition;
  try {
    const [b, top] = await Promise.all([getJson("queries/balances?" + at),
                                        getJson("queries/top?n=5&" + at)]);
    $("total").textContent = b.total;
    $("accounts").textContent = b.accounts;
    $("events").textContent = b.events;
    const list = $("top");
    list.replaceChildren(...top.map((a) => {
      const li = document.createElement("li");
      li.textContent = a.account + ": " + a.balance;
      li.dataset.account = a.account;
      li.dataset.balance = a.balance;
      return li;
    }));
  } catch (e) {
    $("status").textContent = "query failed: " + e.message;
  }
}

function scheduleRefresh() {
  if (!refreshTimer) refreshTimer = setTimeout(refresh, 150);
}

function follow() {
  // Only new events: the read models above already hold everything before.
  const events = new EventSource("events?category=account");
  events.onopen = () => { $("status").textContent = "live"; };
  events.onerror = () => { $("status").textContent = "reconnecting…"; };
  events.onmessage = (msg) => {
    const e = JSON.parse(msg.data);
    lastPosition = Math.max(lastPosition, e.position);
    const li = document.createElement("li");
    const amount = e.data && e.data.amount !== undefined ? " " + e.data.amount : "";
    li.textContent = "#" + e.position + " " + e.stream + " " + e.type + amount;
    const log = $("log");
    log.prepend(li);
    while (log.children.length > 10) log.lastChild.remove();
    scheduleRefresh();
  };
}

$("move").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const type = ev.submitter ? ev.submitter.dataset.type : "deposit";
  const account = $("account").value.trim();
  const data = type === "open" ? { owner: account } : { amount: Number($("amount").value) };
  const result = $("result");
  try {
    const res = await fetch("commands/account/" + encodeURIComponent(account), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ type, data }),
    });
    const body = await res.json();
    result.className = res.ok ? "" : "error";
    result.textContent = res.ok ? type + " stored at position " + body.position
                                : res.status + " " + body.error + ": " + body.message;
    if (res.ok) {
      lastPosition = Math.max(lastPosition, body.position);
      scheduleRefresh();
    }
  } catch (e) {
    result.className = "error";
    result.textContent = e.message;
  }
});

follow();
refresh();
