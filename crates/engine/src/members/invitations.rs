//! Invitations: a space is shared with someone only when they accept. The
//! owner invites an email; the invitee accepts or declines from their own
//! account. Pure rules, applied by both backends inside their transaction.
//!
//! Nothing here depends on whether the email has an account, or has
//! blocked the space: the owner's answer must not tell (no oracle). Only
//! the invitee's own role matters, for an email that is a member already
//! (the owner sees the members anyway).

use tidesync_protocol::invitations::InvitationStatus;
use tidesync_protocol::time::Millis;
use tidesync_protocol::Role;

use super::{active, decide, member_role, Access, Decision, Refusal, Request};

/// How long an invitation can be accepted: 14 days.
pub const INVITATION_TTL_MS: Millis = 14 * 24 * 60 * 60 * 1000;
/// The window of the per-inviter limit: one hour.
pub const RATE_WINDOW_MS: Millis = 60 * 60 * 1000;

/// How many invitations may be sent; the server's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InviteLimits {
    /// Invitations one user may create per hour, all spaces together.
    pub per_hour: u32,
    /// Pending, unexpired invitations one space may have.
    pub pending_per_space: u32,
}

impl InviteLimits {
    pub const DEFAULT: InviteLimits = InviteLimits {
        per_hour: 20,
        pending_per_space: 50,
    };
}

impl Default for InviteLimits {
    fn default() -> Self {
        InviteLimits::DEFAULT
    }
}

/// Rows counted against a limit, and when the first of them stops
/// counting (leaves the window, or expires).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counted {
    pub count: u32,
    pub first_leaves_at: Option<Millis>,
}

/// What the backend found when an owner invites.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InviteFacts {
    /// The inviter's role in the space.
    pub actor: Role,
    /// The email is the inviter's own.
    pub to_self: bool,
    /// The role in the space's scope of the account with this email, if
    /// there is one and it ever was a member.
    pub invitee: Option<Role>,
    /// When the pending invitation of this inviter to this email and space
    /// expires, if there is one (expired or not).
    pub pending: Option<Millis>,
    /// Invitations the inviter created in the last [`RATE_WINDOW_MS`].
    pub sent: Counted,
    /// The space's other pending, unexpired invitations.
    pub pending_in_space: Counted,
    pub now: Millis,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invite {
    /// A new invitation.
    Create { expires_at: Millis },
    /// The pending one, with the new role and expiry. `renew`: it had
    /// expired, so it counts as new (created now).
    Refresh { expires_at: Millis, renew: bool },
}

fn no_such_invitation() -> Refusal {
    Refusal::NotFound("no such invitation")
}

fn owner(actor: Role) -> Result<(), Refusal> {
    if actor == Role::Owner {
        Ok(())
    } else {
        Err(Refusal::Forbidden("only the space's owner can do this"))
    }
}

fn within(c: Counted, max: u32, now: Millis) -> Result<(), Refusal> {
    if c.count < max {
        return Ok(());
    }
    let wait = c.first_leaves_at.map_or(RATE_WINDOW_MS, |t| t - now);
    Err(Refusal::RateLimited(wait.max(1_000)))
}

/// `POST /api/spaces/{spaceId}/members`: creates or refreshes a pending
/// invitation. Shares nothing: that waits for the acceptance.
pub fn invite(role: Role, f: &InviteFacts, limits: InviteLimits) -> Result<Invite, Refusal> {
    let _ = member_role(role)?;
    owner(f.actor)?;
    if f.to_self {
        return Err(Refusal::Invalid("you cannot invite yourself"));
    }
    if active(f.invitee) {
        return Err(Refusal::Conflict(
            "already a member: change the role with PATCH instead",
        ));
    }
    within(f.sent, limits.per_hour, f.now)?;
    let expires_at = f.now + INVITATION_TTL_MS;
    match f.pending {
        Some(at) if at > f.now => Ok(Invite::Refresh {
            expires_at,
            renew: false,
        }),
        pending => {
            within(f.pending_in_space, limits.pending_per_space, f.now)?;
            Ok(match pending {
                Some(_) => Invite::Refresh {
                    expires_at,
                    renew: true,
                },
                None => Invite::Create { expires_at },
            })
        }
    }
}

/// An invitation as the backend found it for the user answering it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    pub status: InvitationStatus,
    pub expires_at: Millis,
    /// Sent to the caller's email.
    pub to_caller: bool,
    /// The caller blocked invitations to this space.
    pub blocked: bool,
}

