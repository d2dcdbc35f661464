// The answer form of a hub's public event page (web/pages/public.rs):
// with feed.js, a guest with no install answers from this browser. The
// form stays hidden unless this browser can keep a key and sign; then a
// name and an answer are signed here and posted to this hub
// (POST /e/{id}/answer, docs/hub.md), and the page shows the organizer's
// decision, asking the hub again every few seconds while it may change.
// Reading the page needs none of this.
(function () {
  'use strict';

  var section = document.getElementById('answer');
  var form = document.getElementById('answer-form');
  var note = document.getElementById('answer-note');
  var shown = document.getElementById('answer-status');
  if (!section || !form || !note || !shown) { return; }
  var feed = window.potluckFeed;
  var event = section.getAttribute('data-event');
  var revision = Number(section.getAttribute('data-revision'));
  var endpoint = window.location.pathname.replace(/\/+$/, '') + '/answer';

  // Polling: every 3 s, for at most an hour; a page left open longer
  // shows the last answer and asks for a reload.
  var POLL_MS = 3000;
  var POLL_FOR_MS = 3600 * 1000;
  var polling = null;
  var pollUntil = 0;
  var MAX_PER_POST = 16;

  function say(text) { shown.textContent = text; }

  function describe(status) {
    var a = status.answer;
    if (!a) { return ''; }
    var who = status.name ? status.name + ': ' : '';
    var extra = a.guests > 0 ? ' (with ' + a.guests + ' guest' + (a.guests > 1 ? 's' : '') + ')' : '';
    if (a.status === 'not-going') { return who + 'not going.'; }
    if (a.status === 'maybe') { return who + 'maybe' + extra + '.'; }
    if (a.admission === 'admitted') { return who + 'going' + extra + ': admitted.'; }
    if (a.admission === 'waitlisted') {
      return who + 'going' + extra + ': waitlisted, position ' + a.position + '.';
    }
    return who + 'going' + extra + ': waiting for the organizer\u2019s decision (their computer may be off).';
  }

  function show(status) {
    say(describe(status));
    if (status.name && !form.elements.name.value) { form.elements.name.value = status.name; }
    var a = status.answer;
    if (a) {
      var radio = form.querySelector('input[name=status][value="' + a.status + '"]');
      if (radio && !form.contains(document.activeElement)) { radio.checked = true; }
    }
  }

  async function fetchStatus(feedId) {
    var resp = await fetch(endpoint + '?feed=' + encodeURIComponent(feedId), {
      headers: { accept: 'application/json' }, cache: 'no-store'
    });
    var body = await resp.json();
    if (!resp.ok) { throw new Error(body.error ? body.error.message : 'the hub answered ' + resp.status); }
    return body;
  }

  function poll(feedId) {
    pollUntil = Date.now() + POLL_FOR_MS;
    if (polling) { return; }
    polling = setInterval(async function () {
      if (Date.now() > pollUntil) {
        clearInterval(polling);
        polling = null;
        say(shown.textContent + ' Reload the page to see changes.');
        return;
      }
      if (document.hidden) { return; }
      try { show(await fetchStatus(feedId)); } catch (e) { /* try again next time */ }
    }, POLL_MS);
  }

  async function post(list) {
    var resp = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ messages: list.map(function (m) { return feed.base64(m.bytes); }) })
    });
    var body = await resp.json();
    if (!resp.ok) { throw new Error(body.error ? body.error.message : 'the hub answered ' + resp.status); }
    return body;
  }

  async function submit(e) {
    e.preventDefault();
    var button = form.querySelector('button');
    button.disabled = true;
    try {
      var choice = form.querySelector('input[name=status]:checked');
      var name = form.elements.name.value.trim();
      if (!choice || !name) { throw new Error('Choose an answer and give your name.'); }
      var guests = Number(form.elements.guests.value || 0);
      say('Sending\u2026');
      var me = await feed.identity();
      var held = 0;
      var known = null;
      if (me.sequence > 0) {
        known = await fetchStatus(me.feed);
        held = known.held;
      }
      if (!known || known.name !== name) { await feed.publish(feed.about(name)); }
      await feed.publish(feed.rsvp({ event: event, status: choice.value, guests: guests, revision: revision }));
      // What the hub lacks of this feed, in order: earlier messages it
      // never got first, then the new ones.
      var missing = await feed.messages(held);
      var status = null;
      for (var i = 0; i < missing.length; i += MAX_PER_POST) {
        status = await post(missing.slice(i, i + MAX_PER_POST));
      }
      show(status);
      poll(me.feed);
    } catch (err) {
      say('Your answer was not sent: ' + (err && err.message ? err.message : err));
    } finally {
      // On a phone the line that says what happened is below the button:
      // bring it into view (it is also read out, being a live region).
      if (shown.scrollIntoView) { shown.scrollIntoView({ block: 'nearest' }); }
      button.disabled = false;
    }
  }

  async function start() {
    var ok = false;
    try { ok = !!feed && await feed.supported(); } catch (e) { ok = false; }
    if (!ok) {
      note.textContent = 'This browser cannot answer here: it needs a recent version (Chrome or Edge 137, ' +
        'Firefox 129, Safari 17 or later) opened over https, which lets a page keep a key and sign. ' +
        'You can still read everything on this page, or answer with potluck on your own computer.';
      return;
    }
    note.hidden = true;
    form.hidden = false;
    form.addEventListener('submit', submit);
    var me = await feed.existingIdentity();
    if (me && me.sequence > 0) {
      try {
        var status = await fetchStatus(me.feed);
        show(status);
        if (status.answer) { poll(me.feed); }
      } catch (e) { /* the form still works */ }
    }
  }

  start();
}());
