//! What the forms do (POST handlers). The security layer has already
//! checked the origin and the CSRF token. Bad input sends the form back
//! with the error next to its field (422) and publishes nothing; success
//! redirects (303) to the page that shows the result.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::pages::{
    CHECKED, EventForms, FORM_ERROR_STATUS, FormState, NetworkForms, PageError, event_page,
    load_event, load_network, login_page, network_page, new_event_page,
};
use super::paths::event_path;
use super::security::{same_secret, token_cookie};
use super::state::Web;
use super::wallclock::{self, WallClockError};
use crate::app::when::{self, WhenError};
use crate::app::{AppError, ContactChange, Invite, Past, now_ms};
use crate::content::{
    Change, CommentPolicy, ContentError, Event, EventTime, EventUpdate, KnownContent, RsvpStatus,
};
use crate::feed::message::FeedId;

/// The form field a content error is about (`""`: the whole form).
fn field_of(e: &ContentError) -> &'static str {
    use ContentError as E;
    match e {
        E::EmptyTitle | E::TitleTooLong { .. } => "title",
        E::BadTime { field, .. } if *field == "end" => "end",
        E::BadTime { .. } => "start",
        E::EndBeforeStart => "end",
        E::UnknownTimeZone(_) => "zone",
        E::DescriptionTooLong { .. } => "description",
        E::LocationTooLong { .. } => "location",
        E::UrlTooLong { .. } => "url",
        E::BadCapacity { .. } => "capacity",
        E::BadStatus(_) => "status",
        E::BadGuests { .. } | E::TooManyGuests(_) => "guests",
        E::NoteTooLong { .. } => "note",
        E::ReasonTooLong { .. } => "reason",
        E::NameEmpty | E::NameTooLong { .. } => "name",
        _ => "",
    }
}

/// Places an application error on a form when it is about the input;
/// otherwise it is the page's error.
fn place(form: &mut FormState, e: AppError) -> Result<(), PageError> {
    match e {
        AppError::Content(c) => form.fail(field_of(&c), c.to_string()),
        AppError::NothingToChange(_) => {
            form.fail("", "Nothing to change: the event already has these values.")
        }
        AppError::OwnFeed => form.fail("feed", "That is your own feed."),
        // The command line asks for `--past`; the form says so instead.
        e @ AppError::AlreadyOver { .. } => {
            form.fail("date", format!("{e}; pick a later date or time."))
        }
        e => return Err(e.into()),
    }
    Ok(())
}

/// The fields of the new-event and edit forms, as typed.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct EventInput {
    title: String,
    date: String,
    start: String,
    end: String,
    duration: String,
    zone: String,
    location: String,
    url: String,
    description: String,
    capacity: String,
    /// A checkbox: [`CHECKED`] when ticked, empty otherwise.
    unlisted: String,
    /// A checkbox, shown on a private network only.
    public: String,
    /// A checkbox: no answers from browsers on hubs' public pages.
    closed_to_web: String,
    /// Whose comments are shown: `everyone`, `answered` or `nobody`.
    comments: String,
}

impl EventInput {
    fn to_form(&self) -> FormState {
        let mut f = FormState::default();
        for (name, value) in [
            ("title", &self.title),
            ("date", &self.date),
            ("start", &self.start),
            ("end", &self.end),
            ("duration", &self.duration),
            ("zone", &self.zone),
            ("location", &self.location),
            ("url", &self.url),
            ("description", &self.description),
            ("capacity", &self.capacity),
            ("unlisted", &self.unlisted),
            ("public", &self.public),
            ("closed_to_web", &self.closed_to_web),
            ("comments", &self.comments),
        ] {
            f.set(name, value.clone());
        }
        f
    }
}