/// Whether the caller may answer (and see) the invitation. Not theirs,
/// unknown, expired, answered or blocked: the same 404, no oracle.
pub fn answerable(inv: Option<&Received>, now: Millis) -> Result<(), Refusal> {
    match inv {
        Some(i)
            if i.to_caller
                && !i.blocked
                && i.status == InvitationStatus::Pending
                && i.expires_at > now =>
        {
            Ok(())
        }
        _ => Err(no_such_invitation()),
    }
}

/// Accepting: exactly what adding a member decided before invitations
/// ([`Request::Add`], the inviter acting as the owner; the first member
/// shares the space). `space`: the space as the inviter sees it, with the
/// caller as the target; `None` when it was deleted or is not theirs any
/// more. An inviter who is no longer the owner makes the invitation void:
/// 404, like a deleted space.
pub fn accept(
    inv: Option<&Received>,
    space: Option<&Access>,
    role: Role,
    now: Millis,
) -> Result<Decision, Refusal> {
    answerable(inv, now)?;
    let a = match space {
        Some(a) if a.actor == Role::Owner && !a.target_is_actor => a,
        _ => return Err(no_such_invitation()),
    };
    if active(a.target) {
        return Err(Refusal::Conflict("you are a member of this space already"));
    }
    decide(Request::Add(role), a)
}

/// The owner lists the space's pending invitations.
pub fn list_sent(actor: Role) -> Result<(), Refusal> {
    owner(actor)
}

