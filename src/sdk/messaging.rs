//! The Messaging service: publish to a channel, push notifications (to
//! devices, or from a template) and email (basic, or from a template). Every
//! call answers with a [`MessageStatus`].

use std::collections::BTreeMap;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::client::Client;
use super::error::SdkError;
use super::transport::{Call, Service};

/// What the backend says about a message it accepted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageStatus {
    /// The id the backend gave the message.
    pub message_id: String,
    /// Its delivery status (`scheduled`, `published`, ...).
    #[serde(default)]
    pub status: Option<String>,
    /// Why delivery failed, when it did.
    #[serde(default)]
    pub error_message: Option<String>,
}

/// Headers, subtopic and publisher of a published message.
///
/// # Example
/// ```
/// use coderunner::sdk::PublishOptions;
/// let options = PublishOptions::new().header("city", "Oslo").subtopic("weather.today");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishOptions {
    headers: BTreeMap<String, String>,
    subtopic: Option<String>,
    publisher_id: Option<String>,
}

impl PublishOptions {
    /// No headers, no subtopic, no publisher id.
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::PublishOptions;
    /// let plain = PublishOptions::new();
    /// # let _ = plain;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a header (subscribers can select on headers; for a push, the
    /// platform fields such as `ios-alert` or `android-content-title`).
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::PublishOptions;
    /// let options = PublishOptions::new().header("city", "Oslo").header("android-content-title", "Weather");
    /// # let _ = options;
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// The subtopic (`a.b.c`), which subscribers can filter on.
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::PublishOptions;
    /// let options = PublishOptions::new().subtopic("weather.today");
    /// # let _ = options;
    /// ```
    pub fn subtopic(mut self, subtopic: impl Into<String>) -> Self {
        self.subtopic = Some(subtopic.into());
        self
    }

    /// The publisher's id shown to subscribers.
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::PublishOptions;
    /// let options = PublishOptions::new().publisher_id("order-service");
    /// # let _ = options;
    /// ```
    pub fn publisher_id(mut self, id: impl Into<String>) -> Self {
        self.publisher_id = Some(id.into());
        self
    }

    fn apply(&self, body: &mut Map<String, Value>) {
        if !self.headers.is_empty() {
            body.insert("headers".into(), serde_json::json!(self.headers));
        }
        if let Some(s) = &self.subtopic {
            body.insert("subtopic".into(), Value::String(s.clone()));
        }
        if let Some(p) = &self.publisher_id {
            body.insert("publisherId".into(), Value::String(p.clone()));
        }
    }
}

/// A plain email ([`Messaging::send_email`]): a subject, a text and/or HTML
/// body, recipients and attachments (paths in the file storage).
///
/// # Example
/// ```
/// use coderunner::sdk::Email;
/// let email = Email::new("Your order").text("It ships today.").to("alice@example.com");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Email {
    subject: String,
    text: Option<String>,
    html: Option<String>,
    to: Vec<String>,
    attachments: Vec<String>,
}

impl Email {
    /// An email with this subject, no body and no recipient yet: add a body
    /// ([`Email::text`] or [`Email::html`]) and at least one [`Email::to`].
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::Email;
    /// let email = Email::new("Your order").text("It ships today.").to("alice@example.com");
    /// # let _ = email;
    /// ```
    pub fn new(subject: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            ..Self::default()
        }
    }

    /// The plain-text body.
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::Email;
    /// let email = Email::new("Reminder").text("Your trial ends tomorrow.").to("bob@example.com");
    /// # let _ = email;
    /// ```
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// The HTML body (with [`Email::text`] too, mail readers choose).
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::Email;
    /// let email = Email::new("Receipt")
    ///     .html("<p>Total: <b>12.50</b></p>")
    ///     .text("Total: 12.50")
    ///     .to("alice@example.com");
    /// # let _ = email;
    /// ```
    pub fn html(mut self, html: impl Into<String>) -> Self {
        self.html = Some(html.into());
        self
    }

    /// Adds a recipient (call it once per address).
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::Email;
    /// let email = Email::new("Team news").text("Hello all.").to("alice@example.com").to("bob@example.com");
    /// # let _ = email;
    /// ```
    pub fn to(mut self, address: impl Into<String>) -> Self {
        self.to.push(address.into());
        self
    }

    /// Attaches the file at `path` in the app's file storage (upload it
    /// first with [`crate::sdk::Files::upload`]).
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::Email;
    /// let email = Email::new("Your invoice").text("Attached.").to("alice@example.com").attach("invoices/7.pdf");
    /// # let _ = email;
    /// ```
    pub fn attach(mut self, path: impl Into<String>) -> Self {
        self.attachments.push(path.into());
        self
    }
}

/// Who gets an email made from a template
/// ([`Messaging::send_email_template`]): addresses, or a `where` clause on
/// the `Users` table.
///
/// # Example
/// ```
/// use coderunner::sdk::EmailEnvelope;
/// let envelope = EmailEnvelope::to(["alice@example.com"]).cc(["audit@example.com"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmailEnvelope {
    to: Vec<String>,
    cc: Vec<String>,
    bcc: Vec<String>,
    criteria: Option<String>,
    unique_emails: bool,
}

