// The /dashboard page: asks the gateway's own /graphql for caseStats and draws three charts.
// The GraphQL document comes from the server (gateway/examples.py), so GraphiQL's "Dashboard"
// example and this page run the same query. When everything is drawn, <body data-state> is
// "ready" (or "error" when nothing could be drawn): the browser tests wait for that marker.
"use strict";

const KEY_STORAGE = "complaint-graph.apiKey";
const DEFAULT_DAYS = 90;
const TOP_PROVINCES = 20;
const COLOURS = { received: "#2563eb", overdue: "#dc2626", resolved: "#16a34a" };
const DASHBOARD_QUERY = JSON.parse(document.getElementById("dashboard-query").textContent);
const SETUP_QUERY = `query DashboardSetup {
  categories { code nameTh nameEn }
  cases(first: 1, orderBy: {field: RECEIVED_AT, direction: DESC}) { edges { node { receivedAt } } }
}`;

const charts = {};
Chart.defaults.font.family = getComputedStyle(document.documentElement).fontFamily;
Chart.defaults.animation = false; // drawn at once: what the screenshot shows is final

function $(id) {
  return document.getElementById(id);
}

function bangkokDate(instant) {
  // The Asia/Bangkok calendar day (UTC+7, no daylight saving) of an ISO instant, as YYYY-MM-DD.
  return new Date(Date.parse(instant) + 7 * 3600 * 1000).toISOString().slice(0, 10);
}

function addDays(isoDate, days) {
  const day = new Date(isoDate + "T00:00:00Z");
  day.setUTCDate(day.getUTCDate() + days);
  return day.toISOString().slice(0, 10);
}

async function graphql(query, variables) {
  // Returns {data, errors}; a transport failure or a non-JSON answer becomes one error.
  const headers = { "content-type": "application/json", accept: "application/json" };
  const key = $("key").value.trim();
  if (key) headers.authorization = `Bearer ${key}`;
  let response;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      headers,
      body: JSON.stringify({ query, variables }),
    });
  } catch (error) {
    return { data: null, errors: [{ message: `the gateway did not answer: ${error}` }] };
  }
  try {
    const body = await response.json();
    return { data: body.data ?? null, errors: body.errors ?? [] };
  } catch (error) {
    return { data: null, errors: [{ message: `HTTP ${response.status}: not a GraphQL answer` }] };
  }
}

function showErrors(errors) {
  const list = $("errors");
  list.replaceChildren();
  for (const error of errors) {
    const item = document.createElement("li");
    const where = error.path ? ` (${error.path.join(".")})` : "";
    const code = error.extensions && error.extensions.code ? `[${error.extensions.code}] ` : "";
    item.textContent = `${code}${error.message}${where}`;
    list.append(item);
  }
  document.body.dataset.errors = String(errors.length);
}

function fillTable(table, columns, rows) {
  // The chart's data, also in the DOM: each <tr> carries data-* attributes the tests read.
  const head = document.createElement("tr");
  for (const [, title] of columns) {
    const cell = document.createElement("th");
    cell.textContent = title;
    head.append(cell);
  }
  table.replaceChildren(head);
  for (const row of rows) {
    const line = document.createElement("tr");
    for (const [field] of columns) {
      const cell = document.createElement("td");
      const value = row[field];
      cell.textContent = value ?? "—";
      if (typeof value === "number") cell.className = "n";
      line.dataset[field] = value ?? "";
      line.append(cell);
    }
    table.append(line);
  }
  table.dataset.rows = String(rows.length);
}

function draw(name, config) {
  if (charts[name]) charts[name].destroy();
  charts[name] = new Chart($(`${name}-chart`), config);
}

function bucketRows(stats, fields) {
  if (!stats) return [];
  return stats.buckets.map((bucket) => {
    const key = bucket.key[0];
    const row = { code: key.code, label: key.label ?? key.code ?? "ไม่ระบุ (none)" };
    for (const field of fields) row[field] = bucket[field];
    return row;
  });
}

function drawProvinces(stats) {
  const rows = bucketRows(stats, ["count", "overdue"]);
  rows.sort((a, b) => b.count - a.count || a.label.localeCompare(b.label, "th"));
  fillTable($("provinces-table"), [["label", "จังหวัด"], ["code", "code"], ["count", "cases"],
    ["overdue", "overdue"]], rows);
  const top = rows.slice(0, TOP_PROVINCES);
  draw("provinces", {
    type: "bar",
    data: {
      labels: top.map((row) => row.label),
      datasets: [
        { label: "รับเรื่อง (received)", data: top.map((r) => r.count), backgroundColor: COLOURS.received },
        { label: "เกินกำหนด (overdue)", data: top.map((r) => r.overdue), backgroundColor: COLOURS.overdue },
      ],
    },
    options: { maintainAspectRatio: false, scales: { x: { ticks: { autoSkip: false } } } },
  });
}

