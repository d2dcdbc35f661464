//! The running node's reminders: a task that reads my agenda, asks the
//! planner ([`super::reminders`]) what is due, shows it through the
//! freedesktop notification service on the session bus
//! (`org.freedesktop.Notifications.Notify`, with zbus: pure Rust, no
//! libdbus) and tells open pages (`App::subscribe_reminders`), then
//! sleeps until the planner's next moment or the next change of events.
//! The task only moves timers and calls the bus; every decision is the
//! planner's.
//!
//! No session bus (`DBUS_SESSION_BUS_ADDRESS` unset, or nothing answers
//! there): desktop notifications are off, said once at debug level; the
//! page still hears reminders. `"reminders": {"desktop": false}` in
//! config.json turns the desktop ones off.
//!
//! What was sent is kept in `reminders.json` in the home (at most
//! [`MAX_MEMORY_BYTES`]; a damaged file is set aside and started anew),
//! so a restart does not notify again.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::home::config::ConfigFile;
use crate::home::{Home, write_private};

use super::comments::MyComments;
use super::reminders::{Memory, NEWS_GRACE, News, Reminder, Snapshot, concerns, plan};
use super::{App, AppError, Change, when};

/// Longest the task sleeps without looking again (clock changes, a
/// computer that slept through its timers).
pub const MAX_SLEEP: Duration = Duration::from_secs(15 * 60);

/// How long the task waits after a change of events before it looks, so
/// that a burst of changes (a sync) is read once.
const SETTLE: Duration = Duration::from_millis(300);

/// Longest wait for the session bus to answer (connect, or a call).
pub const BUS_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest `reminders.json` read.
pub const MAX_MEMORY_BYTES: u64 = 1024 * 1024;

/// The file in the home that keeps what was sent.
pub const MEMORY_FILE: &str = "reminders.json";

/// How many reminders the page's channel holds for a slow page.
const PAGE_CHANNEL: usize = 16;

/// The well-known name, object and interface of the notification service.
const NOTIFICATIONS: &str = "org.freedesktop.Notifications";
const NOTIFICATIONS_PATH: &str = "/org/freedesktop/Notifications";

/// A connection to the notification service on the session bus.
pub struct Desktop {
    connection: zbus::Connection,
}

impl Desktop {
    /// Connects to the session bus named by `DBUS_SESSION_BUS_ADDRESS`;
    /// `None` (and a debug line) when it is unset or does not answer in
    /// [`BUS_TIMEOUT`].
    pub async fn connect() -> Option<Desktop> {
        let address = match std::env::var("DBUS_SESSION_BUS_ADDRESS") {
            Ok(address) if !address.trim().is_empty() => address,
            _ => {
                tracing::debug!(
                    "desktop notifications are off: no session bus (DBUS_SESSION_BUS_ADDRESS is unset)"
                );
                return None;
            }
        };
        let build = zbus::connection::Builder::address(address.as_str()).build();
        let connected = tokio::time::timeout(BUS_TIMEOUT, build).await;
        match connected {
            Ok(Ok(connection)) => {
                tracing::debug!("desktop notifications go to the session bus");
                Some(Desktop { connection })
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "desktop notifications are off: the session bus cannot be reached");
                None
            }
            Err(_) => {
                tracing::debug!("desktop notifications are off: the session bus did not answer");
                None
            }
        }
    }

    /// Shows one notification; the service's id for it.
    pub async fn notify(&self, reminder: &Reminder) -> Result<u32, zbus::Error> {
        let summary = when::sanitize_line(&reminder.summary).into_owned();
        // The service may read the body as markup: show it as text.
        let body = markup_text(&when::sanitize_line(&reminder.body));
        let actions: Vec<&str> = Vec::new();
        let hints: HashMap<&str, zbus::Variant<'_>> = HashMap::new();
        // app_name, replaces_id, app_icon, summary, body, actions, hints,
        // expire_timeout (-1: the server's default).
        let args = (
            "potluck",
            0u32,
            "",
            summary.as_str(),
            body.as_str(),
            actions,
            hints,
            -1i32,
        );
        let call = self.connection.call_method(
            Some(NOTIFICATIONS),
            NOTIFICATIONS_PATH,
            Some(NOTIFICATIONS),
            "Notify",
            &args,
        );
        let reply = tokio::time::timeout(BUS_TIMEOUT, call)
            .await
            .map_err(|_| {
                zbus::Error::Failure("the notification service did not answer".into())
            })??;
        reply.body().deserialize::<u32>()
    }
}

