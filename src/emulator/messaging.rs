//! Messaging routes: publish to a channel (`messaging/{channel}`), push
//! notifications (`pushSinglecast`/`pushBroadcast` or the `PUSH` policy on a
//! publish, and `messaging/push/{template}`), email (`messaging/email`,
//! `emailtemplate/send`). Nothing is delivered: each message is captured
//! (bounded, the request log's capacity) for [`super::Inspector::messages`],
//! [`super::Inspector::emails`], `GET /__emulator/messages` and
//! `GET /__emulator/emails`, and answered with a `MessageStatus`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, State};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::auth::Requester;
use super::error::ApiError;
use super::{PathParams, Shared, json_object, path_param};

/// A published message or push notification the emulator captured.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
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

impl SentMessage {
    /// A message of `kind` from `user_id`, with a new id and nothing else.
    fn new(kind: &str, user_id: Option<&str>) -> Self {
        SentMessage {
            message_id: new_id(),
            kind: kind.to_owned(),
            user_id: user_id.map(str::to_owned),
            ..SentMessage::default()
        }
    }
}

impl SentEmail {
    /// An email of `kind` from `user_id`, with a new id and nothing else.
    fn new(kind: &str, user_id: Option<&str>) -> Self {
        SentEmail {
            message_id: new_id(),
            kind: kind.to_owned(),
            user_id: user_id.map(str::to_owned),
            ..SentEmail::default()
        }
    }
}

/// A messaging request as its route reads it: the user whose token came
/// with it, if any, and its body, which must be a JSON object (8002).
pub(crate) struct MessagingRequest {
    user_id: Option<String>,
    body: Map<String, Value>,
}

impl FromRequest<Shared> for MessagingRequest {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, st: &Shared) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let caller = Requester::from_request_parts(&mut parts, st)
            .await
            .map_err(IntoResponse::into_response)?;
        let bytes = Bytes::from_request(axum::extract::Request::from_parts(parts, body), st)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(MessagingRequest {
            user_id: caller.user_id().map(str::to_owned),
            body: json_object(&bytes).map_err(IntoResponse::into_response)?,
        })
    }
}

/// The `MessageStatus` a captured message or email is answered with.
fn status(message_id: &str) -> Json<Value> {
    Json(json!({"messageId": message_id, "status": "scheduled", "errorMessage": null}))
}

/// Captures `message` and answers it.
fn capture_message(st: &Shared, message: SentMessage) -> Json<Value> {
    let reply = status(&message.message_id);
    st.log.sent_message(message);
    reply
}

/// Captures `email` and answers it.
fn capture_email(st: &Shared, email: SentEmail) -> Json<Value> {
    let reply = status(&email.message_id);
    st.log.sent_email(email);
    reply
}

/// 5050: the email cannot be sent as asked.
fn email_refused(message: &str) -> ApiError {
    ApiError::new(5050, message)
}

/// `Ok` when the email can be sent (`ok`), else 5050 `message`.
fn email_check(ok: bool, message: &str) -> Result<(), ApiError> {
    if ok {
        Ok(())
    } else {
        Err(email_refused(message))
    }
}

/// The text `name` of an email, which must be there and not empty (5050
/// `message` otherwise).
fn required_text(body: &Map<String, Value>, name: &str, message: &str) -> Result<String, ApiError> {
    text(body.get(name), name)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| email_refused(message))
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
    axum::extract::Path(p): PathParams,
    MessagingRequest { user_id, body }: MessagingRequest,
) -> Result<Json<Value>, ApiError> {
    let channel = path_param(&p, "channel").to_owned();
    if channel.is_empty() {
        return Err(ApiError::new(5003, "Channel name must not be empty"));
    }
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
    let kind = if push { "push" } else { "publish" };
    Ok(capture_message(
        &st,
        SentMessage {
            channel: Some(channel),
            message,
            headers: object(body.get("headers"), "headers")?,
            subtopic: text(body.get("subtopic"), "subtopic")?,
            devices,
            ..SentMessage::new(kind, user_id.as_deref())
        },
    ))
}

/// POST messaging/push/{template} {templateValues?}.
pub(crate) async fn push_template(
    State(st): State<Shared>,
    axum::extract::Path(p): PathParams,
    MessagingRequest { user_id, body }: MessagingRequest,
) -> Result<Json<Value>, ApiError> {
    Ok(capture_message(
        &st,
        SentMessage {
            headers: Value::Object(Map::new()),
            template: Some(path_param(&p, "template").to_owned()),
            template_values: object(body.get("templateValues"), "templateValues")?,
            ..SentMessage::new("pushTemplate", user_id.as_deref())
        },
    ))
}

/// POST messaging/email {subject, bodyparts: {textmessage?, htmlmessage?},
/// to: [..], attachment?: [..]}.
pub(crate) async fn send_email(
    State(st): State<Shared>,
    MessagingRequest { user_id, body }: MessagingRequest,
) -> Result<Json<Value>, ApiError> {
    let subject = required_text(&body, "subject", "An email needs a subject")?;
    let parts = object(body.get("bodyparts"), "bodyparts")?;
    let plain = text(parts.get("textmessage"), "bodyparts.textmessage")?;
    let html = text(parts.get("htmlmessage"), "bodyparts.htmlmessage")?;
    email_check(
        plain.is_some() || html.is_some(),
        "An email needs bodyparts.textmessage or bodyparts.htmlmessage",
    )?;
    let to = strings(body.get("to"), "to")?;
    email_check(
        !to.is_empty(),
        "An email needs at least one recipient (`to`)",
    )?;
    Ok(capture_email(
        &st,
        SentEmail {
            subject: Some(subject),
            text: plain,
            html,
            to,
            attachments: strings(body.get("attachment"), "attachment")?,
            ..SentEmail::new("email", user_id.as_deref())
        },
    ))
}

/// POST emailtemplate/send {template-name, addresses?, cc-addresses?,
/// bcc-addresses?, criteria?, uniqueEmails?, template-values?, attachment?}.
pub(crate) async fn send_email_template(
    State(st): State<Shared>,
    MessagingRequest { user_id, body }: MessagingRequest,
) -> Result<Json<Value>, ApiError> {
    let template = required_text(&body, "template-name", "`template-name` is required")?;
    let to = strings(body.get("addresses"), "addresses")?;
    let criteria = text(body.get("criteria"), "criteria")?;
    email_check(
        !to.is_empty() || criteria.is_some(),
        "An email template needs `addresses` or `criteria`",
    )?;
    Ok(capture_email(
        &st,
        SentEmail {
            to,
            cc: strings(body.get("cc-addresses"), "cc-addresses")?,
            bcc: strings(body.get("bcc-addresses"), "bcc-addresses")?,
            criteria,
            template: Some(template),
            template_values: object(body.get("template-values"), "template-values")?,
            attachments: strings(body.get("attachment"), "attachment")?,
            ..SentEmail::new("template", user_id.as_deref())
        },
    ))
}

/// The password recovery email of `users/restorepassword/{identity}`.
pub(crate) fn password_recovery(st: &Shared, email: &str) {
    st.log.sent_email(SentEmail {
        subject: Some("Password recovery".to_owned()),
        text: Some(
            "Follow the link to choose a new password (not sent: captured by the emulator)."
                .to_owned(),
        ),
        to: vec![email.to_owned()],
        ..SentEmail::new("passwordRecovery", None)
    });
}
