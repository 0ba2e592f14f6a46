/* clusterpanel: the few behaviours the pages share, wired by data attributes (no inline
   scripts, so the pages run under a strict Content-Security-Policy).

   data-confirm="…"        on a form or its submit button: ask before submitting.
   data-copy-from="#id"    on a button: copy that element's text to the clipboard.
   data-dismiss="form"     on a link: remove the closest such element instead of following it. */
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var submitter = event.submitter;
    var message = (submitter && submitter.dataset.confirm) || form.dataset.confirm;
    if (message && !window.confirm(message)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  function copyBySelection(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    var done = false;
    try {
      done = document.execCommand("copy");
    } catch (error) {
      done = false;
    }
    selection.removeAllRanges();
    return done ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy-from]");
    if (!button) { return; }
    var source = document.querySelector(button.dataset.copyFrom);
    if (!source) { return; }
    var text = source.textContent.trim();
    var label = button.dataset.label || button.textContent;
    button.dataset.label = label;
    var copied = navigator.clipboard && window.isSecureContext
      ? navigator.clipboard.writeText(text)
      : copyBySelection(source);
    copied.then(function () {
      button.textContent = "Copied";
    }, function () {
      button.textContent = "Select and copy by hand";
    }).then(function () {
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  });

  document.addEventListener("click", function (event) {
    var link = event.target.closest("a[data-dismiss]");
    if (!link) { return; }
    var target = link.closest(link.dataset.dismiss);
    if (!target) { return; }
    event.preventDefault();
    target.remove();
  });
})();
