//! The login page: the access token, asked only beyond loopback.

use axum::extract::State;
use maud::{Markup, html};

use super::form::{FormState, Input, csrf, form_error};
use super::layout::{Nav, layout};
use crate::web::state::Web;

/// `GET /login`: the access-token form (only needed beyond loopback).
pub(crate) async fn login(State(web): State<Web>) -> Markup {
    login_page(&web, &FormState::default())
}

pub(crate) fn login_page(web: &Web, form: &FormState) -> Markup {
    layout(
        "Log in",
        Nav::None,
        "",
        None,
        html! {
            h1 { "Access token" }
            p { "This page is reachable from other computers, so it asks for the access token that " code { "potluck serve" } " showed when it made it." }
            form method="post" action="/login" {
                (csrf(web))
                (form_error(form))
                (Input::new("", "token", "Access token").kind("password").required().draw(form))
                button type="submit" { "Log in" }
            }
        },
    )
}