fn optional(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

fn wall_field(e: &WallClockError, time_field: &'static str) -> &'static str {
    match e {
        WallClockError::BadDate(_) | WallClockError::When(WhenError::OutOfRange(_)) => "date",
        WallClockError::BadDuration(_) => "duration",
        WallClockError::When(WhenError::UnknownZone(_)) => "zone",
        _ => time_field,
    }
}

/// The event a form describes, or `None` with the errors on `form`.
/// Times are wall-clock times in the chosen zone; an end earlier than
/// the start is on the next day.
fn build_event(input: &EventInput, form: &mut FormState) -> Option<Event> {
    let title = input.title.trim();
    if title.is_empty() {
        form.fail("title", "Give the event a title.");
    }
    let zone_name = input.zone.trim();
    let zone = when::zone_named(zone_name)
        .map_err(|e| form.fail("zone", e.to_string()))
        .ok();
    let date = wallclock::parse_date(&input.date)
        .map_err(|e| form.fail("date", e.to_string()))
        .ok();
    let start_time = wallclock::parse_time(&input.start)
        .map_err(|e| form.fail("start", e.to_string()))
        .ok();
    let (Some(tz), Some(date), Some(start_time)) = (zone, date, start_time) else {
        return None;
    };
    let start = match wallclock::event_time("start", date, start_time, &tz) {
        Ok(t) => t,
        Err(e) => {
            form.fail(wall_field(&e, "start"), e.to_string());
            return None;
        }
    };
    let end = match (optional(&input.end), optional(&input.duration)) {
        (Some(_), Some(_)) => {
            form.fail("duration", "Give an end time or a duration, not both.");
            None
        }
        (Some(end), None) => {
            let end_time = wallclock::parse_time(&end).and_then(|t| {
                let same_day = wallclock::event_time("end", date, t, &tz)?;
                if same_day.timestamp() > start.timestamp() {
                    return Ok(same_day);
                }
                let next = date
                    .tomorrow()
                    .map_err(|_| WhenError::OutOfRange(date.to_string()))?;
                wallclock::event_time("end", next, t, &tz)
            });
            match end_time {
                Ok(t) => Some(t),
                Err(e) => {
                    form.fail(wall_field(&e, "end"), e.to_string());
                    None
                }
            }
        }
        (None, Some(d)) => match wallclock::parse_duration(&d).and_then(|span| {
            let end = start
                .timestamp()
                .checked_add(span)
                .map_err(|_| WallClockError::BadDuration(d.clone()))?;
            wallclock::instant_time("end", end, &tz)
        }) {
            Ok(t) => Some(t),
            Err(e) => {
                form.fail("duration", e.to_string());
                None
            }
        },
        (None, None) => None,
    };
    let capacity = match optional(&input.capacity) {
        None => None,
        Some(c) => match c.parse::<u32>() {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                form.fail(
                    "capacity",
                    "The capacity is a whole number from 1 up, or empty for no limit.",
                );
                None
            }
        },
    };
    if form.has_errors() {
        return None;
    }
    let mut event = Event::new(title, start);
    event.end = end;
    event.tz = Some(zone_name.to_owned());
    event.location = optional(&input.location);
    event.url = optional(&input.url);
    // The description keeps its inner line breaks and spacing; browsers
    // send a textarea's breaks as CRLF, messages hold LF (so an unchanged
    // description compares equal and an edit changes only what changed).
    event.description =
        (!input.description.trim().is_empty()).then(|| input.description.replace("\r\n", "\n"));
    event.capacity = capacity;
    event.unlisted = input.unlisted == CHECKED;
    event.public = input.public == CHECKED;
    event.closed_to_web = input.closed_to_web == CHECKED;
    event.comments = match input.comments.as_str() {
        "" => CommentPolicy::Everyone,
        words => match words.parse() {
            Ok(policy) => policy,
            Err(e) => {
                form.fail("comments", e.to_string());
                return None;
            }
        },
    };
    if let Err(e) = event.validate() {
        form.fail(field_of(&e), e.to_string());
        return None;
    }
    Some(event)
}

fn form_response(markup: maud::Markup) -> Response {
    (FORM_ERROR_STATUS, markup).into_response()
}

/// `POST /new`: announce an event.
pub(crate) async fn new_event(
    State(web): State<Web>,
    Form(input): Form<EventInput>,
) -> Result<Response, PageError> {
    let mut form = input.to_form();
    let Some(event) = build_event(&input, &mut form) else {
        return Ok(form_response(new_event_page(&web, &form)));
    };
    match web
        .call(move |app| app.announce(&event, Past::Refuse, now_ms()))
        .await?
    {
        Ok(msg) => Ok(Redirect::to(&event_path(&msg.id())).into_response()),
        Err(e) => {
            place(&mut form, e)?;
            Ok(form_response(new_event_page(&web, &form)))
        }
    }
}

/// The RSVP form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RsvpInput {
    status: String,
    guests: String,
    note: String,
}

