// taskmesh page: enhances the server-rendered page in place (plain JS, no build step).
//
// - tasks: add, complete, delete through the frontend's JSON API;
// - the badge: which backend version and instance answered the page's last call, with
//   the request id and trace id the frontend reports (x-request-id, x-trace-id);
// - the canary switch: the page's own calls carry `x-canary: true`;
// - live traffic: a bounded stream of GET /api/tasks (1-20 req/s, stops after
//   TRAFFIC_LIMIT_S and when the tab is hidden), drawn per second by who answered
//   and by the cause of each error;
// - chart markers: while the traffic runs, its clock also asks GET /api/mesh/events for
//   what the local mesh did since the last event seen (at most once a second, one call at
//   a time) and marks config changes and restarts on the chart's time axis. Where the
//   frontend has no MESH_EVENTS_URL (a cluster) the answer is `enabled: false`: no marks.
// - rollout panel: the same answers' `mesh rollout` events (object `rollout/SERVICE`,
//   their `data` as mesh/rollout/report.py documents it) fill a table of the steps,
//   canary beside stable, with the current step, the weights and the result. Hidden
//   until such an event is seen; no timer of its own.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);

  const CANARY_KEY = "taskmesh.canary";
  const TRAFFIC_LIMIT_S = 60;
  const MIN_RATE = 1;
  const MAX_RATE = 20;
  const HISTORY_S = 30;
  const REQUEST_TIMEOUT_MS = 10000;
  const MAX_IN_FLIGHT = 40;

  // Error causes shown by the traffic panel, in legend order.
  const ERROR_CAUSES = [
    ["circuit_open", "circuit open"],
    ["no_healthy_upstream", "no healthy upstream"],
    ["timeout", "timeout"],
    ["fault", "injected fault"],
    ["other", "other error"],
  ];
  const ERROR_COLOURS = {
    circuit_open: "#7a0019",
    no_healthy_upstream: "#d9661f",
    timeout: "#8a5a00",
    fault: "#d11a2a",
    other: "#666666",
  };
  const VERSION_SHADES = {
    v1: ["#1b7a3a", "#5cb270", "#a3d9ae", "#0f4d24"],
    v2: ["#1a4fa3", "#6f93d6", "#a9c0ea", "#0d2c63"],
  };
  const OTHER_SHADES = ["#6a3d9a", "#9e7cc1", "#cab2d6"];

  const EVENTS_PATH = "/api/mesh/events";
  const EVENTS_EVERY_MS = 1000;
  // The events drawn on the chart: reason -> [kind, symbol, words before the object].
  const MARKED = {
    Applied: ["config", "\u25C6", "gen"],
    Refused: ["refused", "\u2715", "refused gen"],
    Restarted: ["restart", "\u21BB", "restart"],
    Exited: ["restart", "\u21BB", "exit"],
    BackOff: ["restart", "\u21BB", "back-off"],
    Killing: ["restart", "\u21BB", "kill"],
    Unhealthy: ["restart", "\u21BB", "unhealthy"],
    // `mesh rollout`'s verdicts (each step's weights are an Applied generation already)
    Promoted: ["config", "\u2714", "promoted"],
    RolledBack: ["refused", "\u21B6", "rolled back"],
  };

  const causeWords = (() => {
    try {
      return JSON.parse($("cause-words").textContent);
    } catch {
      return {};
    }
  })();

  // -- calls -----------------------------------------------------------------

  function canaryOn() {
    return $("canary").checked;
  }

  // One call to the frontend; never throws. `reply.status` is 0 when no reply came.
  async function api(method, path, body) {
    const headers = { accept: "application/json" };
    if (canaryOn()) headers["x-canary"] = "true";
    if (body !== undefined) headers["content-type"] = "application/json";
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), REQUEST_TIMEOUT_MS);
    const reply = { ok: false, status: 0, data: null, problem: null };
    try {
      const resp = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: abort.signal,
        cache: "no-store",
      });
      reply.status = resp.status;
      reply.ok = resp.ok;
      const type = resp.headers.get("content-type") || "";
      if (type.includes("json")) {
        try {
          reply.data = await resp.json();
        } catch {
          reply.problem = "the reply was not valid JSON";
        }
      } else {
        await resp.text();
      }
      const data = reply.data && typeof reply.data === "object" ? reply.data : {};
      const backend = data.backend || {};
      reply.version = resp.headers.get("x-backend-version") || backend.version || null;
      reply.instance = resp.headers.get("x-backend-instance") || backend.instance || null;
      reply.requestId = resp.headers.get("x-request-id") || data.request_id || null;
      reply.traceId = resp.headers.get("x-trace-id") || data.trace_id || null;
    } catch (err) {
      reply.problem =
        err.name === "AbortError"
          ? `no reply from the frontend within ${REQUEST_TIMEOUT_MS / 1000} s`
          : `the page cannot reach the frontend (${err.message})`;
      reply.timedOut = err.name === "AbortError";
    } finally {
      clearTimeout(timer);
    }
    return reply;
  }

  function isBackendFailure(reply) {
    return !!reply.data && reply.data.error === "backend_failure";
  }

  // -- badge and degraded state ---------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "className") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function traceNode(traceId) {
    if (!traceId) return el("code", { id: "badge-trace-id", text: "none" });
    const template = document.body.dataset.traceView;
    if (!template) return el("code", { id: "badge-trace-id", text: traceId });
    const link = el("a", { href: template.replace("{trace_id}", encodeURIComponent(traceId)) });
    link.append(el("code", { id: "badge-trace-id", text: traceId }));
    return link;
  }

  function setBadge(reply) {
    const badge = $("badge");
    const who = $("badge-who");
    who.replaceChildren();
    if (reply.version) {
      who.append(
        "Answered by backend ",
        el("strong", { id: "badge-version", text: reply.version }),
        " on instance ",
        el("code", { id: "badge-instance", text: reply.instance || "unknown" }),
      );
    } else {
      who.append("No backend answered");
    }
    badge.className = `who ${reply.version || "none"}`;
    const ids = badge.querySelector(".ids");
    ids.replaceChildren(
      "request id: ",
      el("code", { id: "badge-request-id", text: reply.requestId || "none" }),
      " · trace id: ",
      traceNode(reply.traceId),
    );
  }

  // The words for a failed call: the cause in words, then the details.
  function describeFailure(reply) {
    if (reply.status === 0) {
      return { words: reply.problem || "the page cannot reach the frontend", detail: "" };
    }
    if (isBackendFailure(reply)) {
      const d = reply.data;
      const words = causeWords[d.cause] || d.cause;
      const fault = d.fault_injected ? " The reply was an injected fault (x-fault-injected)." : "";
      return {
        words: `${words}.${fault}`,
        detail: `${d.message} (HTTP ${reply.status}, cause ${d.cause})`,
      };
    }
    const said = reply.data && reply.data.message ? `: ${reply.data.message}` : "";
    return { words: `the frontend answered HTTP ${reply.status}${said}.`, detail: "" };
  }

  function showDegraded(reply) {
    const { words, detail } = describeFailure(reply);
    $("degraded-words").textContent = words;
    $("degraded-detail").textContent = detail;
    $("degraded").hidden = false;
  }

  function clearDegraded() {
    $("degraded").hidden = true;
  }

  // After any call of the task list: the badge, and the degraded state on or off.
  function noteReply(reply) {
    setBadge(reply);
    if (reply.ok) clearDegraded();
    else if (reply.status === 0 || reply.status >= 500) showDegraded(reply);
  }

  // -- tasks -----------------------------------------------------------------

  function taskRow(task, servedBy) {
    const id = String(task.id);
    const box = el("input", {
      type: "checkbox",
      id: `done-${id}`,
      className: "done-box",
      checked: !!task.done,
    });
    box.checked = !!task.done;
    box.addEventListener("change", () => completeTask(id, box));
    const title = el("label", { for: `done-${id}`, className: "t", text: String(task.title) });
    const prio = task.priority
      ? el("span", { className: `prio ${task.priority}`, text: `priority ${task.priority}` })
      : null;
    const served = el("span", {
      className: `served ${servedBy || "unknown"}`,
      text: `served by ${servedBy || "unknown"}`,
    });
    const del = el("button", {
      type: "button",
      className: "del",
      "aria-label": `Delete task: ${task.title}`,
      text: "Delete",
    });
    del.addEventListener("click", () => deleteTask(id));
    return el(
      "li",
      { className: `task ${task.done ? "done" : "open"}`, "data-id": id },
      box,
      " ",
      title,
      prio,
      served,
      del,
    );
  }

  function syncEmpty() {
    $("no-tasks").hidden = $("tasks").children.length > 0;
  }

  async function loadTasks() {
    const reply = await api("GET", "/api/tasks");
    noteReply(reply);
    if (reply.ok && reply.data && Array.isArray(reply.data.tasks)) {
      $("tasks").replaceChildren(...reply.data.tasks.map((t) => taskRow(t, reply.version)));
      syncEmpty();
    }
  }

  function formError(message) {
    const node = $("form-error");
    node.textContent = message || "";
    node.hidden = !message;
  }

  async function addTask(event) {
    event.preventDefault();
    const input = $("new-title");
    const title = input.value.trim();
    if (!title) {
      formError("Give the task a title.");
      input.focus();
      return;
    }
    const body = { title };
    if (canaryOn()) body.priority = $("new-priority").value;
    const reply = await api("POST", "/api/tasks", body);
    noteReply(reply);
    if (reply.ok && reply.data) {
      formError("");
      input.value = "";
      $("tasks").append(taskRow(reply.data, reply.version));
      syncEmpty();
    } else if (reply.status > 0 && reply.status < 500) {
      formError((reply.data && reply.data.message) || `HTTP ${reply.status}`);
    }
    input.focus();
  }

  async function completeTask(id, box) {
    const wanted = box.checked;
    const reply = await api("PATCH", `/api/tasks/${id}`, { done: wanted });
    noteReply(reply);
    const row = box.closest("li");
    if (reply.ok && reply.data) {
      const fresh = taskRow(reply.data, reply.version);
      row.replaceWith(fresh);
      fresh.querySelector(".done-box").focus();
    } else {
      box.checked = !wanted;
      if (reply.status === 404) row.remove();
      syncEmpty();
    }
  }

  async function deleteTask(id) {
    const reply = await api("DELETE", `/api/tasks/${id}`);
    noteReply(reply);
    if (reply.ok || reply.status === 404) {
      const row = $("tasks").querySelector(`li[data-id="${CSS.escape(id)}"]`);
      const next = row && (row.nextElementSibling || row.previousElementSibling);
      if (row) row.remove();
      syncEmpty();
      (next ? next.querySelector(".del") : $("new-title")).focus();
    }
  }

  // -- canary ----------------------------------------------------------------

  function onCanary() {
    const on = canaryOn();
    try {
      localStorage.setItem(CANARY_KEY, on ? "1" : "0");
    } catch {
      // storage may be off; the switch still works for this page
    }
    $("priority-field").hidden = !on;
    loadTasks();
  }

  // -- live traffic ----------------------------------------------------------

  const traffic = {
    running: false,
    ticker: null,
    clock: null,
    startedAt: 0,
    stoppedAt: null, // the second the last run stopped in
    inFlight: 0,
    skipped: 0,
    buckets: new Map(), // second -> Map(key -> count)
    totals: new Map(), // key -> count
    instances: new Map(), // instance -> version
    startedWall: 0, // Date.now() when the run started: events carry unix times
  };

  // What the page knows of the mesh's events in this run.
  const meshEvents = {
    enabled: true, // false once the frontend says it has no MESH_EVENTS_URL
    inFlight: false,
    lastPoll: 0,
    after: 0, // unix seconds of the newest event seen (or of the run's start)
    markers: [], // {t (seconds since the run's start), node}
  };

  // The series a reply counts in: `ok:<instance>` or `err:<cause>`.
  function seriesOf(reply) {
    if (reply.ok) {
      const instance = reply.instance || reply.version || "unknown";
      traffic.instances.set(instance, reply.version || "unknown");
      return `ok:${instance}`;
    }
    if (isBackendFailure(reply)) {
      if (reply.data.fault_injected) return "err:fault";
      const cause = reply.data.cause;
      if (ERROR_CAUSES.some(([key]) => key === cause)) return `err:${cause}`;
      return "err:other";
    }
    if (reply.timedOut) return "err:timeout";
    return "err:other";
  }

  function second(now) {
    return Math.floor((now - traffic.startedAt) / 1000);
  }

  function record(key) {
    const s = second(performance.now());
    if (!traffic.buckets.has(s)) traffic.buckets.set(s, new Map());
    const bucket = traffic.buckets.get(s);
    bucket.set(key, (bucket.get(key) || 0) + 1);
    traffic.totals.set(key, (traffic.totals.get(key) || 0) + 1);
  }

  async function sendOne() {
    if (traffic.inFlight >= MAX_IN_FLIGHT) {
      traffic.skipped += 1;
      return;
    }
    traffic.inFlight += 1;
    const startedAt = traffic.startedAt;
    try {
      const reply = await api("GET", "/api/tasks");
      if (traffic.running && startedAt === traffic.startedAt) record(seriesOf(reply));
    } finally {
      traffic.inFlight -= 1;
    }
  }

  function readRate() {
    const rate = Number($("rate").value);
    if (!Number.isInteger(rate) || rate < MIN_RATE || rate > MAX_RATE) return null;
    return rate;
  }

  function setTicker(rate) {
    clearInterval(traffic.ticker);
    traffic.ticker = setInterval(sendOne, 1000 / rate);
  }

  function startTraffic() {
    const rate = readRate();
    if (rate === null) {
      $("traffic-status").textContent = `The rate must be a whole number from ${MIN_RATE} to ${MAX_RATE}.`;
      $("rate").focus();
      return;
    }
    traffic.running = true;
    traffic.startedAt = performance.now();
    traffic.stoppedAt = null;
    traffic.skipped = 0;
    traffic.buckets = new Map();
    traffic.totals = new Map();
    traffic.instances = new Map();
    traffic.startedWall = Date.now();
    resetMarkers();
    setTicker(rate);
    traffic.clock = setInterval(onClock, 250);
    $("traffic-toggle").textContent = "Stop traffic";
    $("traffic-toggle").setAttribute("aria-pressed", "true");
    $("traffic-status").textContent = `Sending ${rate} requests per second.`;
    sendOne();
    pollEvents();
    draw();
  }

  function stopTraffic(why) {
    if (!traffic.running) return;
    traffic.running = false;
    traffic.stoppedAt = second(performance.now());
    clearInterval(traffic.ticker);
    clearInterval(traffic.clock);
    $("traffic-toggle").textContent = "Start traffic";
    $("traffic-toggle").setAttribute("aria-pressed", "false");
    $("traffic-status").textContent = `Stopped: ${why}.`;
    const ran = Math.floor((performance.now() - traffic.startedAt) / 1000);
    const skipped = traffic.skipped ? `; ${traffic.skipped} skipped (too many in flight)` : "";
    $("traffic-clock").textContent = `ran ${ran} s${skipped}`;
    draw();
  }

  function onClock() {
    const elapsed = (performance.now() - traffic.startedAt) / 1000;
    if (elapsed >= TRAFFIC_LIMIT_S) {
      stopTraffic(`the ${TRAFFIC_LIMIT_S} s limit was reached`);
      return;
    }
    pollEvents();
    draw();
  }

  // -- chart markers: the mesh's events --------------------------------------

  function resetMarkers() {
    meshEvents.enabled = true;
    meshEvents.lastPoll = 0;
    meshEvents.after = traffic.startedWall / 1000;
    meshEvents.markers = [];
    $("traffic-markers").replaceChildren();
    $("markers-problem").hidden = true;
  }

  // Rides on the traffic clock: no timer of its own, one call at a time, once a second.
  async function pollEvents() {
    const now = performance.now();
    if (!meshEvents.enabled || meshEvents.inFlight) return;
    if (now - meshEvents.lastPoll < EVENTS_EVERY_MS) return;
    meshEvents.inFlight = true;
    meshEvents.lastPoll = now;
    const run = traffic.startedAt;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), REQUEST_TIMEOUT_MS);
    let problem = null; // why the marks stopped, in words
    try {
      const url = `${EVENTS_PATH}?after=${encodeURIComponent(String(meshEvents.after))}`;
      const resp = await fetch(url, {
        headers: { accept: "application/json" },
        signal: abort.signal,
        cache: "no-store",
      });
      let data = null;
      try {
        data = await resp.json();
      } catch {
        data = null;
      }
      if (run !== traffic.startedAt) return; // a new run began meanwhile
      if (resp.ok && data && data.enabled === false) {
        meshEvents.enabled = false;
      } else if (resp.ok && data && Array.isArray(data.events)) {
        addMarkers(data.events);
      } else {
        problem = data && data.message ? data.message : `HTTP ${resp.status}`;
      }
    } catch (err) {
      problem = err.name === "AbortError" ? "no reply in time" : err.message;
    } finally {
      clearTimeout(timer);
      meshEvents.inFlight = false;
    }
    if (run !== traffic.startedAt) return;
    $("markers-note").hidden = !meshEvents.enabled;
    $("markers-problem").textContent = problem
      ? `No new marks: the mesh's events are unavailable (${problem}).`
      : "";
    $("markers-problem").hidden = !problem;
    draw();
  }

  function markerLabel(event, words) {
    const object = String(event.object || "");
    const gen = /^(?:generation|rollout)\/(.+)$/.exec(object);
    return gen ? `${words} ${gen[1]}` : `${words} ${object}`;
  }

  function clockTime(unixSeconds) {
    return new Date(unixSeconds * 1000).toLocaleTimeString([], { hour12: false });
  }

  function addMarkers(events) {
    for (const event of events) {
      const time = Number(event.time);
      if (!Number.isFinite(time) || time <= meshEvents.after) continue;
      meshEvents.after = time;
      if (String(event.object || "").startsWith("rollout/")) onRollout(event);
      const how = MARKED[event.reason];
      if (!how) continue;
      const [kind, symbol, words] = how;
      const label = markerLabel(event, words);
      const what = `${event.type} ${event.reason} ${event.object}: ${event.message}`;
      const full = `${clockTime(time)} ${what}`;
      const attrs = { className: kind, title: full };
      attrs["data-reason"] = event.reason;
      attrs["data-object"] = event.object;
      const mark = el("span", { "aria-hidden": "true", text: `${symbol} ` });
      const node = el(
        "li",
        attrs,
        el("span", { className: "label" }, mark, label),
        el("span", { className: "sr-only", text: ` (${full})` }),
      );
      $("traffic-markers").append(node);
      meshEvents.markers.push({ t: (time * 1000 - traffic.startedWall) / 1000, node });
    }
  }

  // Each marker at its second on the time axis (hidden once out of the window): a line
  // through the chart, its label in the lane below, in the first row where it does not
  // run into an earlier label (the lane grows a row when a burst needs one).
  function drawMarkers(first, current, left, slot, width) {
    const canvas = $("traffic-chart");
    const chartW = canvas.clientWidth;
    const chartH = canvas.clientHeight;
    const scale = chartW / width || 1;
    meshEvents.markers = meshEvents.markers.filter(({ t, node }) => {
      if (t >= first - HISTORY_S) return true;
      node.remove(); // long gone from the chart
      return false;
    });
    const rowEnds = [];
    let lineH = 0;
    for (const { t, node } of meshEvents.markers) {
      const visible = t >= first && t < current + 1;
      node.hidden = !visible;
      if (!visible) continue;
      const x = (left + (t - first) * slot) * scale;
      const label = node.firstChild;
      const labelW = label.offsetWidth + 4;
      lineH = Math.max(lineH, label.offsetHeight + 3);
      const end = x + labelW > chartW;
      const from = end ? x - labelW : x;
      let row = rowEnds.findIndex((edge) => edge < from);
      if (row < 0) row = rowEnds.push(0) - 1;
      rowEnds[row] = from + labelW;
      node.classList.toggle("end", end);
      node.style.left = `${(100 * x) / chartW}%`;
      node.dataset.row = String(row);
    }
    for (const { node } of meshEvents.markers) {
      if (node.hidden) continue;
      const row = Number(node.dataset.row);
      node.style.height = `${chartH + (row + 1) * lineH}px`;
      node.firstChild.style.top = `${chartH + 2 + row * lineH}px`;
    }
    canvas.parentElement.style.paddingBottom = `${rowEnds.length * lineH + 2}px`;
  }

  // -- rollout panel: `mesh rollout`'s events ----------------------------------

  const rollout = { service: null, canary: null, stable: null, steps: [], last: 0, done: true };

  function percent(value) {
    return `${Math.round(Number(value))}%`;
  }

  // "v1 50%, v2 50%": the stable subset, then the canary, then any other with a share.
  function weightsText(weights) {
    const w = weights && typeof weights === "object" ? weights : {};
    const names = [rollout.stable, rollout.canary].filter((n) => n in w);
    for (const name of Object.keys(w).sort()) {
      if (!names.includes(name) && Number(w[name]) > 0) names.push(name);
    }
    return names.map((n) => `${n} ${percent(w[n])}`).join(", ") || "–";
  }

  // The weights of step NUMBER (1-based) of the plan: the canary gets its percent.
  function planWeights(number) {
    const share = Number(rollout.steps[number - 1]);
    return { [rollout.stable]: 100 - share, [rollout.canary]: share };
  }

  function subsetCells(m) {
    const x = m && typeof m === "object" ? m : {};
    const requests = Number(x.requests) || 0;
    const success = requests ? `${(100 - Number(x.error_rate || 0)).toFixed(1)}%` : "–";
    const p99 = x.p99_ms === null || x.p99_ms === undefined ? "–" : `${Math.round(x.p99_ms)} ms`;
    return [String(requests), success, p99];
  }

  function setStep(text, weights) {
    $("rollout-step").textContent = text;
    $("rollout-weights").textContent = weightsText(weights);
  }

  function startRollout(d) {
    rollout.service = String(d.service);
    rollout.canary = String(d.canary);
    rollout.stable = String(d.stable);
    rollout.steps = d.steps.map(Number);
    rollout.last = 0;
    rollout.done = false;
    const steps = `${rollout.steps.join(", ")}%`;
    let plan = `${rollout.service}: ${rollout.stable} \u2192 ${rollout.canary} in steps of ${steps}`;
    const t = d.thresholds;
    if (t && typeof t === "object") {
      plan +=
        ` every ${Number(d.interval_s)} s; a step passes with ${rollout.canary}'s error rate` +
        ` \u2264 ${Number(t.max_error_rate)}%, p99 \u2264 ${Number(t.max_p99_ms)} ms` +
        ` and at least ${Number(t.min_requests)} requests`;
    }
    $("rollout-plan").textContent = `${plan}.`;
    $("rollout-canary").textContent = `Canary ${rollout.canary}`;
    $("rollout-stable").textContent = `Stable ${rollout.stable}`;
    $("rollout-steps").tBodies[0].replaceChildren();
    $("rollout-result").hidden = true;
    $("rollout").hidden = false;
  }

  function stepRow(step, weights) {
    const passed = step.verdict === "pass";
    const verdict = passed ? "\u2714 passed" : `\u2715 failed: ${step.reason || "?"}`;
    const cells = [
      ["step", `${step.step}/${rollout.steps.length}`],
      ["weights", weightsText(weights)],
      ...["requests", "success", "p99"].map((c, i) => [`canary-${c}`, subsetCells(step.canary)[i]]),
      ...["requests", "success", "p99"].map((c, i) => [`stable-${c}`, subsetCells(step.stable)[i]]),
      ["verdict", verdict],
    ];
    const row = el("tr", { "data-step": String(step.step), className: passed ? "pass" : "fail" });
    for (const [col, text] of cells) {
      row.append(el(col === "step" ? "th" : "td", { "data-col": col, text }));
    }
    row.firstChild.setAttribute("scope", "row");
    return row;
  }

  // One rollout event with its data; events of a newer rollout start the panel afresh
  // (also when its RolloutStarted came before the page's traffic did).
  function onRollout(event) {
    const d = event.data;
    if (!d || typeof d !== "object" || !Array.isArray(d.steps) || !d.steps.length) return;
    const step = d.step && typeof d.step === "object" ? d.step : null;
    const ends = event.reason === "Promoted" || event.reason === "RolledBack";
    const other = d.service !== rollout.service || d.canary !== rollout.canary;
    const fresh =
      event.reason === "RolloutStarted" ||
      other ||
      (!ends && rollout.done) ||
      (step && Number(step.step) <= rollout.last);
    if (fresh) startRollout(d);
    const total = rollout.steps.length;
    if (event.reason === "RolloutStarted") {
      setStep(`step 1 of ${total} in progress`, planWeights(1));
    } else if (step) {
      rollout.last = Number(step.step);
      $("rollout-steps").tBodies[0].append(stepRow(step, d.weights));
      if (step.verdict !== "pass") {
        setStep(`step ${rollout.last} of ${total} failed; rolling back`, d.weights);
      } else if (rollout.last < total) {
        const next = rollout.last + 1;
        setStep(`step ${next} of ${total} in progress`, planWeights(next));
      } else {
        setStep(`step ${rollout.last} of ${total} passed`, d.weights);
      }
    } else if (ends) {
      rollout.done = true;
      const promoted = d.result === "promoted";
      setStep(promoted ? "promoted" : "rolled back", d.weights);
      $("rollout-verdict").textContent = promoted ? "\u2714 Promoted:" : "\u21B6 Rolled back:";
      $("rollout-reason").textContent = String(d.reason || event.message || "");
      $("rollout-result").className = promoted ? "promoted" : "rolled-back";
      $("rollout-result").hidden = false;
    }
  }

  // Every series seen, in legend order: instances grouped by version, then error causes.
  function seriesList() {
    const byVersion = new Map();
    for (const [instance, version] of [...traffic.instances.entries()].sort()) {
      if (!byVersion.has(version)) byVersion.set(version, []);
      byVersion.get(version).push(instance);
    }
    const out = [];
    let other = 0;
    for (const version of [...byVersion.keys()].sort()) {
      const shades = VERSION_SHADES[version] || OTHER_SHADES;
      byVersion.get(version).forEach((instance, i) => {
        out.push({
          key: `ok:${instance}`,
          version,
          instance,
          colour: VERSION_SHADES[version] ? shades[i % shades.length] : OTHER_SHADES[other++ % 3],
          error: false,
        });
      });
    }
    for (const [cause, label] of ERROR_CAUSES) {
      out.push({ key: `err:${cause}`, cause, label, colour: ERROR_COLOURS[cause], error: true });
    }
    return out;
  }

  function hatch(ctx) {
    const tile = document.createElement("canvas");
    tile.width = 6;
    tile.height = 6;
    const t = tile.getContext("2d");
    t.strokeStyle = "rgba(255,255,255,0.8)";
    t.lineWidth = 1.5;
    t.beginPath();
    t.moveTo(0, 6);
    t.lineTo(6, 0);
    t.stroke();
    return ctx.createPattern(tile, "repeat");
  }

  function drawChart(series, current) {
    const canvas = $("traffic-chart");
    const ctx = canvas.getContext("2d");
    const w = canvas.width;
    const h = canvas.height;
    const top = 14;
    const bottom = h - 16;
    const left = 34;
    ctx.clearRect(0, 0, w, h);
    ctx.fillStyle = "#222";
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillText("100%", 2, top + 4);
    ctx.fillText("0%", 10, bottom);
    ctx.fillText(`last ${HISTORY_S} s, one bar per second (newest right)`, left, h - 3);
    ctx.strokeStyle = "#ccc";
    ctx.beginPath();
    ctx.moveTo(left, top);
    ctx.lineTo(w, top);
    ctx.moveTo(left, bottom);
    ctx.lineTo(w, bottom);
    ctx.stroke();
    const slot = (w - left) / HISTORY_S;
    const pattern = hatch(ctx);
    const first = Math.max(0, current - HISTORY_S + 1);
    for (let s = first; s <= current; s++) {
      const bucket = traffic.buckets.get(s);
      if (!bucket) continue;
      const n = [...bucket.values()].reduce((a, b) => a + b, 0);
      const x = left + (s - first) * slot + 1;
      let y = bottom;
      for (const item of series) {
        const count = bucket.get(item.key) || 0;
        if (!count) continue;
        const height = ((bottom - top) * count) / n;
        y -= height;
        ctx.fillStyle = item.colour;
        ctx.fillRect(x, y, slot - 2, height);
        if (item.error) {
          ctx.fillStyle = pattern;
          ctx.fillRect(x, y, slot - 2, height);
        }
      }
      ctx.fillStyle = "#222";
      ctx.fillText(String(n), x, top - 3);
    }
    drawMarkers(first, current, left, slot, w);
  }

  function legendRow(key, label, counts, kind, colour, error) {
    const cells = [
      ["last", String(counts.last)],
      ["share", counts.of ? `${Math.round((100 * counts.last) / counts.of)}%` : "–"],
      ["total", String(counts.total)],
    ].map(([col, text]) => el("td", { "data-col": col, text }));
    const name = el("td", {});
    if (colour) {
      const swatch = el("span", { className: "swatch", "aria-hidden": "true" });
      swatch.style.background = error
        ? `repeating-linear-gradient(135deg, ${colour} 0 3px, #fff 3px 5px)`
        : colour;
      name.append(swatch);
    }
    name.append(label);
    return el("tr", { "data-key": key, className: kind }, name, ...cells);
  }

  function draw() {
    // While running, the newest bar is the second in progress and the legend's "last
    // second" the one before it; once stopped, the cut-short final second is left out.
    let current = traffic.startedAt ? second(performance.now()) : 0;
    if (traffic.stoppedAt !== null) current = Math.max(0, traffic.stoppedAt - 1);
    const shown = traffic.running ? Math.max(0, current - 1) : current;
    const series = seriesList();
    drawChart(series, current);
    const last = traffic.buckets.get(shown) || new Map();
    const lastAll = [...last.values()].reduce((a, b) => a + b, 0);
    const count = (keys, map) => keys.reduce((a, k) => a + (map.get(k) || 0), 0);
    const rows = [];
    const summary = [];
    const versions = [...new Set(series.filter((s) => !s.error).map((s) => s.version))];
    for (const version of versions) {
      const keys = series.filter((s) => s.version === version).map((s) => s.key);
      const counts = { last: count(keys, last), total: count(keys, traffic.totals), of: lastAll };
      rows.push(legendRow(`version:${version}`, `backend ${version}`, counts, "group"));
      if (lastAll) summary.push(`${version} ${Math.round((100 * counts.last) / lastAll)}%`);
      for (const s of series.filter((x) => x.version === version)) {
        const one = { last: count([s.key], last), total: count([s.key], traffic.totals), of: lastAll };
        rows.push(legendRow(`instance:${s.instance}`, s.instance, one, "sub", s.colour));
      }
    }
    const errKeys = series.filter((s) => s.error).map((s) => s.key);
    const errCounts = { last: count(errKeys, last), total: count(errKeys, traffic.totals), of: lastAll };
    rows.push(legendRow("errors", "errors", errCounts, "group"));
    for (const s of series.filter((x) => x.error)) {
      const one = { last: count([s.key], last), total: count([s.key], traffic.totals), of: lastAll };
      rows.push(legendRow(`error:${s.cause}`, s.label, one, "sub", s.colour, true));
      if (one.last) summary.push(`${s.label} ${one.last}`);
    }
    const all = [...traffic.totals.values()].reduce((a, b) => a + b, 0);
    rows.push(legendRow("all", "all replies", { last: lastAll, total: all, of: lastAll }, "group"));
    $("traffic-legend").tBodies[0].replaceChildren(...rows);
    $("traffic-chart").setAttribute(
      "aria-label",
      lastAll
        ? `Share of replies in the last second: ${lastAll} replies; ${summary.join(", ")}`
        : "Share of replies per second: no replies in the last second",
    );
    if (traffic.running) {
      const elapsed = Math.floor((performance.now() - traffic.startedAt) / 1000);
      const skipped = traffic.skipped ? `; ${traffic.skipped} skipped (too many in flight)` : "";
      $("traffic-clock").textContent =
        `${elapsed} s of ${TRAFFIC_LIMIT_S} s; ${traffic.inFlight} in flight${skipped}`;
    }
  }

  // -- wiring ------------------------------------------------------------------

  function init() {
    for (const id of ["add-form", "canary-section", "traffic"]) $(id).hidden = false;
    $("add-form").addEventListener("submit", addTask);
    let stored = false;
    try {
      stored = localStorage.getItem(CANARY_KEY) === "1";
    } catch {
      stored = false;
    }
    $("canary").checked = stored;
    $("priority-field").hidden = !stored;
    $("canary").addEventListener("change", onCanary);
    $("traffic-limit").textContent = String(TRAFFIC_LIMIT_S);
    $("traffic-toggle").addEventListener("click", () =>
      traffic.running ? stopTraffic("you pressed Stop") : startTraffic(),
    );
    $("rate").addEventListener("change", () => {
      const rate = readRate();
      if (traffic.running && rate !== null) {
        setTicker(rate);
        $("traffic-status").textContent = `Sending ${rate} requests per second.`;
      }
    });
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden") stopTraffic("the tab was hidden");
    });
    window.addEventListener("pagehide", () => stopTraffic("the page was left"));
    draw();
    loadTasks();
  }

  init();
})();
