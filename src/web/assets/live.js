// potluck's page script: live updates and the copy button. Every action
// works without it. It listens to /events and, when a change concerns the
// page, fetches the page again and swaps in the parts marked data-live.
(function () {
  'use strict';
  var body = document.body;

  document.querySelectorAll('[data-copy]').forEach(function (button) {
    button.hidden = false;
    button.addEventListener('click', function () {
      var field = document.getElementById(button.dataset.copy);
      if (!field || !navigator.clipboard) { return; }
      navigator.clipboard.writeText(field.value || field.textContent).then(function () {
        button.textContent = 'Copied';
      });
    });
  });

  // What is new in an event's thread since my last visit: the comments
  // this browser has not shown before are marked (nothing on a first
  // visit; never my own, data-mine), and those shown are remembered when
  // the page is left.
  var threadKey = body.dataset.event && 'potluck-seen-' + body.dataset.event;
  var seenBefore = null;
  function markNew() {
    if (!threadKey || !seenBefore) { return; }
    document.querySelectorAll('li.comment').forEach(function (item) {
      item.classList.toggle('new', seenBefore.indexOf(item.id) < 0 && !item.hasAttribute('data-mine'));
    });
  }
  if (threadKey && window.localStorage) {
    try { seenBefore = JSON.parse(localStorage.getItem(threadKey) || 'null'); } catch (e) { seenBefore = null; }
    markNew();
    window.addEventListener('pagehide', function () {
      var shown = (seenBefore || []).slice();
      document.querySelectorAll('li.comment').forEach(function (item) {
        if (shown.indexOf(item.id) < 0) { shown.push(item.id); }
      });
      try { localStorage.setItem(threadKey, JSON.stringify(shown.slice(-1000))); } catch (e) { /* full: forget */ }
    });
  }

  // Browser notifications, opt-in: the button asks for permission only
  // when pressed, and this browser's choice is kept (localStorage). The
  // node's reminders then come over /events while a page is open.
  var remindKey = 'potluck-remind';
  var remindButton = document.getElementById('remind-browser');
  function canNotify() {
    return !!(window.Notification && window.isSecureContext);
  }
  function remindOn() {
    try {
      return canNotify() && Notification.permission === 'granted' &&
        localStorage.getItem(remindKey) === '1';
    } catch (e) { return false; }
  }
  function showRemindButton() {
    if (!remindButton || !canNotify() || Notification.permission === 'denied') { return; }
    remindButton.hidden = false;
    remindButton.setAttribute('aria-pressed', remindOn() ? 'true' : 'false');
    remindButton.textContent = remindOn() ? 'Reminders on in this browser'
      : 'Remind me in this browser';
  }
  if (remindButton) {
    remindButton.addEventListener('click', function () {
      if (!canNotify()) { return; }
      if (remindOn()) {
        try { localStorage.removeItem(remindKey); } catch (e) {}
        showRemindButton();
        return;
      }
      Notification.requestPermission().then(function (choice) {
        if (choice === 'granted') {
          try { localStorage.setItem(remindKey, '1'); } catch (e) {}
          if (!source && window.EventSource) { listen(); }
        }
        if (choice === 'denied') { remindButton.hidden = true; }
        showRemindButton();
      });
    });
    showRemindButton();
  }
  function remind(e) {
    if (!remindOn()) { return; }
    var r;
    try { r = JSON.parse(String(e.data)); } catch (err) { return; }
    if (!r || typeof r.title !== 'string') { return; }
    // One notification per reminder however many tabs are open: the tag
    // replaces an earlier one with the same tag.
    var n = new Notification(r.title, {
      body: typeof r.body === 'string' ? r.body : '',
      tag: 'potluck ' + r.kind + ' ' + (r.event || r.title),
      icon: '/static/icon.svg'
    });
    if (r.event) {
      n.addEventListener('click', function () {
        window.focus();
        location.href = '/e/' + encodeURIComponent(r.event);
      });
    }
  }

  var kinds = (body.dataset.liveOn || '').split(' ').filter(Boolean);
  var source = null;
  var eventKey = body.dataset.event;
  var timer = null;
  var busy = false;
  var again = false;

  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(location.href, { credentials: 'same-origin', headers: { Accept: 'text/html' } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, 'text/html');
        document.querySelectorAll('[data-live]').forEach(function (part) {
          var next = part.id && fresh.getElementById(part.id);
          // Never under the hands of someone typing (a reply, an edit):
          // the part is refreshed once they leave it.
          var typing = part.contains(document.activeElement) &&
            /^(TEXTAREA|INPUT)$/.test(document.activeElement.tagName);
          if (next && typing) {
            part.addEventListener('focusout', schedule, { once: true });
            return;
          }
          if (next && next.innerHTML !== part.innerHTML) {
            part.innerHTML = next.innerHTML;
            markNew();
            part.classList.add('changed');
            setTimeout(function () { part.classList.remove('changed'); }, 50);
          }
        });
      })
      .catch(function () {})
      .then(function () {
        busy = false;
        if (again) { again = false; schedule(); }
      });
  }

  function schedule() {
    if (timer) { return; }
    timer = setTimeout(function () { timer = null; refresh(); }, 100);
  }

  function listen() {
    source = new EventSource('/events');
    source.addEventListener('reminder', remind);
    if (!kinds.length) { return; }
    // Changes between the page being rendered and the stream opening (an
    // organizer's admission can arrive within milliseconds of an answer),
    // or while the connection was lost (the node restarted), were not
    // heard: refresh each time the stream opens.
    source.addEventListener('open', schedule);
    source.addEventListener('change', function (e) {
      var words = String(e.data).split(' ');
      var kind = words[0];
      if (kind !== 'missed' && kinds.indexOf(kind) < 0) { return; }
      if (kind === 'events' && eventKey && words.indexOf(eventKey) < 0) { return; }
      schedule();
    });
  }

  if (!window.EventSource || !window.fetch) { return; }
  if (kinds.length || remindOn()) { listen(); }
})();
