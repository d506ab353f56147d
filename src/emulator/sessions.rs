//! User sessions (spec §7): tokens with an inactivity timeout reset by each
//! use, and an optional limit of simultaneous sessions per user. Clocks are
//! `tokio::time::Instant`, so tests can pause and advance time.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use super::error::ApiError;

/// A logged-in user, as a request sees it.
#[derive(Clone)]
pub struct SessionUser {
    /// The user's objectId.
    pub user_id: String,
    /// The login (email).
    pub login: String,
    /// The token. Never logged.
    pub token: String,
    /// The user's custom roles.
    pub roles: Vec<String>,
}

impl std::fmt::Debug for SessionUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionUser")
            .field("user_id", &self.user_id)
            .field("login", &self.login)
            .field("token", &"[redacted]")
            .field("roles", &self.roles)
            .finish()
    }
}

struct Session {
    user: SessionUser,
    last_used: Instant,
}

/// All live sessions.
pub(crate) struct Sessions {
    by_token: Mutex<HashMap<String, Session>>,
    timeout: Duration,
    max_per_user: u32,
}

impl Sessions {
    /// Sessions expiring after `timeout` of inactivity; `max_per_user` 0 = unlimited.
    pub(crate) fn new(timeout: Duration, max_per_user: u32) -> Self {
        Self {
            by_token: Mutex::new(HashMap::new()),
            timeout,
            max_per_user,
        }
    }

    fn purge(&self, map: &mut HashMap<String, Session>, now: Instant) {
        map.retain(|_, s| now.duration_since(s.last_used) < self.timeout);
    }

    /// Opens a session; 3044 if the user has reached the limit.
    pub(crate) fn open(
        &self,
        user_id: &str,
        login: &str,
        roles: Vec<String>,
    ) -> Result<SessionUser, ApiError> {
        let now = Instant::now();
        let mut map = self.by_token.lock();
        self.purge(&mut map, now);
        if self.max_per_user > 0 {
            let open = map.values().filter(|s| s.user.user_id == user_id).count();
            if open >= self.max_per_user as usize {
                return Err(ApiError::new(
                    3044,
                    "Unable to login. Multiple login limit for the same user account has been reached",
                ));
            }
        }
        let user = SessionUser {
            user_id: user_id.to_owned(),
            login: login.to_owned(),
            token: uuid::Uuid::new_v4().to_string().to_uppercase(),
            roles,
        };
        map.insert(
            user.token.clone(),
            Session {
                user: user.clone(),
                last_used: now,
            },
        );
        Ok(user)
    }

    /// The session of `token`, refreshed; 3064 if unknown, expired or logged out.
    pub(crate) fn resolve(&self, token: &str) -> Result<SessionUser, ApiError> {
        let now = Instant::now();
        let mut map = self.by_token.lock();
        match map.get_mut(token) {
            Some(s) if now.duration_since(s.last_used) < self.timeout => {
                s.last_used = now;
                Ok(s.user.clone())
            }
            Some(_) => {
                map.remove(token);
                Err(ApiError::bad_token())
            }
            None => Err(ApiError::bad_token()),
        }
    }

    /// Whether `token` is live (does not refresh it).
    pub(crate) fn is_valid(&self, token: &str) -> bool {
        let now = Instant::now();
        self.by_token
            .lock()
            .get(token)
            .is_some_and(|s| now.duration_since(s.last_used) < self.timeout)
    }

    /// Ends a session; whether it existed.
    pub(crate) fn close(&self, token: &str) -> bool {
        self.by_token.lock().remove(token).is_some()
    }

    /// Gives every live session of `user_id` these custom roles (after a role
    /// was assigned or unassigned).
    pub(crate) fn set_roles(&self, user_id: &str, roles: &[String]) {
        for s in self.by_token.lock().values_mut() {
            if s.user.user_id == user_id {
                s.user.roles = roles.to_vec();
            }
        }
    }

    /// The open sessions, with the seconds each has been idle.
    pub(crate) fn list(&self) -> Vec<(SessionUser, u64)> {
        let now = Instant::now();
        self.by_token
            .lock()
            .values()
            .filter(|s| now.duration_since(s.last_used) < self.timeout)
            .map(|s| (s.user.clone(), now.duration_since(s.last_used).as_secs()))
            .collect()
    }

    /// Ends every session of the user with this id or login; how many.
    pub(crate) fn close_user(&self, user: &str) -> usize {
        let mut map = self.by_token.lock();
        let before = map.len();
        map.retain(|_, s| s.user.user_id != user && !s.user.login.eq_ignore_ascii_case(user));
        before - map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn use_resets_the_inactivity_timeout() {
        let s = Sessions::new(Duration::from_secs(10), 0);
        let u = s.open("U", "u@x", vec![]).unwrap();
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(s.resolve(&u.token).is_ok());
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(s.resolve(&u.token).is_ok());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(s.resolve(&u.token).unwrap_err().code, 3064);
    }
}
