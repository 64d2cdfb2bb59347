//! What a user can see: their scopes (memberships) and each scope's head.

use tidesync_protocol::{RecordId, Role, ScopeId, UserId};

/// One membership, with the scope's committed counter when it was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeView {
    pub id: ScopeId,
    pub role: Role,
    /// The shared space this scope holds; `None` for the personal scope.
    pub space: Option<RecordId>,
    pub head: i64,
    /// The highest version whose tombstone was collected (history
    /// retention): a position below it may have missed a deletion.
    pub collected: i64,
    /// The user created the shared space in their personal scope before it
    /// was shared: their devices may hold its records from then, so moving
    /// in they need its tombstones too. Other members get live records only.
    pub founder: bool,
}

/// A user's memberships: the personal scope, shared scopes, and the scopes
/// the user was removed from (role [`Role::Removed`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    pub user: UserId,
    pub personal: ScopeId,
    pub scopes: Vec<ScopeView>,
}

impl View {
    /// A user who shares nothing: one personal scope at `head`.
    pub fn personal(user: UserId, personal: ScopeId, head: i64) -> View {
        View {
            user,
            personal,
            scopes: vec![ScopeView {
                id: personal,
                role: Role::Owner,
                space: None,
                head,
                collected: 0,
                founder: false,
            }],
        }
    }

    /// The counter and role of a scope as read under its write lock.
    pub fn locked(&mut self, scope: ScopeId, head: i64, role: Role) {
        match self.scopes.iter_mut().find(|s| s.id == scope) {
            Some(s) => {
                s.head = head;
                s.role = role;
            }
            // Became a member after the view was read: a shared scope we
            // know nothing else about yet.
            None => self.scopes.push(ScopeView {
                id: scope,
                role,
                space: None,
                head,
                collected: 0,
                founder: false,
            }),
        }
    }

    pub fn get(&self, scope: ScopeId) -> Option<&ScopeView> {
        self.scopes.iter().find(|s| s.id == scope)
    }

    pub fn role(&self, scope: ScopeId) -> Option<Role> {
        self.get(scope).map(|s| s.role)
    }

    /// Scopes whose records the user reads: personal first, then shared by id.
    pub fn readable(&self) -> Vec<&ScopeView> {
        let mut v: Vec<&ScopeView> = self.scopes.iter().filter(|s| s.role.can_read()).collect();
        v.sort_by_key(|s| (s.id != self.personal, s.id));
        v
    }

    /// Every scope the user belongs or belonged to: where a push looks ids up
    /// (a former member's write is answered `forbidden`, not `not_found`).
    pub fn known(&self) -> Vec<ScopeId> {
        let mut v: Vec<ScopeId> = self.scopes.iter().map(|s| s.id).collect();
        v.sort();
        v
    }
}
