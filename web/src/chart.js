// The live chart page: connects to a tickwire server's WebSocket endpoint with the browser build
// of @tickwire/client, subscribes to SECOND or MINUTE bars of the topics asked for (names,
// prefixes such as FX.*, or *) with a backfill, and draws one candlestick chart per topic with
// lightweight-charts. Bars arrive as they close; the client reconnects and resumes by itself.
//
// #status carries machine-readable counters in data-* attributes (state, candles drawn, bar
// records received, topics charted, topics not charted), and window.tickwireChart.snapshot()
// returns the same with per-topic detail: the browser test reads them.

import { Mode, connect, toNumber } from "@tickwire/client/browser";
import { CandlestickSeries, HistogramSeries, createChart } from "lightweight-charts";

const MAX_PANELS = 12; // topics charted; further topics are counted, not drawn
const MAX_CANDLES = 2000; // per topic, kept and drawn; older ones are dropped
const UP = "#26a69a";
const DOWN = "#ef5350";
const STORAGE_KEY = "tickwire.chart.settings";

const $ = (id) => document.getElementById(id);
const form = $("connect-form");
const statusEl = $("status");
const chartsEl = $("charts");

const state = {
  generation: 0, // bumped by every connect and disconnect: a stale loop stops
  client: null,
  mode: Mode.SECOND,
  panels: new Map(), // topic -> panel
  hidden: new Set(), // topics over MAX_PANELS
  candles: 0,
  bars: 0,
  outOfOrder: 0,
  subscribedAtMs: 0,
  phase: "idle",
  message: "Not connected.",
};

// ---- settings: URL query, then what was used last, then defaults ----------------------------

function defaultUrl() {
  const secure = location.protocol === "https:";
  const host = location.hostname || "127.0.0.1";
  const bracketed = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  return `${secure ? "wss" : "ws"}://${bracketed}:7879/`;
}

function loadSettings() {
  let saved = {};
  try {
    saved = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? "{}") ?? {};
  } catch {
    saved = {};
  }
  const q = new URLSearchParams(location.search);
  const pick = (name, fallback) => q.get(name) ?? saved[name] ?? fallback;
  $("ws-url").value = pick("ws", defaultUrl());
  $("user").value = pick("user", "demo");
  $("topics").value = pick("topics", "*");
  $("mode").value = pick("mode", "second") === "minute" ? "minute" : "second";
  $("backfill").value = pick("backfill", "120");
}

function saveSettings(s) {
  try {
    localStorage.setItem(
      STORAGE_KEY,
      JSON.stringify({ ws: s.url, user: s.username, topics: s.topics.join(", "), mode: s.modeName, backfill: String(s.backfill) }),
    );
  } catch {
    // storage may be off (private mode): the form still works
  }
}

function readForm() {
  const topics = $("topics")
    .value.split(/[\s,]+/)
    .filter((t) => t.length > 0);
  const backfill = Number.parseInt($("backfill").value || "0", 10);
  const modeName = $("mode").value === "minute" ? "minute" : "second";
  return {
    url: $("ws-url").value.trim(),
    username: $("user").value,
    password: $("password").value,
    topics,
    modeName,
    mode: modeName === "minute" ? Mode.MINUTE : Mode.SECOND,
    backfill: Number.isFinite(backfill) && backfill > 0 ? Math.min(backfill, 100000) : 0,
  };
}

// ---- status -------------------------------------------------------------------------------

let statusQueued = false;

function setPhase(phase, message) {
  state.phase = phase;
  state.message = message;
  renderStatus();
}

// Counters change per bar: redraw the line at most once per frame.
function queueStatus() {
  if (statusQueued) return;
  statusQueued = true;
  requestAnimationFrame(() => {
    statusQueued = false;
    renderStatus();
  });
}

