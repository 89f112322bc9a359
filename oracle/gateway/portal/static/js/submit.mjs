// The model page's form: floats -> POST /api/v1/inferences with the visitor's API key, then
// the request's own page (which follows it live).
const form = document.getElementById("submit-form");
const input = document.getElementById("input");
const status = document.getElementById("submit-status");
const keyBox = document.getElementById("api-key");
const remember = document.getElementById("remember-key");
const count = document.getElementById("count");
const size = Number(form.dataset.size);
const scale = Number(form.dataset.scale);
const lo = Number(form.dataset.lo) / 2 ** scale;
const hi = Number(form.dataset.hi) / 2 ** scale;
const KEY = "oracle-api-key";

if (sessionStorage.getItem(KEY)) {
  keyBox.value = sessionStorage.getItem(KEY);
  remember.checked = true;
}

function parse() {
  const parts = input.value.split(/[\s,;]+/).filter(Boolean);
  const values = parts.map(Number);
  const bad = parts.findIndex((p, i) => !Number.isFinite(values[i]));
  return { values, bad: bad >= 0 ? parts[bad] : null };
}
function showCount() {
  const { values } = parse();
  count.textContent = `${values.length} of ${size} value(s)`;
  count.classList.toggle("err", values.length !== size);
}
input.addEventListener("input", showCount);
showCount();

document.getElementById("random-input").addEventListener("click", () => {
  // Inside the representable range and within [-1, 1], where the shipped models are calibrated.
  const a = Math.max(lo, -1), b = Math.min(hi, 1);
  const step = 2 ** -scale;
  const xs = Array.from({ length: size }, () => Math.round((a + Math.random() * (b - a)) / step) * step);
  input.value = xs.map((x) => +x.toFixed(6)).join(", ");
  showCount();
});

function say(text, kind) {
  status.textContent = text;
  status.className = kind;
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const { values, bad } = parse();
  if (bad !== null) return say(`"${bad}" is not a number`, "err");
  if (values.length !== size) return say(`this model takes ${size} values, you gave ${values.length}`, "err");
  const key = keyBox.value.trim();
  if (!key) return say("an API key is needed to submit (reads need none)", "err");
  if (remember.checked) sessionStorage.setItem(KEY, key); else sessionStorage.removeItem(KEY);
  const body = { model_id: form.dataset.modelId, input: values };
  const payee = document.getElementById("payee");
  if (payee && payee.value.trim()) body.payee = payee.value.trim();
  say("submitting…", "muted");
  let r;
  try {
    r = await fetch("/api/v1/inferences", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${key}` },
      body: JSON.stringify(body),
    });
  } catch (e) {
    return say(`the gateway did not answer: ${e.message}`, "err");
  }
  let answer = null;
  try { answer = await r.json(); } catch { /* not JSON: reported below */ }
  if (r.status === 202 && answer && answer.id !== undefined) {
    say(`accepted: inference ${answer.id}`, "ok");
    location.assign(`/inferences/${answer.id}`);
    return;
  }
  const msg = answer && answer.error ? answer.error.message : `HTTP ${r.status}`;
  say(`refused (${r.status}): ${msg}`, "err");
});