function drawOverdue(stats) {
  const rows = bucketRows(stats, ["overdue", "count"]);
  rows.sort((a, b) => b.overdue - a.overdue || a.label.localeCompare(b.label, "th"));
  fillTable($("overdue-table"), [["label", "หน่วยงาน"], ["code", "code"], ["overdue", "overdue"],
    ["count", "cases"]], rows);
  draw("overdue", {
    type: "bar",
    data: {
      labels: rows.map((row) => row.label),
      datasets: [
        { label: "เกินกำหนด (overdue)", data: rows.map((r) => r.overdue), backgroundColor: COLOURS.overdue },
      ],
    },
    options: { indexAxis: "y", maintainAspectRatio: false },
  });
}

function drawWeekly(stats) {
  const rows = bucketRows(stats, ["count", "resolved"]);
  fillTable($("weekly-table"), [["code", "สัปดาห์ (from Monday)"], ["count", "received"],
    ["resolved", "resolved"]], rows);
  draw("weekly", {
    type: "line",
    data: {
      labels: rows.map((row) => row.code),
      datasets: [
        { label: "รับเรื่อง (received)", data: rows.map((r) => r.count), borderColor: COLOURS.received,
          backgroundColor: COLOURS.received },
        { label: "แก้ไขแล้ว (resolved)", data: rows.map((r) => r.resolved),
          borderColor: COLOURS.resolved, backgroundColor: COLOURS.resolved },
      ],
    },
    options: { maintainAspectRatio: false },
  });
}

function filterFromForm() {
  const from = $("from").value;
  const to = $("to").value;
  const filter = {
    receivedFrom: `${from}T00:00:00+07:00`,
    receivedBefore: `${addDays(to, 1)}T00:00:00+07:00`,
  };
  const category = $("category").value;
  if (category) filter.category = [category];
  return filter;
}

async function refresh() {
  document.body.dataset.state = "loading";
  $("status").textContent = "กำลังโหลด… (loading)";
  const params = new URLSearchParams({ from: $("from").value, to: $("to").value });
  if ($("category").value) params.set("category", $("category").value);
  history.replaceState(null, "", `?${params}`);
  const started = performance.now();
  const { data, errors } = await graphql(DASHBOARD_QUERY, { filter: filterFromForm() });
  showErrors(errors);
  drawProvinces(data && data.byProvince);
  drawOverdue(data && data.byAgency);
  drawWeekly(data && data.byWeek);
  const total = data && data.byProvince ? data.byProvince.total.count : null;
  $("status").textContent =
    total === null ? "" : `${total.toLocaleString("th-TH")} เรื่อง · ${Math.round(performance.now() - started)} ms`;
  document.body.dataset.total = total ?? "";
  for (const name of Object.keys(charts)) {
    // Where each chart is, in CSS pixels: the browser test checks the screenshot there.
    const box = $(`${name}-chart`).getBoundingClientRect();
    $(`${name}-chart`).dataset.box = [box.x, box.y, box.width, box.height].map(Math.round).join(",");
  }
  document.body.dataset.state = data ? "ready" : "error";
}

async function setUp() {
  // A link may carry the key in its fragment (#key=…), which browsers never send to a server:
  // it is stored like a typed key and taken out of the address bar.
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.has("key")) {
    localStorage.setItem(KEY_STORAGE, fragment.get("key").trim());
    history.replaceState(null, "", location.pathname + location.search);
  }
  $("key").value = localStorage.getItem(KEY_STORAGE) ?? "";
  const params = new URLSearchParams(location.search);
  const { data, errors } = await graphql(SETUP_QUERY, {});
  if (errors.length) showErrors(errors);
  for (const category of (data && data.categories) || []) {
    const option = new Option(`${category.nameTh} (${category.nameEn})`, category.code);
    $("category").append(option);
  }
  $("category").value = params.get("category") ?? "";
  // Without dates in the address: the last 90 days up to the newest case any agency holds.
  const newest = data && data.cases.edges.length ? data.cases.edges[0].node.receivedAt : null;
  const to = params.get("to") ?? bangkokDate(newest ?? new Date().toISOString());
  $("to").value = to;
  $("from").value = params.get("from") ?? addDays(to, 1 - DEFAULT_DAYS);
  await refresh();
}

$("period").addEventListener("submit", (event) => {
  event.preventDefault();
  localStorage.setItem(KEY_STORAGE, $("key").value.trim());
  refresh();
});

setUp();