function renderStatus() {
  const d = statusEl.dataset;
  d.state = state.phase;
  d.candles = String(state.candles);
  d.bars = String(state.bars);
  d.topics = String(state.panels.size);
  d.hidden = String(state.hidden.size);
  let text = state.message;
  if (state.phase !== "idle" && state.phase !== "connecting") {
    text += ` ${state.bars} bars received, ${state.candles} candles on ${state.panels.size} topic${state.panels.size === 1 ? "" : "s"}`;
    if (state.hidden.size > 0) text += ` (${state.hidden.size} more topics not charted)`;
    text += ".";
  }
  statusEl.textContent = text;
  $("connect").textContent = state.client ? "Reconnect" : "Connect";
  $("disconnect").disabled = state.client === null && state.phase !== "connecting";
}

function describe(err) {
  if (err && typeof err === "object" && "codeName" in err && err.kind === "server") {
    return `${err.codeName}${err.detail ? `: ${err.detail}` : ""}`;
  }
  return err instanceof Error ? err.message : String(err);
}

// ---- charts -------------------------------------------------------------------------------

function decimalsFor(price) {
  const p = Math.abs(price);
  if (p >= 1000) return 2;
  if (p >= 10) return 3;
  if (p >= 1) return 5;
  return 6;
}

function addPanel(topic, firstPrice) {
  const el = document.createElement("section");
  el.className = "panel";
  el.dataset.topic = topic;
  const title = document.createElement("h2");
  const name = document.createElement("span");
  name.textContent = topic;
  const last = document.createElement("span");
  last.className = "last";
  title.append(name, last);
  const box = document.createElement("div");
  box.className = "chart";
  el.append(title, box);
  // Panels in topic order.
  const after = [...chartsEl.children].find((c) => c.dataset.topic > topic);
  chartsEl.insertBefore(el, after ?? null);

  const chart = createChart(box, {
    autoSize: true,
    // The footer carries TradingView's attribution (its logo would need an inline <style>,
    // which the server's Content-Security-Policy does not allow).
    layout: { background: { color: "#ffffff" }, textColor: "#334e68", attributionLogo: false },
    grid: { vertLines: { color: "#f0f4f8" }, horzLines: { color: "#f0f4f8" } },
    timeScale: { timeVisible: true, secondsVisible: state.mode === Mode.SECOND, rightOffset: 2 },
    rightPriceScale: { scaleMargins: { top: 0.08, bottom: 0.28 } },
  });
  const precision = decimalsFor(firstPrice);
  const candles = chart.addSeries(CandlestickSeries, {
    upColor: UP,
    downColor: DOWN,
    borderUpColor: UP,
    borderDownColor: DOWN,
    wickUpColor: UP,
    wickDownColor: DOWN,
    priceFormat: { type: "price", precision, minMove: 10 ** -precision },
  });
  const volume = chart.addSeries(HistogramSeries, { priceFormat: { type: "volume" }, priceScaleId: "" });
  volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
  const panel = { topic, el, last, chart, candles, volume, data: [], vols: [], precision, firstMs: 0, lastMs: 0 };
  state.panels.set(topic, panel);
  return panel;
}

function clearPanels() {
  for (const p of state.panels.values()) p.chart.remove();
  state.panels.clear();
  state.hidden.clear();
  chartsEl.replaceChildren();
  state.candles = 0;
  state.bars = 0;
  state.outOfOrder = 0;
}

function onBar(bar) {
  state.bars += 1;
  let p = state.panels.get(bar.topic);
  if (p === undefined) {
    if (state.panels.size >= MAX_PANELS) {
      state.hidden.add(bar.topic);
      return;
    }
    p = addPanel(bar.topic, bar.close);
  }
  const startMs = toNumber(bar.startMs);
  const time = startMs / 1000; // the chart's UTCTimestamp: seconds
  const prev = p.data.length > 0 ? p.data[p.data.length - 1].time : -Infinity;
  if (time < prev) {
    state.outOfOrder += 1; // the client drops duplicates; an older bar cannot be drawn
    return;
  }
  const candle = { time, open: bar.open, high: bar.high, low: bar.low, close: bar.close };
  const vol = { time, value: bar.volume, color: bar.close >= bar.open ? `${UP}80` : `${DOWN}80` };
  if (time === prev) {
    p.data[p.data.length - 1] = candle;
    p.vols[p.vols.length - 1] = vol;
  } else {
    p.data.push(candle);
    p.vols.push(vol);
    state.candles += 1;
    if (p.firstMs === 0) p.firstMs = startMs;
  }
  p.lastMs = startMs;
  if (p.data.length > MAX_CANDLES + MAX_CANDLES / 4) {
    const drop = p.data.length - MAX_CANDLES;
    p.data.splice(0, drop);
    p.vols.splice(0, drop);
    state.candles -= drop;
    p.firstMs = p.data[0].time * 1000;
    p.candles.setData(p.data);
    p.volume.setData(p.vols);
  } else {
    p.candles.update(candle);
    p.volume.update(vol);
  }
  p.last.textContent = `${bar.close.toFixed(p.precision)}  ·  ${p.data.length} bars`;
}

