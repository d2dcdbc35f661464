//! End-to-end tests of the event commands of the `potluck` binary that
//! deal with capacity, changed plans, time zones, the agenda and the
//! iCalendar export. Every test drives the real executable in a fresh
//! temporary home and reads `--json` output (or the calendar text).
//!
//! No test touches the real user's data directory: `HOME` and
//! `XDG_DATA_HOME` point inside the test's temporary directory, and any
//! inherited `POTLUCK_HOME` / `POTLUCK_LOG` / backtrace settings are
//! removed. Every child process is killed if it runs longer than
//! [`common::DEADLINE`].

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::sandbox::Node;
use common::{END, START};
use serde_json::{Value, json};

/// The whole `rsvps` entry of `author` in an `event --json` document.
fn rsvp_of<'a>(doc: &'a Value, author: &str) -> &'a Value {
    doc["rsvps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["author"] == author)
        .unwrap_or_else(|| panic!("no RSVP by {author} in {doc}"))
}

/// The UID the calendar gives an event: its 32 id bytes in unpadded
/// base64url, then `@potluck`.
fn uid_of(id: &str) -> String {
    let body = id
        .strip_prefix('%')
        .and_then(|b| b.strip_suffix(".blake3"))
        .unwrap();
    let bytes = STANDARD.decode(body).unwrap();
    format!("{}@potluck", URL_SAFE_NO_PAD.encode(bytes))
}

/// Calendar text with folded lines joined (RFC 5545 §3.1), split in lines.
fn unfolded_lines(text: &str) -> Vec<String> {
    assert!(text.ends_with("\r\n"), "CRLF line ends: {text:?}");
    assert!(
        !text.replace("\r\n", "").contains('\n'),
        "every line ends in CRLF: {text:?}"
    );
    text.replace("\r\n ", "")
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The lines of the VEVENT with `uid`.
fn vevent<'a>(lines: &'a [String], uid: &str) -> &'a [String] {
    let uid_line = format!("UID:{uid}");
    let at = lines
        .iter()
        .position(|l| *l == uid_line)
        .unwrap_or_else(|| panic!("no {uid_line} in {lines:#?}"));
    let begin = lines[..at]
        .iter()
        .rposition(|l| l == "BEGIN:VEVENT")
        .unwrap();
    let end = at + lines[at..].iter().position(|l| l == "END:VEVENT").unwrap();
    &lines[begin..=end]
}

// ---------------------------------------------------------------------------
// 1. The JSON contract of `event`: admission, revisions, the tally.
// ---------------------------------------------------------------------------

#[test]
fn event_json_shows_admission_and_a_group_waits_until_it_fits() {
    let node = Node::init("Ana");
    let me = node.me();
    let id = node.announce(&["--title", "Supper", "--start", START, "--capacity", "1"]);
    let doc = node.event(&id);
    assert_eq!(doc["capacity"], 1);
    assert_eq!(doc["plan_revision"], 0);

    // The organizer goes with a guest: a group of 2 does not fit in 1.
    node.ok(&["rsvp", &id, "going", "--guests", "1"]);
    let doc = node.event(&id);
    assert_eq!(
        doc["rsvps"],
        json!([{
            "author": me, "name": "Ana", "status": "going", "guests": 1, "note": null,
            "admission": "waitlisted", "answered_revision": 0, "stale": false,
        }])
    );
    assert_eq!(
        doc["tally"],
        json!({
            "going": 1, "maybe": 0, "not_going": 0, "headcount": 2,
            "admitted": 0, "admitted_headcount": 0, "waitlisted": 1, "pending": 0,
        })
    );

    // Room for two: the waiting group moves up at once.
    assert_eq!(
        node.ok(&["update", &id, "--capacity", "2"]),
        json!({ "id": id, "revision": 1 })
    );
    let doc = node.event(&id);
    assert_eq!(doc["capacity"], 2);
    assert_eq!(doc["revision"], 1);
    assert_eq!(doc["plan_revision"], 0, "capacity is not the plan");
    assert_eq!(
        doc["rsvps"],
        json!([{
            "author": me, "name": "Ana", "status": "going", "guests": 1, "note": null,
            "admission": "admitted", "answered_revision": 0, "stale": false,
        }])
    );
    assert_eq!(
        doc["tally"],
        json!({
            "going": 1, "maybe": 0, "not_going": 0, "headcount": 2,
            "admitted": 1, "admitted_headcount": 2, "waitlisted": 0, "pending": 0,
        })
    );

    // Both decisions are in the organizer's feed, about the same RSVP.
    let contents = node.log_contents();
    let types: Vec<&str> = contents
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "about",
            "event",
            "rsvp",
            "admission",
            "event-update",
            "admission"
        ]
    );
    for (at, decision) in [(3, "waitlisted"), (5, "admitted")] {
        let a = &contents[at];
        assert_eq!(a["event"], id.as_str());
        assert_eq!(a["author"], me.as_str());
        assert_eq!(a["decision"], decision);
    }
    assert_eq!(contents[3]["rsvp"], contents[5]["rsvp"]);

    // A `maybe` is no request: no admission, and nothing counted.
    node.ok(&["rsvp", &id, "maybe"]);
    let doc = node.event(&id);
    assert_eq!(rsvp_of(&doc, &me)["admission"], Value::Null);
    assert_eq!(
        doc["tally"],
        json!({
            "going": 0, "maybe": 1, "not_going": 0, "headcount": 0,
            "admitted": 0, "admitted_headcount": 0, "waitlisted": 0, "pending": 0,
        })
    );
    // Without a capacity, going is simply admitted.
    let open = node.announce(&["--title", "Open", "--start", START]);
    node.ok(&["rsvp", &open, "going", "--guests", "4"]);
    let doc = node.event(&open);
    assert_eq!(rsvp_of(&doc, &me)["admission"], "admitted");
    assert_eq!(doc["tally"]["admitted"], 1);
    assert_eq!(doc["tally"]["admitted_headcount"], 5);
    assert_eq!(doc["tally"]["pending"], 0);
}

