/* clusterpanel: the few behaviours the pages share, wired by data attributes (no inline
   scripts, so the pages run under a strict Content-Security-Policy).

   data-confirm="…"        on a form or its submit button: ask before submitting.
   data-copy="#id"         on the join card's Copy: reveal the masked command (the audited act)
                           through the button's form, then copy it.
   data-copy-from="#id"    on a button: copy that element's text to the clipboard.
   data-dismiss="form"     on a link: remove the closest such element instead of following it.
   data-remove-form        on a Cancel link: remove the form it sits in.
   data-back               on a link: go back in history when there is one.
   .countdown[data-expires] counts down to the time it holds.
   data-poll-visible       on an htmx poller: no request while the page is hidden; one
                           "panel:visible" event when it is shown again. */
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

  // Pollers that refresh only while someone can see them (htmx evaluates no trigger filters:
  // the Content-Security-Policy allows no eval).
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail && event.detail.elt;
    if (document.hidden && elt && elt.hasAttribute && elt.hasAttribute("data-poll-visible")) {
      event.preventDefault();
    }
  });
  document.addEventListener("visibilitychange", function () {
    if (document.hidden || !window.htmx) { return; }
    document.querySelectorAll("[data-poll-visible]").forEach(function (el) {
      window.htmx.trigger(el, "panel:visible");
    });
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