/// `POST /e/{key}/rsvp`: answer (again).
pub(crate) async fn rsvp(
    State(web): State<Web>,
    Path(key): Path<String>,
    Form(input): Form<RsvpInput>,
) -> Result<Response, PageError> {
    let detail = load_event(&web, &key, None).await?;
    let mut form = FormState::default();
    form.set("guests", input.guests.clone());
    form.set("note", input.note.clone());
    let status = input
        .status
        .parse::<RsvpStatus>()
        .map_err(|_| form.fail("status", "Choose Going, Maybe or Not going."))
        .ok();
    let guests = match input.guests.trim() {
        "" => Some(0),
        g => g
            .parse::<u32>()
            .map_err(|_| {
                form.fail(
                    "guests",
                    format!(
                        "Guests is a whole number from 0 to {}.",
                        crate::content::MAX_GUESTS
                    ),
                )
            })
            .ok(),
    };
    let back = |form: FormState| {
        let forms = EventForms {
            rsvp: form,
            ..EventForms::default()
        };
        form_response(event_page(&web, &detail, forms))
    };
    let (Some(status), Some(guests)) = (status, guests) else {
        return Ok(back(form));
    };
    let id = detail.detail.summary.state.id;
    let note = optional(&input.note);
    match web
        .call(move |app| app.rsvp(&id, status, guests, note, now_ms()))
        .await?
    {
        Ok(_) => Ok(Redirect::to(&format!("{}#answer", event_path(&id))).into_response()),
        Err(e) => {
            place(&mut form, e)?;
            Ok(back(form))
        }
    }
}

/// A time's change for an update: kept when it is the same instant.
fn time_change(old: Option<&EventTime>, new: Option<EventTime>) -> Change<EventTime> {
    match (old, new) {
        (None, None) => Change::Keep,
        (Some(_), None) => Change::Clear,
        (Some(o), Some(n)) if o.timestamp() == n.timestamp() => Change::Keep,
        (_, Some(n)) => Change::Set(n),
    }
}

/// A field's change for an update.
fn field_change<T: PartialEq>(old: &Option<T>, new: Option<T>) -> Change<T> {
    match (old, new) {
        (None, None) => Change::Keep,
        (Some(_), None) => Change::Clear,
        (Some(o), Some(n)) if *o == n => Change::Keep,
        (_, Some(n)) => Change::Set(n),
    }
}

/// `POST /e/{key}/edit`: the organizer changes the event.
pub(crate) async fn edit(
    State(web): State<Web>,
    Path(key): Path<String>,
    Form(input): Form<EventInput>,
) -> Result<Response, PageError> {
    let detail = load_event(&web, &key, None).await?;
    let mut form = input.to_form();
    let back = |form: FormState| {
        let forms = EventForms {
            edit: Some(form),
            ..EventForms::default()
        };
        form_response(event_page(&web, &detail, forms))
    };
    let Some(wanted) = build_event(&input, &mut form) else {
        return Ok(back(form));
    };
    let state = &detail.detail.summary.state;
    let old = &state.event;
    let mut update = EventUpdate::new(state.id);
    if wanted.title != old.title {
        update.title = Some(wanted.title.clone());
    }
    if wanted.start.timestamp() != old.start.timestamp() {
        update.start = Some(wanted.start.clone());
    }
    update.end = time_change(old.end.as_ref(), wanted.end.clone());
    // An event announced without a zone is edited in the viewer's zone:
    // choosing that zone again is not a change of zone.
    let zone_kept = old.tz.is_none() && wanted.tz.as_deref() == Some(web.settings.zone.as_str());
    if !zone_kept {
        update.tz = field_change(&old.tz, wanted.tz.clone());
    }
    update.location = field_change(&old.location, wanted.location.clone());
    update.url = field_change(&old.url, wanted.url.clone());
    update.description = field_change(&old.description, wanted.description.clone());
    update.capacity = field_change(&old.capacity, wanted.capacity);
    update.unlisted = field_change(&Some(old.unlisted), Some(wanted.unlisted));
    update.closed_to_web = field_change(&Some(old.closed_to_web), Some(wanted.closed_to_web));
    update.comments = field_change(&Some(old.comments), Some(wanted.comments));
    // The form has no `public` box on the public network: the event keeps
    // what it has (which only the command line could have set).
    if web.private_network {
        update.public = field_change(&Some(old.public), Some(wanted.public));
    }
    if update.is_empty() {
        form.fail("", "Nothing to change: the event already has these values.");
        return Ok(back(form));
    }
    let id = state.id;
    match web
        .call(move |app| app.update(&id, update, Past::Refuse, now_ms()))
        .await?
    {
        Ok(_) => Ok(Redirect::to(&event_path(&id)).into_response()),
        Err(e) => {
            place(&mut form, e)?;
            Ok(back(form))
        }
    }
}

