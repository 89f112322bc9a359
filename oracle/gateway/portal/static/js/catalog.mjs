import "./copy.mjs";

// The catalog's search and filters run on the cards already on the page (no request).
const q = document.getElementById("q");
const backend = document.getElementById("backend");
const ceremonyOnly = document.getElementById("ceremony-only");
const cards = Array.from(document.querySelectorAll("article.model"));
const shown = document.getElementById("shown");
const noMatch = document.getElementById("no-match");

function apply() {
  const words = q.value.toLowerCase().split(/\s+/).filter(Boolean);
  let n = 0;
  for (const c of cards) {
    const ok = words.every((w) => c.dataset.text.includes(w))
      && (!backend.value || c.dataset.backend === backend.value)
      && (!ceremonyOnly.checked || c.dataset.dev === "0");
    c.hidden = !ok;
    if (ok) n++;
  }
  shown.textContent = `${n} of ${cards.length} model(s)`;
  noMatch.hidden = n > 0 || cards.length === 0;
}
for (const el of [q, backend, ceremonyOnly]) el.addEventListener("input", apply);
const initial = new URLSearchParams(location.search).get("q");
if (initial) { q.value = initial; apply(); }