// ---- connection ---------------------------------------------------------------------------

function stop(message) {
  state.generation += 1;
  const c = state.client;
  state.client = null;
  if (c) void c.close();
  if (message) setPhase("idle", message);
}

async function start() {
  const s = readForm();
  if (s.topics.length === 0) {
    setPhase("error", "Name at least one topic (or * for all, or a prefix such as FX.*).");
    return;
  }
  stop();
  const gen = state.generation;
  saveSettings(s);
  clearPanels();
  state.mode = s.mode;
  setPhase("connecting", `Connecting to ${s.url} ...`);
  let client;
  try {
    client = await connect({ url: s.url, username: s.username, password: s.password, clientName: "tickwire-chart" });
  } catch (err) {
    if (gen === state.generation) setPhase("error", `Cannot connect to ${s.url}: ${describe(err)}`);
    return;
  }
  if (gen !== state.generation) {
    void client.close();
    return;
  }
  state.client = client;
  try {
    await client.subscribe(s.mode, s.topics, s.backfill > 0 ? { backfill: s.backfill } : {});
  } catch (err) {
    if (gen === state.generation) {
      stop();
      setPhase("error", `Subscribe refused: ${describe(err)}`);
    }
    return;
  }
  state.subscribedAtMs = Date.now();
  const what = `${s.modeName.toUpperCase()} bars of ${s.topics.join(", ")}`;
  setPhase("open", `Live: ${what}.`);
  for await (const ev of client) {
    if (gen !== state.generation) return;
    switch (ev.type) {
      case "batch":
        for (const r of ev.records) {
          if (r.kind === "bar" && r.interval === s.mode) onBar(r);
        }
        queueStatus();
        break;
      case "disconnected":
        setPhase("reconnecting", `Connection lost (${describe(ev.reason)}); reconnecting.`);
        break;
      case "reconnecting":
        setPhase("reconnecting", `Reconnecting (attempt ${ev.attempt}, in ${ev.delayMs} ms).`);
        break;
      case "reconnected":
        setPhase("open", `Live again: ${what}.`);
        break;
      case "error":
        if (ev.error.fatal) setPhase("error", `Stopped: ${describe(ev.error)}.`);
        break;
      case "closed":
        if (gen === state.generation) {
          state.client = null;
          setPhase(ev.reason ? "error" : "idle", ev.reason ? `Closed: ${describe(ev.reason)}.` : "Disconnected.");
        }
        return;
      default:
        break;
    }
  }
}

form.addEventListener("submit", (e) => {
  e.preventDefault();
  void start();
});
$("disconnect").addEventListener("click", () => stop("Disconnected."));
window.addEventListener("pagehide", () => stop());

// For tests and the console: what the page holds now.
window.tickwireChart = {
  snapshot() {
    const topics = {};
    for (const [name, p] of state.panels) {
      topics[name] = { candles: p.data.length, firstStartMs: p.firstMs, lastStartMs: p.lastMs };
    }
    return {
      state: state.phase,
      message: state.message,
      candles: state.candles,
      bars: state.bars,
      outOfOrder: state.outOfOrder,
      subscribedAtMs: state.subscribedAtMs,
      hidden: [...state.hidden].sort(),
      topics,
    };
  },
};

loadSettings();
renderStatus();