// ---------------------------------------------------------------------------
// 2. A changed time flags earlier answers.
// ---------------------------------------------------------------------------

#[test]
fn a_time_change_flags_the_answer_until_it_is_renewed() {
    let node = Node::init("Ana");
    let me = node.me();
    let id = node.announce(&["--title", "Band practice", "--start", START, "--end", END]);
    node.ok(&["rsvp", &id, "going"]);
    let answer = |doc: &Value| {
        let r = rsvp_of(doc, &me);
        (r["answered_revision"].clone(), r["stale"].clone())
    };
    let changed = |node: &Node| {
        let agenda = node.agenda();
        assert_eq!(agenda.len(), 1, "{agenda:?}");
        assert_eq!(agenda[0]["event"], id.as_str());
        (
            agenda[0]["answered_revision"].clone(),
            agenda[0]["changed_since_answer"].clone(),
        )
    };
    assert_eq!(answer(&node.event(&id)), (json!(0), json!(false)));
    assert_eq!(changed(&node), (json!(0), json!(false)));

    // The start moves.
    node.ok(&["update", &id, "--start", "2031-06-01T19:00:00Z"]);
    let doc = node.event(&id);
    assert_eq!(
        (doc["revision"].clone(), doc["plan_revision"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(answer(&doc), (json!(0), json!(true)));
    assert_eq!(changed(&node), (json!(0), json!(true)));

    // Answering again, to the new plan, clears the flag.
    node.ok(&["rsvp", &id, "going"]);
    assert_eq!(answer(&node.event(&id)), (json!(1), json!(false)));
    assert_eq!(changed(&node), (json!(1), json!(false)));

    // A new title changes nothing about the plan.
    node.ok(&["update", &id, "--title", "Band rehearsal"]);
    let doc = node.event(&id);
    assert_eq!(
        (doc["revision"].clone(), doc["plan_revision"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(answer(&doc), (json!(1), json!(false)));
    assert_eq!(changed(&node), (json!(1), json!(false)));

    // A new place does.
    node.ok(&["update", &id, "--location", "The garage"]);
    let doc = node.event(&id);
    assert_eq!(doc["plan_revision"], 3);
    assert_eq!(answer(&doc), (json!(1), json!(true)));
    assert_eq!(changed(&node), (json!(1), json!(true)));
    // So does a new end.
    node.ok(&["rsvp", &id, "maybe"]);
    assert_eq!(changed(&node), (json!(3), json!(false)));
    node.ok(&["update", &id, "--end", "2031-06-01T22:00:00Z"]);
    assert_eq!(changed(&node), (json!(3), json!(true)));
}

// ---------------------------------------------------------------------------
// 3. Time zones, either side of a daylight-saving change.
// ---------------------------------------------------------------------------

#[test]
fn wall_clock_times_keep_across_daylight_saving_and_local_shows_the_viewer_zone() {
    let node = Node::init("Ana");
    let zone = "America/New_York";
    // New York moves to daylight time on 2027-03-14.
    let before = node.announce(&[
        "--title",
        "Before",
        "--start",
        "2027-03-13T17:00:00-05:00",
        "--tz",
        zone,
    ]);
    let after = node.announce(&[
        "--title",
        "After",
        "--start",
        "2027-03-15T17:00:00-04:00",
        "--tz",
        zone,
    ]);
    let far = node.announce(&["--title", "Far", "--start", START, "--tz", zone]);

    // In the event's zone, whatever the viewer's: 17:00 both days.
    for envs in [&[][..], &[("TZ", "Asia/Tokyo")][..]] {
        let doc = node.ok_with(&["event", &before], envs);
        assert_eq!(doc["start"], "2027-03-13T17:00:00-05:00", "{envs:?}");
        assert_eq!(doc["tz"], zone);
        let doc = node.ok_with(&["event", &after], envs);
        assert_eq!(doc["start"], "2027-03-15T17:00:00-04:00", "{envs:?}");
        let doc = node.ok_with(&["event", &far], envs);
        assert_eq!(doc["start"], "2031-06-01T14:00:00-04:00", "{envs:?}");
    }

    // `--local`: in the viewer's zone, Tokyo (+09:00, no daylight time).
    // `--all` keeps the 2027 events listed whatever today's date is.
    let tokyo = [("TZ", "Asia/Tokyo")];
    let list = node.ok_with(&["events", "--all", "--local"], &tokyo);
    let starts: Vec<(&str, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["title"].as_str().unwrap(), e["start"].as_str().unwrap()))
        .collect();
    assert_eq!(
        starts,
        [
            ("Before", "2027-03-14T07:00:00+09:00"),
            ("After", "2027-03-16T06:00:00+09:00"),
            ("Far", "2031-06-02T03:00:00+09:00"),
        ]
    );
    // The event's own zone is still reported.
    assert!(list.as_array().unwrap().iter().all(|e| e["tz"] == zone));
    // Upcoming events, `--local`.
    let list = node.ok_with(&["events", "--local"], &tokyo);
    let far_doc = list
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == far.as_str())
        .expect("Far is upcoming");
    assert_eq!(far_doc["start"], "2031-06-02T03:00:00+09:00");
    // Without `--local` the same listing is in the event's zone.
    let list = node.ok_with(&["events", "--all"], &tokyo);
    assert_eq!(list[0]["start"], "2027-03-13T17:00:00-05:00");
    assert_eq!(list[1]["start"], "2027-03-15T17:00:00-04:00");
}

// ---------------------------------------------------------------------------
// 4. The agenda.
// ---------------------------------------------------------------------------

#[test]
fn agenda_lists_my_upcoming_going_and_maybe_answers() {
    let node = Node::init("Ana");
    let capped = node.announce(&[
        "--title",
        "Capped",
        "--start",
        "2031-06-01T18:00:00Z",
        "--capacity",
        "4",
        "--tz",
        "Europe/Paris",
    ]);
    let maybe = node.announce(&["--title", "Maybe", "--start", "2031-06-02T18:00:00Z"]);
    let declined = node.announce(&["--title", "Declined", "--start", "2031-06-03T18:00:00Z"]);
    let _silent = node.announce(&["--title", "Silent", "--start", "2031-06-04T18:00:00Z"]);
    let past = node.announce(&[
        "--title",
        "Past",
        "--start",
        "2001-06-01T18:00:00Z",
        "--past",
    ]);
    node.ok(&["rsvp", &capped, "going", "--guests", "1"]);
    node.ok(&["rsvp", &maybe, "maybe"]);
    node.ok(&["rsvp", &declined, "no"]);
    node.ok(&["rsvp", &past, "going"]);

    let expected = |changed: bool| {
        json!([
            {
                "event": capped, "title": "Capped",
                "start": "2031-06-01T20:00:00+02:00", "tz": "Europe/Paris",
                "event_status": "scheduled", "status": "going", "guests": 1,
                "admission": "admitted", "answered_revision": 0,
                "changed_since_answer": changed,
            },
            {
                "event": maybe, "title": "Maybe",
                "start": "2031-06-02T18:00:00Z", "tz": null,
                "event_status": "scheduled", "status": "maybe", "guests": 0,
                "admission": null, "answered_revision": 0,
                "changed_since_answer": false,
            },
        ])
    };
    assert_eq!(Value::Array(node.agenda()), expected(false));

    // A moved start is flagged; the admission stays.
    node.ok(&["update", &capped, "--start", "2031-06-01T17:00:00Z"]);
    let mut want = expected(true);
    want[0]["start"] = json!("2031-06-01T19:00:00+02:00");
    assert_eq!(Value::Array(node.agenda()), want);

    // Changing my mind to `no` takes it off the agenda.
    node.ok(&["rsvp", &maybe, "no"]);
    let agenda = node.agenda();
    assert_eq!(agenda.len(), 1);
    assert_eq!(agenda[0]["event"], capped.as_str());

    // A cancelled event stays, marked.
    node.ok(&["cancel", &capped]);
    let agenda = node.agenda();
    assert_eq!(agenda.len(), 1);
    assert_eq!(agenda[0]["event_status"], "cancelled");
}

// ---------------------------------------------------------------------------
// 5. iCalendar export.
// ---------------------------------------------------------------------------

#[test]
fn ics_exports_one_event_to_a_file_and_every_upcoming_one_to_stdout() {
    let node = Node::init("Ana");
    let id = node.announce(&[
        "--title",
        "Picnic",
        "--start",
        START,
        "--end",
        END,
        "--tz",
        "America/New_York",
    ]);
    node.ok(&["rsvp", &id, "going"]);
    let uid = uid_of(&id);

    let check = |text: &str, sequence: u32, status: &str| {
        assert!(text.starts_with("BEGIN:VCALENDAR\r\n"), "{text}");
        assert!(text.ends_with("END:VCALENDAR\r\n"), "{text}");
        let lines = unfolded_lines(text);
        assert_eq!(lines.iter().filter(|l| *l == "BEGIN:VEVENT").count(), 1);
        let ev = vevent(&lines, &uid);
        assert!(ev.contains(&format!("SEQUENCE:{sequence}")), "{ev:#?}");
        assert!(ev.contains(&format!("STATUS:{status}")), "{ev:#?}");
        assert!(
            ev.contains(&"DTSTART:20310601T180000Z".to_owned()),
            "{ev:#?}"
        );
        assert!(ev.contains(&"DTEND:20310601T210000Z".to_owned()), "{ev:#?}");
        let attendees: Vec<&String> = ev.iter().filter(|l| l.starts_with("ATTENDEE")).collect();
        assert_eq!(attendees.len(), 1, "{ev:#?}");
        assert!(
            attendees[0].contains("PARTSTAT=ACCEPTED"),
            "{}",
            attendees[0]
        );
        assert!(attendees[0].contains("CN=Ana"), "{}", attendees[0]);
    };

    let text = node.ics_file(&[&id]);
    check(&text, 0, "CONFIRMED");
    assert!(text.contains(&format!("UID:{uid}\r\n")));
    // The same text on stdout without --out.
    let run = node.run(&["ics", &id]);
    assert!(run.status.success(), "{run:?}");
    assert_eq!(
        unfolded_lines(&run.stdout).len(),
        unfolded_lines(&text).len()
    );

    node.ok(&["update", &id, "--title", "Picnic in the park"]);
    let text = node.ics_file(&[&id[..8]]);
    check(&text, 1, "CONFIRMED");
    assert!(unfolded_lines(&text).contains(&"SUMMARY:Picnic in the park".to_owned()));

    node.ok(&["cancel", &id, "--reason", "rain"]);
    let text = node.ics_file(&[&id]);
    check(&text, 2, "CANCELLED");
    assert!(unfolded_lines(&text).contains(&"COMMENT:rain".to_owned()));

    // Without an event: every upcoming event (the cancelled one included),
    // not the past one.
    let other = node.announce(&["--title", "Later", "--start", "2032-01-01T10:00:00Z"]);
    let past = node.announce(&[
        "--title",
        "Long ago",
        "--start",
        "2001-01-01T10:00:00Z",
        "--past",
    ]);
    let run = node.run(&["ics"]);
    assert!(run.status.success(), "{run:?}");
    let lines = unfolded_lines(&run.stdout);
    assert_eq!(lines.first().map(String::as_str), Some("BEGIN:VCALENDAR"));
    assert_eq!(lines.iter().filter(|l| *l == "BEGIN:VEVENT").count(), 2);
    assert!(vevent(&lines, &uid).contains(&"STATUS:CANCELLED".to_owned()));
    let later = vevent(&lines, &uid_of(&other));
    assert!(later.contains(&"SEQUENCE:0".to_owned()));
    assert!(!later.iter().any(|l| l.starts_with("ATTENDEE")));
    assert!(!lines.contains(&format!("UID:{}", uid_of(&past))));
    let file = node.ics_file(&[]);
    assert_eq!(unfolded_lines(&file).len(), lines.len());

    // `--json` wraps the calendar text.
    let doc = node.ok(&["ics"]);
    assert_eq!(doc["events"], 2);
    assert!(
        doc["calendar"]
            .as_str()
            .unwrap()
            .starts_with("BEGIN:VCALENDAR\r\n")
    );
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    // `potluck events | head -1`: the reader goes away before potluck
    // writes. That is not an error and must not panic.
    let node = Node::init("Ana");
    node.announce(&["--title", "Soup night", "--start", START]);
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut cmd = std::process::Command::new(common::sandbox::BIN);
    cmd.arg("--home").arg(&node.home).arg("events");
    common::sandbox::clean_env(&mut cmd, node.dir());
    cmd.stdout(writer);
    let mut child = cmd.spawn().unwrap();
    let stderr = common::sandbox::drain(child.stderr.take().unwrap());
    let status = common::sandbox::wait_with_deadline(&mut child).unwrap_or_else(|| {
        let _ = child.kill();
        panic!("potluck events did not finish");
    });
    let stderr = stderr.join().unwrap();
    assert!(status.success(), "{status:?}: {stderr}");
    assert_eq!(stderr, "");
}

// ---------------------------------------------------------------------------
// 6. Typing times: wall-clock times in a zone, DST, the past.
// ---------------------------------------------------------------------------

#[test]
fn wall_clock_starts_are_read_in_the_tz_or_the_computers_zone() {
    let node = Node::init("Ana");
    let zone = "America/New_York";
    let soup = node.announce(&[
        "--title",
        "Soup night",
        "--start",
        "2027-01-30 18:00",
        "--end",
        "2027-01-30T20:00",
        "--tz",
        zone,
    ]);
    let doc = node.event(&soup);
    assert_eq!(doc["start"], "2027-01-30T18:00:00-05:00");
    assert_eq!(doc["end"], "2027-01-30T20:00:00-05:00");
    assert_eq!(doc["tz"], zone);
    // People read the span; scripts keep RFC 3339 (above).
    let text = node.run(&["event", &soup]);
    assert!(text.status.success(), "{text:?}");
    assert!(
        text.stdout
            .contains("when:      Sat 30 Jan 2027, 18:00–20:00 EST"),
        "{}",
        text.stdout
    );
    let list = node.run(&["events"]);
    assert!(
        list.stdout
            .contains("Sat 30 Jan 2027, 18:00–20:00 EST  Soup night"),
        "{}",
        list.stdout
    );
    // The text of `announce` says how the time was read, on stderr; the
    // id alone is on stdout.
    let run = node.run(&[
        "announce",
        "--title",
        "Tea",
        "--start",
        "2027-02-01 10:30:15",
        "--tz",
        zone,
    ]);
    assert!(run.status.success(), "{run:?}");
    assert_eq!(run.stdout.trim().len(), 52, "{run:?}");
    assert_eq!(
        run.stderr, "announced \"Tea\": Mon 1 Feb 2027, 10:30 EST\n",
        "{run:?}"
    );

    // Without --tz: the computer's zone, which the event then keeps.
    let berlin = node.ok_with(
        &[
            "announce",
            "--title",
            "Berlin",
            "--start",
            "2027-07-01 19:00",
        ],
        &[("TZ", "Europe/Berlin")],
    );
    let doc = node.event(berlin["id"].as_str().unwrap());
    assert_eq!(doc["start"], "2027-07-01T19:00:00+02:00");
    assert_eq!(doc["tz"], "Europe/Berlin");
    // A time with an offset is one instant, kept as written, with no zone.
    let fixed = node.ok_with(
        &[
            "announce",
            "--title",
            "Fixed",
            "--start",
            "2027-07-01T19:00:00-03:00",
        ],
        &[("TZ", "Europe/Berlin")],
    );
    let doc = node.event(fixed["id"].as_str().unwrap());
    assert_eq!(doc["start"], "2027-07-01T19:00:00-03:00");
    assert_eq!(doc["tz"], Value::Null);
    // An update's wall-clock time is read in the event's zone.
    node.ok(&["update", &soup, "--start", "2027-01-30 17:00"]);
    assert_eq!(node.event(&soup)["start"], "2027-01-30T17:00:00-05:00");
}

#[test]
fn daylight_saving_gaps_and_folds_are_refused_with_the_instants_named() {
    let node = Node::init("Ana");
    let before = node.log_text();
    let gap = node.fails(&[
        "announce",
        "--title",
        "Gap",
        "--start",
        "2027-03-14 02:30",
        "--tz",
        "America/New_York",
    ]);
    assert!(
        gap.contains("2027-03-14 02:30 does not exist in America/New_York")
            && gap.contains("from 02:00 EST to 03:00 EDT"),
        "{gap}"
    );
    let fold = node.fails(&[
        "announce",
        "--title",
        "Fold",
        "--start",
        "2027-11-07 01:30",
        "--tz",
        "America/New_York",
    ]);
    assert!(
        fold.contains("happens twice")
            && fold.contains("2027-11-07T01:30:00-04:00")
            && fold.contains("2027-11-07T01:30:00-05:00"),
        "{fold}"
    );
    assert_eq!(node.log_text(), before, "nothing was published");
    // Either instant it names is accepted.
    let id = node.announce(&[
        "--title",
        "Fold",
        "--start",
        "2027-11-07T01:30:00-05:00",
        "--tz",
        "America/New_York",
    ]);
    let text = node.run(&["event", &id]);
    assert!(
        text.stdout.contains("Sun 7 Nov 2027, 01:30 EST"),
        "{}",
        text.stdout
    );
}

#[test]
fn a_start_in_the_past_is_refused_unless_past_is_given() {
    let node = Node::init("Ana");
    let before = node.log_text();
    let err = node.fails(&["announce", "--title", "Old", "--start", "2020-01-01 10:00"]);
    assert!(
        err.contains("is in the past")
            && err.contains("potluck events --past")
            && err.contains("--past to announce it anyway"),
        "{err}"
    );
    assert_eq!(node.log_text(), before, "nothing was published");
    // Started long ago but not finished: not in the past.
    node.announce(&[
        "--title",
        "Long",
        "--start",
        "2020-01-01T00:00:00Z",
        "--end",
        END,
    ]);
    // With --past it is announced, and the text says where to see it.
    let run = node.run(&[
        "announce",
        "--title",
        "Old",
        "--start",
        "2020-01-01 10:00",
        "--past",
    ]);
    assert!(run.status.success(), "{run:?}");
    assert!(
        run.stderr.contains("`potluck events --past` lists it"),
        "{run:?}"
    );
    let past = node.ok(&["events", "--past"]);
    assert_eq!(past[0]["title"], "Old");
    // Moving an event into the past needs --past too.
    let soon = node.announce(&["--title", "Soon", "--start", START]);
    let err = node.fails(&["update", &soon, "--start", "2020-02-01T00:00:00Z"]);
    assert!(err.contains("--past to move it anyway"), "{err}");
    node.ok(&["update", &soon, "--start", "2020-02-01T00:00:00Z", "--past"]);
}

// ---------------------------------------------------------------------------
// 7. What people read: capacity, names, short ids, labels, safe text.
// ---------------------------------------------------------------------------

#[test]
fn text_output_shows_capacity_names_short_ids_and_no_escape_sequences() {
    let node = Node::init("Ana");
    let hostile = "Soup\u{1b}]0;owned\u{7}\u{1b}[2J night";
    let id = node.announce(&[
        "--title",
        hostile,
        "--start",
        START,
        "--capacity",
        "1",
        "--location",
        "Hall",
        "--description",
        "first line\nsecond \u{1b}[31mline",
    ]);
    // A group of two does not fit in one place: waitlisted, first in line.
    node.ok(&[
        "rsvp",
        &id,
        "going",
        "--guests",
        "1",
        "--note",
        "hi\u{1b}[5m",
    ]);
    let short = &id[..9];

    let list = node.run(&["events"]);
    assert!(list.status.success(), "{list:?}");
    let text = &list.stdout;
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
    assert!(text.contains("Soup night"), "{text}");
    assert!(
        text.contains(&format!("    {short}  by Ana, at Hall")),
        "{text}"
    );
    assert!(!text.contains(&id), "lists show short ids: {text}");
    assert!(
        text.contains(
            "going 1 (2 people), maybe 0, not going 0; \
             capacity 1: 1 place left, 1 on the waitlist"
        ),
        "{text}"
    );
    // The short id is enough to name the event again.
    assert_eq!(node.event(short)["id"], id.as_str());
    // Scripts get the exact text and the numbers.
    let doc = node.ok(&["events"]);
    assert_eq!(doc[0]["title"], hostile);
    assert_eq!(doc[0]["places_left"], 1);
    assert_eq!(doc[0]["tally"]["waitlisted"], 1);

    let detail = node.run(&["event", short]);
    let text = &detail.stdout;
    assert!(!text.contains('\u{1b}'), "{text:?}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Soup night");
    assert!(lines.contains(&"  location:  Hall"), "{text}");
    assert!(lines.contains(&"  about:     first line"), "{text}");
    assert!(lines.contains(&"             second line"), "{text}");
    assert!(text.contains("\n  organizer: Ana (@"), "{text}");
    assert!(
        text.contains("    going      Ana +1 \"hi\" [waitlisted, #1 in line]"),
        "{text}"
    );
    // Every field line is `label:` then the value at one column.
    for line in &lines[1..] {
        if line.starts_with("    ") {
            continue;
        }
        let (label, value) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("no label: {line:?}"));
        assert!(
            label.starts_with("  ") && !label[2..].contains(' '),
            "{line:?}"
        );
        if !value.is_empty() {
            assert_eq!(line.find(value.trim_start()), Some(13), "{line:?}");
        }
    }

    let agenda = node.run(&["agenda"]);
    assert!(
        agenda.stdout.contains("going [waitlisted, #1 in line]"),
        "{agenda:?}"
    );
    assert!(!agenda.stdout.contains('\u{1b}'), "{agenda:?}");
}

#[test]
fn counts_read_as_english_and_export_for_counts_what_it_wrote() {
    let sandbox = common::sandbox::Sandbox::new();
    let a = sandbox.home("a");
    let b = sandbox.home("b");
    sandbox.json(&a, &["init", "--name", "Ana"]);
    sandbox.json(&b, &["init", "--name", "Bea"]);
    let b_all = sandbox.path("b.bundle");
    sandbox.json(&b, &["export", "--out", b_all.to_str().unwrap()]);
    let import = sandbox.run(&a, &["import", b_all.to_str().unwrap()]);
    assert!(
        import.stdout.starts_with("imported 1 new message;"),
        "{import:?}"
    );
    // Not a terminal: no progress line.
    assert_eq!(import.stderr, "", "{import:?}");
    // A holds two feeds; B lacks only A's one message.
    let clock = sandbox.path("b.clock");
    sandbox.json(&b, &["clock", "--out", clock.to_str().unwrap()]);
    let out = sandbox.path("for-b.bundle");
    let export = sandbox.run(
        &a,
        &[
            "export",
            "--for",
            clock.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(
        export.stdout.starts_with("wrote 1 message from 1 feed to "),
        "{export:?}"
    );
    let fsck = sandbox.run(&a, &["fsck"]);
    assert!(
        fsck.stdout.starts_with("checked 2 feeds, 2 messages, "),
        "{fsck:?}"
    );
    let lone = sandbox.home("lone");
    sandbox.json(&lone, &["init", "--name", "Lone"]);
    let fsck = sandbox.run(&lone, &["fsck"]);
    assert!(
        fsck.stdout.starts_with("checked 1 feed, 1 message, "),
        "{fsck:?}"
    );
    let clock_text = sandbox.run(&b, &["clock", "--out", clock.to_str().unwrap()]);
    assert!(
        clock_text
            .stdout
            .starts_with("wrote the clock of 1 feed to "),
        "{clock_text:?}"
    );
}

#[test]
fn ics_says_waitlisted_is_not_accepted_carries_guests_and_gives_a_default_end() {
    let node = Node::init("Ana");
    // No end; one place, and a group of two asks: waitlisted.
    let id = node.announce(&["--title", "Supper", "--start", START, "--capacity", "1"]);
    node.ok(&["rsvp", &id, "going", "--guests", "1"]);
    let text = node.ics_file(&[&id]);
    let lines = unfolded_lines(&text);
    let ev = vevent(&lines, &uid_of(&id));
    // START is 18:00Z; two hours by default (docs/content.md).
    assert!(ev.contains(&"DTEND:20310601T200000Z".to_owned()), "{ev:#?}");
    let attendee = ev
        .iter()
        .find(|l| l.starts_with("ATTENDEE"))
        .expect("one attendee");
    assert!(attendee.contains("PARTSTAT=TENTATIVE"), "{attendee}");
    assert!(
        attendee.contains("X-POTLUCK-ADMISSION=waitlisted"),
        "{attendee}"
    );
    assert!(attendee.contains("X-NUM-GUESTS=1"), "{attendee}");
    // Room for both: admitted, and now accepted.
    node.ok(&["update", &id, "--capacity", "2"]);
    let text = node.ics_file(&[&id]);
    let lines = unfolded_lines(&text);
    let attendee = vevent(&lines, &uid_of(&id))
        .iter()
        .find(|l| l.starts_with("ATTENDEE"))
        .expect("one attendee")
        .clone();
    assert!(attendee.contains("PARTSTAT=ACCEPTED"), "{attendee}");
    assert!(!attendee.contains("X-POTLUCK-ADMISSION"), "{attendee}");
    // `ics --out` says what it wrote, like `export`.
    let file = node.dir().join("one.ics");
    let run = node.run(&["ics", &id, "--out", file.to_str().unwrap()]);
    assert_eq!(
        run.stdout,
        format!("wrote 1 event to {}\n", file.display()),
        "{run:?}"
    );
}

#[test]
fn comments_are_written_replied_edited_removed_and_listed_with_json() {
    let node = Node::init("Ana");
    let id = node.announce(&[
        "--title",
        "Supper",
        "--start",
        START,
        "--comments",
        "answered",
    ]);
    assert_eq!(node.event(&id)["comments"], "answered");
    let first = node.ok(&["comment", &id, "Bring <b>bread</b>: https://a.test/x."]);
    let first_id = first["comment"].as_str().unwrap().to_owned();
    assert_eq!(first["done"], "commented");
    let reply = node.ok(&["comment", &id, "I will", "--reply", &first_id[..10]]);
    assert_eq!(reply["done"], "replied");
    node.ok(&[
        "comment",
        &id,
        "--edit",
        &first_id,
        "Bring bread: https://a.test/x.",
    ]);

    let thread = node.ok(&["comments", &id]);
    let comments = thread["comments"].as_array().unwrap();
    assert_eq!(comments.len(), 2);
    assert_eq!(comments[0]["id"], first_id.as_str());
    assert_eq!(comments[0]["shown"], "edited");
    assert_eq!(comments[0]["name"], "Ana");
    assert_eq!(comments[1]["reply_to"], first_id.as_str());
    assert_eq!(thread["policy"], "answered");
    let page = node.ok(&["comments", &id, "--limit", "1"]);
    assert_eq!(page["next_after"], first_id.as_str());
    let links = node.ok(&["comments", &id, "--links"]);
    assert_eq!(links[0]["url"], "https://a.test/x");

    node.ok(&["comment", &id, "--delete", &first_id]);
    let thread = node.ok(&["comments", &id]);
    assert_eq!(thread["comments"][0]["shown"], "removed");
    assert_eq!(thread["comments"][0]["text"], Value::Null);
    let (line, kind) = node.fails_with_kind(&["comment", &id, "--edit", &first_id, "again"]);
    assert_eq!(kind, "refused", "{line}");
    let (line, kind) = node.fails_with_kind(&["comment", &id, "--delete", &first_id, "text"]);
    assert!(line.contains("takes no text"), "{line}");
    assert_eq!(kind, "invalid_input", "{line}");
    // Text is plain and kept as written, markup included.
    node.ok(&["comment", &id, "<script>alert(1)</script>"]);
    let text = node.run(&["comments", &id]).stdout;
    assert!(text.contains("<script>alert(1)</script>"), "{text}");
    assert!(text.contains("(removed)"), "{text}");
}

/// Issue 22: `reminders.calendar_alarm_minutes` in config.json sets the
/// `.ics` alarm (an hour by default), 0 leaves it out, and a value out of
/// range is refused with the key and the value.
#[test]
fn the_calendar_alarm_follows_config_json() {
    let node = Node::init("Ana");
    let id = node.announce(&["--title", "Soup", "--start", "2031-06-01T18:00:00Z"]);
    let uid = uid_of(&id);
    let alarm_lines = |text: &str| -> Vec<String> {
        let lines = unfolded_lines(text);
        let ev = vevent(&lines, &uid);
        let begin = ev.iter().position(|l| l == "BEGIN:VALARM");
        let Some(begin) = begin else { return vec![] };
        let end = ev.iter().position(|l| l == "END:VALARM").expect("closed");
        ev[begin + 1..end].to_vec()
    };
    let mut default = alarm_lines(&node.ics_file(&[&id]));
    default.sort();
    assert_eq!(
        default,
        [
            "ACTION:DISPLAY",
            "DESCRIPTION:Reminder: Soup",
            "TRIGGER:-PT1H"
        ]
    );
    let config = node.home.join("config.json");
    std::fs::write(&config, r#"{"reminders": {"calendar_alarm_minutes": 15}}"#).unwrap();
    let fifteen = alarm_lines(&node.ics_file(&[&id]));
    assert!(
        fifteen.contains(&"TRIGGER:-PT15M".to_owned()),
        "{fifteen:?}"
    );
    std::fs::write(&config, r#"{"reminders": {"calendar_alarm_minutes": 0}}"#).unwrap();
    assert!(!node.ics_file(&[&id]).contains("VALARM"));
    std::fs::write(&config, r#"{"reminders": {"calendar_alarm_minutes": -30}}"#).unwrap();
    let error = node.fails(&["ics", &id]);
    assert!(
        error.contains("calendar_alarm_minutes") && error.contains("-30"),
        "{error}"
    );
}
