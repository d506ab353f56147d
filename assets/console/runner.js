// The runner console: polls the console API and renders it. No framework,
// no third-party code; every value is inserted as text, never as HTML.
"use strict";
(function () {
  const api = (path) => fetch("api/" + path, { credentials: "same-origin", cache: "no-store" })
    .then((r) => { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); });
  const $ = (id) => document.getElementById(id);
  const el = (tag, text, cls) => {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  };
  let latest = 0;
  const seenEvents = new Set();

  function time(ms) {
    const d = new Date(ms);
    return d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
  }

  function row(inv) {
    const tr = el("tr");
    tr.dataset.seq = inv.seq;
    tr.dataset.outcome = inv.outcome;
    tr.dataset.event = inv.event;
    tr.appendChild(el("td", time(inv.atMs), "mono"));
    tr.appendChild(el("td", inv.event + (inv.isAsync ? " (async)" : "")));
    tr.appendChild(el("td", inv.target, "mono"));
    tr.appendChild(el("td", inv.outcome, "outcome outcome-" + inv.outcome));
    tr.appendChild(el("td", inv.durationMs.toFixed(1) + " ms", "mono"));
    const ids = el("td");
    ids.className = "identities";
    [...new Set(inv.calls.map((c) => c.identity))].forEach((i) => ids.appendChild(el("span", i, "identity")));
    if (!inv.calls.length) ids.appendChild(el("span", "none", "muted"));
    tr.appendChild(ids);
    const calls = el("td");
    calls.className = "calls";
    inv.calls.forEach((c) => {
      const line = el("div", c.identity + " " + c.route + " → " + (c.status || c.outcome) +
        (c.code ? " (code " + c.code + ")" : ""), "mono");
      calls.appendChild(line);
    });
    if (inv.callsDropped) calls.appendChild(el("div", "+" + inv.callsDropped + " more", "muted"));
    tr.appendChild(calls);
    const err = el("td");
    if (inv.error) {
      err.className = "error";
      err.textContent = (inv.error.code ? "[" + inv.error.code + "] " : "") + inv.error.message;
    }
    tr.appendChild(err);
    return tr;
  }

  function filters() {
    const q = new URLSearchParams();
    if ($("f-outcome").value) q.set("outcome", $("f-outcome").value);
    if ($("f-event").value) q.set("event", $("f-event").value);
    return q;
  }

  function addEventOption(name) {
    if (seenEvents.has(name)) return;
    seenEvents.add(name);
    const o = el("option", name);
    o.value = name;
    $("f-event").appendChild(o);
  }

  async function reload() {
    const data = await api("invocations?" + filters().toString());
    const body = $("invocations").tBodies[0];
    body.replaceChildren(...data.invocations.map(row));
    data.invocations.forEach((i) => addEventOption(i.event));
    latest = data.latest;
    $("invocations-status").textContent = data.invocations.length + " invocations shown";
  }

  async function poll() {
    if (!$("f-live").checked) return;
    const q = filters();
    q.set("after", latest);
    const data = await api("invocations?" + q.toString());
    if (data.latest < latest) return reload();
    latest = data.latest;
    if (!data.invocations.length) return;
    const body = $("invocations").tBodies[0];
    data.invocations.slice().reverse().forEach((i) => {
      addEventOption(i.event);
      body.insertBefore(row(i), body.firstChild);
    });
    while (body.rows.length > 500) body.deleteRow(-1);
    $("invocations-status").textContent = data.invocations.length + " new invocations";
    // New work may have logged the superuser in or renewed its session.
    await overview();
    await charts();
  }

  function draw(svg, values) {
    const line = svg.querySelector("polyline");
    if (!values.length) { line.setAttribute("points", ""); return; }
    if (values.length === 1) values = [values[0], values[0]];
    const max = Math.max(...values, 1e-9);
    const step = 360 / (values.length - 1);
    line.setAttribute("points", values.map((v, i) =>
      (i * step).toFixed(1) + "," + (86 - (v / max) * 80).toFixed(1)).join(" "));
  }

  async function charts() {
    const data = await api("metrics");
    $("interval").textContent = data.intervalSecs;
    // The kept readings, then one taken now: the last point is current.
    const s = data.samples.concat([data.current]);
    const throughput = [], latency = [], failures = [];
    for (let i = 1; i < s.length; i++) {
      const dt = Math.max((s[i].atMs - s[i - 1].atMs) / 1000, 1e-3);
      throughput.push((s[i].invocations - s[i - 1].invocations) / dt);
      failures.push((s[i].failures - s[i - 1].failures) / dt);
      const n = s[i].durationCount - s[i - 1].durationCount;
      latency.push(n > 0 ? (s[i].durationSum - s[i - 1].durationSum) / n * 1000 : 0);
    }
    draw($("chart-throughput"), throughput);
    draw($("chart-latency"), latency);
    draw($("chart-failures"), failures);
    const last = (a, d) => a.length ? a[a.length - 1].toFixed(d) : "–";
    $("now-throughput").textContent = last(throughput, 2);
    $("now-latency").textContent = last(latency, 1);
    $("now-failures").textContent = last(failures, 2);
  }

  function session(s) {
    const dl = $("session");
    dl.replaceChildren();
    const add = (k, v) => { dl.appendChild(el("dt", k)); dl.appendChild(el("dd", v)); };
    if (!s) { add("State", "no SDK configured"); return; }
    if (!s.configured) { add("State", "no superuser configured"); return; }
    add("Logged in since", s.loggedInSinceMs ? new Date(s.loggedInSinceMs).toLocaleString() : "not yet (logs in on first use)");
    add("Store", s.store);
    add("Logins", s.logins);
    add("Renewals", s.renewals);
    add("Re-logins", s.relogins);
    add("Failed logins", s.failedLogins);
    add("Backoff", s.backoffMs ? "logins paused for " + s.backoffMs + " ms" : "none");
    if (s.lastError) add("Last failure", s.lastError + (s.lastErrorCode ? " (code " + s.lastErrorCode + ")" : ""));
  }

  async function overview() {
    const data = await api("overview");
    const links = $("links");
    links.replaceChildren(...data.links.map((l) => { const a = el("a", l.label); a.href = l.url; return a; }));
    const body = $("handlers").tBodies[0];
    body.replaceChildren(...data.handlers.map((h) => {
      const tr = el("tr");
      tr.appendChild(el("td", h.provider));
      tr.appendChild(el("td", h.event));
      tr.appendChild(el("td", h.target, "mono"));
      tr.appendChild(el("td", h.async ? "async" : "sync"));
      addEventOption(h.event);
      return tr;
    }));
    const list = (id, items, text) => {
      $(id).replaceChildren(...(items.length ? items.map((i) => el("li", text(i))) : [el("li", "none", "muted")]));
    };
    list("timers", data.model.timers, (t) => t.name + " " + t.timerJson);
    list("services", data.model.services, (s) => s.name || JSON.stringify(s));
    list("custom-events", data.handlers.filter((h) => h.provider === "custom"), (h) => h.target);
    session(data.session);
  }

  const safe = (f) => () => f().catch((e) => { $("invocations-status").textContent = "console API: " + e.message; });
  $("f-outcome").addEventListener("change", safe(reload));
  $("f-event").addEventListener("change", safe(reload));
  safe(overview)();
  safe(reload)();
  safe(charts)();
  setInterval(safe(poll), 1000);
  setInterval(safe(charts), 5000);
  setInterval(safe(overview), 10000);
})();
