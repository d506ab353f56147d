//! Integration tests of the Backendless emulator: real HTTP on 127.0.0.1:0,
//! except where paused time needs in-process calls.

mod helpers;

mod cache;
mod config;
mod dispatch;
mod inspection;
mod paused;
mod permissions;
mod rest;
mod users;
mod where_clause;
