//! People and network: who I am, who is connected (directly or through a
//! hub), my hubs and what they hold of mine, the addresses known, invites,
//! and whom I follow or block.

use axum::extract::State;
use maud::{Markup, html};

use super::form::{FormState, Input, csrf, form_error};
use super::layout::{Nav, PageError, blocking, layout};
use crate::app::{ConnectedPeer, HubView, NetworkView, person, short_feed, source_words};
use crate::web::state::Web;

/// Forms of the network page, as submitted (on error) or empty.
#[derive(Default)]
pub(crate) struct NetworkForms {
    pub(crate) name: FormState,
    pub(crate) contact: FormState,
    pub(crate) join: FormState,
    pub(crate) hub: FormState,
}

pub(crate) async fn load_network(web: &Web) -> Result<NetworkView, PageError> {
    blocking(web, |app| app.network()).await
}

/// `GET /network`.
pub(crate) async fn network(State(web): State<Web>) -> Result<Markup, PageError> {
    let view = load_network(&web).await?;
    Ok(network_page(&web, &view, NetworkForms::default()))
}

fn table_head(columns: &[&str]) -> Markup {
    html! { thead { tr { @for c in columns { th scope="col" { (c) } } } } }
}

fn ago(ms: Option<i64>) -> String {
    match ms.and_then(|m| jiff::Timestamp::from_millisecond(m).ok()) {
        Some(t) => t.strftime("%Y-%m-%d %H:%M UTC").to_string(),
        None => "never".into(),
    }
}

/// How a session runs: through which hub's tunnel, or direct.
fn route(view: &NetworkView, peer: &ConnectedPeer) -> String {
    match peer.info.via_hub {
        Some(hub) => format!("through hub {}", person(view.name_of(&hub), &hub)),
        None => "direct".into(),
    }
}

/// One of my hubs: connected or not, and what it holds of mine.
fn hub_item(hub: &HubView) -> Markup {
    html! {
        li {
            strong { (hub.label) } " "
            @if hub.connected { span.badge.admitted { "connected" } }
            @else { span.badge.pending { "not connected" } }
            " " (hub.holding_words())
            br; small.feed { (hub.addr.addr) }
        }
    }
}

