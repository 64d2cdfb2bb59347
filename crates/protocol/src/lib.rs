//! tidesync wire types, validation and merge rules. Pure: no I/O.
//!
//! Everything the HTTP API accepts or returns is defined here so that the
//! server and any client SDK agree on one shape.

pub mod auth;
pub mod cursor;
pub mod data;
pub mod entity;
pub mod error;
pub mod ids;
pub mod invitations;
pub mod merge;
pub mod schema;
pub mod scope;
pub mod spaces;
pub mod sync;
pub mod time;

pub use ids::{InvitationId, RecordId, UserId};
pub use scope::{Role, ScopeId};
/// The `uuid` crate this one's ids are made of.
pub use uuid;
