"use strict";
// The web pages' one script (channels/web/templates): what both pages share (a DOM helper,
// errors, the API, signing in and out with the token they share), then each page's own part,
// picked by <html data-page>. Nothing from the server is ever parsed as HTML.
(() => {
  const API = "/api/v1";
  const TOKEN_KEY = "agentcrm.token";  // both pages: signed in on one, signed in on both
  const $ = (id) => document.getElementById(id);
  const state = { token: localStorage.getItem(TOKEN_KEY) || "", me: null };
  let afterSignIn = async () => {};  // the page's own start, once /me has answered

  // --- small DOM helpers (text only: nothing from the server is ever parsed as HTML) ---------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "style") node.setAttribute("style", value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }


  // --- errors ----------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }

  function plain(err) {
    if (err instanceof ApiError) {
      const sentence = /[.!?]$/.test(err.message.trim()) ? err.message.trim() : err.message.trim() + ".";
      if (err.status === 401) return "Your token was not accepted: " + sentence;
      if (err.status === 403) return "Not allowed: " + sentence;
      if (err.status === 409) return "Already handled: " + sentence;
      if (err.status >= 500) return "The server failed (" + err.status + "): " + sentence;
      return err.message;
    }
    if (err instanceof TypeError && /fetch|network/i.test(err.message)) return "Could not reach the server (" + err.message + "). Is `crm serve` running?";
    return String(err && err.message || err);
  }

  function banner(message) {
    $("banner-text").textContent = message;
    $("banner").hidden = false;
    $("app").classList.add("has-banner");
  }
  function clearBanner() { $("banner").hidden = true; $("app").classList.remove("has-banner"); }

  // --- the API ---------------------------------------------------------------------------------
  // Requests in flight, on <body data-requests>: tests (and curious people) can wait for quiet.
  let inFlight = 0;
  function track(delta) { inFlight += delta; document.body.dataset.requests = String(inFlight); }
  async function tracked(work) {
    track(+1);
    try { return await work(); } finally { track(-1); }
  }
  async function errorFrom(response) {
    let code = "http_" + response.status, message = response.statusText || "request failed";
    try {
      const body = await response.json();
      if (body && (body.message || body.detail)) {
        code = body.error || code;
        message = body.message || (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail));
      }
    } catch (_) { /* not JSON: keep the status text */ }
    const err = new ApiError(response.status, code, message);
    if (response.status === 401) signedOut(plain(err) + " Sign in again with a valid token.");
    return err;
  }

  function api(method, path, body) { return tracked(() => apiCall(method, path, body)); }

  async function apiCall(method, path, body) {
    const headers = { "Authorization": "Bearer " + state.token, "Accept": "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(API + path, { method, headers,
                                               body: body === undefined ? undefined : JSON.stringify(body) });
    if (!response.ok) throw await errorFrom(response);
    return response.json();
  }

  // --- signing in and out ----------------------------------------------------------------------
  function signedOut(message) {
    state.token = ""; state.me = null;
    localStorage.removeItem(TOKEN_KEY);
    $("who").hidden = true; $("app").hidden = true; $("signin").hidden = false;
    $("signin-error").textContent = message || "";
    clearBanner();
    $("token").focus();
  }

  function signIn(token) { return tracked(() => signInNow(token)); }

  async function signInNow(token) {
    state.token = token.trim();
    $("signin-error").textContent = "";
    try {
      state.me = await api("GET", "/me");
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) {
        $("signin-error").textContent = plain(err);
        $("signin").hidden = false;
      }
      return;
    }
    localStorage.setItem(TOKEN_KEY, state.token);
    const name = state.me.name || state.me.email || "admin";
    $("who-text").textContent = "signed in as " + name + " (" + state.me.role + ")";
    $("who").hidden = false; $("signin").hidden = true; $("app").hidden = false;
    $("token").value = "";
    await afterSignIn();  // after /me, not beside it: every request stamps the token's last use (SQLite: one writer)
  }

  // === the chat page: a conversation and the proposals waiting for a decision ===================
  function chatPage() {
    const THREAD_KEY = "agentcrm.thread";
    state.thread = null; state.busy = false;
    // Every card on the page showing a proposal, by its id (the chat and the approval queue can both show one).
    const cards = new Map();

    function show(value) {
      if (value === null || value === undefined || value === "") return "—";
      if (typeof value === "object") return JSON.stringify(value);
      return String(value);
    }

    function newThreadId() {
      const bytes = new Uint8Array(8);
      crypto.getRandomValues(bytes);  // works on plain http too, unlike crypto.randomUUID
      return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    }


    // POST a message with ?stream=true and call back per server-sent event; resolves with the turn.
    function sendStreaming(text, onEvent) { return tracked(() => streamCall(text, onEvent)); }

    async function streamCall(text, onEvent) {
      const response = await fetch(API + "/chat/threads/" + encodeURIComponent(state.thread) + "/messages?stream=true", {
        method: "POST",
        headers: { "Authorization": "Bearer " + state.token, "Content-Type": "application/json",
                   "Accept": "text/event-stream" },
        body: JSON.stringify({ text }),
      });
      if (!response.ok) throw await errorFrom(response);
      if (!(response.headers.get("content-type") || "").includes("text/event-stream")) {
        return response.json();  // a server that answered in one piece
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "", turn = null;
      const handle = (block) => {
        let event = "message", data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).replace(/^ /, "");
        }
        if (!data) return;
        const payload = JSON.parse(data);
        if (event === "turn") turn = payload;
        else onEvent(event, payload);
      };
      for (;;) {
        const { value, done } = await reader.read();
        if (value) buffer += decoder.decode(value, { stream: true });
        buffer = buffer.replace(/\r\n/g, "\n");
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) { handle(buffer.slice(0, cut)); buffer = buffer.slice(cut + 2); }
        if (done) break;
      }
      if (buffer.trim()) handle(buffer);
      if (!turn) throw new Error("The connection ended before the assistant finished. Reload to see where it got to.");
      return turn;
    }

    // --- the conversation ------------------------------------------------------------------------
    function addMessage(role, text) {
      const empty = $("messages").querySelector(".empty");
      if (empty) empty.remove();
      const label = role === "user" ? "You" : role === "assistant" ? "Assistant" : "";
      const node = el("div", { class: "msg " + role },
                      label ? el("span", { class: "who", text: label }) : null, el("span", { class: "body", text }));
      $("messages").append(node);
      node.scrollIntoView({ block: "end" });
      return node;
    }

    function addCardToChat(approval) {
      const empty = $("messages").querySelector(".empty");
      if (empty) empty.remove();
      const card = renderCard(approval, "chat");
      $("messages").append(card);
      card.scrollIntoView({ block: "nearest" });
    }

    function showThreadLabel() { $("thread-label").textContent = "conversation " + state.thread.replace(/^web-/, ""); }

    async function loadThread() {
      showThreadLabel();
      $("messages").replaceChildren();
      let history;
      try {
        history = await api("GET", "/chat/threads/" + encodeURIComponent(state.thread));
      } catch (err) {
        banner("Could not load the conversation: " + plain(err));
        return;
      }
      for (const m of history.messages) addMessage(m.role === "human" ? "user" : "assistant", m.text);
      for (const p of history.proposals) addCardToChat(p);
      if (!history.messages.length && !history.proposals.length) {
        $("messages").append(el("p", { class: "empty",
          text: "Try “show my pipeline”, “brief me on Borealis” or “move Borealis to negotiation”." }));
      }
    }

    // A chart the agent drew: fetched with the token (an <img src> cannot send it), shown inline.
    async function addChart(file) {
      const figure = el("figure", { class: "chart" });
      $("messages").append(figure);
      try {
        const response = await fetch(file.url, { headers: { "Authorization": "Bearer " + state.token } });
        if (!response.ok) throw new Error("HTTP " + response.status);
        const img = el("img", { alt: file.title });
        img.src = URL.createObjectURL(await response.blob());
        figure.append(img, el("figcaption", { text: file.title }));
      } catch (err) {
        figure.append(el("figcaption", { text: "The chart “" + file.title + "” could not be loaded (" + err.message + ")." }));
      }
      figure.scrollIntoView({ block: "end" });
    }

    function setBusy(busy) {
      state.busy = busy;
      $("send").disabled = busy;
      $("send").textContent = busy ? "Sending…" : "Send";
    }

    function showTurn(turn, alreadyShown) {
      for (const reply of turn.replies) {
        if (!alreadyShown.includes(reply)) addMessage("assistant", reply);
      }
      for (const file of turn.files || []) addChart(file);
      for (const p of turn.proposals) {
        if (!cards.has(p.id) || ![...cards.get(p.id)].some((c) => c.dataset.where === "chat")) addCardToChat(p);
        else updateCards(p);
      }
      const pending = turn.proposals.filter((p) => (p.status || "pending") === "pending");
      if (turn.waiting && pending.length) {
        const note = addMessage("note waiting", "Waiting for your decision on the proposal" + (pending.length > 1 ? "s" : "") + " above.");
        note.dataset.ids = pending.map((p) => p.id).join(" ");
      }
    }

    async function send(text) {
      if (state.busy || !text.trim()) return;
      clearBanner();
      setBusy(true);
      addMessage("user", text);
      $("message").value = "";
      const shown = [];
      let live = null;
      try {
        const turn = await sendStreaming(text, (event, payload) => {
          if (event === "token") {
            if (!live) live = addMessage("assistant typing", "");
            live.querySelector(".body").textContent += payload.text;
          } else if (event === "message") {
            if (live) { live.querySelector(".body").textContent = payload.text; live.classList.remove("typing"); }
            else addMessage("assistant", payload.text);
            live = null;
            shown.push(payload.text);
          }
        });
        if (live) live.remove();
        showTurn(turn, shown);
        if (turn.proposals.length) loadWaiting();
      } catch (err) {
        if (live) live.remove();
        banner("The message was not answered: " + plain(err));
      } finally {
        setBusy(false);
        $("message").focus();
      }
    }

    $("composer").addEventListener("submit", (ev) => { ev.preventDefault(); send($("message").value); });
    $("message").addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); send($("message").value); }
    });
    $("new-thread").addEventListener("click", () => {
      state.thread = newThreadId();
      localStorage.setItem(THREAD_KEY, state.thread);
      clearBanner();
      loadThread();
      $("message").focus();
    });

    // --- proposal cards --------------------------------------------------------------------------
    const STATUS = { pending: "Waiting for approval", approved: "Approved", executed: "Executed",
                     rejected: "Rejected", failed: "Failed" };

    function renderCard(approval, where) {
      const card = el("article", { class: "card", "data-id": approval.id, "data-where": where });
      if (!cards.has(approval.id)) cards.set(approval.id, new Set());
      cards.get(approval.id).add(card);
      fillCard(card, approval);
      return card;
    }

    function updateCards(approval) {
      for (const card of cards.get(approval.id) || []) {
        if (card.isConnected) fillCard(card, approval); else cards.get(approval.id).delete(card);
      }
      if (approval.status !== "pending") {
        // A "waiting for your decision" note goes once nothing it waits on is pending.
        for (const note of $("messages").querySelectorAll(".msg.note.waiting")) {
          const ids = (note.dataset.ids || "").split(" ").filter((id) => id !== approval.id);
          note.dataset.ids = ids.join(" ");
          const stillPending = ids.some((id) => [...(cards.get(id) || [])].some((c) => c.classList.contains("pending")));
          if (!stillPending) note.remove();
        }
      }
    }

    function diffTable(diff) {
      if (!diff || !diff.length) return null;
      return el("table", { class: "diff" },
        el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "Field" }), el("th", { scope: "col", text: "Before" }),
                           el("th", { "aria-hidden": "true" }), el("th", { scope: "col", text: "After" }))),
        el("tbody", {}, diff.map((row) => el("tr", {},
          el("th", { scope: "row", text: row.field }),
          el("td", { class: "before" + ([null, undefined, "", "-"].includes(row.before) ? " none" : ""),
                     text: show(row.before) }),
          el("td", { class: "arrow", "aria-label": "becomes", text: "→" }),
          el("td", { class: "after", text: show(row.after) })))));
    }

    function outcomeText(a) {
      const d = a.decision || {};
      if (a.status === "executed") {
        const label = a.result && a.result.label;
        let edits = "";
        if (d.kind === "edit") {
          const before = d.original_args || {}, after = d.args || {};
          const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()
            .filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]));
          if (keys.length) edits = " Your edits: " + keys.map((k) => k + " " + show(before[k]) + " → " + show(after[k])).join(", ") + ".";
        }
        return (d.kind === "edit" ? "Done with your edits" : d.kind === "auto" ? "Auto-approved and done" : "Done")
          + (label ? ": " + label : "") + "." + edits;
      }
      if (a.status === "failed") return "Approved, but it failed: " + (a.error || "unknown error") + " Nothing was changed.";
      if (a.status === "rejected") {
        if (d.kind === "respond") return "You replied: " + (d.text || "");
        return "Nothing was changed." + (d.text ? " Reason: " + d.text : "");
      }
      return "";
    }

    function fillCard(card, a) {
      const status = a.status || "pending";
      card.className = "card " + status;
      card.setAttribute("aria-label", "Proposal: " + a.summary);
      const created = a.created_at ? new Date(a.created_at) : null;
      const meta = [a.tool, created && !isNaN(created) ? created.toLocaleString() : null,
                    a.approver_role === "manager" ? "needs a manager" : null].filter(Boolean).join(" · ");
      const evidence = (a.evidence || []).filter((e) => e && e.quote).map((e) =>
        el("blockquote", { class: "evidence" }, el("cite", { text: "Evidence (" + (e.source || "source") + ")"
          + (e.sender_authenticated === false ? " ⚠ the email's sender could not be authenticated" : "") }), e.quote));
      const errorBox = el("div", { class: "card-error", role: "alert" });
      const parts = [
        el("div", { class: "card-head" }, el("span", { class: "summary", text: a.summary }),
           el("span", { class: "status", role: "status", text: STATUS[status] || status })),
        el("div", { class: "meta", text: meta }),
        diffTable(a.diff),
        evidence,
      ];
      if (status === "pending") {
        const actions = el("div", { class: "actions" },
          el("button", { class: "btn ok", type: "button", text: "Approve",
                         onclick: () => decide(card, a, { kind: "approve" }, errorBox) }),
          el("button", { class: "btn", type: "button", text: "Edit", onclick: () => openEdit(card, a, actions, errorBox) }),
          el("button", { class: "btn danger", type: "button", text: "Reject",
                         onclick: () => openReject(card, a, actions, errorBox) }));
        parts.push(actions);
      } else {
        parts.push(el("div", { class: "outcome", text: outcomeText(a) }));
      }
      const replies = card.querySelector(".replies");  // what the agent said after the decision stays
      parts.push(errorBox, replies);
      card.replaceChildren(...parts.filter(Boolean).flat());
    }

    function isStructured(value) { return value !== null && typeof value === "object"; }

    function openEdit(card, a, actions, errorBox) {
      actions.hidden = true;
      errorBox.textContent = "";
      const fields = Object.entries(a.args || {}).map(([name, value]) => {
        const id = "edit-" + a.id + "-" + name + "-" + card.dataset.where;
        const kind = isStructured(value) ? "json" : typeof value;
        const input = kind === "json"
          ? el("textarea", { id, name, rows: 3 })
          : kind === "boolean" ? el("input", { id, name, type: "checkbox" }) : el("input", { id, name, type: "text" });
        if (kind === "json") input.value = JSON.stringify(value, null, 1);
        else if (kind === "boolean") input.checked = value;
        else input.value = value === null || value === undefined ? "" : String(value);
        if (/_date$/.test(name)) input.setAttribute("placeholder", "YYYY-MM-DD");
        else if (/_at$/.test(name)) input.setAttribute("placeholder", "YYYY-MM-DDTHH:MM:SS+00:00");
        return { name, value, kind, input, label: el("label", { for: id }, name + (kind === "json" ? " (JSON)" : ""), input) };
      });
      const form = el("form", { class: "edit", "aria-label": "Edit proposal" },
        fields.length ? fields.map((f) => f.label) : el("p", { class: "meta", text: "This proposal has no arguments." }),
        el("div", { class: "actions" },
          el("button", { class: "btn ok", type: "submit", text: "Save and approve" }),
          el("button", { class: "btn", type: "button", text: "Cancel",
                         onclick: () => { form.remove(); actions.hidden = false; errorBox.textContent = ""; } })));
      form.addEventListener("submit", (ev) => {
        ev.preventDefault();
        const changed = {};
        for (const f of fields) {
          let next;
          if (f.kind === "json") {
            try { next = JSON.parse(f.input.value); } catch (err) {
              errorBox.textContent = f.name + " is not valid JSON: " + err.message;
              f.input.focus();
              return;
            }
          } else if (f.kind === "boolean") {
            next = f.input.checked;
          } else if (f.kind === "number") {
            const raw = f.input.value.trim();
            next = raw === "" ? null : Number.isFinite(Number(raw)) ? Number(raw) : raw;  // let the server say why
          } else {
            next = f.input.value === "" && (f.value === null || f.value === undefined) ? f.value : f.input.value;
            if (next === "") next = null;
          }
          if (JSON.stringify(next) !== JSON.stringify(f.value)) changed[f.name] = next;
        }
        decide(card, a, { kind: "edit", args: changed }, errorBox, form);
      });
      card.insertBefore(form, errorBox);
      const first = form.querySelector("input, textarea");
      if (first) first.focus();
    }

    function openReject(card, a, actions, errorBox) {
      actions.hidden = true;
      errorBox.textContent = "";
      const id = "reject-" + a.id + "-" + card.dataset.where;
      const input = el("input", { id, type: "text", placeholder: "e.g. wrong deal, it is the Q1 renewal" });
      const form = el("form", { class: "reject", "aria-label": "Reject proposal" },
        el("label", { for: id }, "Reason for rejecting (the agent is told)", input),
        el("div", { class: "actions" },
          el("button", { class: "btn danger", type: "submit", text: "Confirm reject" }),
          el("button", { class: "btn", type: "button", text: "Cancel",
                         onclick: () => { form.remove(); actions.hidden = false; errorBox.textContent = ""; } })));
      form.addEventListener("submit", (ev) => {
        ev.preventDefault();
        decide(card, a, { kind: "reject", reason: input.value.trim() || null }, errorBox, form);
      });
      card.insertBefore(form, errorBox);
      input.focus();
    }

    async function decide(card, a, body, errorBox, form) {
      const buttons = card.querySelectorAll("button");
      buttons.forEach((b) => { b.disabled = true; });
      errorBox.textContent = "";
      let result;
      try {
        result = await api("POST", "/approvals/" + encodeURIComponent(a.id) + "/decision", body);
      } catch (err) {
        buttons.forEach((b) => { b.disabled = false; });
        errorBox.textContent = (body.kind === "edit" && err.status === 422 ? "The edit was not accepted: " : "")
          + plain(err);
        if (err instanceof ApiError && err.status === 409) {
          // Decided meanwhile (another tab, Slack): show what became of it, keep the explanation.
          const message = errorBox.textContent;
          try {
            updateCards(await api("GET", "/approvals/" + encodeURIComponent(a.id)));
            const box = card.querySelector(".card-error");
            if (box) box.textContent = message;
          } catch (_) { /* the message above already says it was decided */ }
          loadWaiting();
        }
        return;
      }
      if (form) form.remove();
      updateCards(result.approval);
      const turn = result.turn;
      if (turn) {
        if (turn.thread === state.thread) {
          showTurn(turn, []);
        } else if (turn.replies.length) {
          // Another conversation (e.g. one started in Slack): its answer stays with the card.
          let box = card.querySelector(".replies");
          if (!box) { box = el("div", { class: "replies", "aria-label": "The assistant's answer" }); card.append(box); }
          for (const r of turn.replies) box.append(el("p", { text: r }));
        }
      }
      loadWaiting();
    }

    // --- waiting for you (the approval queue) ---------------------------------------------------
    async function loadWaiting() {
      const button = $("waiting-refresh");
      button.disabled = true;
      try {
        const items = await api("GET", "/approvals/waiting");
        const list = $("waiting-list");
        for (const old of list.querySelectorAll(".card")) {
          const set = cards.get(old.dataset.id);
          if (set) set.delete(old);
        }
        list.replaceChildren(...items.map((a) => renderCard(a, "waiting")));
        if (!items.length) list.append(el("p", { class: "empty", text: "Nothing waits for your decision." }));
        $("waiting-count").textContent = String(items.length);
        $("waiting-count").setAttribute("aria-label", items.length + " waiting");
        $("waiting-count").classList.toggle("some", items.length > 0);
      } catch (err) {
        banner("Could not load what waits for you: " + plain(err));
      } finally {
        button.disabled = false;
      }
    }
    $("waiting-refresh").addEventListener("click", () => { clearBanner(); loadWaiting(); });

    afterSignIn = async () => {
      state.thread = localStorage.getItem(THREAD_KEY) || newThreadId();
      localStorage.setItem(THREAD_KEY, state.thread);
      // One after the other: every request stamps the token's last use, and SQLite refuses two
      // such writes at once ("database is locked").
      await loadThread();
      await loadWaiting();
      $("message").focus();
    };
  }

  // === the dashboard: forecast, reps, pipeline and stale deals ==================================
  function dashboardPage() {
    state.data = null;
    const PERIODS = ["this_quarter", "next_quarter", "this_month", "next_month"];
    const SCOPES = ["mine", "team", "all"];

    // --- numbers: as the chat writes them ("48,000 USD, 30,000 EUR"; currencies never added up) -
    const whole = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
    function amount(value, currency) { return whole.format(Number(value || 0)) + " " + currency; }
    function money(amounts) {
      const entries = Object.entries(amounts || {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return entries.length ? entries.map(([c, v]) => amount(v, c)).join(", ") : "0";
    }
    function pct(share) { return Math.round(share * 100) + "%"; }
    function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }
    function day(iso) {
      const [y, m, d] = iso.split("-").map(Number);
      return new Date(Date.UTC(y, m - 1, d)).toLocaleDateString("en-GB", { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
    }
    const PERIOD_NAMES = { this_quarter: "This quarter", next_quarter: "Next quarter", this_month: "This month",
                           next_month: "Next month" };

    // Bars draw one currency: the workspace's when the numbers have it, else the largest (as the chat's charts).
    function chartCurrency(buckets) {
      const totals = {};
      for (const b of buckets) for (const [c, v] of Object.entries(b || {})) totals[c] = (totals[c] || 0) + Number(v);
      const names = Object.keys(totals).sort();
      if (!names.length || names.includes(state.data.default_currency)) return [state.data.default_currency, names.filter((c) => c !== state.data.default_currency)];
      const chosen = names.reduce((a, b) => (totals[b] > totals[a] ? b : a));
      return [chosen, names.filter((c) => c !== chosen)];
    }
    function width(value, max) { return max > 0 ? Math.max(0, Math.min(100, 100 * Number(value || 0) / max)) : 0; }

    // --- loading ---------------------------------------------------------------------------------
    function choices() {
      const params = new URLSearchParams({ period: $("period").value, stale_days: $("stale-days").value || "30" });
      if ($("scope").dataset.chosen) params.set("scope", $("scope").value);
      return params;
    }

    async function load() {
      const params = choices();
      $("refresh").disabled = true;
      try {
        state.data = await api("GET", "/dashboard?" + params.toString());
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 401)) banner("Could not load the dashboard: " + plain(err));
        return;
      } finally {
        $("refresh").disabled = false;
      }
      clearBanner();
      $("scope").value = state.data.scope;  // the default scope is the server's (a rep: mine; a manager: team)
      params.set("scope", state.data.scope);
      history.replaceState(null, "", "/dashboard?" + params.toString());
      render();
    }

    $("toolbar").addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
    $("period").addEventListener("change", () => load());
    $("scope").addEventListener("change", () => { $("scope").dataset.chosen = "1"; load(); });
    $("stale-days").addEventListener("change", () => { if ($("stale-days").checkValidity()) load(); });

    // --- rendering -------------------------------------------------------------------------------
    function render() {
      const d = state.data;
      $("asof").textContent = d.scope_label + " · as of " + day(d.as_of);
      $("not-shown").textContent = d.not_shown || "";  // a scope wider than the user may see, and why
      $("not-shown").hidden = !d.not_shown;
      renderForecast(d);
      renderReps(d);
      renderPipeline(d);
      renderStale(d);
    }

    // A deal by name; its id (what the chat cites) on hover and in data-deal-id on the row.
    function dealCell(deal) {
      return el("td", {}, el("span", { class: "deal-name", title: "id " + deal.id, text: deal.name }));
    }

    function dealsTable(deals) {
      return el("table", { class: "data deals-list" },
        el("thead", {}, el("tr", {}, el("th", { text: "Deal" }), el("th", { class: "num", text: "Amount" }),
                           el("th", { text: "Stage" }), el("th", { text: "Category" }), el("th", { text: "Closes" }))),
        el("tbody", {}, deals.map((x) => el("tr", { "data-deal-id": x.id },
          dealCell(x), el("td", { class: "num", text: amount(x.amount, x.currency) }), el("td", { text: x.stage }),
          el("td", {}, el("span", { class: "cat " + (x.status === "won" ? "won" : x.forecast_category),
                                    text: x.status === "won" ? "closed won" : x.forecast_category.replace("_", " ") })),
          el("td", { text: x.close_date ? day(x.close_date) : "—" })))));
    }

    function attainmentBar(att, quota, currency, withNote = true) {
      const won = att.closed_won, withCommit = att.with_commit;
      const scale = Math.max(1, withCommit);  // 100% of quota fills the bar unless they are past it
      return el("div", {},
        el("div", { class: "track", role: "img",
                    "aria-label": pct(won) + " of quota won, " + pct(withCommit) + " with commit" },
          el("div", { class: "fill commit", style: "width:" + width(withCommit, scale) + "%" }),
          el("div", { class: "fill won", style: "width:" + width(won, scale) + "%" }),
          scale > 1 ? el("div", { class: "target", style: "left:" + width(1, scale) + "%" }) : null),
        withNote ? el("div", { class: "barnote", text: pct(won) + " won · " + pct(withCommit) + " with commit · quota "
                                                       + amount(quota, currency) }) : null);
    }

    function renderForecast(d) {
      const f = d.forecast;
      $("forecast-title").textContent = "Forecast · " + PERIOD_NAMES[d.period.name];
      $("forecast-meta").textContent = day(d.period.start) + " – " + day(d.period.end) + " · deals closing in the period";
      const tile = (label, amounts, color, sub) => el("div", { class: "tile", style: "--c:" + color, "data-bucket": label },
        el("div", { class: "label", text: label }), el("div", { class: "value", text: money(amounts) }),
        sub ? el("div", { class: "sub", text: sub }) : null);
      const body = [el("div", { class: "tiles" },
        tile("Closed won", f.closed_won, "var(--won)", plural(f.won_deals, "deal")),
        tile("Commit", f.commit, "var(--commit)"),
        tile("Best case", f.best_case, "var(--best)"),
        tile("Pipeline", f.pipeline, "var(--pipe)"),
        tile("Weighted open", f.weighted, "var(--weighted)", plural(f.open_deals, "open deal")))];
      if (f.attainment) {
        body.push(el("div", { class: "quota", id: "quota" },
          el("div", { class: "what" }, "Quota ", el("strong", { text: amount(f.quota, f.quota_currency) }), ": ",
             el("strong", { text: pct(f.attainment.closed_won) }), " won, ",
             el("strong", { text: pct(f.attainment.with_commit) }), " with commit"),
          attainmentBar(f.attainment, f.quota, f.quota_currency, false)));
      } else {
        body.push(el("p", { class: "note", text: d.scope === "all" && state.me.role !== "admin"
          ? "No quota: “all I can see” is not one set of people." : "No quota set for the people in scope." }));
      }
      if (f.deals.length) {
        body.push(el("details", { class: "deals" },
          el("summary", { text: "Largest deals counted (" + f.deals.length + ")" }), dealsTable(f.deals)));
      } else {
        body.push(el("p", { class: "empty", text: "No deals close in this period." }));
      }
      $("forecast-body").replaceChildren(...body);
    }

    function renderReps(d) {
      const reps = d.forecast_by_rep;
      $("reps-meta").textContent = "closing " + day(d.period.start) + " – " + day(d.period.end);
      if (!reps.length) {
        $("reps-body").replaceChildren(el("p", { class: "empty", text: "No deals close in this period." }));
        return;
      }
      const [currency, others] = chartCurrency(reps.flatMap((r) => [r.closed_won, r.commit]));
      const reach = (r) => Number((r.closed_won || {})[currency] || 0) + Number((r.commit || {})[currency] || 0);
      const most = Math.max(...reps.map(reach));
      const numCell = (amounts) => el("td", { class: "num", text: money(amounts) });
      const rows = reps.map((r) => {
        let bar;
        if (r.attainment) bar = attainmentBar(r.attainment, r.quota, r.quota_currency);
        else bar = el("div", {},
          el("div", { class: "track", role: "img", "aria-label": "closed won and commit, " + currency },
            el("div", { class: "fill commit", style: "width:" + width(reach(r), most) + "%" }),
            el("div", { class: "fill won", style: "width:" + width((r.closed_won || {})[currency], most) + "%" })),
          el("div", { class: "barnote", text: "no quota shown" }));
        const who = el("td", {}, el("span", { class: "deal-name", text: r.owner }));
        if (r.deals.length) who.append(el("details", { class: "deals" },
          el("summary", { text: plural(r.deals.length, "deal") + (r.open_deals + r.won_deals > r.deals.length ? " (largest)" : "") }),
          dealsTable(r.deals)));
        return el("tr", { "data-owner": r.owner, "data-owner-id": r.owner_id || "" },
          who, numCell(r.closed_won), numCell(r.commit), numCell(r.best_case), numCell(r.pipeline),
          el("td", { class: "num" }, money(r.weighted), el("div", { class: "barnote", text: plural(r.open_deals, "open deal") })),
          el("td", { class: "bar" }, bar));
      });
      $("reps-body").replaceChildren(...[
        el("table", { class: "data", id: "reps-table" },
          el("thead", {}, el("tr", {}, el("th", { text: "Rep" }), el("th", { class: "num", text: "Closed won" }),
            el("th", { class: "num", text: "Commit" }), el("th", { class: "num", text: "Best case" }),
            el("th", { class: "num", text: "Pipeline" }), el("th", { class: "num", text: "Weighted open" }),
            el("th", { text: "Won + commit vs quota" }))),
          el("tbody", {}, rows)),
        el("div", { class: "legend" }, el("span", { style: "--c:var(--won)", text: "closed won" }),
           el("span", { style: "--c:var(--commit)", text: "commit" }),
           others.length ? el("span", { style: "--c:transparent",
             text: "Bars without a quota compare " + currency + " amounts; " + others.join(", ") + " amounts are in the table." }) : null)]);
    }

    function renderPipeline(d) {
      const p = d.pipeline;
      $("pipeline-meta").textContent = plural(p.total_deals, "open deal");
      if (!p.stages.length) {
        $("pipeline-body").replaceChildren(el("p", { class: "empty", text: "No open deals in this scope." }));
        return;
      }
      const [currency, others] = chartCurrency(p.stages.map((s) => s.amount));
      const most = Math.max(...p.stages.map((s) => Number(s.amount[currency] || 0)));
      const rows = p.stages.map((s) => el("tr", { "data-stage": s.stage },
        el("td", { class: "deal-name", text: s.stage }), el("td", { class: "num", text: String(s.deals) }),
        el("td", { class: "num", text: money(s.amount) }), el("td", { class: "num", text: money(s.weighted) }),
        el("td", { class: "bar" },
          el("div", { class: "track", role: "img", "aria-label": s.stage + ": " + amount(s.amount[currency], currency)
                                                                + ", weighted " + amount(s.weighted[currency], currency) },
            el("div", { class: "fill amount", style: "width:" + width(s.amount[currency], most) + "%" }),
            el("div", { class: "fill weighted", style: "width:" + width(s.weighted[currency], most) + "%" })))));
      $("pipeline-body").replaceChildren(...[
        el("table", { class: "data", id: "pipeline-table" },
          el("thead", {}, el("tr", {}, el("th", { text: "Stage" }), el("th", { class: "num", text: "Deals" }),
            el("th", { class: "num", text: "Amount" }), el("th", { class: "num", text: "Weighted" }),
            el("th", { text: currency }))),
          el("tbody", {}, rows),
          el("tfoot", {}, el("tr", {}, el("td", { text: "Total" }), el("td", { class: "num", text: String(p.total_deals) }),
            el("td", { colspan: "3" })))),
        el("div", { class: "legend" }, el("span", { style: "--c:var(--pipe)", text: "open amount" }),
           el("span", { style: "--c:var(--commit)", text: "weighted by win probability" })),
        others.length ? el("p", { class: "note", text: "Bars show " + currency + " amounts only; " + others.join(", ")
                                                    + " amounts are in the table." }) : null].filter(Boolean));
    }

    function renderStale(d) {
      const s = d.stale;
      $("stale-title").textContent = "Stale deals";
      $("stale-meta").textContent = s.total + " open " + (s.total === 1 ? "deal" : "deals") + " with no activity for "
        + s.days + "+ days" + (s.total > s.deals.length ? " · oldest " + s.deals.length + " shown" : "");
      if (!s.deals.length) {
        $("stale-body").replaceChildren(el("p", { class: "empty", text: "None: every open deal had activity in the last "
                                                                        + s.days + " days." }));
        return;
      }
      const rows = s.deals.map((x) => el("tr", { "data-deal-id": x.id },
        dealCell(x), el("td", { class: "nowrap", text: x.owner }), el("td", { text: x.stage }),
        el("td", { class: "num", text: amount(x.amount, x.currency) }),
        el("td", { class: "num" }, el("span", { class: "days" + (x.days >= 2 * s.days ? " old" : ""), text: x.days + " days" }),
           el("div", { class: "barnote", text: x.last_activity ? "last activity " + new Date(x.last_activity).toLocaleDateString("en-GB", { day: "numeric", month: "short", year: "numeric" })
                                                               : "no activity since created" }))));
      $("stale-body").replaceChildren(el("table", { class: "data", id: "stale-table" },
        el("thead", {}, el("tr", {}, el("th", { text: "Deal" }), el("th", { text: "Owner" }), el("th", { text: "Stage" }),
          el("th", { class: "num", text: "Amount" }), el("th", { class: "num", text: "Idle" }))),
        el("tbody", {}, rows)));
    }

    afterSignIn = load;
    const query = new URLSearchParams(location.search);
    if (PERIODS.includes(query.get("period"))) $("period").value = query.get("period");
    if (SCOPES.includes(query.get("scope"))) { $("scope").value = query.get("scope"); $("scope").dataset.chosen = "1"; }
    if (/^\d+$/.test(query.get("stale_days") || "")) $("stale-days").value = query.get("stale_days");
  }

  // --- start -----------------------------------------------------------------------------------
  ({ chat: chatPage, dashboard: dashboardPage })[document.documentElement.dataset.page]();
  $("banner-close").addEventListener("click", clearBanner);
  $("signin-form").addEventListener("submit", (ev) => { ev.preventDefault(); signIn($("token").value); });
  $("signout").addEventListener("click", (ev) => { ev.preventDefault(); signedOut("Signed out."); });
  if (state.token) signIn(state.token); else signedOut("");
})();
