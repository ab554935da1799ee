// Progress bar for the upload. The form works without this script; with it, the same POST
// goes through XMLHttpRequest so the browser can report how much has been sent.
(function () {
  "use strict";
  var form = document.getElementById("sendeskjema");
  if (!form || !window.XMLHttpRequest || !window.FormData) { return; }
  var button = document.getElementById("sendknapp");
  var box = document.getElementById("fremdrift");
  var bar = document.getElementById("fremdrift-linje");
  var percent = document.getElementById("fremdrift-prosent");
  var errorBox = document.getElementById("feil");
  var errorText = document.getElementById("feiltekst");

  function showError(text) {
    errorText.textContent = text;
    errorBox.hidden = false;
    box.hidden = true;
    button.disabled = false;
    errorBox.focus && errorBox.setAttribute("tabindex", "-1");
    errorBox.focus && errorBox.focus();
  }

  form.addEventListener("submit", function (event) {
    var input = document.getElementById("fil");
    if (!input.files || input.files.length === 0) { return; } // let the server say so
    event.preventDefault();
    errorBox.hidden = true;
    button.disabled = true;
    box.hidden = false;
    bar.value = 0;
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) {
        var p = Math.floor((e.loaded / e.total) * 100);
        bar.value = p;
        percent.textContent = p + " % overført";
      }
    });
    xhr.upload.addEventListener("load", function () {
      bar.removeAttribute("value"); // indeterminate while the server validates and stores
      percent.textContent = "Filen er overført. Venter på kvittering …";
    });
    xhr.addEventListener("load", function () {
      var finalUrl = xhr.responseURL || "";
      if (xhr.status === 200 && finalUrl && finalUrl.indexOf("/send") !== finalUrl.length - 5) {
        window.location.assign(finalUrl);
        return;
      }
      var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
      var message = doc.getElementById("feiltekst") || doc.querySelector("#feil p");
      showError(message ? message.textContent : "Sendingen feilet. Prøv igjen.");
    });
    xhr.addEventListener("error", function () {
      showError("Forbindelsen til serveren ble brutt. Filen er ikke sendt. Prøv igjen.");
    });
    xhr.send(new FormData(form));
  });
})();
