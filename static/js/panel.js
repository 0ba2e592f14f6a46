/* clusterpanel: the few behaviours the pages share, wired by data attributes (no inline
   scripts, so the pages run under a strict Content-Security-Policy).

   data-confirm="…"        on a form or its submit button: ask before submitting.
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

  document.addEventListener("click", function (event) {
    var link = event.target.closest("a[data-dismiss]");
    if (!link) { return; }
    var target = link.closest(link.dataset.dismiss);
    if (!target) { return; }
    event.preventDefault();
    target.remove();
  });
})();
