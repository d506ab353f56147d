// The emulator console: reads api/state, and sends the actions of its forms
// to api/*. Values are inserted as text, never as HTML.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const el = (tag, text, cls) => {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  };
  const getJson = (path) => fetch(path, { cache: "no-store" })
    .then((r) => r.json().then((body) => { if (!r.ok) throw new Error(body.message || "HTTP " + r.status); return body; }));
  const post = (path, body) => fetch(path, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  }).then((r) => r.json().then((b) => ({ ok: r.ok, status: r.status, body: b })));

  let users = [];

  function show(title, value) {
    $("result").textContent = title + "\n" + JSON.stringify(value, null, 2);
  }

  function fillUsers(select, withAnonymous) {
    const current = select.value;
    const options = [];
    if (withAnonymous) { const o = el("option", "anonymous"); o.value = ""; options.push(o); }
    users.filter((u) => u.canLogIn).forEach((u) => { const o = el("option", u.email); o.value = u.email; options.push(o); });
    select.replaceChildren(...options);
    if ([...select.options].some((o) => o.value === current)) select.value = current;
  }

  function fillSelect(select, names) {
    const current = select.value;
    select.replaceChildren(...names.map((n) => { const o = el("option", n); o.value = n; return o; }));
    if (names.includes(current)) select.value = current;
  }

  function render(s) {
    $("app-id").textContent = s.appId;
    if (s.runnerConsole) {
      const a = el("a", "Runner console"); a.href = s.runnerConsole;
      $("links").replaceChildren(a);
    }
    users = s.users;
    fillUsers($("login-user"), false);
    document.querySelectorAll(".user-choice").forEach((sel) => fillUsers(sel, true));
    fillSelect($("timer-name"), s.timers);
    $("call-paths").replaceChildren(...s.customEvents.map((n) => { const o = el("option"); o.value = "servercode/events/" + n; return o; }));
    $("acting").textContent = s.actingAs.length
      ? s.actingAs.map((a) => a.login + " (token " + a.token + ")").join(", ") : "nobody yet";

    $("users").tBodies[0].replaceChildren(...s.users.map((u) => {
      const tr = el("tr");
      tr.appendChild(el("td", u.email));
      tr.appendChild(el("td", u.roles.length ? u.roles.join(", ") : "—"));
      tr.appendChild(el("td", u.sessions.length ? u.sessions.map((x) => x.token + " (idle " + x.idleSecs + " s)").join(", ") : "none", "mono"));
      return tr;
    }));

    const tables = $("tables");
    const open = new Set([...tables.querySelectorAll("details[open]")].map((d) => d.dataset.name));
    tables.replaceChildren(...s.tables.map((t) => {
      const d = el("details");
      d.dataset.name = t.name;
      if (open.has(t.name)) d.open = true;
      d.appendChild(el("summary", t.name + " — " + t.count + " rows"));
      if (t.permissions) {
        const p = el("p", "Default " + t.permissions.default + ". " + t.permissions.roles.map((r) =>
          r.role + ": grant " + (r.grant.join(", ") || "—") + (r.deny.length ? "; deny " + r.deny.join(", ") : "")).join(" · "), "muted");
        d.appendChild(p);
      } else {
        d.appendChild(el("p", "No permissions configured: everything is allowed.", "muted"));
      }
      const list = el("div");
      t.rows.forEach((row) => list.appendChild(el("pre", JSON.stringify(row), "mono")));
      if (!t.rows.length) list.appendChild(el("p", "No rows.", "muted"));
      d.appendChild(list);
      return d;
    }));

    $("tasks").tBodies[0].replaceChildren(...s.tasks.map((t) => {
      const tr = el("tr");
      tr.appendChild(el("td", t.eventName + (t.isAsync ? " (async)" : "")));
      tr.appendChild(el("td", t.target, "mono"));
      const caller = users.find((u) => u.objectId === t.userId);
      tr.appendChild(el("td", caller ? caller.email : (t.userId || "anonymous"), t.userId && !caller ? "mono" : ""));
      const td = el("td");
      const label = el("label");
      label.className = "inline";
      label.appendChild(document.createTextNode("as "));
      const sel = el("select");
      sel.setAttribute("aria-label", "Replay " + t.eventName + " on " + t.target + " as");
      fillUsers(sel, true);
      label.appendChild(sel);
      const b = el("button", "Replay", "secondary");
      b.type = "button";
      b.addEventListener("click", async () => {
        const r = await post("api/replay", { task: t.id, user: sel.value || null });
        show("Replay of " + t.eventName + " (HTTP " + r.status + ")", r.body);
      });
      td.appendChild(label);
      td.appendChild(b);
      tr.appendChild(td);
      return tr;
    }));

    $("requests").tBodies[0].replaceChildren(...s.requests.map((r) => {
      const tr = el("tr");
      tr.appendChild(el("td", r.method));
      tr.appendChild(el("td", r.path, "mono"));
      tr.appendChild(el("td", r.status));
      const who = users.find((u) => u.objectId === r.userId);
      tr.appendChild(el("td", who ? who.email : (r.userId || "—"), who ? "" : "mono"));
      tr.appendChild(el("td", r.keyKind || "—"));
      tr.appendChild(el("td", r.userToken || "—", "mono"));
      return tr;
    }));
  }

  let busy = false;
  async function refresh() {
    if (busy) return;
    busy = true;
    try { render(await getJson("api/state")); } catch (e) { show("The console API failed", String(e)); }
    busy = false;
  }

  const parse = (text, what) => {
    try { return text.trim() ? JSON.parse(text) : null; } catch (e) { throw new Error(what + " is not valid JSON: " + e.message); }
  };

  function action(form, run) {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try { await run(); } catch (e) { show("Not sent", String(e.message || e)); }
      refresh();
    });
  }

  action($("login-form"), async () => {
    const r = await post("api/login", { user: $("login-user").value });
    show("Log in (HTTP " + r.status + ")", r.body);
  });
  action($("create-form"), async () => {
    const row = parse($("create-row").value, "The row");
    const r = await post("api/create", { user: $("create-user").value || null, table: $("create-table").value, row });
    show("Create in " + $("create-table").value + " (HTTP " + r.body.status + ")", r.body.reply !== undefined ? r.body.reply : r.body);
  });
  action($("call-form"), async () => {
    const body = parse($("call-body").value, "The body");
    const r = await post("api/call", { user: $("call-user").value || null, method: $("call-method").value, path: $("call-path").value, body });
    show($("call-method").value + " " + $("call-path").value + " (HTTP " + (r.body.status || r.status) + ")", r.body.reply !== undefined ? r.body.reply : r.body);
  });
  action($("timer-form"), async () => {
    const name = $("timer-name").value;
    if (!name) throw new Error("no timer is registered");
    const r = await fetch("../timers/" + encodeURIComponent(name) + "/run", { method: "POST" });
    show("Timer " + name + " (HTTP " + r.status + ")", await r.json());
  });

  refresh();
  setInterval(refresh, 3000);
})();
