//! The pages (GET handlers) and what they share: the layout, forms with
//! their errors next to the fields, and error pages.
//!
//! One file per page, plus `layout` (the frame, the error page) and
//! `form` (form state and inputs) that every page uses.

mod agenda;
mod event;
mod event_form;
mod form;
mod layout;
mod lists;
mod login;
mod network;
mod public;
mod thread;

pub(crate) use agenda::agenda;
pub(crate) use event::{EventForms, event, event_page, load_event};
pub(crate) use event_form::{new_event, new_event_page};
pub(crate) use form::{CHECKED, FormState};
pub(crate) use layout::{FORM_ERROR_STATUS, PageError, Site, blocking, blocking_on, not_found};
pub(crate) use lists::{ListPage, PAGE_SIZE, page_number, past, upcoming};
pub(crate) use login::{login, login_page};
pub(crate) use network::{NetworkForms, load_network, network, network_page};
pub(crate) use public::{public_event_page, public_list_page};
pub(crate) use thread::{after_param, comment_anchor, load_thread};
