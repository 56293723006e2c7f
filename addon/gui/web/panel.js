/* Roam Bridge: the reviewer's context panel. Loaded by the add-on into the reviewer only. */
function rbTogglePanel() {
  const panel = document.getElementById("rb-panel");
  if (!panel) return;
  panel.classList.toggle("rb-collapsed");
  pycmd("roambridge:collapsed:" + panel.classList.contains("rb-collapsed"));
}

/* Links to the source app: https, logseq:// and obsidian:// all open through Anki, which
   hands them to the system. */
document.addEventListener("click", (event) => {
  const link = event.target.closest && event.target.closest("a[data-rb-open]");
  if (!link) return;
  event.preventDefault();
  pycmd("roambridge:open:" + link.dataset.rbOpen);
}, true);