impl EmailEnvelope {
    /// An envelope for these addresses.
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::EmailEnvelope;
    /// let envelope = EmailEnvelope::to(["alice@example.com", "bob@example.com"]);
    /// # let _ = envelope;
    /// ```
    pub fn to<I, S>(addresses: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            to: addresses.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// An envelope for the users matching `where_clause` on the `Users`
    /// table (the backend ignores `to` addresses then).
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::EmailEnvelope;
    /// let envelope = EmailEnvelope::users_where("newsletter = true");
    /// # let _ = envelope;
    /// ```
    pub fn users_where(where_clause: impl Into<String>) -> Self {
        Self {
            criteria: Some(where_clause.into()),
            ..Self::default()
        }
    }

    /// Adds carbon copies.
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::EmailEnvelope;
    /// let envelope = EmailEnvelope::to(["alice@example.com"]).cc(["audit@example.com"]);
    /// # let _ = envelope;
    /// ```
    pub fn cc<I: IntoIterator<Item = S>, S: Into<String>>(mut self, addresses: I) -> Self {
        self.cc.extend(addresses.into_iter().map(Into::into));
        self
    }

    /// Adds blind carbon copies.
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::EmailEnvelope;
    /// let envelope = EmailEnvelope::to(["alice@example.com"]).bcc(["archive@example.com"]);
    /// # let _ = envelope;
    /// ```
    pub fn bcc<I: IntoIterator<Item = S>, S: Into<String>>(mut self, addresses: I) -> Self {
        self.bcc.extend(addresses.into_iter().map(Into::into));
        self
    }

    /// One email per address even if it appears twice (`uniqueEmails`).
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::EmailEnvelope;
    /// let envelope = EmailEnvelope::users_where("plan = 'pro'").unique_emails(true);
    /// # let _ = envelope;
    /// ```
    pub fn unique_emails(mut self, unique: bool) -> Self {
        self.unique_emails = unique;
        self
    }
}

/// The Messaging service of a [`Client`].
///
/// # Example
/// ```no_run
/// # async fn run(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
/// use coderunner::sdk::{Email, PublishOptions};
/// let client = ctx.server_key();
/// let messaging = client.messaging();
/// messaging
///     .publish("orders", &serde_json::json!({"id": 7}), &PublishOptions::new().header("kind", "new"))
///     .await?;
/// messaging
///     .send_email(&Email::new("Order 7").text("Shipped.").to("alice@example.com"))
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Messaging<'a> {
    client: &'a Client,
}

