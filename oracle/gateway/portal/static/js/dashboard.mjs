// The operator dashboard: one server-sent event per store change (/dashboard/events) carries a
// whole snapshot; counts and tables are rebuilt, plots get new data (uPlot, served locally).
const uPlot = globalThis.uPlot;
const statusEl = document.getElementById("stream-status");
const state = { snapshots: 0, last: null, plots: {} };
window.dashboard = state;   // read by tests/browser

const STATE_ORDER = ["seen", "confirmed", "dispatched", "proven", "verified", "submitted", "fulfilled",
                     "rejected", "failed", "expired", "orphaned"];

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}
const fmtTime = (t) => new Date(t * 1000).toLocaleTimeString();
const short = (a) => (a && a.length > 16 ? `${a.slice(0, 8)}…${a.slice(-6)}` : a || "");
function fmtWei(w) {
  if (w === null || w === undefined) return "–";
  const v = BigInt(w);
  const whole = v / 10n ** 18n;
  const frac = (v % 10n ** 18n).toString().padStart(18, "0").slice(0, 4);
  return `${whole}.${frac} ETH`;
}

function renderCounts(snap) {
  const box = document.getElementById("state-counts");
  const totals = snap.totals;
  const states = STATE_ORDER.filter((s) => totals[s]).concat(Object.keys(totals).filter((s) => !STATE_ORDER.includes(s)));
  const items = states.map((s) => {
    const per = Object.entries(snap.states).filter(([, c]) => c[s]).map(([o, c]) => `${o} ${c[s]}`).join(", ");
    return el("div", { class: `count st-${s}`, "data-state": s, title: per }, el("b", {}, totals[s]), el("span", {}, s));
  });
  const total = Object.values(totals).reduce((a, b) => a + b, 0);
  items.unshift(el("div", { class: "count total", "data-state": "total" }, el("b", {}, total), el("span", {}, "total")));
  box.replaceChildren(...items);
}

function rows(tbodySel, list, cells, empty) {
  const tb = document.querySelector(`${tbodySel} tbody`);
  if (!list.length) {
    tb.replaceChildren(el("tr", {}, el("td", { colspan: "9", class: "muted" }, empty)));
    return;
  }
  tb.replaceChildren(...list.map((x) => el("tr", {}, ...cells(x).map((c) => el("td", {}, c)))));
}

function plotWidth(id) {
  return Math.max(280, document.getElementById(id).clientWidth - 8);
}

function timePlot(id, series, yLabel) {
  const opts = {
    width: plotWidth(id), height: 220,
    scales: { x: { time: true } },
    axes: [{}, { label: yLabel, size: 60 }],
    series: [{}, ...series.map((s) => ({
      label: s.label, stroke: s.color, fill: null, width: 0,
      paths: () => null,                                         // scatter: points only
      points: { show: true, size: 7, stroke: s.color, fill: s.color },
    }))],
    legend: { live: false },
  };
  const p = new uPlot(opts, [[], ...series.map(() => [])], document.getElementById(id));
  state.plots[id] = p;
  return p;
}

let latencyPlot, provingPlot, gasPlot, minersPlot;

function minersChart(miners) {
  const id = "plot-miners";
  const labels = miners.map((m) => short(m.hotkey));
  const data = [miners.map((_, i) => i), miners.map((m) => m.score), miners.map((m) => m.latency)];
  if (minersPlot && minersPlot.series.length === 3 && minersPlot._n === miners.length) {
    minersPlot.setData(data);
    minersPlot._labels = labels;
    return;
  }
  if (minersPlot) minersPlot.destroy();
  const bars = uPlot.paths.bars;
  minersPlot = new uPlot({
    width: plotWidth(id), height: 220,
    // One column per miner, from the data's length: with a single miner uPlot widens a range
    // computed from (min, max) = (0, 0) far to the right, and the bars shrank to a sliver.
    scales: { x: { time: false, range: (u) => [-0.5, Math.max(1, u.data[0].length) - 0.5] }, score: { range: [0, 1] } },
    axes: [
      { values: (u, ticks) => ticks.map((t) => (Number.isInteger(t) ? (minersPlot?._labels ?? labels)[t] ?? "" : "")) },
      { scale: "score", label: "score", size: 50 },
      { scale: "s", side: 1, label: "latency (s)", size: 60, grid: { show: false } },
    ],
    series: [
      { label: "miner", value: (u, v) => (v === null || v === undefined ? "--" : (minersPlot?._labels ?? labels)[v] ?? "--") },
      { label: "score", scale: "score", stroke: "#2563eb", fill: "#2563eb88", paths: bars({ size: [0.35, 60], align: -1 }), points: { show: false } },
      { label: "latency (s)", scale: "s", stroke: "#d97706", fill: "#d9770688", paths: bars({ size: [0.35, 60], align: 1 }), points: { show: false } },
    ],
  }, data, document.getElementById(id));
  minersPlot._n = miners.length;
  minersPlot._labels = labels;
  state.plots[id] = minersPlot;
}

function mark(id, n) {
  document.getElementById(id).closest(".plot").classList.toggle("empty", n === 0);
}

function render(snap) {
  state.snapshots += 1;
  state.last = snap;
  renderCounts(snap);
  const L = snap.latency;
  latencyPlot.setData([L.t, L.proven, L.fulfilled]);
  provingPlot.setData([snap.proving.t, snap.proving.seconds]);
  gasPlot.setData([snap.gas.t, snap.gas.gas]);
  minersChart(snap.miners);
  mark("plot-latency", L.t.length);
  mark("plot-proving", snap.proving.t.length);
  mark("plot-gas", snap.gas.t.length);
  mark("plot-miners", snap.miners.length);
  rows("#failures", snap.failures, (f) => [f.state, f.count, fmtTime(f.last_at), f.reason], "none");
  rows("#relayers", snap.relayers, (r) => [r.chain_id, short(r.account), r.error ? r.error : fmtWei(r.balance_wei),
    r.chain_nonce ?? "–", r.next_nonce ?? "–", r.open_txs], "no relayer account configured or used yet");
  rows("#miners", snap.miners, (m) => [short(m.hotkey), m.score.toFixed(3), m.successes, m.failures, m.invalid,
    `${m.latency.toFixed(2)} s`, m.proofs], "no miner has been scored (proving locally)");
  statusEl.textContent = `live · updated ${fmtTime(snap.at)} · ${state.snapshots} update(s)`;
  statusEl.className = "ok";
}

latencyPlot = timePlot("plot-latency", [{ label: "to proven", color: "#7c3aed" }, { label: "to fulfilled", color: "#059669" }], "s");
provingPlot = timePlot("plot-proving", [{ label: "proving time", color: "#2563eb" }], "s");
gasPlot = timePlot("plot-gas", [{ label: "gas / request", color: "#dc2626" }], "gas");

const source = new EventSource("/dashboard/events");
source.addEventListener("snapshot", (ev) => render(JSON.parse(ev.data)));
source.addEventListener("problem", (ev) => {
  // The server could not read the store this time (it keeps trying): say so.
  statusEl.textContent = `store unreadable: ${JSON.parse(ev.data).error} (retrying)`;
  statusEl.className = "err";
});
source.addEventListener("error", () => {
  // EventSource reconnects by itself; say so instead of showing stale numbers as live.
  statusEl.textContent = "disconnected: reconnecting…";
  statusEl.className = "err";
});

window.addEventListener("resize", () => {
  for (const [id, p] of Object.entries(state.plots)) p.setSize({ width: plotWidth(id), height: 220 });
});
