/* clusterpanel: the little behaviour the pages need, in one file (no inline scripts, so the
   Content-Security-Policy can forbid them). */
(function () {
  "use strict";

  // Copy on the join card. A masked command is first revealed: the button's form posts to the
  // reveal URL (the audited act), the answer replaces the masked text, and that text is copied.
  function reveal(form, target) {
    return fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      headers: { "HX-Request": "true" },
      credentials: "same-origin",
    }).then(function (response) {
      return response.text().then(function (html) {
        var template = document.createElement("template");
        template.innerHTML = html.trim();
        var element = template.content.firstElementChild;
        var retarget = response.headers.get("HX-Retarget");
        if (retarget && element && document.querySelector(retarget)) {
          // The card changed meanwhile (the token is gone): show it as it is now.
          document.querySelector(retarget).replaceWith(element);
          if (window.htmx) { window.htmx.process(element); }
          throw new Error("the join command is no longer available");
        }
        if (!response.ok || !element || element.tagName !== "PRE") {
          throw new Error("the reveal failed (" + response.status + ")");
        }
        target.replaceWith(element);
        return element.textContent;
      });
    });
  }

  function writeClipboard(textPromise) {
    // A ClipboardItem takes the pending text, so the copy still counts as the click's own.
    if (window.ClipboardItem && navigator.clipboard && navigator.clipboard.write) {
      var blob = textPromise.then(function (text) { return new Blob([text], { type: "text/plain" }); });
      return navigator.clipboard.write([new window.ClipboardItem({ "text/plain": blob })]);
    }
    return textPromise.then(function (text) { return navigator.clipboard.writeText(text); });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button) { return; }
    var target = document.querySelector(button.dataset.copy);
    if (!target) { return; }
    var text = target.hasAttribute("data-revealed")
      ? Promise.resolve(target.textContent)
      : reveal(button.form, target);
    writeClipboard(text).then(function () {
      button.textContent = "Copied";
    }, function () {
      button.textContent = "Copy failed";
    }).then(function () {
      setTimeout(function () { button.textContent = "Copy"; }, 1500);
    });
  });

  // Forms that ask first (deleting a cluster, revoking a token): data-confirm holds the question.
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) { event.preventDefault(); }
  }, true);

  document.addEventListener("click", function (event) {
    // Cancel on the inline "add a node" form: the form goes, the page stays.
    var cancel = event.target.closest("[data-remove-form]");
    if (cancel && cancel.closest("form")) {
      event.preventDefault();
      cancel.closest("form").remove();
      return;
    }
    // "Go back" on the error pages: the previous page when there is one, else the link itself.
    var back = event.target.closest("a[data-back]");
    if (back && window.history.length > 1) {
      event.preventDefault();
      window.history.back();
    }
  });

  // Countdowns (token and certificate key expiry), wherever htmx has put them.
  function tick() {
    document.querySelectorAll(".countdown[data-expires]").forEach(function (el) {
      var left = Math.max(0, Math.floor((Date.parse(el.dataset.expires) - Date.now()) / 1000));
      var h = Math.floor(left / 3600), m = Math.floor(left % 3600 / 60), s = left % 60;
      el.textContent = left === 0 ? "expired" : h + "h " + m + "m " + s + "s";
    });
  }
  tick();
  setInterval(tick, 1000);
})();