/// The cancel form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct CancelInput {
    reason: String,
}

/// `POST /e/{key}/cancel`: the organizer cancels the event.
pub(crate) async fn cancel(
    State(web): State<Web>,
    Path(key): Path<String>,
    Form(input): Form<CancelInput>,
) -> Result<Response, PageError> {
    let detail = load_event(&web, &key, None).await?;
    let id = detail.detail.summary.state.id;
    let reason = optional(&input.reason);
    match web
        .call(move |app| app.cancel(&id, reason, now_ms()))
        .await?
    {
        Ok(_) => Ok(Redirect::to(&event_path(&id)).into_response()),
        Err(e) => {
            let mut form = FormState::default();
            form.set("reason", input.reason.clone());
            place(&mut form, e)?;
            let forms = EventForms {
                cancel: form,
                ..EventForms::default()
            };
            Ok(form_response(event_page(&web, &detail, forms)))
        }
    }
}

/// The name form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct NameInput {
    name: String,
}

/// `POST /network/name`.
pub(crate) async fn set_name(
    State(web): State<Web>,
    Form(input): Form<NameInput>,
) -> Result<Response, PageError> {
    let name = input.name.trim().to_owned();
    match web.call(move |app| app.set_name(name, now_ms())).await? {
        Ok(()) => Ok(Redirect::to("/network").into_response()),
        Err(e) => {
            let mut forms = NetworkForms::default();
            forms.name.set("name", input.name.clone());
            place(&mut forms.name, e)?;
            network_back(&web, forms).await
        }
    }
}

/// The network page again, with a form's errors.
async fn network_back(web: &Web, forms: NetworkForms) -> Result<Response, PageError> {
    let view = load_network(web).await?;
    Ok(form_response(network_page(web, &view, forms)))
}

/// The follow / block form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ContactInput {
    feed: String,
    action: String,
}

/// `POST /network/contact`: follow, unfollow, block or unblock a feed.
pub(crate) async fn contact(
    State(web): State<Web>,
    Form(input): Form<ContactInput>,
) -> Result<Response, PageError> {
    let mut forms = NetworkForms::default();
    forms.contact.set("feed", input.feed.clone());
    let change = match input.action.as_str() {
        "follow" => Some(ContactChange::Follow),
        "unfollow" => Some(ContactChange::Unfollow),
        "block" => Some(ContactChange::Block),
        "unblock" => Some(ContactChange::Unblock),
        _ => {
            forms.contact.fail("", "Choose Follow or Block.");
            None
        }
    };
    let feed = FeedId::parse(input.feed.trim())
        .map_err(|_| {
            forms.contact.fail(
                "feed",
                "A feed id looks like @…=.ed25519 (44 characters of base64 between).",
            )
        })
        .ok();
    if let (Some(feed), Some(change)) = (feed, change) {
        match web
            .call(move |app| app.contact(feed, change, now_ms()))
            .await?
        {
            Ok(_) => return Ok(Redirect::to("/network").into_response()),
            Err(e) => place(&mut forms.contact, e)?,
        }
    }
    network_back(&web, forms).await
}

/// The join form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct JoinInput {
    code: String,
}

/// The code pasted in one of the network page's code forms, kept on the
/// form and parsed (`None`: the error is next to the field).
fn pasted_code(form: &mut FormState, input: &JoinInput) -> Option<Invite> {
    let code = input.code.trim();
    form.set("code", code.to_owned());
    Invite::parse(code)
        .map_err(|e| form.fail("code", e.to_string()))
        .ok()
}

