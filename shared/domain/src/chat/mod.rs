//! Chat: cards and replies ([`cards`]), the client hub ([`hub`]),
//! commands and buttons ([`commands`]), requests handled once ([`once`]),
//! routes, chat identities and channel links.

pub mod cards;
pub mod commands;
pub mod hub;
pub mod identities;
pub mod links;
pub mod once;
pub mod routes;

pub use cards::*;
pub use commands::*;
pub use hub::*;
pub use once::*;

pub use crate::ports::{ChatClient, ChatError};
