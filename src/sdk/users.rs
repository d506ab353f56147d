//! The Users service: registration, login, logout, token validation, lookup
//! and the current identity's roles.

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::client::Client;
use super::data::Saved;
use super::error::SdkError;
use super::transport::{decode, Call, Service};
use crate::event::UserToken;

/// Logout errors meaning "already logged out" (spec §4.1).
const ALREADY_LOGGED_OUT: &[i64] = &[3023, 3064, 3090, 3091];

/// A successful [`Users::login`]: the user and their new session token.
#[derive(Debug, Clone)]
pub struct LoggedIn {
    /// The user's row (never includes the password).
    pub user: Saved<Value>,
    /// The session token; act as this user with `Backendless::caller(Some(token))`.
    pub token: UserToken,
}

/// The Users service of a [`Client`].
#[derive(Debug, Clone, Copy)]
pub struct Users<'a> {
    client: &'a Client,
}

impl<'a> Users<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Users { client }
    }

    /// Registers a user (`user` holds the identity column, `email` by
    /// default, and any other fields). Does not log in.
    pub async fn register<U>(&self, user: &U, password: &SecretString) -> Result<Saved<U>, SdkError>
    where
        U: Serialize + DeserializeOwned,
    {
        let mut body = serde_json::to_value(user)
            .map_err(|e| SdkError::invalid("user", format!("cannot be serialized: {e}")))?;
        let Value::Object(map) = &mut body else {
            return Err(SdkError::invalid("user", "must serialize to a JSON object"));
        };
        map.insert(
            "password".to_owned(),
            Value::String(password.expose_secret().to_owned()),
        );
        let call = Call::new(Service::Users, Method::POST, ["users", "register"]).body(body);
        self.client.send(call).await
    }

    /// Logs a user in. No `user-token` is sent, whatever this client's identity.
    pub async fn login(&self, login: &str, password: &SecretString) -> Result<LoggedIn, SdkError> {
        let call = Call::new(Service::Users, Method::POST, ["users", "login"])
            .body(serde_json::json!({ "login": login, "password": password.expose_secret() }));
        let mut reply = self.client.send_without_token(call).await?;
        let token = reply
            .as_object_mut()
            .and_then(|m| m.remove("user-token"))
            .and_then(|t| t.as_str().map(UserToken::new))
            .ok_or(SdkError::Decode {
                service: Service::Users.as_str(),
                message: "the login reply has no user-token".to_owned(),
            })?;
        let user = decode(Service::Users, reply)?;
        Ok(LoggedIn { user, token })
    }

    /// Ends the caller's session (`GET /users/logout` with the caller's
    /// token). Only for a caller client with a token: the superuser session
    /// is shared and ended by `Backendless::shutdown`. A token that is
    /// already invalid counts as logged out.
    pub async fn logout(&self) -> Result<(), SdkError> {
        if self.client.caller_token().is_none() {
            return Err(SdkError::invalid(
                "identity",
                format!(
                    "logout needs a caller client with a token, not {}{}",
                    self.client.identity(),
                    if self.client.is_anonymous() {
                        " (anonymous)"
                    } else {
                        ""
                    }
                ),
            ));
        }
        let call = Call::new(Service::Users, Method::GET, ["users", "logout"]);
        match self.client.send_raw(call).await {
            Ok(_) => Ok(()),
            Err(e) if e.code().is_some_and(|c| ALREADY_LOGGED_OUT.contains(&c)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Whether `token` is a valid session token
    /// (`GET /users/isvalidusertoken/{token}`; logs show the path redacted).
    pub async fn is_valid_token(&self, token: &UserToken) -> Result<bool, SdkError> {
        if token.expose().is_empty() {
            return Err(SdkError::invalid("token", "the token is empty"));
        }
        let call = Call::new(Service::Users, Method::GET, ["users", "isvalidusertoken"])
            .secret_segment(token.expose());
        self.client.send(call).await
    }

    /// The user `id` (`GET /data/Users/{id}`), or `None` when it does not exist.
    pub async fn find_by_id<U: DeserializeOwned>(
        &self,
        id: &str,
    ) -> Result<Option<Saved<U>>, SdkError> {
        if id.is_empty() {
            return Err(SdkError::invalid("id", "the user id is empty"));
        }
        let call = Call::new(Service::Users, Method::GET, ["data", "Users", id]);
        match self.client.send(call).await {
            Ok(user) => Ok(Some(user)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The roles of this client's identity (`GET /users/userroles`).
    pub async fn roles(&self) -> Result<Vec<String>, SdkError> {
        let call = Call::new(Service::Users, Method::GET, ["users", "userroles"]);
        self.client.send(call).await
    }
}
