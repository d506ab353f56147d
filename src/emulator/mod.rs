//! A local emulator of the Backendless REST API on SQLite that fires business logic.
