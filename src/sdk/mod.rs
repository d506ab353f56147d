//! The handler SDK: a Backendless REST client with explicit identities.
