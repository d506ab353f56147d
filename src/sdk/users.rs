//! The Users service: registration, login, logout, token validation, lookup
//! and search, updates, roles (the current identity's; assigning them with
//! the server key), password recovery and enabling or disabling accounts.

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::client::{Client, IdentityKind};
use super::data::{Query, Saved};
use super::error::SdkError;
use super::transport::{Call, Service, decode};
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
    /// The wire value of `userStatus`: `ENABLED` or `DISABLED`.
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::UserStatus;
    /// assert_eq!(UserStatus::Disabled.as_str(), "DISABLED");
    /// ```
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

    /// Registers a user (`POST users/register`): `user` holds the identity
    /// column (`email` by default) and any other fields, the password goes
    /// beside them. It does not log the user in. The error met most often is
    /// 3033, a user with that email exists already.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context, password: secrecy::SecretString) -> Result<(), coderunner::sdk::SdkError> {
    /// use serde_json::{json, Value};
    /// // `password` came from the event's arguments, kept as a secret.
    /// let users = ctx.server_key();
    /// let created = users
    ///     .users()
    ///     .register(&json!({"email": "carol@example.com", "name": "Carol"}), &password)
    ///     .await?;
    /// let id: &str = &created.object_id;
    /// # let _ = id;
    /// # Ok(()) }
    /// ```
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

    /// Logs a user in (`POST users/login` with `{login, password}`) and
    /// returns the user and their new session token; no `user-token` is sent,
    /// whatever this client's identity. To act as that user, make a caller
    /// client with the token (`Backendless::caller(Some(token))`). The errors
    /// met most often: 3003 invalid login or password, 3090 the account is
    /// disabled, 3044 the account's login limit is reached.
    ///
    /// # Example
    /// ```
    /// # async fn example(sdk: coderunner::sdk::Backendless, password: secrecy::SecretString) -> Result<(), coderunner::sdk::SdkError> {
    /// let logged_in = sdk.server_key().users().login("alice@example.com", &password).await?;
    /// let alice = sdk.caller(Some(logged_in.token));
    /// let roles = alice.users().roles().await?;
    /// alice.users().logout().await?;
    /// # let _ = roles;
    /// # Ok(()) }
    /// ```
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

    /// Ends the caller's session (`GET users/logout` with the caller's
    /// token). Only for a caller client with a token: on the superuser, the
    /// server key or an anonymous caller it is [`SdkError::InvalidArgument`]
    /// (argument `identity`) before any request; the shared superuser session
    /// is ended by `Backendless::shutdown`. A token that is already invalid
    /// (3064, 3023, 3090, 3091) counts as logged out, not as an error.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// // In an API service method "sign out everywhere": end the caller's session.
    /// ctx.caller().users().logout().await?;
    /// # Ok(()) }
    /// ```
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

    /// Whether `token` is a live session token
    /// (`GET users/isvalidusertoken/{token}`): an expired or unknown token is
    /// `false`, not an error. Any identity may ask; the token in the path is
    /// logged as `[redacted]`. An empty token is [`SdkError::InvalidArgument`].
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context, token: coderunner::event::UserToken) -> Result<(), coderunner::sdk::SdkError> {
    /// if !ctx.server_key().users().is_valid_token(&token).await? {
    ///     // Ask the user to log in again.
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn is_valid_token(&self, token: &UserToken) -> Result<bool, SdkError> {
        if token.expose().is_empty() {
            return Err(SdkError::invalid("token", "the token is empty"));
        }
        let call = Call::new(Service::Users, Method::GET, ["users", "isvalidusertoken"])
            .secret_segment(token.expose());
        self.client.send(call).await
    }

    /// The user `id` (`GET data/Users/{id}`), or `None` when there is none
    /// (1000). The `Users` table's find permission of this client's identity
    /// applies: a refused find is 1013.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// if let Some(me) = ctx.caller().users().find_by_id::<serde_json::Value>(ctx.user_id().unwrap_or_default()).await? {
    ///     let email = me.data["email"].as_str();
    /// #   let _ = email;
    /// }
    /// # Ok(()) }
    /// ```
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

    /// The roles of this client's identity (`GET users/userroles`): the
    /// caller's custom and system roles, the superuser's, or the key's role
    /// alone for the server key. For the caller, [`crate::Context::user_roles`]
    /// already holds what the backend sent with the event, without a request.
    /// A caller with an expired token gets 3064.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let roles = ctx.superuser().users().roles().await?;
    /// if !roles.iter().any(|r| r == "Admin") {
    ///     // The configured superuser lacks the role this app expects.
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn roles(&self) -> Result<Vec<String>, SdkError> {
        let call = Call::new(Service::Users, Method::GET, ["users", "userroles"]);
        self.client.send(call).await
    }

    /// Users matching `query` (`GET data/Users?where=&pageSize=&offset=&sortBy=&props=`),
    /// one page. The `Users` table's find permission of this client's identity
    /// applies (1013 when refused); a where clause the backend cannot parse is
    /// 1017; a page size outside 1..=100 is [`SdkError::InvalidArgument`]
    /// before any request.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use coderunner::sdk::Query;
    /// let staff = ctx
    ///     .server_key()
    ///     .users()
    ///     .find::<serde_json::Value>(&Query::new().where_clause("email LIKE '%@example.com'").page_size(100))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn find<U: DeserializeOwned>(
        &self,
        query: &Query,
    ) -> Result<Vec<Saved<U>>, SdkError> {
        let call = query.apply(Call::new(Service::Users, Method::GET, ["data", "Users"]))?;
        self.client.send(call).await
    }

    /// Updates the user `id` with `changes` and returns the whole user
    /// (`PUT users/{id}`); a `password` among the changes sets a new one. The
    /// `Users` table's update permission applies, and without the CloudCode
    /// key a user may change only themselves: otherwise 1012. A new `email`
    /// that another user has is 3033.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use serde_json::{json, Value};
    /// let id = ctx.user_id().unwrap_or_default();
    /// let user = ctx.caller().users().update::<_, Value>(id, &json!({"nickname": "al"})).await?;
    /// # Ok(()) }
    /// ```
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
    /// (`POST users/assignRole`). Only with the server key
    /// (`ctx.server_key()`, the CloudCode key): any other identity gets
    /// [`SdkError::WrongIdentity`] without a request, and a key that is not the
    /// CloudCode key gets 2011 from the backend. An unknown user is 3020, a
    /// system role 2010.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// if let Some(id) = ctx.user_id() {
    ///     ctx.server_key().users().assign_role(id, "Customer").await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn assign_role(&self, user: &str, role: &str) -> Result<(), SdkError> {
        self.change_role("assignRole", user, role).await
    }

    /// Takes the custom role `role` from `user` (`POST users/unassignRole`);
    /// server key only, with the same errors as [`Users::assign_role`].
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// ctx.server_key().users().unassign_role("bob@example.com", "Customer").await?;
    /// # Ok(()) }
    /// ```
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
    /// (`GET users/restorepassword/{identity}`): the backend emails them a
    /// link. Any identity may ask; an unknown login is 3020.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// ctx.server_key().users().restore_password("alice@example.com").await?;
    /// # Ok(()) }
    /// ```
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

    /// Enables or disables the account `id`
    /// (`PUT users/{id}/status` with `{userStatus}`). It needs the CloudCode
    /// key (2011 otherwise): use `ctx.server_key()`. A disabled account's
    /// sessions end and its logins get 3090; an unknown id is 3020.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use coderunner::sdk::UserStatus;
    /// ctx.server_key().users().set_status("3A9C0E2B-0000-4000-8000-000000000000", UserStatus::Disabled).await?;
    /// # Ok(()) }
    /// ```
    pub async fn set_status(&self, id: &str, status: UserStatus) -> Result<(), SdkError> {
        if id.is_empty() {
            return Err(SdkError::invalid("id", "the user id is empty"));
        }
        let call = Call::new(Service::Users, Method::PUT, ["users", id, "status"])
            .body(serde_json::json!({ "userStatus": status.as_str() }));
        self.client.send_raw(call).await.map(drop)
    }

    /// Enables the account `id`: `set_status(id, UserStatus::Enabled)`, with
    /// its errors (2011 without the CloudCode key, 3020 an unknown id).
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// ctx.server_key().users().enable("3A9C0E2B-0000-4000-8000-000000000000").await?;
    /// # Ok(()) }
    /// ```
    pub async fn enable(&self, id: &str) -> Result<(), SdkError> {
        self.set_status(id, UserStatus::Enabled).await
    }

    /// Disables the account `id`: `set_status(id, UserStatus::Disabled)`; its
    /// sessions end and its logins get 3090. 2011 without the CloudCode key.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// ctx.server_key().users().disable("3A9C0E2B-0000-4000-8000-000000000000").await?;
    /// # Ok(()) }
    /// ```
    pub async fn disable(&self, id: &str) -> Result<(), SdkError> {
        self.set_status(id, UserStatus::Disabled).await
    }
}
