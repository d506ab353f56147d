//! Messaging routes: publish to a channel (`messaging/{channel}`), push
//! notifications (`pushSinglecast`/`pushBroadcast` or the `PUSH` policy on a
//! publish, and `messaging/push/{template}`), email (`messaging/email`,
//! `emailtemplate/send`). Nothing is delivered: each message is captured
//! (bounded, the request log's capacity) for [`super::Inspector::messages`],
//! [`super::Inspector::emails`], `GET /__emulator/messages` and
//! `GET /__emulator/emails`, and answered with a `MessageStatus`.

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::auth::Requester;
use super::error::ApiError;
use super::{json_object, path_param, PathParams, Shared};

/// A published message or push notification the emulator captured.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SentMessage {
    /// The id it was answered with.
    pub message_id: String,
    /// `publish`, `push` (to devices or broadcast) or `pushTemplate`.
    pub kind: String,
    /// The channel (none for a push template).
    pub channel: Option<String>,
    /// The message as sent (none for a push template).
    pub message: Value,
    /// Headers (`{}` when none).
    pub headers: Value,
    /// The subtopic, if any.
    pub subtopic: Option<String>,
    /// Device ids of a singlecast push.
    pub devices: Vec<String>,
    /// The push template's name.
    pub template: Option<String>,
    /// The push template's values.
    pub template_values: Value,
    /// The user whose token came with the request, if any.
    pub user_id: Option<String>,
}

/// An email the emulator captured instead of sending.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SentEmail {
    /// The id it was answered with.
    pub message_id: String,
    /// `email`, `template` or `passwordRecovery`.
    pub kind: String,
    /// The subject (none for a template).
    pub subject: Option<String>,
    /// The plain-text body.
    pub text: Option<String>,
    /// The HTML body.
    pub html: Option<String>,
    /// Recipients.
    pub to: Vec<String>,
    /// Carbon copies (templates).
    pub cc: Vec<String>,
    /// Blind carbon copies (templates).
    pub bcc: Vec<String>,
    /// The `where` clause on Users choosing recipients (templates).
    pub criteria: Option<String>,
    /// The template's name.
    pub template: Option<String>,
    /// The template's values.
    pub template_values: Value,
    /// Attachments (paths in the file storage).
    pub attachments: Vec<String>,
    /// The user whose token came with the request, if any.
    pub user_id: Option<String>,
}

fn status(message_id: &str) -> Json<Value> {
    Json(json!({"messageId": message_id, "status": "scheduled", "errorMessage": null}))
}

fn strings(v: Option<&Value>, name: &str) -> Result<Vec<String>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| ApiError::parse(format!("`{name}` must hold strings")))
            })
            .collect(),
        Some(_) => Err(ApiError::parse(format!(
            "`{name}` must be an array of strings"
        ))),
    }
}

fn text(v: Option<&Value>, name: &str) -> Result<Option<String>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::parse(format!("`{name}` must be a string"))),
    }
}

fn object(v: Option<&Value>, name: &str) -> Result<Value, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(Value::Object(Map::new())),
        Some(o @ Value::Object(_)) => Ok(o.clone()),
        Some(_) => Err(ApiError::parse(format!("`{name}` must be an object"))),
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string().to_uppercase()
}

/// POST messaging/{channel} {message, headers?, subtopic?, publisherId?,
/// pushSinglecast?, pushBroadcast?, publishPolicy?}.
pub(crate) async fn publish(
    State(st): State<Shared>,
    caller: Requester,
    axum::extract::Path(p): PathParams,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let channel = path_param(&p, "channel").to_owned();
    if channel.is_empty() {
        return Err(ApiError::new(5003, "Channel name must not be empty"));
    }
    let body = json_object(&body)?;
    let message = body
        .get("message")
        .cloned()
        .ok_or_else(|| ApiError::new(5001, "The message to publish is missing (`message`)"))?;
    let devices = strings(body.get("pushSinglecast"), "pushSinglecast")?;
    let policy = text(body.get("publishPolicy"), "publishPolicy")?.unwrap_or_default();
    let push = !devices.is_empty()
        || body.get("pushBroadcast").is_some_and(|v| !v.is_null())
        || policy.eq_ignore_ascii_case("PUSH")
        || policy.eq_ignore_ascii_case("BOTH");
    let id = new_id();
    st.log.sent_message(SentMessage {
        message_id: id.clone(),
        kind: if push { "push" } else { "publish" }.to_owned(),
        channel: Some(channel),
        message,
        headers: object(body.get("headers"), "headers")?,
        subtopic: text(body.get("subtopic"), "subtopic")?,
        devices,
        template: None,
        template_values: Value::Null,
        user_id: caller.user_id().map(str::to_owned),
    });
    Ok(status(&id))
}

