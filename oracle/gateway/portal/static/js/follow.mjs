// A request page for a request the oracle does not know yet: reload once the API knows it.
const el = document.getElementById("follow");
const EVERY_MS = 2000;

async function poll() {
  try {
    const r = await fetch(el.dataset.api, { headers: { Accept: "application/json" } });
    if (r.ok) {
      location.reload();
      return;
    }
  } catch {
    // gateway unreachable for now: keep trying
  }
  setTimeout(poll, EVERY_MS);
}
setTimeout(poll, EVERY_MS);