pub(crate) fn network_page(web: &Web, view: &NetworkView, mut forms: NetworkForms) -> Markup {
    if !forms.name.values.contains_key("name") {
        forms
            .name
            .set("name", view.my_name.clone().unwrap_or_default());
    }
    // The page is the running node's, which has an identity.
    let Some(me) = view.me else {
        return layout(
            "People and network",
            Nav::Network,
            "",
            None,
            html! { p { "No identity." } },
        );
    };
    layout(
        "People and network",
        Nav::Network,
        "peers progress appended",
        None,
        html! {
            h1 { "People and network" }
            section aria-labelledby="me-title" {
                h2 #me-title { "You" }
                p #me data-live {
                    "You are " strong { (person(view.my_name.as_deref(), &me)) }
                    br; small.feed { (me.to_string()) }
                }
                form.inline method="post" action="/network/name" {
                    (csrf(web))
                    (form_error(&forms.name))
                    (Input::new("me-", "name", "Your name").required().max(crate::content::MAX_NAME_CHARS).draw(&forms.name))
                    button type="submit" { "Save name" }
                }
            }
            section #peers data-live aria-labelledby="peers-title" {
                h2 #peers-title { "Connected now" }
                @if view.connected.is_empty() { p.empty { "No peer is connected." } }
                @else {
                    div.scroll { table {
                        (table_head(&["Who", "Address", "How", "Received", "Sync"]))
                        tbody {
                            @for peer in &view.connected {
                                @let p = &peer.info;
                                tr {
                                    td { (person(peer.name.as_deref(), &p.feed)) }
                                    td { (p.address) @if p.outbound { " (we dialed)" } }
                                    td { (route(view, peer)) }
                                    td { (crate::app::when::plural(p.received, "message", "messages")) }
                                    td {
                                        @if p.caught_up { span.badge.admitted { "caught up" } }
                                        @else {
                                            span.badge.pending { "catching up" }
                                            @if p.remaining > 0 { " " (p.remaining) " to go" }
                                        }
                                    }
                                }
                            }
                        }
                    } }
                }
            }
            section aria-labelledby="hubs-title" {
                h2 #hubs-title { "Hubs" }
                div #hubs data-live {
                    @if let Some(members) = view.members {
                        p #members {
                            "This node is a hub: "
                            (crate::app::when::plural(members.count as u64, "member", "members"))
                            ", " (members.connected) " connected now. "
                            code { "potluck hub members" } " lists them; "
                            code { "potluck invite" } " makes a member code."
                        }
                    }
                    @if view.hubs.is_empty() {
                        p.empty { "You belong to no hub. A hub keeps your messages for people who cannot reach you directly, and joins you to them when you are both online." }
                    } @else {
                        ul.contacts { @for hub in &view.hubs { (hub_item(hub)) } }
                    }
                }
                form.inline method="post" action="/network/hub" {
                    (csrf(web))
                    (form_error(&forms.hub))
                    (Input::new("hub-", "code", "Hub member code").required().hint("a member code from the hub's operator; the hub then keeps your messages and stays connected").draw(&forms.hub))
                    button type="submit" { "Join hub" }
                }
            }
            section #book data-live aria-labelledby="book-title" {
                h2 #book-title { "Known addresses" }
                @if view.book.is_empty() { p.empty { "No address is known yet." } }
                @else {
                    div.scroll { table {
                        (table_head(&["Address", "Who", "From", "Last reached"]))
                        tbody {
                            @for known in &view.book {
                                @let r = &known.record;
                                tr {
                                    td { (r.addr) }
                                    td { @match r.feed { Some(f) => (person(known.name.as_deref(), &f)), None => "unknown" } }
                                    td { (source_words(r.source)) }
                                    td { (ago(r.last_success_ms)) @if r.failures > 0 { " (" (r.failures) " failures since)" } }
                                }
                            }
                        }
                    } }
                }
            }
            section aria-labelledby="invite-title" {
                h2 #invite-title { "Invite someone" }
                @match &web.settings.invite_code {
                    Some(code) => {
                        p { "Give this code to someone you trust; they join with it." }
                        div.copy-row {
                            input #invite-code type="text" readonly value=(code) aria-label="Invite code";
                            button type="button" data-copy="invite-code" hidden { "Copy" }
                        }
                    }
                    None => p { "Make a code with " code { "potluck invite" } " in a terminal." },
                }
                h3 { "Join with a code" }
                form.inline method="post" action="/network/join" {
                    (csrf(web))
                    (form_error(&forms.join))
                    (Input::new("join-", "code", "Invite code").required().hint("a code for this network: you follow the inviter and stay connected (a code for another network needs a new home: potluck join CODE --home DIR)").draw(&forms.join))
                    button type="submit" { "Join" }
                }
            }
            section aria-labelledby="contacts-title" {
                h2 #contacts-title { "Follow and block" }
                div #contacts data-live {
                    @if view.contacts.is_empty() { p.empty { "You follow and block nobody yet." } }
                    @else {
                        ul.contacts {
                            @for c in &view.contacts {
                                li {
                                    strong { (person(c.name.as_deref(), &c.feed)) } " "
                                    @if c.following { span.badge.admitted { "following" } " " }
                                    @if c.blocking { span.badge.cancelled { "blocked" } " " }
                                    form.mini method="post" action="/network/contact" {
                                        (csrf(web))
                                        input type="hidden" name="feed" value=(c.feed.to_string());
                                        @if c.following { button type="submit" name="action" value="unfollow" aria-label=(format!("Unfollow {}", person(c.name.as_deref(), &c.feed))) { "Unfollow" } }
                                        @if c.blocking { button type="submit" name="action" value="unblock" aria-label=(format!("Unblock {}", person(c.name.as_deref(), &c.feed))) { "Unblock" } }
                                    }
                                }
                            }
                        }
                    }
                }
                form method="post" action="/network/contact" {
                    (csrf(web))
                    (form_error(&forms.contact))
                    (Input::new("contact-", "feed", "Feed id").required().hint("like @AbC…=.ed25519").draw(&forms.contact))
                    div.buttons {
                        button type="submit" name="action" value="follow" { "Follow" }
                        button.danger type="submit" name="action" value="block" { "Block" }
                    }
                }
            }
            p.small { "Peers are shown by name when they have one; otherwise by the start of their feed id, like " (short_feed(&me)) "." }
        },
    )
}
