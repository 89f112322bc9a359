// A request page: follows the request live (re-rendered when its state changes) and runs the
// "Verify in my browser" check (proofcheck.mjs) on what the page shows.
import { verifyInBrowser } from "./proofcheck.mjs";

const live = document.getElementById("live");
const POLL_MS = 1000;

async function follow() {
  if (live.dataset.final === "1") return;
  try {
    const r = await fetch(live.dataset.api, { headers: { Accept: "application/json" } });
    if (r.ok) {
      const v = await r.json();
      if (v.state !== live.dataset.state || v.history.length !== Number(live.dataset.changes)) {
        location.reload();
        return;
      }
      live.textContent = `following live… (${v.state}, checked ${new Date().toLocaleTimeString()})`;
    } else {
      live.textContent = `following live… (the gateway answered ${r.status}; retrying)`;
    }
  } catch (e) {
    live.textContent = `following live… (gateway unreachable; retrying)`;
  }
  setTimeout(follow, POLL_MS);
}
setTimeout(follow, POLL_MS);

let snarkjsLoaded = null;
function loadSnarkjs(url) {
  // 690 KB: fetched the first time the button is pressed, not with every page view.
  snarkjsLoaded ??= new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = url;
    s.onload = () => resolve(globalThis.snarkjs);
    s.onerror = () => reject(new Error(`could not load ${url}`));
    document.head.appendChild(s);
  });
  return snarkjsLoaded;
}

const button = document.getElementById("verify-button");
const out = document.getElementById("verify-result");

function show(result) {
  out.replaceChildren();
  const banner = document.createElement("p");
  banner.id = "verify-verdict";
  banner.className = result.valid ? "verdict ok" : "verdict bad";
  const failed = result.checks.filter((c) => !c.ok).map((c) => c.name);
  banner.textContent = result.valid
    ? "✔ Proof verified in your browser: this output is what the registered circuit computes for this input."
    : `✘ Proof REJECTED in your browser: ${failed.join("; ")}`;
  const list = document.createElement("ul");
  list.className = "checks";
  for (const c of result.checks) {
    const li = document.createElement("li");
    li.className = c.ok ? "ok" : "bad";
    li.textContent = `${c.ok ? "✔" : "✘"} ${c.name}: ${c.detail}`;
    list.appendChild(li);
  }
  out.append(banner, list);
}

if (button) {
  const data = JSON.parse(document.getElementById("verify-data").textContent);
  button.addEventListener("click", async () => {
    button.disabled = true;
    out.textContent = "verifying…";
    const started = performance.now();
    try {
      const [snarkjs, vkResp] = await Promise.all([loadSnarkjs(data.snarkjs_url), fetch(data.vk_url)]);
      if (!vkResp.ok) throw new Error(`verification key: the gateway answered ${vkResp.status}`);
      const vkBytes = new Uint8Array(await vkResp.arrayBuffer());
      const result = await verifyInBrowser(snarkjs, {
        expectedIds: data.expected_ids,
        model: data.encoding,
        inputFixed: data.input_fixed,
        outputFixed: data.output_fixed,
        payee: data.payee,
        proofHex: document.getElementById("proof-bytes").value,
        vkBytes,
      });
      show(result);
      out.dataset.ms = String(Math.round(performance.now() - started));
    } catch (e) {
      show({ valid: false, checks: [{ name: "verification could not run", ok: false, detail: e.message || String(e) }] });
    } finally {
      button.disabled = false;
    }
  });
}
