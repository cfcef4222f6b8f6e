// The dashboard's only script: local times and the signing secret's Copy button. Every page works without it;
// no inline code anywhere (the CSP allows scripts from this origin only).
/* global document, window */
(function () {
  'use strict';
  function localTimes(root) {
    root.querySelectorAll('time[datetime]').forEach(function (el) {
      var iso = el.getAttribute('datetime');
      var d = new Date(iso);
      if (isNaN(d.getTime())) return;
      el.textContent = d.toLocaleString();
      el.title = iso;
    });
  }

  function fallbackCopy(text) {
    var area = document.createElement('textarea');
    area.value = text;
    area.setAttribute('readonly', '');
    area.style.position = 'fixed';
    area.style.left = '-9999px';
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand('copy'); } catch { ok = false; }
    document.body.removeChild(area);
    return ok;
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).then(function () { return true; }, function () { return fallbackCopy(text); });
    }
    return Promise.resolve(fallbackCopy(text));
  }

  function secretFor(button) {
    var target = document.getElementById(button.getAttribute('data-copy-target'));
    if (target && target.getAttribute('data-revealed') === 'true') return Promise.resolve(target.textContent);
    // Not revealed yet: fetch it from the CSRF-protected JSON endpoint.
    return fetch(button.getAttribute('data-secret-url'), {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'X-CSRF-Token': button.getAttribute('data-csrf'), 'Accept': 'application/json' }
    }).then(function (res) {
      if (!res.ok) throw new Error('HTTP ' + res.status);
      return res.json();
    }).then(function (body) { return body.signing_secret; });
  }

  function wireCopy(button) {
    var id = button.getAttribute('data-copy-secret');
    var status = document.querySelector('[data-copy-status="' + id + '"]');
    button.hidden = false;
    button.addEventListener('click', function () {
      secretFor(button).then(function (secret) {
        return copyText(secret).then(function (ok) {
          if (status) status.textContent = ok ? 'Copied to the clipboard.' : 'Copy failed: press Reveal and copy the secret by hand.';
        });
      }).catch(function () {
        if (status) status.textContent = 'Could not copy the secret; reload the page and try again.';
      });
    });
  }

  function start() {
    localTimes(document);
    document.querySelectorAll('[data-copy-secret]').forEach(wireCopy);
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
