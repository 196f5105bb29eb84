//! Where incidents go in chat: the tenant's routing rules ([`routes`]) and
//! the chat channels and workspaces linked to the tenant ([`links`]).
//! Below chat, escalation, tickets and noise, which all consult it.

pub mod links;
pub mod routes;