/// POST messaging/push/{template} {templateValues?}.
pub(crate) async fn push_template(
    State(st): State<Shared>,
    caller: Requester,
    axum::extract::Path(p): PathParams,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let template = path_param(&p, "template").to_owned();
    let body = json_object(&body)?;
    let id = new_id();
    st.log.sent_message(SentMessage {
        message_id: id.clone(),
        kind: "pushTemplate".to_owned(),
        channel: None,
        message: Value::Null,
        headers: Value::Object(Map::new()),
        subtopic: None,
        devices: Vec::new(),
        template: Some(template),
        template_values: object(body.get("templateValues"), "templateValues")?,
        user_id: caller.user_id().map(str::to_owned),
    });
    Ok(status(&id))
}

/// POST messaging/email {subject, bodyparts: {textmessage?, htmlmessage?},
/// to: [..], attachment?: [..]}.
pub(crate) async fn send_email(
    State(st): State<Shared>,
    caller: Requester,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body = json_object(&body)?;
    let subject = text(body.get("subject"), "subject")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::new(5050, "An email needs a subject"))?;
    let parts = object(body.get("bodyparts"), "bodyparts")?;
    let plain = text(parts.get("textmessage"), "bodyparts.textmessage")?;
    let html = text(parts.get("htmlmessage"), "bodyparts.htmlmessage")?;
    if plain.is_none() && html.is_none() {
        return Err(ApiError::new(
            5050,
            "An email needs bodyparts.textmessage or bodyparts.htmlmessage",
        ));
    }
    let to = strings(body.get("to"), "to")?;
    if to.is_empty() {
        return Err(ApiError::new(
            5050,
            "An email needs at least one recipient (`to`)",
        ));
    }
    let id = new_id();
    st.log.sent_email(SentEmail {
        message_id: id.clone(),
        kind: "email".to_owned(),
        subject: Some(subject),
        text: plain,
        html,
        to,
        cc: Vec::new(),
        bcc: Vec::new(),
        criteria: None,
        template: None,
        template_values: Value::Null,
        attachments: strings(body.get("attachment"), "attachment")?,
        user_id: caller.user_id().map(str::to_owned),
    });
    Ok(status(&id))
}

/// POST emailtemplate/send {template-name, addresses?, cc-addresses?,
/// bcc-addresses?, criteria?, uniqueEmails?, template-values?, attachment?}.
pub(crate) async fn send_email_template(
    State(st): State<Shared>,
    caller: Requester,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body = json_object(&body)?;
    let template = text(body.get("template-name"), "template-name")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::new(5050, "`template-name` is required"))?;
    let to = strings(body.get("addresses"), "addresses")?;
    let criteria = text(body.get("criteria"), "criteria")?;
    if to.is_empty() && criteria.is_none() {
        return Err(ApiError::new(
            5050,
            "An email template needs `addresses` or `criteria`",
        ));
    }
    let id = new_id();
    st.log.sent_email(SentEmail {
        message_id: id.clone(),
        kind: "template".to_owned(),
        subject: None,
        text: None,
        html: None,
        to,
        cc: strings(body.get("cc-addresses"), "cc-addresses")?,
        bcc: strings(body.get("bcc-addresses"), "bcc-addresses")?,
        criteria,
        template: Some(template),
        template_values: object(body.get("template-values"), "template-values")?,
        attachments: strings(body.get("attachment"), "attachment")?,
        user_id: caller.user_id().map(str::to_owned),
    });
    Ok(status(&id))
}

/// The password recovery email of `users/restorepassword/{identity}`.
pub(crate) fn password_recovery(st: &Shared, email: &str) {
    st.log.sent_email(SentEmail {
        message_id: new_id(),
        kind: "passwordRecovery".to_owned(),
        subject: Some("Password recovery".to_owned()),
        text: Some(
            "Follow the link to choose a new password (not sent: captured by the emulator)."
                .to_owned(),
        ),
        html: None,
        to: vec![email.to_owned()],
        cc: Vec::new(),
        bcc: Vec::new(),
        criteria: None,
        template: None,
        template_values: Value::Null,
        attachments: Vec::new(),
        user_id: None,
    });
}
