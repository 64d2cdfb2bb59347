//! Scopes: the units of data a cursor covers. Every user has a personal
//! scope (all of their unshared data, spaces included); a space that is
//! shared with another account moves into a scope of its own, with its own
//! version counter and its members.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A scope's number, assigned by the server. Appears in cursors (`s7`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ScopeId(i64);

impl ScopeId {
    pub const fn new(n: i64) -> Self {
        ScopeId(n)
    }

    pub const fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for ScopeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a member may do in a scope.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including sharing and deleting the space. One per scope.
    Owner,
    /// Reads and writes records.
    Editor,
    /// Reads only.
    Viewer,
    /// Was a member: sees nothing; its writes are answered `forbidden`, and
    /// its devices are told to drop the space's records.
    Removed,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Editor => "editor",
            Role::Viewer => "viewer",
            Role::Removed => "removed",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "owner" => Some(Role::Owner),
            "editor" => Some(Role::Editor),
            "viewer" => Some(Role::Viewer),
            "removed" => Some(Role::Removed),
            _ => None,
        }
    }

    pub fn can_read(self) -> bool {
        self != Role::Removed
    }

    pub fn can_write(self) -> bool {
        matches!(self, Role::Owner | Role::Editor)
    }
}
