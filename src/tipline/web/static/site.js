// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";
  function leave(url) {
    // replace() keeps this site out of the back button's history.
    window.location.replace(url);
  }
  var exit = document.getElementById("quick-exit");
  if (exit) {
    exit.addEventListener("click", function (event) {
      event.preventDefault();
      document.body.style.visibility = "hidden";
      leave(exit.getAttribute("data-exit"));
    });
    var lastEsc = 0;
    document.addEventListener("keydown", function (event) {
      if (event.key !== "Escape") { return; }
      var now = Date.now();
      if (now - lastEsc < 800) { leave(exit.getAttribute("data-exit")); }
      lastEsc = now;
    });
  }
  // Show follow-up questions only when they apply.
  function sync() {
    document.querySelectorAll("[data-show-when]").forEach(function (block) {
      var names = block.getAttribute("data-show-when").split(",");
      var on = names.some(function (id) {
        var box = document.getElementById(id);
        return box && box.checked;
      });
      block.hidden = !on;
    });
    var anon = document.getElementById("anonymous-yes");
    var contact = document.getElementById("contact-fields");
    if (anon && contact) { contact.hidden = anon.checked; }
  }
  document.addEventListener("change", sync);
  sync();
  // Changing country should not need a second click.
  var select = document.getElementById("country-select");
  if (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  }
})();
