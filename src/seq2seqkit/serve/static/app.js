// The page: pick a model, type inputs, see the n-best outputs and the attention of the chosen one.
// Plain DOM (textContent only, never HTML from the server), no build step, no network but this server.
"use strict";

const $ = (id) => document.getElementById(id);
let models = [];
let busy = false;

async function api(path, body) {
  // a File (audio for /v1/transcribe) goes as it is; anything else as JSON
  const raw = body instanceof File;
  const init = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": raw ? "application/octet-stream" : "application/json" },
    body: raw ? body : JSON.stringify(body),
  };
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new Error("Cannot reach the server. Is `seq2seqkit serve` still running?");
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    // not JSON: the status line says enough
  }
  if (!response.ok) {
    throw new Error(data && data.error ? data.error : `${response.status} ${response.statusText}`);
  }
  return data;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

function currentModel() {
  return models.find((m) => m.name === $("model").value) || models[0];
}

function describe(model) {
  const m = model.model;
  const size = ` · ${(m.parameters / 1e6).toFixed(2)}M parameters`;
  if (m.architecture === "pointer reader") {
    return `${model.task} · ${m.rnn_type.toUpperCase()} pointer reader, paragraph ${m.paragraph}` + size;
  }
  if (m.architecture === "transformer") {
    return `${model.task} · Transformer ${m.encoder} → ${m.decoder}, d_model ${m.d_model}, ${m.heads} heads` + size;
  }
  const attention = model.attention ? `${m.attention} attention` : "no attention";
  return `${model.task} · ${m.rnn_type.toUpperCase()} ${m.encoder} → ${m.decoder}, ${attention}` + size;
}

function buildInputs() {
  const model = currentModel();
  const box = $("inputs");
  box.replaceChildren();
  $("beam").value = model.defaults.beam;
  $("summary").textContent = describe(model);
  if (model.source === "audio") {
    const wrap = el("div", "field");
    const label = el("label", "", "Audio files");
    const files = el("input");
    files.type = "file";
    files.id = label.htmlFor = "input-audio";
    files.accept = "audio/*,.wav,.flac,.ogg";
    files.multiple = true;
    wrap.append(label, files);
    box.append(wrap);
    $("hint").textContent = "WAV, FLAC or OGG, any sample rate · each file is transcribed";
    return;
  }
  const fields = model.source_fields.length ? model.source_fields : ["input"];
  for (const name of fields) {
    const wrap = el("div", "field");
    const label = el("label", "", name === "input" ? "Input" : name[0].toUpperCase() + name.slice(1));
    const area = el("textarea");
    area.id = `input-${name}`;
    area.rows = name === "context" ? 6 : 3;
    area.spellcheck = false;
    area.placeholder = model.source_fields.length ? `the ${name}` : "type or paste text, one input per line";
    label.htmlFor = area.id;
    wrap.append(label, area);
    box.append(wrap);
  }
  $("hint").textContent = model.source_fields.length
    ? "One input: its fields above · Ctrl+Enter generates"
    : "One input per line · Ctrl+Enter generates";
}

function readInputs() {
  const model = currentModel();
  if (model.source === "audio") return Array.from($("input-audio").files);
  if (model.source_fields.length) {
    const record = {};
    for (const name of model.source_fields) record[name] = $(`input-${name}`).value.trim();
    return Object.values(record).some((v) => v) ? [record] : [];
  }
  return $("input-input").value.split("\n").map((line) => line.trim()).filter((line) => line);
}

async function generate(event) {
  if (event) event.preventDefault();
  if (busy) return;
  const inputs = readInputs();
  if (!inputs.length) {
    showError(currentModel().source === "audio" ? "Choose an audio file first." : "Type an input first.");
    return;
  }
  const beam = parseInt($("beam").value, 10) || undefined;
  const nbest = Math.min(parseInt($("nbest").value, 10) || 1, beam || Infinity);
  busy = true;
  $("generate").disabled = true;
  $("generate").textContent = "Generating…";
  showError("");
  try {
    const started = performance.now();
    const model = currentModel().name;
    const outputs = currentModel().source === "audio"
      ? await transcribe(model, inputs, beam, nbest)
      : (await api("/v1/generate", { model, inputs, beam, nbest, attention: true })).outputs;
    showResults(outputs, inputs, performance.now() - started);
  } catch (err) {
    showError(err.message);
  } finally {
    busy = false;
    $("generate").disabled = false;
    $("generate").textContent = "Generate";
  }
}

async function transcribe(model, files, beam, nbest) {
  // one request per file (the server batches them); outputs as /v1/generate gives them, no attention
  const query = new URLSearchParams({ model, nbest });
  if (beam) query.set("beam", beam);
  const answers = await Promise.all(files.map((file) => api(`/v1/transcribe?${query}`, file)));
  return answers.map((data) => ({ source_tokens: [], hypotheses: data.hypotheses }));
}

function sourceText(input) {
  if (input instanceof File) return input.name;
  return typeof input === "string" ? input : Object.entries(input).map(([k, v]) => `${k}: ${v}`).join("\n");
}