/// Text for a notification body, which servers with `body-markup` read
/// as markup: `&`, `<` and `>` escaped.
pub fn markup_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Reads `reminders.json`; a missing file is an empty memory, a damaged
/// or oversized one is set aside (`reminders.json.damaged`) with a
/// warning and started anew.
pub fn load_memory(home: &Home) -> Memory {
    use std::io::Read;
    let path = home.root().join(MEMORY_FILE);
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Memory::default(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read what reminders were sent; starting anew");
            return Memory::default();
        }
    };
    let mut text = String::new();
    let read = file.take(MAX_MEMORY_BYTES + 1).read_to_string(&mut text);
    let parsed = match read {
        Ok(n) if (n as u64) <= MAX_MEMORY_BYTES => {
            serde_json::from_str::<Memory>(&text).map_err(|e| e.to_string())
        }
        Ok(_) => Err("the file is too large".to_owned()),
        Err(e) => Err(e.to_string()),
    };
    match parsed {
        Ok(memory) => memory,
        Err(reason) => {
            let aside = home.root().join(format!("{MEMORY_FILE}.damaged"));
            let _ = std::fs::rename(&path, &aside);
            tracing::warn!(path = %path.display(), %reason, "what reminders were sent cannot be read; set aside, starting anew");
            Memory::default()
        }
    }
}

/// Writes `reminders.json` (replaced whole).
pub fn save_memory(home: &Home, memory: &Memory) -> std::io::Result<()> {
    let text = serde_json::to_vec(memory).map_err(std::io::Error::other)?;
    write_private(&home.root().join(MEMORY_FILE), &text)
}

impl App {
    /// Starts the reminder task of the running node (see the module's
    /// doc); `None` for an app without a home or an identity.
    pub(crate) fn start_reminders(&self, config: &ConfigFile) -> Option<JoinHandle<()>> {
        let home = self.home.clone()?;
        self.node.as_ref()?;
        let (page, _) = broadcast::channel(PAGE_CHANNEL);
        // One task per app, however often it is started.
        self.reminder_feed.set(page.clone()).ok()?;
        let desktop = config.desktop_reminders();
        if !desktop {
            tracing::debug!(
                "desktop notifications are off (\"reminders\": {{\"desktop\": false}})"
            );
        }
        Some(tokio::spawn(run(self.clone(), home, desktop, page)))
    }

    /// Reminders as the running node shows them, for open pages; `None`
    /// when no reminder task runs.
    pub fn subscribe_reminders(&self) -> Option<broadcast::Receiver<Reminder>> {
        self.reminder_feed.get().map(broadcast::Sender::subscribe)
    }

