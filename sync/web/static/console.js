// billhub console: confirmations for irreversible buttons (no inline script: the CSP forbids it).
document.addEventListener("click", function (event) {
  var target = event.target.closest ? event.target.closest("[data-confirm]") : null;
  if (target && !window.confirm(target.getAttribute("data-confirm"))) {
    event.preventDefault();
  }
});

// Findings list: "tick every row on this page" (#select-all) ticks or clears the rows' boxes.
document.addEventListener("change", function (event) {
  if (event.target && event.target.id === "select-all") {
    document.querySelectorAll("#findings input.pick").forEach(function (box) {
      box.checked = event.target.checked;
    });
  }
});

// Bulk keep: Run applies the choices as previewed; once a choice changes, Run waits for a new preview.
document.addEventListener("change", function (event) {
  var run = document.getElementById("keep-run");
  if (run && event.target && event.target.type === "radio" && event.target.closest("#keep-choose")) {
    run.disabled = true;
    run.textContent = "Preview again to run (a choice changed)";
  }
});
