//! Forms: what was typed and what was wrong with it, drawn with each
//! error next to its field.

use std::collections::HashMap;

use maud::{Markup, html};

use crate::web::state::Web;

/// What a form holds after a failed submission: the values typed and the
/// errors, by field (`""` for the form as a whole).
#[derive(Clone, Debug, Default)]
pub(crate) struct FormState {
    pub(crate) values: HashMap<&'static str, String>,
    pub(crate) errors: Vec<(&'static str, String)>,
}

impl FormState {
    pub(crate) fn value(&self, name: &str) -> &str {
        self.values.get(name).map_or("", String::as_str)
    }

    pub(crate) fn set(&mut self, name: &'static str, value: impl Into<String>) {
        self.values.insert(name, value.into());
    }

    pub(crate) fn error(&self, name: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| *f == name)
            .map(|(_, e)| e.as_str())
    }

    pub(crate) fn fail(&mut self, name: &'static str, why: impl Into<String>) {
        if self.error(name).is_none() {
            self.errors.push((name, why.into()));
        }
    }

    pub(crate) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }
}

/// The hidden CSRF field every form carries.
pub(crate) fn csrf(web: &Web) -> Markup {
    html! { input type="hidden" name=(crate::web::security::CSRF_FIELD) value=(web.csrf); }
}

/// A form's error about itself, not one field.
pub(crate) fn form_error(form: &FormState) -> Markup {
    html! {
        @if let Some(e) = form.error("") { p.error role="alert" { (e) } }
    }
}

/// The error of one field, placed next to it; the input refers to it with
/// `aria-describedby`.
pub(super) fn field_error(prefix: &str, form: &FormState, name: &str) -> Markup {
    html! {
        @if let Some(e) = form.error(name) {
            p.error id=(format!("{prefix}{name}-error")) { (e) }
        }
    }
}

/// The value a ticked checkbox sends, and that a [`FormState`] holds for
/// one that is ticked.
pub(crate) const CHECKED: &str = "on";

/// How one input is drawn.
pub(crate) struct Input<'a> {
    pub(crate) name: &'static str,
    pub(crate) label: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) required: bool,
    pub(crate) max_chars: Option<usize>,
    pub(crate) hint: Option<&'a str>,
    /// Prefix of the element ids, so two forms on a page do not clash.
    pub(crate) prefix: &'a str,
}

impl<'a> Input<'a> {
    pub(crate) fn new(prefix: &'a str, name: &'static str, label: &'a str) -> Input<'a> {
        Input {
            name,
            label,
            kind: "text",
            required: false,
            max_chars: None,
            hint: None,
            prefix,
        }
    }
    pub(super) fn kind(mut self, kind: &'a str) -> Self {
        self.kind = kind;
        self
    }
    pub(super) fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub(super) fn max(mut self, chars: usize) -> Self {
        self.max_chars = Some(chars);
        self
    }
    pub(super) fn hint(mut self, hint: &'a str) -> Self {
        self.hint = Some(hint);
        self
    }

    pub(super) fn draw(&self, form: &FormState) -> Markup {
        let id = format!("{}{}", self.prefix, self.name);
        let err_id = format!("{id}-error");
        let hint_id = format!("{id}-hint");
        let described = match (form.error(self.name).is_some(), self.hint.is_some()) {
            (true, true) => Some(format!("{err_id} {hint_id}")),
            (true, false) => Some(err_id),
            (false, true) => Some(hint_id.clone()),
            (false, false) => None,
        };
        if self.kind == "checkbox" {
            // The box before its label, as people expect a tick box; the
            // form sends `on` when it is ticked, nothing otherwise.
            return html! {
                div.field.check {
                    div {
                        input id=(id) name=(self.name) type="checkbox" value=(CHECKED)
                            checked[form.value(self.name) == CHECKED]
                            aria-describedby=[described.as_deref()];
                        " "
                        label for=(id) { (self.label) }
                    }
                    @if let Some(h) = self.hint { small.hint id=(hint_id) { (h) } }
                    (field_error(self.prefix, form, self.name))
                }
            };
        }
        html! {
            div.field {
                label for=(id) { (self.label) @if self.required { " " span.req aria-hidden="true" { "*" } } }
                @if self.kind == "textarea" {
                    textarea id=(id) name=(self.name) rows="5" required[self.required]
                        aria-invalid=[form.error(self.name).map(|_| "true")]
                        aria-describedby=[described.as_deref()] { (form.value(self.name)) }
                } @else {
                    input id=(id) name=(self.name) type=(self.kind) value=(form.value(self.name))
                        required[self.required]
                        maxlength=[self.max_chars]
                        min=[(self.kind == "number").then_some("0")]
                        aria-invalid=[form.error(self.name).map(|_| "true")]
                        aria-describedby=[described.as_deref()];
                }
                @if let Some(h) = self.hint { small.hint id=(hint_id) { (h) } }
                (field_error(self.prefix, form, self.name))
            }
        }
    }
}