function showResults(outputs, inputs, ms) {
  const box = $("results");
  box.replaceChildren();
  const timing = el("p", "timing", `${outputs.length} input${outputs.length > 1 ? "s" : ""} · ${Math.round(ms)} ms`);
  box.append(timing);
  outputs.forEach((output, index) => box.append(resultCard(output, sourceText(inputs[index]))));
}

function resultCard(output, source) {
  const card = el("article", "result");
  card.append(el("p", "source", source));
  const list = el("ol", "hypotheses");
  const picture = el("div", "attention");
  output.hypotheses.forEach((hyp, rank) => {
    const item = el("li");
    const button = el("button", "hypothesis");
    button.type = "button";
    button.append(el("span", "text", hyp.text || "(empty)"), el("span", "score", hyp.score.toFixed(2)));
    button.title = `log-probability ${hyp.score.toFixed(4)} · ${hyp.tokens.length} tokens`;
    button.addEventListener("click", () => {
      list.querySelectorAll(".hypothesis").forEach((b) => b.classList.remove("chosen"));
      button.classList.add("chosen");
      drawAttention(picture, hyp, output.source_tokens);
    });
    if (rank === 0) button.classList.add("chosen");
    item.append(button);
    list.append(item);
  });
  const caption = el("p", "caption", "Outputs, best first · log-probability");
  card.append(caption, list, picture);
  drawAttention(picture, output.hypotheses[0], output.source_tokens);
  return card;
}

// matplotlib's "Blues" at 0, 1/4, 1/2, 3/4 and 1, mixed linearly between neighbours
const BLUES = [[247, 251, 255], [198, 219, 239], [107, 174, 214], [33, 113, 181], [8, 48, 107]];

function shade(weight) {
  const at = Math.min(Math.max(weight, 0), 1) * (BLUES.length - 1);
  const low = Math.min(Math.floor(at), BLUES.length - 2);
  const t = at - low;
  const [r, g, b] = BLUES[low].map((v, i) => Math.round(v + (BLUES[low + 1][i] - v) * t));
  return `rgb(${r}, ${g}, ${b})`;
}

function shown(token) {
  return token === " " ? "␣" : token;
}

function drawAttention(box, hyp, sourceTokens) {
  box.replaceChildren();
  if (!hyp.attention) {
    box.append(el("p", "note", sourceTokens.length ? "This model has no attention to show." : ""));
    return;
  }
  const readout = el("p", "readout", "Hover a cell: which source token each output token attended to.");
  const table = el("table", "heatmap");
  if (sourceTokens.some((token) => token.length > 2)) table.classList.add("words"); // vertical headers
  const head = el("tr");
  head.append(el("th", "corner", "out ↓  in →"));
  sourceTokens.forEach((token) => head.append(el("th", "col", shown(token))));
  if (hyp.copy_gate) head.append(el("th", "col gate", "p_gen"));
  const thead = el("thead");
  thead.append(head);
  table.append(thead);
  const body = el("tbody");
  const rows = [...hyp.tokens, "</s>"];
  hyp.attention.forEach((weights, r) => {
    const row = el("tr");
    row.append(el("th", "row", shown(rows[r])));
    weights.forEach((weight, c) => {
      const cell = el("td");
      cell.style.backgroundColor = shade(weight);
      cell.title = `${shown(rows[r])} ← ${shown(sourceTokens[c])}: ${weight.toFixed(3)}`;
      cell.dataset.weight = weight.toFixed(3);
      cell.addEventListener("mouseenter", () => {
        readout.textContent = `“${shown(rows[r])}” ← “${shown(sourceTokens[c])}”  weight ${weight.toFixed(3)}`;
      });
      row.append(cell);
    });
    if (hyp.copy_gate) row.append(gateCell(hyp.copy_gate[r], shown(rows[r]), readout));
    body.append(row);
  });
  table.append(body);
  const scroll = el("div", "scroll");
  scroll.append(table);
  const legend = el("p", "legend");
  legend.append(el("span", "", "0"), el("span", "bar"), el("span", "", "1"));
  box.append(el("h3", "", "Attention"), scroll, legend, readout);
}

function gateCell(gate, token, readout) {
  // a copying model's p_gen: orange when generated from the vocabulary, white when copied
  const cell = el("td", "gate");
  const mix = (a, b) => Math.round(a + (b - a) * gate);
  cell.style.backgroundColor = `rgb(${mix(255, 217)}, ${mix(245, 72)}, ${mix(235, 1)})`;
  const words = `“${token}”  p_gen ${gate.toFixed(3)}: ${gate >= 0.5 ? "generated" : "copied from the input"}`;
  cell.title = words;
  cell.addEventListener("mouseenter", () => {
    readout.textContent = words;
  });
  return cell;
}

async function start() {
  $("form").addEventListener("submit", generate);
  $("form").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) generate(event);
  });
  $("model").addEventListener("change", buildInputs);
  try {
    const data = await api("/v1/models");
    models = data.models;
  } catch (err) {
    $("summary").textContent = "";
    showError(err.message);
    return;
  }
  for (const model of models) $("model").append(new Option(`${model.name}`, model.name));
  $("model-field").hidden = models.length < 2;
  buildInputs();
  document.body.dataset.ready = "true";
}

start();