/// `POST /network/join`: takes an invite code on this (running) node:
/// follows the inviter, remembers its address and keeps it connected. A
/// code for another network needs a new home, which only the command
/// (`potluck join CODE --home DIR`) can make.
pub(crate) async fn join(
    State(web): State<Web>,
    Form(input): Form<JoinInput>,
) -> Result<Response, PageError> {
    let mut forms = NetworkForms::default();
    let Some(invite) = pasted_code(&mut forms.join, &input) else {
        return network_back(&web, forms).await;
    };
    // The page does not wait for the first exchange: the node keeps the
    // inviter connected, and the page shows what arrives, live.
    match web
        .call(move |app| app.join(&invite, false, |_, _| {}))
        .await?
    {
        Ok(report) if report.follow_waits => {
            forms.join.fail(
                "code",
                "Your own feed is still to be fetched back (your key came from elsewhere, or the \
                 store lost it), so nothing can be published yet: the inviter is remembered and \
                 kept connected, and you can follow them once your feed is back.",
            );
            network_back(&web, forms).await
        }
        Ok(_) => Ok(Redirect::to("/network").into_response()),
        Err(e @ (AppError::OtherNetwork { .. } | AppError::InviteWithoutFeed)) => {
            forms.join.fail("code", e.to_string());
            network_back(&web, forms).await
        }
        Err(AppError::OwnFeed) => {
            forms.join.fail("code", "That is your own invite code.");
            network_back(&web, forms).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /network/hub`: joins a hub with its member code (see
/// [`crate::app::App::join_hub`]): the code is redeemed in one exchange,
/// so a refused code or an unreachable hub comes back on the form.
pub(crate) async fn join_hub(
    State(web): State<Web>,
    Form(input): Form<JoinInput>,
) -> Result<Response, PageError> {
    let mut forms = NetworkForms::default();
    let Some(invite) = pasted_code(&mut forms.hub, &input) else {
        return network_back(&web, forms).await;
    };
    match web
        .call(move |app| app.join_hub(&invite, |_, _| {}))
        .await?
    {
        Ok(_) => return Ok(Redirect::to("/network").into_response()),
        Err(AppError::OwnFeed) => forms.hub.fail("code", "That is your own code."),
        Err(AppError::Sync { peer, source }) => forms.hub.fail(
            "code",
            format!("Could not join the hub at {peer}: {source}."),
        ),
        Err(
            e
            @ (AppError::OtherNetwork { .. } | AppError::InviteWithoutFeed | AppError::Refused(_)),
        ) => forms.hub.fail("code", e.to_string()),
        Err(e) => return Err(e.into()),
    }
    network_back(&web, forms).await
}

/// The login form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct LoginInput {
    token: String,
}

/// `POST /login`: stores the access token in a cookie.
pub(crate) async fn login(State(web): State<Web>, Form(input): Form<LoginInput>) -> Response {
    match web.settings.token.as_deref() {
        Some(token) if same_secret(input.token.trim().as_bytes(), token.as_bytes()) => (
            [(header::SET_COOKIE, token_cookie(token))],
            Redirect::to("/"),
        )
            .into_response(),
        Some(_) => {
            let mut form = FormState::default();
            form.fail("token", "That is not the access token.");
            (
                axum::http::StatusCode::UNAUTHORIZED,
                login_page(&web, &form),
            )
                .into_response()
        }
        None => Redirect::to("/").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(date: &str, start: &str, zone: &str) -> EventInput {
        EventInput {
            title: "Soup".into(),
            date: date.into(),
            start: start.into(),
            zone: zone.into(),
            ..EventInput::default()
        }
    }

    #[test]
    fn an_end_before_the_start_is_on_the_next_day() {
        let mut i = input("2027-01-30", "22:00", "Europe/Paris");
        i.end = "01:00".into();
        let mut form = FormState::default();
        let e = build_event(&i, &mut form).expect("valid");
        assert_eq!(e.start.as_str(), "2027-01-30T22:00:00+01:00");
        assert_eq!(e.end.unwrap().as_str(), "2027-01-31T01:00:00+01:00");
    }

    #[test]
    fn a_duration_gives_the_end_and_both_is_an_error() {
        let mut i = input("2027-01-30", "18:00", "UTC");
        i.duration = "1h30m".into();
        let mut form = FormState::default();
        let e = build_event(&i, &mut form).expect("valid");
        assert_eq!(e.end.unwrap().as_str(), "2027-01-30T19:30:00+00:00");
        i.end = "20:00".into();
        let mut form = FormState::default();
        assert!(build_event(&i, &mut form).is_none());
        assert!(form.error("duration").is_some());
    }

    #[test]
    fn a_time_in_the_spring_gap_is_refused_next_to_the_start() {
        let i = input("2027-03-14", "02:30", "America/New_York");
        let mut form = FormState::default();
        assert!(build_event(&i, &mut form).is_none());
        let e = form.error("start").expect("error on start");
        assert!(e.contains("does not exist"), "{e}");
    }

    #[test]
    fn a_time_in_the_autumn_fold_is_refused_next_to_the_start() {
        let i = input("2027-11-07", "01:30", "America/New_York");
        let mut form = FormState::default();
        assert!(build_event(&i, &mut form).is_none());
        let e = form.error("start").expect("error on start");
        assert!(e.contains("happens twice"), "{e}");
    }
}
