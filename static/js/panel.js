/* clusterpanel: the few behaviours the pages share, wired by data attributes (no inline
   scripts, so the pages run under a strict Content-Security-Policy).

   data-confirm="…"        on a form or its submit button: ask before submitting. */
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
})();
