// "Copy" buttons next to code blocks.
document.addEventListener("click", async (ev) => {
  const b = ev.target.closest("button.copy");
  if (!b) return;
  const el = document.getElementById(b.dataset.copy);
  try {
    await navigator.clipboard.writeText(el.textContent);
    b.textContent = "Copied";
  } catch {
    // No clipboard outside secure contexts: select the text for Ctrl+C instead.
    const range = document.createRange();
    range.selectNodeContents(el);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    b.textContent = "Selected: Ctrl+C";
  }
});
