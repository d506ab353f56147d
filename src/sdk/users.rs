//! The Users service: registration, login, logout, token validation, lookup
//! and search, updates, roles (the current identity's; assigning them with
//! the server key), password recovery and enabling or disabling accounts.

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::client::{Client, IdentityKind};
use super::data::{Query, Saved};
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

/// Whether an account may log in (`userStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserStatus {
    /// The account works.
    Enabled,
    /// Logins are refused (3090) and its sessions end.
    Disabled,
}

impl UserStatus {
    /// The wire value: `ENABLED` or `DISABLED`.
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Enabled => "ENABLED",
            UserStatus::Disabled => "DISABLED",
        }
    }
}

/// The Users service of a [`Client`].
///
/// # Example
/// ```no_run
/// # async fn run(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
/// use coderunner::sdk::Query;
/// let client = ctx.server_key();
/// let users = client.users();
/// let found = users
///     .find::<serde_json::Value>(&Query::new().where_clause("email LIKE '%@example.com'"))
///     .await?;
/// for user in &found {
///     users.assign_role(&user.object_id, "Customer").await?;
/// }
/// # Ok(()) }
/// ```
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

    /// Users matching `query` (`GET data/Users`; the `Users` table's rules apply).
    pub async fn find<U: DeserializeOwned>(
        &self,
        query: &Query,
    ) -> Result<Vec<Saved<U>>, SdkError> {
        let call = query.apply(Call::new(Service::Users, Method::GET, ["data", "Users"]))?;
        self.client.send(call).await
    }

    /// Updates the user `id` with `changes` (`PUT users/{id}`; a `password`
    /// changes it). A user may update only themselves; the server key may
    /// update anyone. Returns the whole user.
    pub async fn update<C, U>(&self, id: &str, changes: &C) -> Result<Saved<U>, SdkError>
    where
        C: Serialize + ?Sized,
        U: DeserializeOwned,
    {
        if id.is_empty() {
            return Err(SdkError::invalid("id", "the user id is empty"));
        }
        let body = serde_json::to_value(changes)
            .map_err(|e| SdkError::invalid("changes", format!("cannot be serialized: {e}")))?;
        if !body.is_object() {
            return Err(SdkError::invalid(
                "changes",
                "must serialize to a JSON object",
            ));
        }
        let call = Call::new(Service::Users, Method::PUT, ["users", id]).body(body);
        self.client.send(call).await
    }

    /// Gives the user `user` (objectId or login) the custom role `role`
    /// (`POST users/assignRole`). Only with the server key (the CloudCode
    /// key): any other identity gets [`SdkError::WrongIdentity`] without a
    /// request.
    pub async fn assign_role(&self, user: &str, role: &str) -> Result<(), SdkError> {
        self.change_role("assignRole", user, role).await
    }

    /// Takes the custom role `role` from `user` (`POST users/unassignRole`);
    /// server key only, as [`Users::assign_role`].
    pub async fn unassign_role(&self, user: &str, role: &str) -> Result<(), SdkError> {
        self.change_role("unassignRole", user, role).await
    }

    async fn change_role(&self, op: &'static str, user: &str, role: &str) -> Result<(), SdkError> {
        if self.client.identity() != IdentityKind::ServerKey {
            return Err(SdkError::WrongIdentity {
                operation: op,
                needed: IdentityKind::ServerKey,
                actual: self.client.identity(),
            });
        }
        if user.is_empty() || role.is_empty() {
            return Err(SdkError::invalid(
                "role",
                "the user and the role must not be empty",
            ));
        }
        let call = Call::new(Service::Users, Method::POST, ["users", op])
            .body(serde_json::json!({ "user": user, "roleName": role }));
        self.client.send_raw(call).await.map(drop)
    }

    /// Starts password recovery for the user with this login
    /// (`GET users/restorepassword/{identity}`): the backend emails them.
    pub async fn restore_password(&self, identity: &str) -> Result<(), SdkError> {
        if identity.is_empty() {
            return Err(SdkError::invalid("identity", "the login is empty"));
        }
        let call = Call::new(
            Service::Users,
            Method::GET,
            ["users", "restorepassword", identity],
        );
        self.client.send_raw(call).await.map(drop)
    }

    /// Enables or disables the account `id` (`PUT users/{id}/status`).
    pub async fn set_status(&self, id: &str, status: UserStatus) -> Result<(), SdkError> {
        if id.is_empty() {
            return Err(SdkError::invalid("id", "the user id is empty"));
        }
        let call = Call::new(Service::Users, Method::PUT, ["users", id, "status"])
            .body(serde_json::json!({ "userStatus": status.as_str() }));
        self.client.send_raw(call).await.map(drop)
    }

    /// `set_status(id, UserStatus::Enabled)`.
    pub async fn enable(&self, id: &str) -> Result<(), SdkError> {
        self.set_status(id, UserStatus::Enabled).await
    }

    /// `set_status(id, UserStatus::Disabled)`.
    pub async fn disable(&self, id: &str) -> Result<(), SdkError> {
        self.set_status(id, UserStatus::Disabled).await
    }
}