    /// What the reminder planner looks at now: my upcoming events and my
    /// answers, and as news the replies by others to my comments written
    /// within [`NEWS_GRACE`] (`App::replies_to_me`: `mine` keeps which
    /// events I commented on, so that my feed is read once), those
    /// events being watched for changes. Blocking.
    pub fn reminder_snapshot(
        &self,
        now_ms: i64,
        mine: &mut MyComments,
    ) -> Result<Snapshot, AppError> {
        let mut snapshot = Snapshot::of_agenda(&self.agenda(now_ms)?);
        let since = now_ms.saturating_sub(NEWS_GRACE.as_millis() as i64);
        let now = Timestamp::from_millisecond(now_ms).unwrap_or(Timestamp::UNIX_EPOCH);
        // A failed read of replies does not stop the events' reminders.
        match self.replies_to_me(mine, since, now_ms) {
            Ok(replies) => {
                snapshot.news = replies.iter().map(|r| News::reply(r, now)).collect();
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the replies to my comments"),
        }
        snapshot.watched = mine.events().copied().collect();
        Ok(snapshot)
    }
}

/// The reminder task: plan, show, remember, sleep; ends with the node.
async fn run(app: App, home: Home, desktop_on: bool, page: broadcast::Sender<Reminder>) {
    let Some(mut changes) = app.subscribe() else {
        return;
    };
    let zone = when::local_zone();
    let mut desktop = if desktop_on {
        Desktop::connect().await
    } else {
        None
    };
    let Ok(me) = app.feed_id() else {
        return;
    };
    // The events of the last snapshot: changes to others are ignored.
    let mut known = HashSet::new();
    // The events I commented on, for replies to me.
    let mut mine = MyComments::default();
    let memory_home = home.clone();
    let mut memory = tokio::task::spawn_blocking(move || load_memory(&memory_home))
        .await
        .unwrap_or_default();
    loop {
        let now = Timestamp::now();
        let reader = app.clone();
        let read = tokio::task::spawn_blocking(move || {
            let snapshot = reader.reminder_snapshot(now.as_millisecond(), &mut mine);
            (snapshot, mine)
        })
        .await;
        let snapshot = match read {
            Ok((snapshot, read_mine)) => {
                mine = read_mine;
                Ok(snapshot)
            }
            Err(e) => {
                // Read anew next time.
                mine = MyComments::default();
                Err(e)
            }
        };
        let next_wake = match snapshot {
            Ok(Ok(snapshot)) => {
                known = snapshot.event_ids();
                let planned = plan(&snapshot, &mut memory, now, &zone);
                // Remembered before shown: a crash in between loses a
                // reminder rather than showing it twice.
                if planned.changed {
                    let (home, saved) = (home.clone(), memory.clone());
                    let written =
                        tokio::task::spawn_blocking(move || save_memory(&home, &saved)).await;
                    if let Ok(Err(e)) = written {
                        tracing::warn!(error = %e, "cannot save which reminders were sent");
                    }
                }
                for reminder in &planned.due {
                    show(&mut desktop, &page, reminder).await;
                }
                planned.next_wake
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot read the agenda for reminders");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "the reminder planner's read failed");
                None
            }
        };
        if !wait(&app, &mut changes, next_wake, |c| concerns(c, &known, &me)).await {
            return;
        }
    }
}

/// Shows one reminder on the desktop (when the bus is there) and to open
/// pages.
async fn show(desktop: &mut Option<Desktop>, page: &broadcast::Sender<Reminder>, r: &Reminder) {
    tracing::info!(
        kind = r.kind.as_str(),
        "reminder: {}",
        when::sanitize_line(&r.summary)
    );
    if let Some(bus) = desktop.as_ref()
        && let Err(e) = bus.notify(r).await
    {
        // Said once: a bus that went away stays off until a restart.
        tracing::debug!(error = %e, "desktop notifications are off: the notification service failed");
        *desktop = None;
    }
    // No open page: nobody to tell.
    let _ = page.send(r.clone());
}

/// Sleeps until `next_wake` (at most [`MAX_SLEEP`]) or a change that is
/// `worth` a look; false when the node stops.
async fn wait(
    app: &App,
    changes: &mut super::Changes,
    next_wake: Option<Timestamp>,
    worth: impl Fn(&Change) -> bool,
) -> bool {
    let sleep = next_wake
        .map(|at| {
            let ms = at
                .as_millisecond()
                .saturating_sub(Timestamp::now().as_millisecond());
            Duration::from_millis(u64::try_from(ms).unwrap_or(0))
        })
        .unwrap_or(MAX_SLEEP)
        .min(MAX_SLEEP);
    let timer = tokio::time::sleep(sleep);
    tokio::pin!(timer);
    loop {
        tokio::select! {
            _ = app.stopped() => return false,
            _ = &mut timer => return true,
            change = changes.next() => match change {
                None => return false,
                Some(change) if worth(&change) => {
                    tokio::time::sleep(SETTLE).await;
                    return true;
                }
                Some(_) => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_shown_as_text_not_markup() {
        assert_eq!(
            markup_text("<b>Soup</b> & \"bread\""),
            "&lt;b&gt;Soup&lt;/b&gt; &amp; \"bread\""
        );
    }

    #[test]
    fn the_memory_file_round_trips_and_a_damaged_one_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().to_path_buf());
        assert_eq!(load_memory(&home), Memory::default());
        let mut memory = Memory::default();
        memory.sent.insert("hour x 1".into(), 1);
        memory.waitlisted.insert("ab".into());
        save_memory(&home, &memory).unwrap();
        assert_eq!(load_memory(&home), memory);
        std::fs::write(home.root().join(MEMORY_FILE), "{not json").unwrap();
        assert_eq!(load_memory(&home), Memory::default());
        assert!(home.root().join("reminders.json.damaged").exists());
        assert!(!home.root().join(MEMORY_FILE).exists());
    }
}