impl<'a> Messaging<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Messaging { client }
    }

    /// Publishes `message` (any serde value) to `channel` and returns its
    /// [`MessageStatus`] (`POST messaging/{channel}` with `{message, headers,
    /// subtopic, publisherId}`). An empty channel or one with `/` is
    /// [`SdkError::InvalidArgument`] before any request (the backend would
    /// answer 5003), as is a message serde cannot serialize.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use coderunner::sdk::PublishOptions;
    /// let status = ctx
    ///     .server_key()
    ///     .messaging()
    ///     .publish("orders", &serde_json::json!({"id": 7}), &PublishOptions::new().header("kind", "new"))
    ///     .await?;
    /// tracing::info!(message_id = %status.message_id, "published");
    /// # Ok(()) }
    /// ```
    pub async fn publish<M: Serialize + ?Sized>(
        &self,
        channel: &str,
        message: &M,
        options: &PublishOptions,
    ) -> Result<MessageStatus, SdkError> {
        let mut body = Map::new();
        body.insert("message".into(), to_json("message", message)?);
        options.apply(&mut body);
        self.send_to_channel(channel, body).await
    }

    /// Sends `message` as a push notification to the devices with these ids
    /// (`POST messaging/{channel}` with `pushSinglecast` and the `PUSH`
    /// policy); `options`' headers carry the platform fields (`ios-alert`,
    /// `android-content-title`, ...). No device id, or an empty one, is
    /// [`SdkError::InvalidArgument`] before any request, as is a bad channel.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use coderunner::sdk::PublishOptions;
    /// let options = PublishOptions::new().header("android-content-title", "Order 7");
    /// ctx.server_key()
    ///     .messaging()
    ///     .push_to_devices("default", "Your order shipped", ["DEVICE-ID-1"], &options)
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn push_to_devices<I, S>(
        &self,
        channel: &str,
        message: &str,
        devices: I,
        options: &PublishOptions,
    ) -> Result<MessageStatus, SdkError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let devices: Vec<String> = devices.into_iter().map(Into::into).collect();
        if devices.is_empty() || devices.iter().any(String::is_empty) {
            return Err(SdkError::invalid(
                "devices",
                "give at least one device id, none empty",
            ));
        }
        let mut body = Map::new();
        body.insert("message".into(), Value::String(message.to_owned()));
        body.insert("pushSinglecast".into(), serde_json::json!(devices));
        body.insert("publishPolicy".into(), Value::String("PUSH".into()));
        options.apply(&mut body);
        self.send_to_channel(channel, body).await
    }

    async fn send_to_channel(
        &self,
        channel: &str,
        body: Map<String, Value>,
    ) -> Result<MessageStatus, SdkError> {
        if channel.is_empty() || channel.contains('/') {
            return Err(SdkError::invalid(
                "channel",
                "a channel name is not empty and has no `/`",
            ));
        }
        let call = Call::new(Service::Messaging, Method::POST, ["messaging", channel])
            .body(Value::Object(body));
        self.client.send(call).await
    }

    /// Sends the push template `template` (made in the Backendless console)
    /// with `values` for its smart text (`POST messaging/push/{template}` with
    /// `{templateValues}`). An empty name is [`SdkError::InvalidArgument`]
    /// before any request.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let values = serde_json::json!({"orderId": 7});
    /// ctx.server_key().messaging().push_with_template("order-shipped", Some(&values)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn push_with_template(
        &self,
        template: &str,
        values: Option<&Value>,
    ) -> Result<MessageStatus, SdkError> {
        if template.is_empty() {
            return Err(SdkError::invalid("template", "the template name is empty"));
        }
        let mut body = Map::new();
        if let Some(values) = values {
            body.insert("templateValues".into(), values.clone());
        }
        let call = Call::new(
            Service::Messaging,
            Method::POST,
            ["messaging", "push", template],
        )
        .body(Value::Object(body));
        self.client.send(call).await
    }

    /// Sends a plain email (`POST messaging/email` with `{subject, bodyparts,
    /// to, attachment}`). An empty subject, no body or no recipient is
    /// [`SdkError::InvalidArgument`] before any request (the backend would
    /// answer 5050).
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use coderunner::sdk::Email;
    /// ctx.server_key()
    ///     .messaging()
    ///     .send_email(&Email::new("Order 7").text("Shipped.").to("alice@example.com"))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_email(&self, email: &Email) -> Result<MessageStatus, SdkError> {
        if email.subject.is_empty() {
            return Err(SdkError::invalid("subject", "the subject is empty"));
        }
        if email.text.is_none() && email.html.is_none() {
            return Err(SdkError::invalid(
                "body",
                "an email needs a text or an HTML body",
            ));
        }
        if email.to.is_empty() {
            return Err(SdkError::invalid("to", "an email needs a recipient"));
        }
        let mut parts = Map::new();
        if let Some(t) = &email.text {
            parts.insert("textmessage".into(), Value::String(t.clone()));
        }
        if let Some(h) = &email.html {
            parts.insert("htmlmessage".into(), Value::String(h.clone()));
        }
        let mut body = serde_json::json!({
            "subject": email.subject, "bodyparts": parts, "to": email.to,
        });
        if !email.attachments.is_empty() {
            body["attachment"] = serde_json::json!(email.attachments);
        }
        let call = Call::new(Service::Messaging, Method::POST, ["messaging", "email"]).body(body);
        self.client.send(call).await
    }

    /// Sends the email template `template` (made in the console) to
    /// `envelope`, with `values` for its smart text (`POST emailtemplate/send`
    /// with `{template-name, addresses, cc-addresses, bcc-addresses, criteria,
    /// uniqueEmails, template-values}`). An empty name, or an envelope with
    /// neither addresses nor a where clause, is [`SdkError::InvalidArgument`]
    /// before any request.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use coderunner::sdk::EmailEnvelope;
    /// let values = serde_json::json!({"total": "12.50"});
    /// ctx.server_key()
    ///     .messaging()
    ///     .send_email_template("receipt", &EmailEnvelope::to(["alice@example.com"]), Some(&values))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_email_template(
        &self,
        template: &str,
        envelope: &EmailEnvelope,
        values: Option<&Value>,
    ) -> Result<MessageStatus, SdkError> {
        if template.is_empty() {
            return Err(SdkError::invalid("template", "the template name is empty"));
        }
        if envelope.to.is_empty() && envelope.criteria.is_none() {
            return Err(SdkError::invalid(
                "envelope",
                "give addresses or a `where` clause on Users",
            ));
        }
        let mut body = Map::new();
        body.insert("template-name".into(), Value::String(template.to_owned()));
        if !envelope.to.is_empty() {
            body.insert("addresses".into(), serde_json::json!(envelope.to));
        }
        if !envelope.cc.is_empty() {
            body.insert("cc-addresses".into(), serde_json::json!(envelope.cc));
        }
        if !envelope.bcc.is_empty() {
            body.insert("bcc-addresses".into(), serde_json::json!(envelope.bcc));
        }
        if let Some(c) = &envelope.criteria {
            body.insert("criteria".into(), Value::String(c.clone()));
        }
        body.insert("uniqueEmails".into(), Value::Bool(envelope.unique_emails));
        if let Some(values) = values {
            body.insert("template-values".into(), values.clone());
        }
        let call = Call::new(Service::Messaging, Method::POST, ["emailtemplate", "send"])
            .body(Value::Object(body));
        self.client.send(call).await
    }
}

fn to_json<V: Serialize + ?Sized>(argument: &'static str, value: &V) -> Result<Value, SdkError> {
    serde_json::to_value(value)
        .map_err(|e| SdkError::invalid(argument, format!("cannot be serialized: {e}")))
}
