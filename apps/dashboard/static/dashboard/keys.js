// The API keys pages: copy a new key's secret; show which scopes the form will give a key.
(function () {
  "use strict";

  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var field = document.querySelector(button.getAttribute("data-copy"));
      var status = button.parentElement.querySelector(".copy-status");
      var done = function (ok) { if (status) { status.textContent = ok ? "Copied." : "Select it and copy by hand."; } };
      field.select();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(function () { done(true); }, function () { done(document.execCommand("copy")); });
      } else {
        done(document.execCommand("copy"));
      }
    });
  });

  var form = document.querySelector("form.key-form");
  if (!form) { return; }
  var preview = form.querySelector("[data-scope-preview]");

  function scopes() {
    var out = [];
    var preset = form.querySelector("[data-scope-preset]");
    var chosen = preset.options[preset.selectedIndex];
    if (chosen && chosen.dataset.scopes) { out = out.concat(chosen.dataset.scopes.split(",")); }
    form.querySelectorAll("tr[data-area]").forEach(function (row) {
      var area = row.dataset.area;
      var ident = row.querySelector("input[type=text]");
      var names = ident ? ident.value.split(/[\s,]+/).filter(Boolean) : [];
      row.querySelectorAll("input[type=checkbox]:checked").forEach(function (box) {
        var perm = box.value;
        if (perm === "safe") {
          out = out.concat(names.length ? names.map(function (n) { return "tools.safe." + n; }) : ["tools.safe.*"]);
        } else {
          out = out.concat(names.length ? names.map(function (n) { return area + "." + n + "." + perm; }) : [area + "." + perm]);
        }
      });
    });
    var advanced = form.querySelector("textarea[name=advanced]").value.split(",");
    out = out.concat(advanced.map(function (s) { return s.trim(); }).filter(Boolean));
    return out.filter(function (s, i) { return out.indexOf(s) === i; });
  }

  function update() {
    var list = scopes();
    preview.textContent = list.length ? list.join(", ") : "nothing yet";
    preview.parentElement.hidden = false;
    var dateField = form.querySelector("input[name=expires_on]");
    var onDate = form.querySelector("input[name=expiry][value=date]");
    if (dateField && onDate) { dateField.closest(".field").hidden = !onDate.checked; }
  }

  form.addEventListener("input", update);
  form.addEventListener("change", update);
  update();
})();