/// The owner withdraws a pending, unexpired invitation of theirs to the
/// space (`inv`: its status and expiry, if found).
pub fn revoke(
    actor: Role,
    inv: Option<(InvitationStatus, Millis)>,
    now: Millis,
) -> Result<(), Refusal> {
    owner(actor)?;
    match inv {
        Some((InvitationStatus::Pending, expires_at)) if expires_at > now => Ok(()),
        _ => Err(no_such_invitation()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_000_000_000_000;

    fn facts() -> InviteFacts {
        InviteFacts {
            actor: Role::Owner,
            to_self: false,
            invitee: None,
            pending: None,
            sent: Counted::default(),
            pending_in_space: Counted::default(),
            now: NOW,
        }
    }

    #[test]
    fn only_the_owner_invites_others_who_are_not_members() {
        assert_eq!(
            invite(Role::Viewer, &facts(), InviteLimits::DEFAULT),
            Ok(Invite::Create {
                expires_at: NOW + INVITATION_TTL_MS
            })
        );
        for actor in [Role::Editor, Role::Viewer] {
            let f = InviteFacts { actor, ..facts() };
            assert!(matches!(
                invite(Role::Viewer, &f, InviteLimits::DEFAULT),
                Err(Refusal::Forbidden(_))
            ));
        }
        assert!(matches!(
            invite(Role::Owner, &facts(), InviteLimits::DEFAULT),
            Err(Refusal::Invalid(_))
        ));
        let me = InviteFacts {
            to_self: true,
            ..facts()
        };
        assert!(matches!(
            invite(Role::Editor, &me, InviteLimits::DEFAULT),
            Err(Refusal::Invalid(_))
        ));
        let member = InviteFacts {
            invitee: Some(Role::Viewer),
            ..facts()
        };
        assert!(matches!(
            invite(Role::Editor, &member, InviteLimits::DEFAULT),
            Err(Refusal::Conflict(_))
        ));
        let former = InviteFacts {
            invitee: Some(Role::Removed),
            ..facts()
        };
        assert!(
            invite(Role::Editor, &former, InviteLimits::DEFAULT).is_ok(),
            "a former member is invited again: a new consent"
        );
    }

    #[test]
    fn a_pending_invitation_is_refreshed_and_an_expired_one_renewed() {
        let live = InviteFacts {
            pending: Some(NOW + 1),
            // The space is full, but a refresh adds nothing to it.
            pending_in_space: Counted {
                count: 50,
                first_leaves_at: Some(NOW + 5_000),
            },
            ..facts()
        };
        assert_eq!(
            invite(Role::Editor, &live, InviteLimits::DEFAULT),
            Ok(Invite::Refresh {
                expires_at: NOW + INVITATION_TTL_MS,
                renew: false
            })
        );
        let expired = InviteFacts {
            pending: Some(NOW),
            ..facts()
        };
        assert_eq!(
            invite(Role::Editor, &expired, InviteLimits::DEFAULT),
            Ok(Invite::Refresh {
                expires_at: NOW + INVITATION_TTL_MS,
                renew: true
            })
        );
    }

    #[test]
    fn invitations_are_limited_per_inviter_and_per_space_with_a_wait() {
        let busy = InviteFacts {
            sent: Counted {
                count: 20,
                first_leaves_at: Some(NOW + 90_000),
            },
            ..facts()
        };
        assert_eq!(
            invite(Role::Editor, &busy, InviteLimits::DEFAULT),
            Err(Refusal::RateLimited(90_000))
        );
        let under = InviteFacts {
            sent: Counted {
                count: 19,
                first_leaves_at: Some(NOW + 1),
            },
            ..facts()
        };
        assert!(invite(Role::Editor, &under, InviteLimits::DEFAULT).is_ok());
        let full = InviteFacts {
            pending_in_space: Counted {
                count: 3,
                first_leaves_at: Some(NOW + 10),
            },
            ..facts()
        };
        let small = InviteLimits {
            per_hour: 100,
            pending_per_space: 3,
        };
        assert_eq!(
            invite(Role::Editor, &full, small),
            Err(Refusal::RateLimited(1_000)),
            "at least a second"
        );
    }

    fn received() -> Received {
        Received {
            status: InvitationStatus::Pending,
            expires_at: NOW + 1,
            to_caller: true,
            blocked: false,
        }
    }

    fn space(shared: bool, target: Option<Role>) -> Access {
        Access {
            shared,
            actor: Role::Owner,
            target,
            target_is_actor: false,
        }
    }

    #[test]
    fn only_the_invitee_answers_a_live_invitation_and_every_other_case_is_404() {
        assert_eq!(answerable(Some(&received()), NOW), Ok(()));
        let cases = [
            None,
            Some(Received {
                to_caller: false,
                ..received()
            }),
            Some(Received {
                blocked: true,
                ..received()
            }),
            Some(Received {
                expires_at: NOW,
                ..received()
            }),
            Some(Received {
                status: InvitationStatus::Accepted,
                ..received()
            }),
            Some(Received {
                status: InvitationStatus::Declined,
                ..received()
            }),
            Some(Received {
                status: InvitationStatus::Revoked,
                ..received()
            }),
        ];
        for c in cases {
            assert_eq!(
                answerable(c.as_ref(), NOW),
                Err(no_such_invitation()),
                "{c:?}"
            );
            assert_eq!(
                accept(c.as_ref(), Some(&space(true, None)), Role::Editor, NOW),
                Err(no_such_invitation()),
                "{c:?}"
            );
        }
    }

    #[test]
    fn accepting_adds_as_before_and_needs_the_inviter_to_still_own_a_live_space() {
        let d = accept(
            Some(&received()),
            Some(&space(false, None)),
            Role::Viewer,
            NOW,
        )
        .unwrap();
        assert!(d.share_first, "the first member shares the space");
        assert_eq!(d.target, Some(Role::Viewer));
        let d = accept(
            Some(&received()),
            Some(&space(true, Some(Role::Removed))),
            Role::Editor,
            NOW,
        )
        .unwrap();
        assert!(!d.share_first, "a former member comes back");
        assert_eq!(d.target, Some(Role::Editor));
        assert_eq!(
            accept(Some(&received()), None, Role::Editor, NOW),
            Err(no_such_invitation()),
            "the space was deleted"
        );
        let handed_on = Access {
            actor: Role::Editor,
            ..space(true, None)
        };
        assert_eq!(
            accept(Some(&received()), Some(&handed_on), Role::Editor, NOW),
            Err(no_such_invitation()),
            "the inviter is no longer the owner"
        );
        assert!(matches!(
            accept(
                Some(&received()),
                Some(&space(true, Some(Role::Viewer))),
                Role::Editor,
                NOW
            ),
            Err(Refusal::Conflict(_))
        ));
    }

    #[test]
    fn only_the_owner_lists_and_revokes_live_invitations() {
        assert_eq!(list_sent(Role::Owner), Ok(()));
        assert!(matches!(
            list_sent(Role::Editor),
            Err(Refusal::Forbidden(_))
        ));
        let live = Some((InvitationStatus::Pending, NOW + 1));
        assert_eq!(revoke(Role::Owner, live, NOW), Ok(()));
        assert!(matches!(
            revoke(Role::Viewer, live, NOW),
            Err(Refusal::Forbidden(_))
        ));
        for gone in [
            None,
            Some((InvitationStatus::Pending, NOW)),
            Some((InvitationStatus::Accepted, NOW + 1)),
            Some((InvitationStatus::Revoked, NOW + 1)),
        ] {
            assert_eq!(
                revoke(Role::Owner, gone, NOW),
                Err(no_such_invitation()),
                "{gone:?}"
            );
        }
    }
}
