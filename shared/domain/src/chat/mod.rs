//! Chat: the client hub ([`hub`]), commands and buttons ([`commands`]),
//! requests handled once ([`once`]) and chat identities ([`identities`]).
//! The card and reply texts are [`crate::cards`] (re-exported here); routes
//! and channel links are [`crate::routing`].

pub mod commands;
pub mod hub;
pub mod identities;
pub mod once;

pub use crate::cards::*;
pub use commands::*;
pub use hub::*;
pub use once::*;

pub use crate::ports::{ChatClient, ChatError};
