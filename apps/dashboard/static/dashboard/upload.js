// Resource uploads with a progress bar: the form is sent with XMLHttpRequest (whose upload
// events report the bytes sent) to the console's upload route, which answers an HTML fragment:
// created, created with an embedding job (htmx then polls its status), or the errors. Without
// this script the form posts normally and the page reloads.
(function () {
  "use strict";

  function show(target, xhr) {
    var type = xhr.getResponseHeader("Content-Type") || "";
    if (type.indexOf("application/json") === 0) {
      // An error the platform answered before the page's route (e.g. 413 over the size limit).
      var message = "The upload failed (" + xhr.status + ")";
      try { message = JSON.parse(xhr.responseText).error || message; } catch (ignored) { /* not JSON */ }
      var p = document.createElement("p");
      p.className = "notice error";
      p.setAttribute("role", "alert");
      p.textContent = message;
      target.replaceChildren(p);
      return;
    }
    target.innerHTML = xhr.responseText; // the console's own escaped template
    if (window.htmx) { window.htmx.process(target); }
  }

  function bind(form) {
    var target = document.querySelector(form.getAttribute("data-upload"));
    var box = form.parentNode.querySelector(".upload-progress");
    var bar = box.querySelector("progress");
    var percent = box.querySelector(".upload-percent");
    var button = form.querySelector("button[type=submit]");
    var label = box.querySelector("label");

    function progress(value) {
      bar.value = value;
      percent.textContent = value + "%";
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) { progress(Math.round((e.loaded / e.total) * 100)); }
      });
      xhr.addEventListener("load", function () {
        button.disabled = false;
        if (xhr.status < 300) {
          progress(100);
          form.reset();
          // Lists on the page that show resources fetch themselves again (hx-trigger="uploaded from:body").
          document.body.dispatchEvent(new CustomEvent("uploaded", {bubbles: true}));
        }
        label.textContent = xhr.status < 300 ? "Sent" : "Not stored";
        box.setAttribute("data-state", xhr.status < 300 ? "done" : "failed");
        show(target, xhr);
      });
      xhr.addEventListener("error", function () {
        button.disabled = false;
        box.setAttribute("data-state", "failed");
        label.textContent = "Not sent";
        var p = document.createElement("p");
        p.className = "notice error";
        p.setAttribute("role", "alert");
        p.textContent = "The upload failed: the server could not be reached.";
        target.replaceChildren(p);
      });
      box.hidden = false;
      label.textContent = "Uploading";
      box.setAttribute("data-state", "sending");
      progress(0);
      button.disabled = true;
      target.replaceChildren();
      xhr.send(new FormData(form));
    });
  }

  document.querySelectorAll("form[data-upload]").forEach(bind);
})();
